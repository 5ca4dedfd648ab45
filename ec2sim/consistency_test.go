package ec2sim_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch/ec2sim"
)

// With DescribeLag, Describe shows rules as they were the lag ago: a new
// rule appears, a tag changes and a revoked rule disappears only once the
// lag has passed on the simulator's clock. The mutations themselves see
// the present.
func TestDescribeLag(t *testing.T) {
	const lag = 5 * time.Second
	clock := &testClock{now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	sim, c := mustSim(t, ec2sim.Options{Now: clock.Now, DescribeLag: lag})
	later := func(d time.Duration) { clock.Set(clock.Now().Add(d)) }

	rules := func() map[string]map[string]string {
		t.Helper()
		out, err := c.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{Filters: []types.Filter{filter("group-id", web)}})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]map[string]string{}
		for _, r := range ingressOnly(out.SecurityGroupRules) {
			m[aws.ToString(r.SecurityGroupRuleId)] = tagMap(r.Tags)
		}
		return m
	}
	ranges := func() int {
		t.Helper()
		out, err := c.DescribeSecurityGroups(t.Context(), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{web}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range out.SecurityGroups[0].IpPermissions {
			n += len(p.IpRanges)
		}
		return n
	}

	created, err := c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("192.0.2.1/32")}, TagSpecifications: tagSpec("latch:grant-id", "g-1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(created.SecurityGroupRules[0].SecurityGroupRuleId)

	// Invisible to Describe, but EC2's own duplicate check and tagging see it.
	if got := rules(); len(got) != 0 || ranges() != 0 {
		t.Errorf("a new rule is visible at once: %v", got)
	}
	_, err = c.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{SecurityGroupRuleIds: []string{id}})
	wantCode(t, err, ec2sim.CodeInvalidRuleIDNotFound)
	_, err = c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("192.0.2.1/32")},
	})
	wantCode(t, err, ec2sim.CodeInvalidPermissionDuplicate)
	if len(sim.Rules("us-east-1", web)) != 1 {
		t.Errorf("Server.Rules lags too")
	}

	later(lag - time.Millisecond)
	if got := rules(); len(got) != 0 {
		t.Errorf("visible before the lag: %v", got)
	}
	later(time.Millisecond)
	if got := rules(); got[id]["latch:grant-id"] != "g-1" || ranges() != 1 {
		t.Fatalf("after the lag: %v, %d ranges; want %s tagged g-1", got, ranges(), id)
	}

	// A tag change lags.
	if _, err := c.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{id}, Tags: []types.Tag{{Key: aws.String("latch:grant-id"), Value: aws.String("g-2")}}}); err != nil {
		t.Fatal(err)
	}
	if got := rules()[id]["latch:grant-id"]; got != "g-1" {
		t.Errorf("tag at once = %q, want the old g-1", got)
	}
	later(lag)
	if got := rules()[id]["latch:grant-id"]; got != "g-2" {
		t.Errorf("tag after the lag = %q, want g-2", got)
	}

	// A revoked rule stays visible for the lag; revoking it again is NotFound at once.
	if _, err := c.RevokeSecurityGroupIngress(t.Context(), &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(web), SecurityGroupRuleIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	if got := rules(); got[id] == nil || ranges() != 1 {
		t.Errorf("a revoked rule vanished at once: %v", got)
	}
	_, err = c.RevokeSecurityGroupIngress(t.Context(), &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(web), SecurityGroupRuleIds: []string{id}})
	wantCode(t, err, ec2sim.CodeInvalidRuleIDNotFound)
	later(lag)
	if got := rules(); len(got) != 0 || ranges() != 0 {
		t.Errorf("revoked rule still visible after the lag: %v", got)
	}
}
