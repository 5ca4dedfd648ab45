package aws_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

const (
	hostEd25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPXjuIwJBWRx3hMWxqpcf1GSVc2fzhLPLb/GRk8IJ/yT"
	hostECDSA   = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPL2VUvPbNUWHoWoXAXAch7htteglaGiSv60tdQVjcMzMQR166uh3ptr/EV+cYgXGjSSah82yp6jnfCPr+AvsOU="
	hostLater   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK7o7Kh+aXR900OHg1vyYmVcdZNp6DpRAAqiEh8lzdlF"
)

func TestParseConsoleHostKeys(t *testing.T) {
	block := func(lines ...string) string {
		return "-----BEGIN SSH HOST KEY KEYS-----\n" + strings.Join(lines, "\n") + "\n-----END SSH HOST KEY KEYS-----\n"
	}
	for _, tt := range []struct {
		name, console string
		want          []string
	}{
		{"cloud-init", "[  5.1] cloud-init: booting\n" + block(hostECDSA+" root@ip-10-0-1-10", hostEd25519+" root@ip-10-0-1-10") + "login: ",
			[]string{hostECDSA, hostEd25519}},
		{"CRLF and an ec2: prefix", strings.ReplaceAll(block("ec2: "+hostEd25519+" root@h"), "\n", "\r\n"), []string{hostEd25519}},
		// cloud-init prints the keys once, at first boot; a later block
		// can only come from something on the instance (root can write to
		// the console), so it must not replace the keys EC2 saw first.
		{"the first complete block wins over a later one", block(hostEd25519) + "[ 900.2] later\n" + block(hostLater), []string{hostEd25519}},
		{"a later block is ignored even with more keys", block(hostEd25519) + block(hostLater, hostECDSA), []string{hostEd25519}},
		{"an empty first block still wins", block() + block(hostLater), nil},
		{"an end marker before any block is noise", "-----END SSH HOST KEY KEYS-----\n" + block(hostEd25519), []string{hostEd25519}},
		{"noise inside the block is skipped", block("not a key", hostEd25519, "ssh-ed25519 !!!notbase64"), []string{hostEd25519}},
		{"no block", "ssh-ed25519 " + hostEd25519 + "\nlogin: ", nil},
		{"an unfinished block counts for nothing", block(hostEd25519) + "-----BEGIN SSH HOST KEY KEYS-----\n" + hostLater + "\n",
			[]string{hostEd25519}},
		{"empty", "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := latchaws.ParseConsoleHostKeys(tt.console); !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// A certificate in the block is not a host key to pin.
func TestParseConsoleHostKeysSkipsCertificates(t *testing.T) {
	ca, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(hostLater))
	cert := &ssh.Certificate{Key: key, CertType: ssh.HostCert, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	console := "-----BEGIN SSH HOST KEY KEYS-----\n" + string(ssh.MarshalAuthorizedKey(cert)) + hostEd25519 + "\n-----END SSH HOST KEY KEYS-----\n"
	if got := latchaws.ParseConsoleHostKeys(console); !slices.Equal(got, []string{hostEd25519}) {
		t.Errorf("got %q; want only the plain key", got)
	}
}

// Through the SDK: the keys the simulator's console shows, none for an
// instance whose console has none, ENOTFOUND and EINVALID for bad IDs.
func TestConsoleHostKeys(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{})
	if err := env.Sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		t.Fatal(err)
	}
	if err := env.Sim.SetHostKeys(awstest.Region, ec2sim.DemoWeb1, []string{hostEd25519 + " any comment", hostECDSA}); err != nil {
		t.Fatal(err)
	}
	src := latchaws.NewConsoleHostKeys(env.Config())
	keys, err := src.HostKeys(t.Context(), ec2sim.DemoWeb1)
	if err != nil || !slices.Equal(keys, []string{hostEd25519, hostECDSA}) {
		t.Errorf("web-1 host keys = %q, %v; want its two keys without comments", keys, err)
	}
	if keys, err := src.HostKeys(t.Context(), ec2sim.DemoDB1); err != nil || keys != nil {
		t.Errorf("db-1 (no keys on its console) = %q, %v; want none", keys, err)
	}
	if _, err := src.HostKeys(t.Context(), "i-0000000000000dead"); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("unknown instance = %v; want ENOTFOUND", err)
	}
	if _, err := src.HostKeys(t.Context(), "web-1"); latch.ErrorCode(err) != latch.EINVALID {
		t.Errorf("malformed ID = %v; want EINVALID", err)
	}
}
