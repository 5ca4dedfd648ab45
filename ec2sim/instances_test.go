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

// publicFleet has, in us-east-1, a running instance with a public address
// (loopback, as tests use it to stand in for the instance), one without,
// and a stopped one whose address EC2 would have released; and a running
// one in eu-west-1, where public DNS names take another form.
const publicFleet = `
regions:
  us-east-1:
    security_groups: [{name: g}]
    instances:
      - {id: i-0000000000000a001, security_groups: [g], public_ip: 127.0.0.1}
      - {id: i-0000000000000a002, security_groups: [g]}
      - {id: i-0000000000000a003, security_groups: [g], public_ip: 198.51.100.7, state: stopped}
  eu-west-1:
    security_groups: [{name: g}]
    instances:
      - {id: i-0000000000000b001, security_groups: [g], public_ip: 203.0.113.9}
`

func publicSim(t *testing.T) (east, west *ec2.Client) {
	t.Helper()
	f, err := ec2sim.ParseFleet([]byte(publicFleet))
	if err != nil {
		t.Fatal(err)
	}
	sim := ec2sim.New(ec2sim.Options{})
	if err := sim.LoadFleet(f); err != nil {
		t.Fatal(err)
	}
	url := mustStart(t, sim)
	return newClient(t, url, "us-east-1"), newClient(t, url, "eu-west-1")
}

func describeOne(t *testing.T, c *ec2.Client, id string) types.Instance {
	t.Helper()
	out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Reservations[0].Instances[0]
}

func TestDescribeInstances_PublicIP(t *testing.T) {
	east, west := publicSim(t)
	tests := []struct {
		c        *ec2.Client
		id       string
		ip, name string // empty: absent
	}{
		{east, "i-0000000000000a001", "127.0.0.1", "ec2-127-0-0-1.compute-1.amazonaws.com"},
		{east, "i-0000000000000a002", "", ""},
		{east, "i-0000000000000a003", "", ""}, // stopped
		{west, "i-0000000000000b001", "203.0.113.9", "ec2-203-0-113-9.eu-west-1.compute.amazonaws.com"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			in := describeOne(t, tt.c, tt.id)
			if tt.ip == "" {
				if in.PublicIpAddress != nil || in.PublicDnsName != nil || in.NetworkInterfaces[0].Association != nil {
					t.Errorf("public address %v, name %v, association %+v; want none",
						aws.ToString(in.PublicIpAddress), aws.ToString(in.PublicDnsName), in.NetworkInterfaces[0].Association)
				}
				return
			}
			if aws.ToString(in.PublicIpAddress) != tt.ip || aws.ToString(in.PublicDnsName) != tt.name {
				t.Errorf("public address %q, name %q; want %q, %q", aws.ToString(in.PublicIpAddress), aws.ToString(in.PublicDnsName), tt.ip, tt.name)
			}
			nic := in.NetworkInterfaces[0]
			for _, a := range []*types.InstanceNetworkInterfaceAssociation{nic.Association, nic.PrivateIpAddresses[0].Association} {
				if a == nil || aws.ToString(a.PublicIp) != tt.ip || aws.ToString(a.PublicDnsName) != tt.name || aws.ToString(a.IpOwnerId) != "amazon" {
					t.Errorf("association %+v; want %s, %s, owner amazon", a, tt.ip, tt.name)
				}
			}
		})
	}
}

func TestDescribeInstances_PublicIPFilters(t *testing.T) {
	east, _ := publicSim(t)
	tests := []struct {
		name    string
		filters []types.Filter
		want    []string
	}{
		{"ip-address", []types.Filter{filter("ip-address", "127.0.0.1")}, []string{"i-0000000000000a001"}},
		{"ip-address wildcard", []types.Filter{filter("ip-address", "*")}, []string{"i-0000000000000a001"}},
		{"ip-address of a stopped instance", []types.Filter{filter("ip-address", "198.51.100.7")}, nil},
		{"association", []types.Filter{filter("network-interface.association.public-ip", "127.0.0.1")}, []string{"i-0000000000000a001"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := east.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: tt.filters})
			if err != nil {
				t.Fatal(err)
			}
			if got := instanceIDs(out); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
