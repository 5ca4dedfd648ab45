package ec2sim_test

import (
	"bytes"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchdev/latch/ec2sim"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGolden pins the XML of a few responses. IDs come from a seeded
// generator and the clock is fixed, so the bytes are stable; run with
// -update after a deliberate change and review the diff.
func TestGolden(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{
		Seed: 1,
		Now:  func() time.Time { return time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC) },
	})
	if err := sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		t.Fatal(err)
	}
	authorize := url.Values{
		"Action": {"AuthorizeSecurityGroupIngress"}, "Version": {"2016-11-15"}, "GroupId": {ec2sim.DemoWebLatchGroup},
		"IpPermissions.1.IpProtocol": {"tcp"}, "IpPermissions.1.FromPort": {"22"}, "IpPermissions.1.ToPort": {"22"},
		"IpPermissions.1.IpRanges.1.CidrIp":      {"203.0.113.7/32"},
		"IpPermissions.1.IpRanges.1.Description": {"latch grant g1"},
		"IpPermissions.1.Ipv6Ranges.1.CidrIpv6":  {"2001:DB8::7/128"},
		"TagSpecification.1.ResourceType":        {"security-group-rule"},
		"TagSpecification.1.Tag.1.Key":           {"latch:grant-id"},
		"TagSpecification.1.Tag.1.Value":         {"g1"},
		"TagSpecification.1.Tag.2.Key":           {"latch:expires-at"},
		"TagSpecification.1.Tag.2.Value":         {"2026-11-23T10:00:00Z"},
	}
	steps := []struct {
		name   string
		form   url.Values
		status int
	}{
		{"authorize-security-group-ingress", authorize, 200},
		{"error-duplicate", authorize, 400},
		{"describe-security-group-rules", url.Values{
			"Action": {"DescribeSecurityGroupRules"}, "Version": {"2016-11-15"},
			"Filter.1.Name": {"tag-key"}, "Filter.1.Value.1": {"latch:grant-id"}, "MaxResults": {"5"},
		}, 200},
		{"describe-security-groups", url.Values{
			"Action": {"DescribeSecurityGroups"}, "Version": {"2016-11-15"}, "GroupId.1": {ec2sim.DemoWebLatchGroup},
		}, 200},
		{"describe-instances", url.Values{
			"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}, "InstanceId.1": {ec2sim.DemoWeb1},
		}, 200},
		{"revoke-security-group-ingress", url.Values{
			"Action": {"RevokeSecurityGroupIngress"}, "Version": {"2016-11-15"}, "GroupId": {ec2sim.DemoWebLatchGroup},
			"IpPermissions.1.IpProtocol": {"tcp"}, "IpPermissions.1.FromPort": {"22"}, "IpPermissions.1.ToPort": {"22"},
			"IpPermissions.1.IpRanges.1.CidrIp": {"203.0.113.7/32"},
		}, 200},
		{"error-throttled", url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}}, 503},
		// Last, so that its request ID does not shift the others'.
		{"get-console-output", url.Values{
			"Action": {"GetConsoleOutput"}, "Version": {"2016-11-15"}, "InstanceId": {ec2sim.DemoWeb1},
		}, 200},
	}
	for _, st := range steps {
		switch st.name {
		case "error-throttled":
			sim.SetFaults(ec2sim.Faults{ThrottleRate: 1})
		case "get-console-output":
			sim.SetFaults(ec2sim.Faults{})
		}
		rec := post(t, sim, st.form, "")
		if rec.Code != st.status {
			t.Errorf("%s: status %d, want %d\n%s", st.name, rec.Code, st.status, rec.Body)
		}
		checkGolden(t, st.name, rec.Body.Bytes())
	}
}

// checkGolden compares got with testdata/NAME.golden, or writes it there
// with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n%s", name, path, got)
	}
}
