package ec2sim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch/ec2sim"
)

func TestRunAndTerminateInstances(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	ctx := t.Context()
	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("box"), Description: aws.String("box")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0123456789abcdef0"), InstanceType: types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(2), SecurityGroupIds: []string{aws.ToString(sg.GroupId)},
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("dev")}}},
			{ResourceType: types.ResourceTypeVolume, Tags: []types.Tag{{Key: aws.String("disk"), Value: aws.String("yes")}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Instances) != 2 || aws.ToString(out.OwnerId) != ec2sim.DefaultAccountID || aws.ToString(out.ReservationId) == "" {
		t.Fatalf("run = %+v", out)
	}
	in := out.Instances[0]
	if in.State.Name != types.InstanceStateNamePending || in.InstanceType != types.InstanceTypeT3Micro ||
		len(in.SecurityGroups) != 1 || aws.ToString(in.SecurityGroups[0].GroupId) != aws.ToString(sg.GroupId) ||
		tagMap(in.Tags)["env"] != "dev" || len(in.Tags) != 1 || aws.ToString(in.PrivateIpAddress) == aws.ToString(out.Instances[1].PrivateIpAddress) {
		t.Errorf("instance = %+v", in)
	}
	id := aws.ToString(in.InstanceId)

	desc, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{filter("instance.group-id", aws.ToString(sg.GroupId))}})
	if err != nil {
		t.Fatal(err)
	}
	if got := instanceIDs(desc); len(got) != 2 {
		t.Errorf("described %v, want the two launched", got)
	}
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId}); err == nil {
		t.Fatal("deleted a group instances are in")
	} else {
		wantCode(t, err, ec2sim.CodeDependencyViolation)
	}

	term, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id, aws.ToString(out.Instances[1].InstanceId)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(term.TerminatingInstances) != 2 || term.TerminatingInstances[0].CurrentState.Name != types.InstanceStateNameTerminated ||
		term.TerminatingInstances[0].PreviousState.Name != types.InstanceStateNameRunning {
		t.Errorf("terminate = %+v", term.TerminatingInstances)
	}
	desc, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	if s := desc.Reservations[0].Instances[0].State; s.Name != types.InstanceStateNameTerminated || aws.ToInt32(s.Code) != 48 {
		t.Errorf("state after terminate = %+v", s)
	}
	if _, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId}); err != nil {
		t.Errorf("delete the group once its instances are gone: %v", err)
	}
}

func TestRunInstancesErrors(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	ami := aws.String("ami-0123456789abcdef0")
	tests := []struct {
		name string
		in   ec2.RunInstancesInput
		code string
	}{
		{"no image", ec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}, ec2sim.CodeMissingParameter},
		{"malformed image", ec2.RunInstancesInput{ImageId: aws.String("img-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}, ec2sim.CodeInvalidAMIIDMalformed},
		{"min above max", ec2.RunInstancesInput{ImageId: ami, MinCount: aws.Int32(3), MaxCount: aws.Int32(2)}, ec2sim.CodeInvalidParameterValue},
		{"zero", ec2.RunInstancesInput{ImageId: ami, MinCount: aws.Int32(0), MaxCount: aws.Int32(1)}, ec2sim.CodeInvalidParameterValue},
		{"too many", ec2.RunInstancesInput{ImageId: ami, MinCount: aws.Int32(1000), MaxCount: aws.Int32(1000)}, ec2sim.CodeInstanceLimitExceeded},
		{"unknown group", ec2.RunInstancesInput{ImageId: ami, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SecurityGroupIds: []string{"sg-0123456789abcdef0"}}, ec2sim.CodeInvalidGroupNotFound},
		{"untaggable type", ec2.RunInstancesInput{ImageId: ami, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: []types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}}}, ec2sim.CodeInvalidParameterValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.RunInstances(t.Context(), &tt.in)
			wantCode(t, err, tt.code)
		})
	}
	_, err := c.TerminateInstances(t.Context(), &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	wantCode(t, err, ec2sim.CodeInvalidInstanceIDNotFound)
}
