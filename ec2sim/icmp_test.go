package ec2sim_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch/ec2sim"
)

// ICMP as EC2 documents it (API_IpPermission): FromPort is the type and
// ToPort the code, -1 for all; icmp needs both, icmpv6 may leave them off
// (all types and codes); protocol 58 is stored and described as icmpv6.
// EC2 does not refuse icmp with an IPv6 range (it opens ICMPv4 for that
// range, which matches nothing), and the simulator mirrors that: refusing
// the pair is latch's job, before it calls EC2.
func TestAuthorize_ICMP(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	v6 := func(proto string, from, to *int32, cidr string) types.IpPermission {
		return types.IpPermission{IpProtocol: aws.String(proto), FromPort: from, ToPort: to,
			Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String(cidr)}}}
	}
	v4 := func(proto string, from, to *int32, cidr string) types.IpPermission {
		return types.IpPermission{IpProtocol: aws.String(proto), FromPort: from, ToPort: to,
			IpRanges: []types.IpRange{{CidrIp: aws.String(cidr)}}}
	}
	rules := mustAuthorize(t, c, web,
		v6("icmpv6", aws.Int32(128), aws.Int32(-1), "2001:db8::7/128"),
		v6("58", aws.Int32(129), aws.Int32(0), "2001:db8::8/128"),
		v6("ICMPv6", nil, nil, "2001:db8::9/128"),
		v6("icmp", aws.Int32(8), aws.Int32(-1), "2001:db8::a/128"),
		v4("icmpv6", aws.Int32(-1), aws.Int32(-1), "203.0.113.7/32"),
	)
	want := []string{
		"icmpv6 128--1 2001:db8::7/128",
		"icmpv6 129-0 2001:db8::8/128",
		"icmpv6 -1--1 2001:db8::9/128",
		"icmp 8--1 2001:db8::a/128",
		"icmpv6 -1--1 203.0.113.7/32",
	}
	describe := func(rules []types.SecurityGroupRule) []string {
		var got []string
		for _, r := range rules {
			cidr := aws.ToString(r.CidrIpv4) + aws.ToString(r.CidrIpv6)
			got = append(got, fmt.Sprintf("%s %d-%d %s", aws.ToString(r.IpProtocol), aws.ToInt32(r.FromPort), aws.ToInt32(r.ToPort), cidr))
		}
		return got
	}
	if got := describe(rules); !slices.Equal(got, want) {
		t.Errorf("returned rules\n%q\nwant\n%q", got, want)
	}
	out, err := c.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{
		SecurityGroupRuleIds: ruleIDs(rules)})
	if err != nil {
		t.Fatal(err)
	}
	if got := describe(out.SecurityGroupRules); !slices.Equal(got, want) {
		t.Errorf("described rules\n%q\nwant\n%q", got, want)
	}

	// 58 and icmpv6 name the same rule.
	_, err = c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(web),
		IpPermissions: []types.IpPermission{v6("58", aws.Int32(128), aws.Int32(-1), "2001:db8::7/128")}})
	wantCode(t, err, "InvalidPermission.Duplicate")

	bad := []struct {
		name  string
		perm  types.IpPermission
		inMsg string
	}{
		{"icmp without ports", v4("icmp", nil, nil, "203.0.113.8/32"), "ICMP"},
		{"icmp without a code", v4("icmp", aws.Int32(8), nil, "203.0.113.8/32"), "ICMP"},
		{"type too big", v6("icmpv6", aws.Int32(256), aws.Int32(-1), "2001:db8::b/128"), "256"},
		{"code too big", v4("icmp", aws.Int32(3), aws.Int32(256), "203.0.113.8/32"), "256"},
		{"code without type", v6("icmpv6", aws.Int32(-1), aws.Int32(4), "2001:db8::b/128"), "4"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
				GroupId: aws.String(web), IpPermissions: []types.IpPermission{tt.perm}})
			wantCode(t, err, "InvalidParameterValue")
			if err != nil && !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("message %q does not mention %q", err, tt.inMsg)
			}
		})
	}
}
