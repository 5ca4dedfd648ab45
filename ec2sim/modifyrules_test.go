package ec2sim_test

import (
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch/ec2sim"
)

// ModifySecurityGroupRules replaces a rule in place: same ID, same tags,
// the new description; a bad update changes nothing.
func TestModifySecurityGroupRules(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	ctx := t.Context()
	out, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId:           aws.String(web),
		IpPermissions:     []types.IpPermission{ssh("203.0.113.7/32"), ssh("203.0.113.8/32")},
		TagSpecifications: tagSpec("latch:grant-id", "g1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	id, other := aws.ToString(out.SecurityGroupRules[0].SecurityGroupRuleId), aws.ToString(out.SecurityGroupRules[1].SecurityGroupRuleId)
	update := func(id, cidr, desc string) types.SecurityGroupRuleUpdate {
		return types.SecurityGroupRuleUpdate{SecurityGroupRuleId: aws.String(id), SecurityGroupRule: &types.SecurityGroupRuleRequest{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), CidrIpv4: aws.String(cidr), Description: aws.String(desc)}}
	}
	modify := func(group string, ups ...types.SecurityGroupRuleUpdate) error {
		_, err := c.ModifySecurityGroupRules(ctx, &ec2.ModifySecurityGroupRulesInput{GroupId: aws.String(group), SecurityGroupRules: ups})
		return err
	}
	rule := func(id string) types.SecurityGroupRule {
		got, err := c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{SecurityGroupRuleIds: []string{id}})
		if err != nil || len(got.SecurityGroupRules) != 1 {
			t.Fatalf("describe %s: %v", id, err)
		}
		return got.SecurityGroupRules[0]
	}

	if err := modify(web, update(id, "203.0.113.7/32", "latch g2")); err != nil {
		t.Fatalf("modify: %v", err)
	}
	r := rule(id)
	if aws.ToString(r.Description) != "latch g2" || aws.ToString(r.CidrIpv4) != "203.0.113.7/32" || !maps.Equal(tagMap(r.Tags), map[string]string{"latch:grant-id": "g1"}) {
		t.Errorf("after modify: %+v tags %v", r, tagMap(r.Tags))
	}

	refused := []struct {
		name string
		err  error
		code string
	}{
		{"unknown rule", modify(web, update("sgr-0123456789abcdef0", "203.0.113.7/32", "x")), ec2sim.CodeInvalidRuleIDNotFound},
		{"malformed rule ID", modify(web, update("sgr-1", "203.0.113.7/32", "x")), ec2sim.CodeInvalidRuleIDMalformed},
		{"unknown group", modify("sg-0123456789abcdef0", update(id, "203.0.113.7/32", "x")), ec2sim.CodeInvalidGroupNotFound},
		{"bad description", modify(web, update(id, "203.0.113.7/32", "naïve")), ec2sim.CodeInvalidParameterValue},
		{"duplicate of another rule", modify(web, update(id, "203.0.113.8/32", "dup")), ec2sim.CodeInvalidPermissionDuplicate},
		// The first update is fine, the second names no rule: neither applies.
		{"all or nothing", modify(web, update(other, "203.0.113.8/32", "changed"), update("sgr-0123456789abcdef0", "203.0.113.9/32", "x")), ec2sim.CodeInvalidRuleIDNotFound},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) { wantCode(t, tt.err, tt.code) })
	}
	if d := aws.ToString(rule(id).Description); d != "latch g2" {
		t.Errorf("a refused modify changed the description to %q", d)
	}
	if d := aws.ToString(rule(other).Description); d != "ssh" {
		t.Errorf("the other rule's description is %q", d)
	}
}
