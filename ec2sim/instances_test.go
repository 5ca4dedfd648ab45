package ec2sim_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch/ec2sim"
)

func instanceIDs(out *ec2.DescribeInstancesOutput) []string {
	var ids []string
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	return ids
}

func TestDescribeInstances_Shape(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{ec2sim.DemoWeb1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("reservations %+v", out.Reservations)
	}
	in := out.Reservations[0].Instances[0]
	if aws.ToString(in.PrivateIpAddress) != "10.0.1.10" || aws.ToString(in.VpcId) != ec2sim.DemoVPC ||
		aws.ToString(in.SubnetId) != "subnet-0123456789abc0001" || in.State == nil || in.State.Name != types.InstanceStateNameRunning ||
		aws.ToInt32(in.State.Code) != 16 || in.LaunchTime == nil {
		t.Errorf("instance = %+v", in)
	}
	var groups []string
	for _, g := range in.SecurityGroups {
		groups = append(groups, aws.ToString(g.GroupId)+"/"+aws.ToString(g.GroupName))
	}
	wantGroups := []string{ec2sim.DemoDefaultGroup + "/default", ec2sim.DemoAppGroup + "/app", web + "/web-latch"}
	if !slices.Equal(groups, wantGroups) {
		t.Errorf("groups %v, want %v", groups, wantGroups)
	}
	if len(in.NetworkInterfaces) != 1 {
		t.Fatalf("network interfaces %+v", in.NetworkInterfaces)
	}
	nic := in.NetworkInterfaces[0]
	if len(nic.Groups) != 3 || aws.ToString(nic.Groups[2].GroupId) != web || aws.ToString(nic.PrivateIpAddress) != "10.0.1.10" ||
		aws.ToString(nic.VpcId) != ec2sim.DemoVPC || nic.Attachment == nil || aws.ToInt32(nic.Attachment.DeviceIndex) != 0 {
		t.Errorf("network interface = %+v", nic)
	}
	if got := tagMap(in.Tags); got["Name"] != "web-1" || got["env"] != "dev" {
		t.Errorf("tags %v", got)
	}
}

func TestDescribeInstances_Filters(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	tests := []struct {
		name    string
		filters []types.Filter
		want    []string
	}{
		{"tag value", []types.Filter{filter("tag:env", "dev")}, []string{ec2sim.DemoWeb1, ec2sim.DemoWeb2}},
		{"tag wildcard", []types.Filter{filter("tag:Name", "db-*")}, []string{ec2sim.DemoDB1}},
		{"tag key", []types.Filter{filter("tag-key", "app")}, []string{ec2sim.DemoWeb1, ec2sim.DemoWeb2, ec2sim.DemoDB1}},
		{"instance id", []types.Filter{filter("instance-id", ec2sim.DemoWeb2, ec2sim.DemoDB1)}, []string{ec2sim.DemoWeb2, ec2sim.DemoDB1}},
		{"vpc and tag", []types.Filter{filter("vpc-id", ec2sim.DemoVPC), filter("tag:env", "prod")}, []string{ec2sim.DemoDB1}},
		{"group", []types.Filter{filter("instance.group-id", ec2sim.DemoDBLatchGroup)}, []string{ec2sim.DemoDB1}},
		{"no match", []types.Filter{filter("tag:env", "staging")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: tt.filters})
			if err != nil {
				t.Fatal(err)
			}
			if got := instanceIDs(out); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	_, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []types.Filter{filter("instance-idd", "x")}})
	wantCode(t, err, "InvalidParameterValue")
}

func TestDescribeInstances_Paging(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	var fleet ec2sim.FleetRegion
	fleet.SecurityGroups = []ec2sim.FleetGroup{{Name: "g"}}
	for range 12 {
		fleet.Instances = append(fleet.Instances, ec2sim.FleetInstance{SecurityGroups: []string{"g"}, Tags: map[string]string{"env": "dev"}})
	}
	fleet.Instances = append(fleet.Instances, ec2sim.FleetInstance{SecurityGroups: []string{"g"}, Tags: map[string]string{"env": "prod"}})
	if err := sim.LoadFleet(ec2sim.Fleet{Regions: map[string]ec2sim.FleetRegion{"us-east-1": fleet}}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, mustStart(t, sim), "us-east-1")

	var got []string
	p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{
		Filters: []types.Filter{filter("tag:env", "dev")}, MaxResults: aws.Int32(5),
	})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, instanceIDs(out)...)
	}
	slices.Sort(got)
	if pages != 3 || len(got) != 12 || len(slices.Compact(got)) != 12 {
		t.Errorf("%d pages, %d instances (%d distinct); want 3 pages of 12 distinct", pages, len(got), len(slices.Compact(got)))
	}
	_, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{MaxResults: aws.Int32(3)})
	wantCode(t, err, "InvalidParameterValue")
}

func TestDescribeInstances_BadIDs(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	_, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	wantCode(t, err, "InvalidInstanceID.NotFound")
	_, err = c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{"i-xyz"}})
	wantCode(t, err, "InvalidInstanceID.Malformed")
	_, err = c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{ec2sim.DemoWeb1}, MaxResults: aws.Int32(5)})
	wantCode(t, err, "InvalidParameterCombination")
}
