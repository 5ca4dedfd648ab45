package ec2sim_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch/ec2sim"
)

const (
	app    = ec2sim.DemoAppGroup
	plS3   = "pl-63a5400a"
	dbPort = 5432
)

func fromGroup(group string, port int32, desc string) types.IpPermission {
	return types.IpPermission{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
		UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(group), Description: aws.String(desc)}},
	}
}

func fromPrefixList(pl string, port int32, desc string) types.IpPermission {
	return types.IpPermission{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
		PrefixListIds: []types.PrefixListId{{PrefixListId: aws.String(pl), Description: aws.String(desc)}},
	}
}

func groupRules(t *testing.T, c *ec2.Client, group string) []types.SecurityGroupRule {
	t.Helper()
	out, err := c.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{
		Filters: []types.Filter{filter("group-id", group)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.SecurityGroupRules
}

// A new group, created or loaded, has EC2's default outbound rule, listed
// as egress with an ID of its own and in ipPermissionsEgress; it is not an
// inbound rule, and it does not count against the inbound quota.
func TestDefaultEgress(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{RuleLimit: 1})
	created, err := c.CreateSecurityGroup(t.Context(), &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("new"), Description: aws.String("new"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{aws.ToString(created.GroupId), web} {
		rules := groupRules(t, c, g)
		if len(rules) != 1 {
			t.Fatalf("%s: rules %v, want the default egress rule alone", g, ruleIDs(rules))
		}
		r := rules[0]
		if !aws.ToBool(r.IsEgress) || aws.ToString(r.IpProtocol) != "-1" || aws.ToString(r.CidrIpv4) != "0.0.0.0/0" ||
			!strings.HasPrefix(aws.ToString(r.SecurityGroupRuleId), "sgr-") || aws.ToInt32(r.FromPort) != -1 {
			t.Errorf("%s: egress rule = %+v", g, r)
		}
		out, err := c.DescribeSecurityGroups(t.Context(), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{g}})
		if err != nil {
			t.Fatal(err)
		}
		eg := out.SecurityGroups[0].IpPermissionsEgress
		if len(eg) != 1 || aws.ToString(eg[0].IpProtocol) != "-1" || len(eg[0].IpRanges) != 1 ||
			aws.ToString(eg[0].IpRanges[0].CidrIp) != "0.0.0.0/0" || len(out.SecurityGroups[0].IpPermissions) != 0 {
			t.Errorf("%s: DescribeSecurityGroups egress %+v, ingress %+v", g, eg, out.SecurityGroups[0].IpPermissions)
		}
		if got := sim.Rules(ec2sim.DemoRegion, g); len(got) != 0 {
			t.Errorf("%s: Rules() = %v, want no inbound rules", g, got)
		}
	}
	// Quota of 1 inbound rule: the egress rule does not use it.
	mustAuthorize(t, c, web, ssh("192.0.2.1/32"))
	_, err = c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("192.0.2.2/32")},
	})
	wantCode(t, err, "RulesPerSecurityGroupLimitExceeded")

	// It is not an inbound rule: revoking its ID as one is NotFound.
	egressID := aws.ToString(groupRules(t, c, aws.ToString(created.GroupId))[0].SecurityGroupRuleId)
	_, err = c.RevokeSecurityGroupIngress(t.Context(), &ec2.RevokeSecurityGroupIngressInput{
		GroupId: created.GroupId, SecurityGroupRuleIds: []string{egressID},
	})
	wantCode(t, err, "InvalidSecurityGroupRuleId.NotFound")
	// But it can be tagged, as any rule.
	if _, err := c.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{egressID}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err != nil {
		t.Fatal(err)
	}
}

// Rules sourced from a group or a prefix list are authorized, described
// (by both describes), found duplicate and revoked by permission and by
// ID, as EC2 does.
func TestRuleSources(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	ctx := t.Context()
	created := mustAuthorize(t, c, web, fromGroup(app, dbPort, "from app"), fromPrefixList(plS3, 443, "from s3"))
	if len(created) != 2 {
		t.Fatalf("authorized %d rules, want 2", len(created))
	}
	g, pl := created[0], created[1]
	if g.ReferencedGroupInfo == nil || aws.ToString(g.ReferencedGroupInfo.GroupId) != app ||
		aws.ToString(g.ReferencedGroupInfo.UserId) != ec2sim.DefaultAccountID || g.CidrIpv4 != nil || aws.ToString(g.Description) != "from app" {
		t.Errorf("group-sourced rule = %+v", g)
	}
	if aws.ToString(pl.PrefixListId) != plS3 || pl.CidrIpv4 != nil || pl.ReferencedGroupInfo != nil || aws.ToString(pl.Description) != "from s3" {
		t.Errorf("prefix-list rule = %+v", pl)
	}
	desc := ingressOnly(groupRules(t, c, web))
	if len(desc) != 2 || desc[0].ReferencedGroupInfo == nil || aws.ToString(desc[1].PrefixListId) != plS3 {
		t.Errorf("DescribeSecurityGroupRules = %+v", desc)
	}
	out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{web}})
	if err != nil {
		t.Fatal(err)
	}
	perms := out.SecurityGroups[0].IpPermissions
	if len(perms) != 2 || len(perms[0].UserIdGroupPairs) != 1 || aws.ToString(perms[0].UserIdGroupPairs[0].GroupId) != app ||
		aws.ToString(perms[0].UserIdGroupPairs[0].Description) != "from app" ||
		len(perms[1].PrefixListIds) != 1 || aws.ToString(perms[1].PrefixListIds[0].PrefixListId) != plS3 || len(perms[1].IpRanges) != 0 {
		t.Errorf("DescribeSecurityGroups permissions = %+v", perms)
	}

	// Same source and ports, another description: a duplicate.
	_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{fromGroup(app, dbPort, "again")},
	})
	wantCode(t, err, "InvalidPermission.Duplicate")
	_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{fromPrefixList(plS3, 443, "again")},
	})
	wantCode(t, err, "InvalidPermission.Duplicate")

	// A referenced group must exist; a prefix list ID must be one.
	_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{fromGroup("sg-0123456789abcdef0", 22, "x")},
	})
	wantCode(t, err, "InvalidGroup.NotFound")
	_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{fromGroup("nope", 22, "x")},
	})
	wantCode(t, err, "InvalidGroupId.Malformed")
	_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{fromPrefixList("s3", 22, "x")},
	})
	wantCode(t, err, "InvalidPrefixListId.Malformed")

	// A group another group's rule names cannot be deleted.
	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(app)})
	wantCode(t, err, "DependencyViolation")

	// Revoke by permission (the group source) and by ID (the prefix list).
	rev, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{fromGroup(app, dbPort, "")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rev.RevokedSecurityGroupRules) != 1 || aws.ToString(rev.RevokedSecurityGroupRules[0].ReferencedGroupId) != app {
		t.Errorf("revoked %+v", rev.RevokedSecurityGroupRules)
	}
	rev, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(web), SecurityGroupRuleIds: []string{aws.ToString(pl.SecurityGroupRuleId)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rev.RevokedSecurityGroupRules) != 1 || aws.ToString(rev.RevokedSecurityGroupRules[0].PrefixListId) != plS3 {
		t.Errorf("revoked %+v", rev.RevokedSecurityGroupRules)
	}
	// Gone: the demo fleet's web group is in a VPC that is not the default,
	// so revoking again is NotFound.
	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{fromPrefixList(plS3, 443, "")},
	})
	wantCode(t, err, "InvalidPermission.NotFound")
	if got := ingressOnly(groupRules(t, c, web)); len(got) != 0 {
		t.Errorf("rules left: %v", ruleIDs(got))
	}
}

const netFleet = `
regions:
  us-east-1:
    vpcs:
      - {id: vpc-0000000000000000a, cidr: 10.1.0.0/16}
      - {id: vpc-0000000000000000b, cidr: 10.2.0.0/16}
    security_groups:
      - name: web
        vpc: vpc-0000000000000000a
        rules:
          - {protocol: tcp, from_port: 5432, to_port: 5432, source_group: db, description: from db}
          - {protocol: tcp, from_port: 443, to_port: 443, prefix_list: pl-63a5400a}
      - {id: sg-0000000000000000d, name: db, vpc: vpc-0000000000000000a}
      - {name: mgmt, vpc: vpc-0000000000000000a}
      - {id: sg-0000000000000000f, name: far, vpc: vpc-0000000000000000b}
    instances:
      - id: i-00000000000000001
        security_groups: [web]
      - id: i-00000000000000002
        security_groups: [web]
        interfaces:
          - {id: eni-00000000000000022, security_groups: [db, mgmt]}
`

func loadNetFleet(t *testing.T) (*ec2sim.Server, *ec2.Client) {
	t.Helper()
	f, err := ec2sim.ParseFleet([]byte(netFleet))
	if err != nil {
		t.Fatal(err)
	}
	sim := ec2sim.New(ec2sim.Options{})
	if err := sim.LoadFleet(f); err != nil {
		t.Fatal(err)
	}
	return sim, newClient(t, mustStart(t, sim), "us-east-1")
}

func TestFleetRuleSources(t *testing.T) {
	_, c := loadNetFleet(t)
	out, err := c.DescribeSecurityGroups(t.Context(), &ec2.DescribeSecurityGroupsInput{
		Filters: []types.Filter{filter("group-name", "web")},
	})
	if err != nil || len(out.SecurityGroups) != 1 {
		t.Fatalf("describe web = %v, %v", out, err)
	}
	rules := ingressOnly(groupRules(t, c, aws.ToString(out.SecurityGroups[0].GroupId)))
	if len(rules) != 2 || rules[0].ReferencedGroupInfo == nil || aws.ToString(rules[0].ReferencedGroupInfo.GroupId) != "sg-0000000000000000d" ||
		aws.ToString(rules[0].Description) != "from db" || aws.ToString(rules[1].PrefixListId) != "pl-63a5400a" {
		t.Errorf("web's rules = %+v", rules)
	}

	for _, bad := range []struct{ yaml, want string }{
		{"{protocol: tcp, from_port: 1, to_port: 1, source_group: nope}", `unknown security group "nope"`},
		{"{protocol: tcp, from_port: 1, to_port: 1, prefix_list: s3}", "not a prefix list ID"},
		{"{protocol: tcp, from_port: 1, to_port: 1, cidr: 10.0.0.0/8, prefix_list: pl-63a5400a}", "exactly one source"},
		{"{protocol: tcp, from_port: 1, to_port: 1, source_group: far}", `unknown security group "far"`},
	} {
		doc := strings.Replace(netFleet, "- {protocol: tcp, from_port: 443, to_port: 443, prefix_list: pl-63a5400a}", "- "+bad.yaml, 1)
		_, err := ec2sim.ParseFleet([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: err = %v, want %q", bad.yaml, err, bad.want)
		}
	}
}

func describeInstance(t *testing.T, c *ec2.Client, id string) types.Instance {
	t.Helper()
	out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Reservations[0].Instances[0]
}

func interfaceGroups(in types.Instance) map[int32][]string {
	m := map[int32][]string{}
	for _, nic := range in.NetworkInterfaces {
		var ids []string
		for _, g := range nic.Groups {
			ids = append(ids, aws.ToString(g.GroupId))
		}
		m[aws.ToInt32(nic.Attachment.DeviceIndex)] = ids
	}
	return m
}

func TestModifyInstanceAttribute_Groups(t *testing.T) {
	sim, c := loadNetFleet(t)
	ctx := t.Context()
	const one, two = "i-00000000000000001", "i-00000000000000002"
	db, far := "sg-0000000000000000d", "sg-0000000000000000f"
	setGroups := func(id string, groups ...string) error {
		_, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(id), Groups: groups})
		return err
	}
	if err := setGroups(one, db); err != nil {
		t.Fatal(err)
	}
	in := describeInstance(t, c, one)
	if got := interfaceGroups(in); !slices.Equal(got[0], []string{db}) || len(in.SecurityGroups) != 1 || aws.ToString(in.SecurityGroups[0].GroupId) != db {
		t.Errorf("after ModifyInstanceAttribute: interfaces %v, groups %+v", got, in.SecurityGroups)
	}

	wantCode(t, setGroups(two, db), "InvalidInstanceID") // two interfaces
	wantCode(t, setGroups(one, far), "InvalidParameter") // another VPC
	wantCode(t, setGroups(one, "sg-0123456789abcdef0"), "InvalidGroup.NotFound")
	wantCode(t, setGroups(one, "bad"), "InvalidGroupId.Malformed")
	wantCode(t, setGroups("i-0123456789abcdef0", db), "InvalidInstanceID.NotFound")
	wantCode(t, setGroups(one), "MissingParameter")
	six := []string{db}
	for range 5 {
		out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName: aws.String(ec2sim.DemoRegion + "-" + string(rune('a'+len(six)))), Description: aws.String("x"),
			VpcId: aws.String("vpc-0000000000000000a"),
		})
		if err != nil {
			t.Fatal(err)
		}
		six = append(six, aws.ToString(out.GroupId))
	}
	wantCode(t, setGroups(one, six...), "SecurityGroupsPerInterfaceLimitExceeded")
	if got := interfaceGroups(describeInstance(t, c, one)); !slices.Equal(got[0], []string{db}) {
		t.Errorf("a refused call changed the groups: %v", got)
	}
	_, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String(one), SourceDestCheck: &types.AttributeBooleanValue{Value: aws.Bool(false)},
	})
	wantCode(t, err, "UnsupportedOperation")

	// The interface call reaches the second interface.
	if _, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-00000000000000022"), Groups: []string{db},
	}); err != nil {
		t.Fatal(err)
	}
	in = describeInstance(t, c, two)
	if got := interfaceGroups(in); len(got) != 2 || !slices.Equal(got[1], []string{db}) || len(got[0]) != 1 {
		t.Errorf("after ModifyNetworkInterfaceAttribute: %v", got)
	}
	_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-0123456789abcdef0"), Groups: []string{db},
	})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
	_, err = c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("nic-1"), Groups: []string{db},
	})
	wantCode(t, err, "InvalidNetworkInterfaceID.Malformed")

	// A group on an interface is in use.
	_, err = c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String("sg-0000000000000000d")})
	wantCode(t, err, "DependencyViolation")

	// Filters see every interface.
	f, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{filter("network-interface.network-interface-id", "eni-00000000000000022")}})
	if err != nil || len(f.Reservations) != 1 || aws.ToString(f.Reservations[0].Instances[0].InstanceId) != two {
		t.Errorf("filter by second interface = %+v, %v", f, err)
	}

	// AddInterface, the Go helper, attaches one more.
	eni, err := sim.AddInterface(ec2sim.DemoRegion, one, db)
	if err != nil {
		t.Fatal(err)
	}
	if got := interfaceGroups(describeInstance(t, c, one)); len(got) != 2 || !slices.Equal(got[1], []string{db}) {
		t.Errorf("after AddInterface %s: %v", eni, got)
	}
	if _, err := sim.AddInterface(ec2sim.DemoRegion, one, far); err == nil {
		t.Error("AddInterface with a group of another VPC succeeded")
	}
}

// Both attach calls are CloudTrail management events naming their target.
func TestAttachRecorded(t *testing.T) {
	sim, c := loadNetFleet(t)
	ctx := t.Context()
	if _, err := c.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String("i-00000000000000001"), Groups: []string{"sg-0000000000000000d"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-00000000000000022"), Groups: []string{"sg-0000000000000000d"},
	}); err != nil {
		t.Fatal(err)
	}
	ct := cloudtrail.NewFromConfig(simConfig(t, mustStart(t, sim), "us-east-1"))
	out, err := ct.LookupEvents(ctx, &cloudtrail.LookupEventsInput{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ModifyInstanceAttribute":         `"instanceId":"i-00000000000000001"`,
		"ModifyNetworkInterfaceAttribute": `"networkInterfaceId":"eni-00000000000000022"`,
	}
	for _, ev := range out.Events {
		frag, ok := want[aws.ToString(ev.EventName)]
		if !ok {
			continue
		}
		rec := aws.ToString(ev.CloudTrailEvent)
		if !json.Valid([]byte(rec)) || !strings.Contains(rec, frag) || !strings.Contains(rec, `"groupSet":{"items":[{"groupId":"sg-0000000000000000d"}]}`) {
			t.Errorf("%s record = %s", aws.ToString(ev.EventName), rec)
		}
		delete(want, aws.ToString(ev.EventName))
	}
	if len(want) > 0 {
		t.Errorf("not recorded: %v", want)
	}
}

func TestFleetInterfaces_Invalid(t *testing.T) {
	const iface = "- {id: eni-00000000000000022, security_groups: [db, mgmt]}"
	for _, bad := range []struct{ yaml, want string }{
		{"- {security_groups: [far]}", `unknown security group "far" in the instance's VPC`},
		{"- {id: nic-1, security_groups: [db]}", "not a network interface ID"},
		{"- {id: eni-00000000000000002, security_groups: [db]}", "primary interface"},
		{"- {security_groups: []}", "at least one security group"},
		{"- {security_groups: [db], private_ip: 10.9.0.1}", "outside the VPC's CIDR"},
		{"- {id: eni-00000000000000022, security_groups: [db]}\n          - {id: eni-00000000000000022, security_groups: [db]}", "duplicate ID"},
	} {
		doc := strings.Replace(netFleet, iface, bad.yaml, 1)
		_, err := ec2sim.ParseFleet([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: err = %v, want %q", bad.yaml, err, bad.want)
		}
	}
}

func TestModifyInstanceAttribute_Terminated(t *testing.T) {
	_, c := loadNetFleet(t)
	const one = "i-00000000000000001"
	if _, err := c.TerminateInstances(t.Context(), &ec2.TerminateInstancesInput{InstanceIds: []string{one}}); err != nil {
		t.Fatal(err)
	}
	_, err := c.ModifyInstanceAttribute(t.Context(), &ec2.ModifyInstanceAttributeInput{InstanceId: aws.String(one), Groups: []string{"sg-0000000000000000d"}})
	wantCode(t, err, "IncorrectInstanceState")
	// A terminated instance's interfaces are gone.
	_, err = c.ModifyNetworkInterfaceAttribute(t.Context(), &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String("eni-00000000000000001"), Groups: []string{"sg-0000000000000000d"},
	})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
}
