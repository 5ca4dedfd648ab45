package aws_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/internal/awstest"
)

func readGroup(t *testing.T, env *awstest.Env, id latch.GroupID) latch.EstateGroup {
	t.Helper()
	groups, err := latchaws.ReadGroups(t.Context(), env.EC2)
	if err != nil {
		t.Fatal(err)
	}
	return findGroup(t, groups, id)
}

// Each kind of rule, removed and restored, comes back with the same
// protocol, ports, source, description and tags; removing twice and
// restoring twice are not errors.
func TestAdopter_RemoveRestoreRoundTrip(t *testing.T) {
	env := awstest.New(t)
	group := env.ManagedGroup(t)
	other := env.Group(t, nil)
	rules := sourcedRules(t, env, group, other)
	ad := latchaws.NewAdopter(env.Config())
	ctx := t.Context()

	for _, r := range rules {
		if err := ad.RemoveRule(ctx, group, r.ID); err != nil {
			t.Fatalf("RemoveRule(%s) = %v", r.ID, err)
		}
		if err := ad.RemoveRule(ctx, group, r.ID); err != nil {
			t.Errorf("RemoveRule(%s) again = %v, want nil (gone already)", r.ID, err)
		}
	}
	if left := readGroup(t, env, group).Ingress; len(left) != 0 {
		t.Fatalf("rules left after removing all: %+v", left)
	}

	var restored []latch.IngressRule
	for _, r := range rules {
		id, err := ad.RestoreRule(ctx, r)
		if err != nil {
			t.Fatalf("RestoreRule(%+v) = %v", r, err)
		}
		if id == "" || id == r.ID {
			t.Errorf("RestoreRule(%s) = %q, want a new rule ID", r.ID, id)
		}
		again, err := ad.RestoreRule(ctx, r)
		if err != nil || again != id {
			t.Errorf("RestoreRule(%s) again = %q, %v; want %q (present already)", r.ID, again, err, id)
		}
		r.ID = id
		restored = append(restored, r)
	}
	sameRules(t, "restored", readGroup(t, env, group).Ingress, restored)
}

func TestAdopter_RestoreRuleRefusesNoSource(t *testing.T) {
	ad := latchaws.NewAdopter(awstest.New(t).Config())
	_, err := ad.RestoreRule(t.Context(), latch.IngressRule{GroupID: "sg-0123456789abcdef0", Protocol: "tcp", FromPort: 22, ToPort: 22})
	if latch.ErrorCode(err) != latch.EINVALID {
		t.Fatalf("err = %v, want %s", err, latch.EINVALID)
	}
}

// CreateGroup tags the group at creation and leaves EC2's default outbound
// rule; SetInstanceGroups attaches it; DeleteGroup is refused while it is
// attached and idempotent after.
func TestAdopter_CreateAttachDelete(t *testing.T) {
	env := awstest.New(t)
	ctx := t.Context()
	old := env.Group(t, nil)
	id := env.Instance(t, nil, old)
	desc, err := env.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{string(old)}})
	if err != nil {
		t.Fatal(err)
	}
	vpc := aws.ToString(desc.SecurityGroups[0].VpcId)
	ad := latchaws.NewAdopter(env.Config())

	name := awstest.Unique("latch-adopt")
	tags := map[string]string{latch.TagManaged: "true", "Name": name}
	g, err := ad.CreateGroup(ctx, vpc, name, "latch: no inbound rules", tags)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ad.CreateGroup(ctx, vpc, name, "latch: no inbound rules", tags)
	if err != nil || again != g {
		t.Errorf("CreateGroup again = %s, %v; want %s", again, err, g)
	}
	if _, err := ad.CreateGroup(ctx, vpc, name, "x", map[string]string{"owner": "someone"}); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Errorf("CreateGroup of a name taken without the tags = %v, want %s", err, latch.ECONFLICT)
	}
	eg := readGroup(t, env, g)
	if !eg.Managed() || eg.Tags["Name"] != name || eg.VPC != vpc || len(eg.Ingress) != 0 {
		t.Errorf("created group = %+v", eg)
	}
	out, err := env.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{string(g)}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(out.SecurityGroups[0].IpPermissionsEgress); n != 1 {
		t.Errorf("created group has %d outbound permissions, want EC2's default one", n)
	}

	if err := ad.SetInstanceGroups(ctx, latch.InstanceID(id), []latch.GroupID{old, g}); err != nil {
		t.Fatal(err)
	}
	ins, err := env.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	var got []latch.GroupID
	for _, sg := range ins.Reservations[0].Instances[0].SecurityGroups {
		got = append(got, latch.GroupID(aws.ToString(sg.GroupId)))
	}
	if !slices.Equal(got, []latch.GroupID{old, g}) {
		t.Errorf("instance groups = %v, want [%s %s]", got, old, g)
	}

	if err := ad.DeleteGroup(ctx, g); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Errorf("DeleteGroup of an attached group = %v, want %s", err, latch.ECONFLICT)
	}
	if err := ad.SetInstanceGroups(ctx, latch.InstanceID(id), []latch.GroupID{old}); err != nil {
		t.Fatal(err)
	}
	if err := ad.DeleteGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := ad.DeleteGroup(ctx, g); err != nil {
		t.Errorf("DeleteGroup again = %v, want nil (gone already)", err)
	}
	if err := ad.SetInstanceGroups(ctx, latch.InstanceID(id), []latch.GroupID{"sg-0123456789abcdef0"}); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("SetInstanceGroups with an unknown group = %v, want %s", err, latch.ENOTFOUND)
	}
}

// An instance with two interfaces refuses SetInstanceGroups (EC2's
// InvalidInstanceID, kept reachable) and takes SetInterfaceGroups.
func TestAdopter_SetInterfaceGroups(t *testing.T) {
	env := awstest.New(t)
	sim := env.RequireSim(t, "a second network interface is attached with the simulator's AddInterface")
	ctx := t.Context()
	a, b := env.Group(t, nil), env.ManagedGroup(t)
	id := env.Instance(t, nil, a)
	eni, err := sim.AddInterface(awstest.Region, id, string(a))
	if err != nil {
		t.Fatal(err)
	}
	ad := latchaws.NewAdopter(env.Config())
	err = ad.SetInstanceGroups(ctx, latch.InstanceID(id), []latch.GroupID{b})
	var apiErr smithy.APIError
	if latch.ErrorCode(err) != latch.ECONFLICT || !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidInstanceID" {
		t.Errorf("SetInstanceGroups on two interfaces = %v, want %s wrapping InvalidInstanceID", err, latch.ECONFLICT)
	}
	if err := ad.SetInterfaceGroups(ctx, eni, []latch.GroupID{a, b}); err != nil {
		t.Fatal(err)
	}
	ins, err := latchaws.ReadInstances(ctx, env.EC2)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := findInstance(t, ins, id)
	if len(in.Interfaces) != 2 || !slices.Equal(in.Interfaces[1].Groups, []latch.GroupID{a, b}) ||
		!slices.Equal(in.Interfaces[0].Groups, []latch.GroupID{a}) {
		t.Errorf("interfaces = %+v", in.Interfaces)
	}
	if err := ad.SetInterfaceGroups(ctx, "eni-0123456789abcdef0", []latch.GroupID{a}); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("SetInterfaceGroups of an unknown interface = %v, want %s", err, latch.ENOTFOUND)
	}
}
