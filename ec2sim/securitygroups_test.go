package ec2sim_test

import (
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch/ec2sim"
)

func TestCreateSecurityGroup_InFreshRegionUsesDefaultVPC(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	c := newClient(t, mustStart(t, sim), "eu-west-1")
	ctx := t.Context()
	out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("jit"), Description: aws.String("just in time"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup,
			Tags: []types.Tag{{Key: aws.String("latch:managed"), Value: aws.String("true")}}}},
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	id := aws.ToString(out.GroupId)
	if got := tagMap(out.Tags); got["latch:managed"] != "true" {
		t.Errorf("returned tags %v", got)
	}

	desc, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	if err != nil || len(desc.SecurityGroups) != 1 {
		t.Fatalf("describe %s = %v, %v", id, desc, err)
	}
	g := desc.SecurityGroups[0]
	if aws.ToString(g.GroupName) != "jit" || aws.ToString(g.Description) != "just in time" ||
		aws.ToString(g.VpcId) == "" || aws.ToString(g.OwnerId) != ec2sim.DefaultAccountID {
		t.Errorf("group = %+v", g)
	}

	_, err = c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("jit"), Description: aws.String("again")})
	wantCode(t, err, "InvalidGroup.Duplicate")
	_, err = c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("x"), Description: aws.String("")})
	wantCode(t, err, "MissingParameter")
	_, err = c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("x"), Description: aws.String("d"), VpcId: aws.String("vpc-0000000000000000f")})
	wantCode(t, err, "InvalidVpcID.NotFound")
	_, err = c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("x"), Description: aws.String("d"),
		TagSpecifications: tagSpec("k", "v")})
	wantCode(t, err, "InvalidParameterValue")
}

func TestDescribeSecurityGroups_PermissionsAndFilters(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	ctx := t.Context()
	mustAuthorize(t, c, web, ssh("203.0.113.7/32"), ssh("203.0.113.8/32"), ssh6("2001:db8::1/128"),
		types.IpPermission{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}})

	out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
		Filters: []types.Filter{filter("tag:latch:managed", "true"), filter("group-name", "web-*")},
	})
	if err != nil || len(out.SecurityGroups) != 1 {
		t.Fatalf("describe managed web groups = %v, %v", out, err)
	}
	g := out.SecurityGroups[0]
	if aws.ToString(g.GroupId) != web {
		t.Fatalf("found %s, want %s", aws.ToString(g.GroupId), web)
	}
	if len(g.IpPermissions) != 2 {
		t.Fatalf("permissions %+v, want one for tcp/22 and one for all traffic", g.IpPermissions)
	}
	p := g.IpPermissions[0]
	if aws.ToString(p.IpProtocol) != "tcp" || aws.ToInt32(p.FromPort) != 22 || len(p.IpRanges) != 2 || len(p.Ipv6Ranges) != 1 ||
		aws.ToString(p.IpRanges[1].CidrIp) != "203.0.113.8/32" || aws.ToString(p.Ipv6Ranges[0].CidrIpv6) != "2001:db8::1/128" {
		t.Errorf("tcp/22 permission = %+v", p)
	}
	if all := g.IpPermissions[1]; aws.ToString(all.IpProtocol) != "-1" || all.FromPort != nil {
		t.Errorf("all-traffic permission = %+v, want protocol -1 and no ports", all)
	}
	if got := tagMap(g.Tags); !maps.Equal(got, map[string]string{"latch:managed": "true", "Name": "web-latch"}) {
		t.Errorf("tags %v", got)
	}

	byVPC, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("vpc-id", ec2sim.DemoVPC)}})
	if err != nil || len(byVPC.SecurityGroups) != 5 {
		t.Errorf("groups in demo VPC = %d, %v; want 5", len(byVPC.SecurityGroups), err)
	}
	// Names work only in the default VPC, which the demo VPC is not.
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupNames: []string{"db-latch"}})
	wantCode(t, err, "InvalidGroup.NotFound")
	mine, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("mine"), Description: aws.String("d")})
	if err != nil {
		t.Fatal(err)
	}
	byName, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupNames: []string{"mine"}})
	if err != nil || len(byName.SecurityGroups) != 1 || aws.ToString(byName.SecurityGroups[0].GroupId) != aws.ToString(mine.GroupId) {
		t.Errorf("by name = %v, %v", byName, err)
	}
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0123456789abcdef0"}})
	wantCode(t, err, "InvalidGroup.NotFound")
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-zz"}})
	wantCode(t, err, "InvalidGroupId.Malformed")
}

func TestDescribeSecurityGroups_Paging(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	for _, name := range []string{"a", "b", "c"} {
		if _, err := c.CreateSecurityGroup(t.Context(), &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	p := ec2.NewDescribeSecurityGroupsPaginator(c, &ec2.DescribeSecurityGroupsInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range out.SecurityGroups {
			if seen[aws.ToString(g.GroupId)] {
				t.Errorf("%s on two pages", aws.ToString(g.GroupId))
			}
			seen[aws.ToString(g.GroupId)] = true
		}
	}
	if len(seen) != 8 {
		t.Errorf("saw %d groups, want 8", len(seen))
	}
}

func TestDeleteSecurityGroup(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	ctx := t.Context()
	out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("tmp"), Description: aws.String("tmp")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: out.GroupId}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: out.GroupId})
	wantCode(t, err, "InvalidGroup.NotFound")
	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(web)})
	wantCode(t, err, "DependencyViolation")
}
