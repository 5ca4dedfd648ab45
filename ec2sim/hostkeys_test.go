package ec2sim_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/latchdev/latch/ec2sim"
)

const demoWeb1Ed25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIImSpBw1reBVkirhyBk7kU/TBgCtnYO4g3iyXio+gdHl"

func TestParseFleet_HostKeyErrors(t *testing.T) {
	const allowed = "ssh-ed25519, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521 or ssh-rsa"
	for _, tt := range []struct {
		name, key string
		msgs      []string
	}{
		{"DSA", "ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIpUt9KnC7s5Of2EbdSPO9EAMMeP4C2USZpRV1AIlH7WT2NWPq/xfW6MPbLm1Vs14E7gB00b",
			[]string{`"ssh-dss AAAAB3NzaC1kc3MAAACBAP1/U4EddRIp..."`, `key type "ssh-dss"`, allowed}},
		{"no key data", "ssh-ed25519", []string{`"ssh-ed25519"`, "TYPE BASE64 [comment]", allowed}},
		{"not base64", "ssh-ed25519 AAAA*not-base64*", []string{`"ssh-ed25519 AAAA*not-base64*"`, "not base64"}},
		{"data of another type", "ssh-ed25519 AAAAB3NzaC1yc2E= alice", []string{`of type "ssh-rsa", not ssh-ed25519`}},
		{"data not a key", "ssh-ed25519 aGVsbG8=", []string{`does not start with the SSH string "ssh-ed25519"`}},
		{"truncated key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIImSpBw1", []string{"32-byte"}},
		{"curve mismatch", "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAyNTY=", []string{`curve name "nistp384"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			yaml := `
regions:
  us-east-1:
    security_groups: [{name: g}]
    instances:
      - security_groups: [g]
        host_keys:
          - ` + demoWeb1Ed25519 + `
          - "` + tt.key + `"
`
			_, err := ec2sim.ParseFleet([]byte(yaml))
			var fe *ec2sim.FleetError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *FleetError", err)
			}
			if fe.Field != "regions.us-east-1.instances[0].host_keys[1]" || fe.Line != 9 {
				t.Errorf("err = %q (field %q, line %d); want host_keys[1] on line 9", err, fe.Field, fe.Line)
			}
			for _, m := range tt.msgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("err = %q; want it to mention %q", err, m)
				}
			}
		})
	}
}

// Fleets built in Go have no lines; the error still names the key.
func TestLoadFleet_BadHostKey(t *testing.T) {
	f := keyFleet([]string{demoWeb1Ed25519, "ssh-rsa AAAA"})
	err := ec2sim.New(ec2sim.Options{}).LoadFleet(f)
	var fe *ec2sim.FleetError
	if !errors.As(err, &fe) || fe.Field != "regions.us-east-1.instances[0].host_keys[1]" {
		t.Errorf("LoadFleet = %v; want a FleetError for instances[0].host_keys[1]", err)
	}
}

func TestParseFleet_HostKeysMustBeAList(t *testing.T) {
	_, err := ec2sim.ParseFleet([]byte(`
regions:
  us-east-1:
    security_groups: [{name: g}]
    instances:
      - security_groups: [g]
        host_keys: ` + demoWeb1Ed25519 + `
`))
	var fe *ec2sim.FleetError
	if !errors.As(err, &fe) || fe.Field != "regions.us-east-1.instances[0].host_keys" || fe.Line != 7 || !strings.Contains(err.Error(), "list") {
		t.Errorf("err = %v; want host_keys on line 7 to be a list", err)
	}
}
