package aws_test

import (
	"net/netip"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/awstest"
)

// TestICMPv6RulesOpenAndAreListed: an icmpv6 opening goes out as icmpv6
// with a /128, is adopted when it exists, and is listed by Rules (what a
// sweep reads) — also when another client wrote its protocol as 58.
func TestICMPv6RulesOpenAndAreListed(t *testing.T) {
	env := awstest.New(t)
	fw := env.Firewall(t)
	group := env.ManagedGroup(t)
	ping := latch.Opening{Region: awstest.Region, GroupID: group, Protocol: latch.ICMPv6,
		Ports: latch.PortRange{From: 128, To: -1}, Source: netip.MustParsePrefix("2001:db8::7/128")}
	all := ping
	all.Ports, all.Source = latch.AllICMP, netip.MustParsePrefix("2001:db8::8/128")
	for _, o := range []latch.Opening{ping, all} {
		r, created, err := fw.Authorize(t.Context(), o, tags)
		if err != nil || !created || r.Opening != o {
			t.Fatalf("Authorize(%+v) = %+v, %v, %v; want it created", o, r, created, err)
		}
		again, created, err := fw.Authorize(t.Context(), o, tags)
		if err != nil || created || again.ID != r.ID {
			t.Fatalf("second Authorize = %s, %v, %v; want %s adopted", again.ID, created, err, r.ID)
		}
	}
	_, err := env.EC2.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(string(group)),
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("58"), FromPort: aws.Int32(129), ToPort: aws.Int32(-1),
			Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("2001:db8::9/128")}}}},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroupRule,
			Tags: []types.Tag{{Key: aws.String(latch.TagExpiresAt), Value: aws.String("2026-11-23T10:00:00Z")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range env.Ingress(t, group) {
		if p := aws.ToString(r.IpProtocol); p != "icmpv6" && p != "58" {
			t.Errorf("rule %s has IpProtocol %q, want icmpv6", aws.ToString(r.SecurityGroupRuleId), p)
		}
	}
	rules, err := fw.Rules(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Prefix]latch.PortRange{ping.Source: ping.Ports, all.Source: all.Ports,
		netip.MustParsePrefix("2001:db8::9/128"): {From: 129, To: -1}}
	for _, r := range rules {
		if r.Opening.GroupID != group {
			continue
		}
		if ports, ok := want[r.Opening.Source]; !ok || r.Opening.Protocol != latch.ICMPv6 || r.Opening.Ports != ports {
			t.Errorf("Rules() has %+v", r.Opening)
		}
		delete(want, r.Opening.Source)
	}
	if len(want) != 0 {
		t.Errorf("Rules() misses the icmpv6 rules from %v", want)
	}
}
