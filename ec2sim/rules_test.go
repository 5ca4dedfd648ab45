package ec2sim_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch/ec2sim"
)

const web = ec2sim.DemoWebLatchGroup

func TestAuthorize_TaggedRuleIsFoundByEveryFilter(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	ctx := t.Context()
	out, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId:           aws.String(web),
		IpPermissions:     []types.IpPermission{ssh("203.0.113.7/32")},
		TagSpecifications: tagSpec("latch:grant-id", "g1", "latch:expires-at", "2026-11-23T10:00:00Z"),
	})
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	if !aws.ToBool(out.Return) || len(out.SecurityGroupRules) != 1 {
		t.Fatalf("authorize = return %v, %d rules; want true, 1", aws.ToBool(out.Return), len(out.SecurityGroupRules))
	}
	r := out.SecurityGroupRules[0]
	id := aws.ToString(r.SecurityGroupRuleId)
	if !strings.HasPrefix(id, "sgr-") || len(id) != len("sgr-")+17 {
		t.Errorf("rule ID %q, want sgr- and 17 hex digits", id)
	}
	wantTags := map[string]string{"latch:grant-id": "g1", "latch:expires-at": "2026-11-23T10:00:00Z"}
	if got := tagMap(r.Tags); !maps.Equal(got, wantTags) {
		t.Errorf("returned tags %v, want %v", got, wantTags)
	}

	for _, f := range []types.Filter{
		filter("tag:latch:grant-id", "g1"),
		filter("tag-key", "latch:expires-at"),
		filter("group-id", web),
		filter("security-group-rule-id", id),
		filter("tag:latch:grant-id", "g*"),
	} {
		t.Run(aws.ToString(f.Name), func(t *testing.T) {
			got, err := c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{Filters: []types.Filter{f}})
			if err != nil {
				t.Fatal(err)
			}
			rules := ingressOnly(got.SecurityGroupRules)
			if len(rules) != 1 {
				t.Fatalf("found %v, want just %s", ruleIDs(rules), id)
			}
			r := rules[0]
			if aws.ToString(r.SecurityGroupRuleId) != id || aws.ToString(r.GroupId) != web ||
				aws.ToString(r.GroupOwnerId) != ec2sim.DefaultAccountID || aws.ToBool(r.IsEgress) ||
				aws.ToString(r.IpProtocol) != "tcp" || aws.ToInt32(r.FromPort) != 22 || aws.ToInt32(r.ToPort) != 22 ||
				aws.ToString(r.CidrIpv4) != "203.0.113.7/32" || aws.ToString(r.Description) != "ssh" {
				t.Errorf("rule = %+v", r)
			}
			if got := tagMap(r.Tags); !maps.Equal(got, wantTags) {
				t.Errorf("tags %v, want %v", got, wantTags)
			}
		})
	}

	none, err := c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{
		Filters: []types.Filter{filter("tag:latch:grant-id", "g2")},
	})
	if err != nil || len(none.SecurityGroupRules) != 0 {
		t.Errorf("filter on another grant = %v, %v; want nothing", ruleIDs(none.SecurityGroupRules), err)
	}
}

func TestAuthorize_DuplicateChangesNothing(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{})
	mustAuthorize(t, c, web, ssh("203.0.113.7/32"))

	// The second permission is new, the first a duplicate: the call is
	// refused as a whole.
	_, err := c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId:       aws.String(web),
		IpPermissions: []types.IpPermission{ssh("198.51.100.1/32"), ssh("203.0.113.7/32")},
	})
	wantCode(t, err, "InvalidPermission.Duplicate")
	if got := sim.Rules("us-east-1", web); len(got) != 1 {
		t.Errorf("rules after refused call = %v, want the first rule only", got)
	}

	// Same rule, different description: still a duplicate.
	dup := ssh("203.0.113.7/32")
	dup.IpRanges[0].Description = aws.String("other")
	_, err = c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{dup},
	})
	wantCode(t, err, "InvalidPermission.Duplicate")

	// Twice in one call is a duplicate too.
	_, err = c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("192.0.2.1/32"), ssh("192.0.2.1/32")},
	})
	wantCode(t, err, "InvalidPermission.Duplicate")
	if got := sim.Rules("us-east-1", web); len(got) != 1 {
		t.Errorf("rules = %v, want 1", got)
	}
}

func TestAuthorize_Canonicalises(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{})
	rules := mustAuthorize(t, c, web,
		types.IpPermission{
			IpProtocol: aws.String("6"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
			IpRanges: []types.IpRange{{CidrIp: aws.String("100.68.0.18/18")}},
		},
		types.IpPermission{
			IpProtocol: aws.String("TCP"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
			Ipv6Ranges: []types.Ipv6Range{{CidrIpv6: aws.String("2001:DB8:0:0:0:0:0:1/64")}},
		},
		types.IpPermission{IpProtocol: aws.String("17"), FromPort: aws.Int32(53), ToPort: aws.Int32(53),
			IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}},
		types.IpPermission{IpProtocol: aws.String("1"), FromPort: aws.Int32(8), ToPort: aws.Int32(-1),
			IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}},
		types.IpPermission{IpProtocol: aws.String("-1"), FromPort: aws.Int32(1), ToPort: aws.Int32(2),
			IpRanges: []types.IpRange{{CidrIp: aws.String("10.1.0.0/16")}}},
	)
	want := []string{
		"tcp 22-22 100.68.0.0/18",
		"tcp 22-22 2001:db8::/64",
		"udp 53-53 10.0.0.0/8",
		"icmp 8--1 10.0.0.0/8",
		"-1 -1--1 10.1.0.0/16",
	}
	var got []string
	for _, r := range rules {
		cidr := aws.ToString(r.CidrIpv4) + aws.ToString(r.CidrIpv6)
		got = append(got, fmt.Sprintf("%s %d-%d %s", aws.ToString(r.IpProtocol), aws.ToInt32(r.FromPort), aws.ToInt32(r.ToPort), cidr))
	}
	if !slices.Equal(got, want) {
		t.Errorf("returned rules\n%q\nwant\n%q", got, want)
	}
	if snap := sim.Rules("us-east-1", web); len(snap) != 5 || snap[0].CIDR != "100.68.0.0/18" {
		t.Errorf("Rules() = %v", snap)
	}

	// The canonical form and the original both name the stored rule.
	_, err := c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("100.68.63.255/18")},
	})
	wantCode(t, err, "InvalidPermission.Duplicate")
}

func TestAuthorize_InvalidInput(t *testing.T) {
	tests := []struct {
		name  string
		in    ec2.AuthorizeSecurityGroupIngressInput
		code  string
		inMsg string
	}{
		{name: "no group", in: ec2.AuthorizeSecurityGroupIngressInput{IpPermissions: []types.IpPermission{ssh("192.0.2.1/32")}},
			code: "MissingParameter", inMsg: "GroupId"},
		{name: "malformed group", in: ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String("sg-XYZ"), IpPermissions: []types.IpPermission{ssh("192.0.2.1/32")}},
			code: "InvalidGroupId.Malformed", inMsg: "sg-XYZ"},
		{name: "unknown group", in: ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String("sg-0123456789abcdef0"), IpPermissions: []types.IpPermission{ssh("192.0.2.1/32")}},
			code: "InvalidGroup.NotFound", inMsg: "sg-0123456789abcdef0"},
		{name: "no permissions", in: ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(web)},
			code: "MissingParameter", inMsg: "IpPermissions"},
		{name: "bad CIDR", in: ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("10.0.0.300/32")}},
			code: "InvalidParameterValue", inMsg: "10.0.0.300/32"},
		{name: "IPv6 in CidrIp", in: ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("2001:db8::/64")}},
			code: "InvalidParameterValue", inMsg: "2001:db8::/64"},
		{name: "port too high", in: ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(web), IpPermissions: []types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(70000),
			IpRanges: []types.IpRange{{CidrIp: aws.String("192.0.2.1/32")}}}}},
			code: "InvalidParameterValue", inMsg: "70000"},
		{name: "reversed ports", in: ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(web), IpPermissions: []types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(23), ToPort: aws.Int32(22),
			IpRanges: []types.IpRange{{CidrIp: aws.String("192.0.2.1/32")}}}}},
			code: "InvalidParameterValue", inMsg: "23"},
		{name: "unknown protocol", in: ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(web), IpPermissions: []types.IpPermission{{
			IpProtocol: aws.String("sctpx"), IpRanges: []types.IpRange{{CidrIp: aws.String("192.0.2.1/32")}}}}},
			code: "InvalidParameterValue", inMsg: "sctpx"},
		{name: "wrong tag resource type", in: ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(web),
			IpPermissions: []types.IpPermission{ssh("192.0.2.1/32")},
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup,
				Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}}},
			code: "InvalidParameterValue", inMsg: "security-group"},
	}
	sim, c := mustSim(t, ec2sim.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.AuthorizeSecurityGroupIngress(t.Context(), &tt.in)
			wantCode(t, err, tt.code)
			if !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("message %q does not mention %q", err, tt.inMsg)
			}
		})
	}
	if got := sim.Rules("us-east-1", web); len(got) != 0 {
		t.Errorf("refused calls left rules %v", got)
	}
}

func TestAuthorize_QuotaPerAddressFamily(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{})
	var v4, v6 []types.IpPermission
	for i := range 60 {
		v4 = append(v4, ssh(fmt.Sprintf("198.51.100.%d/32", i)))
		v6 = append(v6, ssh6(fmt.Sprintf("2001:db8::%x/128", i)))
	}
	// 60 IPv4 and 60 IPv6 rules fit: the quota counts each family apart.
	mustAuthorize(t, c, web, v4[:30]...)
	mustAuthorize(t, c, web, v4[30:]...)
	mustAuthorize(t, c, web, v6...)

	for _, p := range []types.IpPermission{ssh("192.0.2.1/32"), ssh6("2001:db8:1::/64")} {
		_, err := c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
			GroupId: aws.String(web), IpPermissions: []types.IpPermission{p},
		})
		wantCode(t, err, "RulesPerSecurityGroupLimitExceeded")
	}
	if n := len(sim.Rules("us-east-1", web)); n != 120 {
		t.Errorf("%d rules, want 120", n)
	}
}

func TestAuthorize_QuotaIsConfigurableAndAtomic(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{RuleLimit: 2})
	mustAuthorize(t, c, web, ssh("192.0.2.1/32"))
	_, err := c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("192.0.2.2/32"), ssh("192.0.2.3/32")},
	})
	wantCode(t, err, "RulesPerSecurityGroupLimitExceeded")
	if n := len(sim.Rules("us-east-1", web)); n != 1 {
		t.Errorf("%d rules after refused call, want 1", n)
	}
}

func TestRevoke_ByRuleID(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{})
	ctx := t.Context()
	_, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("203.0.113.7/32"), ssh("203.0.113.8/32")},
		TagSpecifications: tagSpec("latch:grant-id", "g1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	rules := sim.Rules("us-east-1", web)
	out, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(web), SecurityGroupRuleIds: []string{rules[0].ID},
	})
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if !aws.ToBool(out.Return) || len(out.RevokedSecurityGroupRules) != 1 ||
		aws.ToString(out.RevokedSecurityGroupRules[0].SecurityGroupRuleId) != rules[0].ID {
		t.Errorf("revoke = %+v", out)
	}
	if left := sim.Rules("us-east-1", web); len(left) != 1 || left[0].ID != rules[1].ID {
		t.Errorf("left %v, want only %s", left, rules[1].ID)
	}
	// The rule's tags went with it.
	tags, err := c.DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []types.Filter{filter("resource-id", rules[0].ID)}})
	if err != nil || len(tags.Tags) != 0 {
		t.Errorf("tags of revoked rule = %v, %v; want none", tags.Tags, err)
	}

	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(web), SecurityGroupRuleIds: []string{rules[0].ID},
	})
	wantCode(t, err, "InvalidSecurityGroupRuleId.NotFound")
	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(web), SecurityGroupRuleIds: []string{"sgr-nothex"},
	})
	wantCode(t, err, "InvalidSecurityGroupRuleId.Malformed")
	// A rule of another group is not found in this one.
	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(ec2sim.DemoDBLatchGroup), SecurityGroupRuleIds: []string{rules[1].ID},
	})
	wantCode(t, err, "InvalidSecurityGroupRuleId.NotFound")
	// All or nothing: one unknown ID keeps the known one.
	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(web), SecurityGroupRuleIds: []string{rules[1].ID, rules[0].ID},
	})
	wantCode(t, err, "InvalidSecurityGroupRuleId.NotFound")
	if left := sim.Rules("us-east-1", web); len(left) != 1 {
		t.Errorf("left %v, want 1 rule", left)
	}
}

func TestRevoke_ByPermission(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{})
	ctx := t.Context()
	mustAuthorize(t, c, web, ssh("203.0.113.7/32"), ssh6("2001:db8::1/128"))
	// Matched on protocol, ports and canonical CIDR; the description does
	// not matter.
	p := ssh("203.0.113.7/32")
	p.IpRanges[0].Description = nil
	p.IpProtocol = aws.String("6")
	if _, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{p},
	}); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	_, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("203.0.113.7/32")},
	})
	wantCode(t, err, "InvalidPermission.NotFound")
	if _, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh6("2001:DB8:0::1/128")},
	}); err != nil {
		t.Fatalf("revoke IPv6: %v", err)
	}
	if left := sim.Rules("us-east-1", web); len(left) != 0 {
		t.Errorf("left %v", left)
	}
	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String("sg-0123456789abcdef0"), IpPermissions: []types.IpPermission{ssh("203.0.113.7/32")},
	})
	wantCode(t, err, "InvalidGroup.NotFound")
}

// In a default VPC, EC2 revokes what matches and lists the rest instead of
// failing the call.
func TestRevoke_ByPermissionInDefaultVPC(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{})
	ctx := t.Context()
	g, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("jit"), Description: aws.String("d")})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(g.GroupId)
	mustAuthorize(t, c, id, ssh("203.0.113.7/32"))
	out, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: g.GroupId, IpPermissions: []types.IpPermission{ssh("203.0.113.7/32"), ssh("203.0.113.8/32")},
	})
	if err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if len(out.RevokedSecurityGroupRules) != 1 || len(out.UnknownIpPermissions) != 1 ||
		aws.ToString(out.UnknownIpPermissions[0].IpRanges[0].CidrIp) != "203.0.113.8/32" {
		t.Errorf("revoke = revoked %+v, unknown %+v; want one of each", out.RevokedSecurityGroupRules, out.UnknownIpPermissions)
	}
	if left := sim.Rules("us-east-1", id); len(left) != 0 {
		t.Errorf("left %v", left)
	}
}

func TestDescribeRules_Paging(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	var perms []types.IpPermission
	for i := range 12 {
		perms = append(perms, ssh(fmt.Sprintf("192.0.2.%d/32", i)))
	}
	want := ruleIDs(mustAuthorize(t, c, web, perms...))

	_, err := c.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{MaxResults: aws.Int32(4)})
	wantCode(t, err, "InvalidParameterValue")
	_, err = c.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{MaxResults: aws.Int32(1001)})
	wantCode(t, err, "InvalidParameterValue")

	var got []string
	pages := 0
	p := ec2.NewDescribeSecurityGroupRulesPaginator(c, &ec2.DescribeSecurityGroupRulesInput{
		Filters: []types.Filter{filter("group-id", web)}, MaxResults: aws.Int32(5),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.SecurityGroupRules) > 5 {
			t.Errorf("page of %d rules, want at most 5", len(out.SecurityGroupRules))
		}
		got = append(got, ruleIDs(ingressOnly(out.SecurityGroupRules))...)
	}
	if pages != 3 || !slices.Equal(got, want) {
		t.Errorf("%d pages of %v, want 3 pages of %v", pages, got, want)
	}
}

func TestDescribeRules_ByID(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	id := ruleIDs(mustAuthorize(t, c, web, ssh("192.0.2.1/32")))[0]
	out, err := c.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{SecurityGroupRuleIds: []string{id}})
	if err != nil || len(out.SecurityGroupRules) != 1 {
		t.Fatalf("describe %s = %v, %v", id, ruleIDs(out.SecurityGroupRules), err)
	}
	_, err = c.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{SecurityGroupRuleIds: []string{"sgr-00000000000000000"}})
	wantCode(t, err, "InvalidSecurityGroupRuleId.NotFound")
	_, err = c.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{SecurityGroupRuleIds: []string{"sgr-1"}})
	wantCode(t, err, "InvalidSecurityGroupRuleId.Malformed")
	_, err = c.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{Filters: []types.Filter{filter("group-idd", web)}})
	wantCode(t, err, "InvalidParameterValue")
}

func TestRules_SnapshotIsACopy(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{})
	_, err := c.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("192.0.2.1/32")}, TagSpecifications: tagSpec("k", "v"),
	})
	if err != nil {
		t.Fatal(err)
	}
	sim.Rules("us-east-1", web)[0].Tags["k"] = "changed"
	if got := sim.Rules("us-east-1", web)[0].Tags["k"]; got != "v" {
		t.Errorf("tag = %q after changing a snapshot, want v", got)
	}
}
