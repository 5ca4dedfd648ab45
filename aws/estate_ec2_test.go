package aws_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

// plS3 is a well-formed prefix list ID (the simulator takes any; it is
// the form of AWS's regional S3 list).
const plS3 = "pl-63a5400a"

func tcpFrom(port int32) types.IpPermission {
	return types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port)}
}

// sourcedRules authorizes in group one rule of each kind of source, tagged,
// and returns them as latch reads them.
func sourcedRules(t *testing.T, env *awstest.Env, group, other latch.GroupID) []latch.IngressRule {
	t.Helper()
	world := tcpFrom(22)
	world.IpRanges = []types.IpRange{{CidrIp: aws.String("0.0.0.0/0"), Description: aws.String("ssh from anywhere")}}
	world6 := tcpFrom(22)
	world6.Ipv6Ranges = []types.Ipv6Range{{CidrIpv6: aws.String("::/0")}}
	fromGroup := tcpFrom(5432)
	fromGroup.UserIdGroupPairs = []types.UserIdGroupPair{{GroupId: aws.String(string(other)), Description: aws.String("from the app")}}
	fromList := tcpFrom(443)
	fromList.PrefixListIds = []types.PrefixListId{{PrefixListId: aws.String(plS3), Description: aws.String("from S3")}}
	all := types.IpPermission{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("10.0.0.0/8")}}}
	out, err := env.EC2.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId:       aws.String(string(group)),
		IpPermissions: []types.IpPermission{world, world6, fromGroup, fromList, all},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroupRule,
			Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("ops")}}}},
	})
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	ids := map[string]latch.RuleID{}
	for _, r := range out.SecurityGroupRules {
		key := aws.ToString(r.CidrIpv4) + aws.ToString(r.CidrIpv6) + aws.ToString(r.PrefixListId)
		if r.ReferencedGroupInfo != nil {
			key = aws.ToString(r.ReferencedGroupInfo.GroupId)
		}
		ids[key] = latch.RuleID(aws.ToString(r.SecurityGroupRuleId))
	}
	tags := map[string]string{"owner": "ops"}
	return []latch.IngressRule{
		{ID: ids["0.0.0.0/0"], GroupID: group, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("0.0.0.0/0"), Description: "ssh from anywhere", Tags: tags},
		{ID: ids["::/0"], GroupID: group, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("::/0"), Tags: tags},
		{ID: ids[string(other)], GroupID: group, Protocol: "tcp", FromPort: 5432, ToPort: 5432, SourceGroup: other, Description: "from the app", Tags: tags},
		{ID: ids[plS3], GroupID: group, Protocol: "tcp", FromPort: 443, ToPort: 443, PrefixList: plS3, Description: "from S3", Tags: tags},
		{ID: ids["10.0.0.0/8"], GroupID: group, Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: netip.MustParsePrefix("10.0.0.0/8"), Tags: tags},
	}
}

func findGroup(t *testing.T, groups []latch.EstateGroup, id latch.GroupID) latch.EstateGroup {
	t.Helper()
	for _, g := range groups {
		if g.ID == id {
			return g
		}
	}
	t.Fatalf("group %s not read", id)
	return latch.EstateGroup{}
}

func sameRules(t *testing.T, what string, got, want []latch.IngressRule) {
	t.Helper()
	byID := func(rs []latch.IngressRule) map[latch.RuleID]latch.IngressRule {
		m := map[latch.RuleID]latch.IngressRule{}
		for _, r := range rs {
			m[r.ID] = r
		}
		return m
	}
	g, w := byID(got), byID(want)
	if len(got) != len(want) || len(g) != len(w) {
		t.Fatalf("%s: %d rules %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	for id, wr := range w {
		gr, ok := g[id]
		if !ok || !sameRule(gr, wr) {
			t.Errorf("%s: rule %s = %+v, want %+v", what, id, gr, wr)
		}
	}
}

func sameRule(a, b latch.IngressRule) bool {
	return a.ID == b.ID && a.GroupID == b.GroupID && a.Protocol == b.Protocol && a.FromPort == b.FromPort && a.ToPort == b.ToPort &&
		a.CIDR == b.CIDR && a.SourceGroup == b.SourceGroup && a.PrefixList == b.PrefixList && a.Description == b.Description &&
		maps.Equal(a.Tags, b.Tags)
}

// Every kind of source reads back exactly, and a group's outbound rules
// are not read as inbound ones.
func TestReadGroups_Sources(t *testing.T) {
	env := awstest.New(t)
	group := env.ManagedGroup(t)
	other := env.Group(t, map[string]string{"Name": "app"})
	want := sourcedRules(t, env, group, other)

	groups, err := latchaws.ReadGroups(t.Context(), env.EC2)
	if err != nil {
		t.Fatal(err)
	}
	g := findGroup(t, groups, group)
	sameRules(t, "managed group", g.Ingress, want)
	if !g.Managed() || g.VPC == "" || g.Name == "" || g.Description != "latch test group" {
		t.Errorf("group = %+v", g)
	}
	o := findGroup(t, groups, other)
	if len(o.Ingress) != 0 || o.Tags["Name"] != "app" {
		t.Errorf("other group = %+v, want no inbound rules", o)
	}
	// It has an outbound rule, which DescribeSecurityGroupRules lists: the
	// reader dropped it.
	out, err := env.EC2.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{
		Filters: []types.Filter{{Name: aws.String("group-id"), Values: []string{string(other)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(out.SecurityGroupRules, func(r types.SecurityGroupRule) bool { return aws.ToBool(r.IsEgress) }) {
		t.Errorf("%s lists no outbound rule; the test proves nothing", other)
	}
}

func findInstance(t *testing.T, ins []latch.EstateInstance, id string) (latch.EstateInstance, bool) {
	t.Helper()
	for _, in := range ins {
		if string(in.ID) == id {
			return in, true
		}
	}
	return latch.EstateInstance{}, false
}

func TestReadInstances(t *testing.T) {
	env := awstest.New(t)
	a, b := env.ManagedGroup(t), env.Group(t, nil)
	name := awstest.Unique("estate")
	id := env.Instance(t, map[string]string{"Name": name, "team": "ops"}, a, b)
	gone := env.Instance(t, nil, a)
	if _, err := env.EC2.TerminateInstances(t.Context(), &ec2.TerminateInstancesInput{InstanceIds: []string{gone}}); err != nil {
		t.Fatal(err)
	}

	ins, err := latchaws.ReadInstances(t.Context(), env.EC2)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := findInstance(t, ins, gone); ok {
		t.Errorf("terminated %s was read", gone)
	}
	in, ok := findInstance(t, ins, id)
	if !ok {
		t.Fatalf("%s not read", id)
	}
	if in.Name != name || in.Tags["team"] != "ops" || (in.State != "running" && in.State != "pending") ||
		in.VPC == "" || in.Subnet == "" || !in.PrivateIP.IsValid() {
		t.Errorf("instance = %+v", in)
	}
	if !slices.Equal(in.Groups, []latch.GroupID{a, b}) {
		t.Errorf("groups = %v, want [%s %s]", in.Groups, a, b)
	}
	if len(in.Interfaces) != 1 || in.Interfaces[0].DeviceIndex != 0 || in.Interfaces[0].ID == "" ||
		!slices.Equal(in.Interfaces[0].Groups, []latch.GroupID{a, b}) {
		t.Errorf("interfaces = %+v", in.Interfaces)
	}
}

func TestReadInstances_SecondInterface(t *testing.T) {
	env := awstest.New(t)
	sim := env.RequireSim(t, "a second network interface is attached with the simulator's AddInterface")
	a, b, c := env.ManagedGroup(t), env.Group(t, nil), env.Group(t, nil)
	id := env.Instance(t, nil, a, b)
	eni, err := sim.AddInterface(awstest.Region, id, string(c), string(a))
	if err != nil {
		t.Fatal(err)
	}
	ins, err := latchaws.ReadInstances(t.Context(), env.EC2)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := findInstance(t, ins, id)
	if !slices.Equal(in.Groups, []latch.GroupID{a, b, c}) {
		t.Errorf("groups = %v, want each of [%s %s %s] once", in.Groups, a, b, c)
	}
	if len(in.Interfaces) != 2 || in.Interfaces[1].ID != eni || in.Interfaces[1].DeviceIndex != 1 ||
		!slices.Equal(in.Interfaces[1].Groups, []latch.GroupID{c, a}) {
		t.Errorf("interfaces = %+v", in.Interfaces)
	}
}

// A region larger than a page is read in pages, never a call per group or
// instance.
func TestReadEstate_Paging(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{})
	sim := env.RequireSim(t, "counts calls with Calls and loads a large fleet")
	const groups, instances = 1100, 1001
	var fr ec2sim.FleetRegion
	for i := range groups {
		fr.SecurityGroups = append(fr.SecurityGroups, ec2sim.FleetGroup{
			Name:  fmt.Sprintf("g%d", i),
			Rules: []ec2sim.FleetRule{{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "0.0.0.0/0"}},
		})
	}
	for range instances {
		fr.Instances = append(fr.Instances, ec2sim.FleetInstance{SecurityGroups: []string{"g0"}})
	}
	if err := sim.LoadFleet(ec2sim.Fleet{Regions: map[string]ec2sim.FleetRegion{awstest.Region: fr}}); err != nil {
		t.Fatal(err)
	}
	c := &countingEC2{Client: env.EC2, calls: map[string]int{}}
	gs, err := latchaws.ReadGroups(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := latchaws.ReadInstances(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	rules := 0
	for _, g := range gs {
		rules += len(g.Ingress)
	}
	if len(gs) != groups || rules != groups || len(ins) != instances {
		t.Errorf("read %d groups, %d rules, %d instances; want %d, %d, %d", len(gs), rules, len(ins), groups, groups, instances)
	}
	// 1,100 groups: 2 pages; 2,200 rules (each group's inbound rule and its
	// default outbound one): 3; 1,001 instances: 2.
	// The simulator's count includes the SDK's retries: it now and then
	// retries a large answer whose connection its transport closed while
	// reading ("use of closed network connection", aws-sdk-go-v2#2737).
	for api, want := range map[string]int{"DescribeSecurityGroups": 2, "DescribeSecurityGroupRules": 3, "DescribeInstances": 2} {
		if got := c.calls[api]; got != want {
			t.Errorf("%s called %d times, want %d", api, got, want)
		}
		if got := sim.Calls(api); got < want || got > want+1 {
			t.Errorf("the simulator received %s %d times, want %d (or one retry more)", api, got, want)
		}
	}
}

// countingEC2 counts the reader's calls (SDK retries not included).
type countingEC2 struct {
	*ec2.Client
	calls map[string]int
}

func (c *countingEC2) DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, o ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	c.calls["DescribeSecurityGroups"]++
	return c.Client.DescribeSecurityGroups(ctx, in, o...)
}

func (c *countingEC2) DescribeSecurityGroupRules(ctx context.Context, in *ec2.DescribeSecurityGroupRulesInput, o ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupRulesOutput, error) {
	c.calls["DescribeSecurityGroupRules"]++
	return c.Client.DescribeSecurityGroupRules(ctx, in, o...)
}

func (c *countingEC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, o ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	c.calls["DescribeInstances"]++
	return c.Client.DescribeInstances(ctx, in, o...)
}

// A refused read returns the SDK's error, so the orchestrator can report
// the check as not checked.
func TestReadGroups_Refused(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{})
	sim := env.RequireSim(t, "refuses an API with Deny")
	sim.Deny("ec2:DescribeSecurityGroupRules")
	_, err := latchaws.ReadGroups(context.Background(), env.EC2)
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "UnauthorizedOperation" {
		t.Fatalf("err = %v, want UnauthorizedOperation through errors.As", err)
	}
	sim.Deny("ec2:DescribeInstances")
	_, err = latchaws.ReadInstances(context.Background(), env.EC2)
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "UnauthorizedOperation" {
		t.Fatalf("err = %v, want UnauthorizedOperation through errors.As", err)
	}
}
