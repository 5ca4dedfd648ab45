package ec2sim_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/latchdev/latch/ec2sim"
)

// TestGoldenNet pins the XML of rules sourced from a group and a prefix
// list, and of instances with two interfaces, as TestGolden does for the
// rest (its own simulator, so that neither shifts the other's IDs).
func TestGoldenNet(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{
		Seed: 1,
		Now:  func() time.Time { return time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC) },
	})
	f, err := ec2sim.ParseFleet([]byte(netFleet))
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.LoadFleet(f); err != nil {
		t.Fatal(err)
	}
	const db = "sg-0000000000000000d"
	v := func(kv ...string) url.Values {
		out := url.Values{"Version": {"2016-11-15"}}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = []string{kv[i+1]}
		}
		return out
	}
	steps := []struct {
		name string
		form url.Values
	}{
		{"authorize-sources", v("Action", "AuthorizeSecurityGroupIngress", "GroupId", db,
			"IpPermissions.1.IpProtocol", "tcp", "IpPermissions.1.FromPort", "22", "IpPermissions.1.ToPort", "22",
			"IpPermissions.1.Groups.1.GroupId", "sg-0000000000000000d", "IpPermissions.1.Groups.1.Description", "itself",
			"IpPermissions.2.IpProtocol", "tcp", "IpPermissions.2.FromPort", "443", "IpPermissions.2.ToPort", "443",
			"IpPermissions.2.PrefixListIds.1.PrefixListId", "pl-63a5400a")},
		{"describe-security-groups-sources", v("Action", "DescribeSecurityGroups", "GroupId.1", db)},
		{"describe-security-group-rules-sources", v("Action", "DescribeSecurityGroupRules", "Filter.1.Name", "group-id", "Filter.1.Value.1", db)},
		{"modify-instance-attribute", v("Action", "ModifyInstanceAttribute", "InstanceId", "i-00000000000000001", "GroupId.1", db)},
		{"describe-instances-interfaces", v("Action", "DescribeInstances", "InstanceId.1", "i-00000000000000002")},
	}
	for _, st := range steps {
		rec := post(t, sim, st.form, "")
		if rec.Code != 200 {
			t.Errorf("%s: status %d\n%s", st.name, rec.Code, rec.Body)
		}
		checkGolden(t, st.name, rec.Body.Bytes())
	}
}
