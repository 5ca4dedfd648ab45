package aws_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

func TestInventory(t *testing.T) {
	env := awstest.New(t)
	fleet := env.DemoFleet(t)
	inv := latchaws.NewInventory(env.Config(), nil)

	in, err := inv.Instance(t.Context(), latch.InstanceID(fleet.Web1))
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != fleet.Web1Name || in.Tags["env"] != "dev" || len(in.Groups) < 2 {
		t.Fatalf("web-1 = %+v", in)
	}
	g, err := in.ManagedGroup()
	if err != nil || g.ID != fleet.WebGroup {
		t.Fatalf("ManagedGroup() = %v, %v; want %s", g.ID, err, fleet.WebGroup)
	}
	if _, err := inv.Instance(t.Context(), "i-0000000000000dead"); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("Instance(unknown) = %v, want ENOTFOUND", err)
	}
	grp, err := inv.Group(t.Context(), fleet.DBGroup)
	if err != nil || !grp.Managed() || !strings.HasPrefix(grp.Name, "latch-test-") {
		t.Errorf("Group(db-latch) = %+v, %v", grp, err)
	}
	if _, err := inv.Group(t.Context(), "sg-0000000000000dead"); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("Group(unknown) = %v, want ENOTFOUND", err)
	}
}

// namedFleet holds instances whose names test InstancesNamed: a bastion
// with a public address, twins (and a terminated third), a name with a
// wildcard in it beside one the unescaped wildcard would match, and one
// with a backslash, which EC2 would read as an escape.
const namedFleet = `
regions:
  us-east-1:
    vpcs: [{id: vpc-0000000000000000a, cidr: 10.9.0.0/16}]
    security_groups:
      - {id: sg-000000000000000a1, name: base, vpc: vpc-0000000000000000a}
      - {id: sg-000000000000000a2, name: jit, vpc: vpc-0000000000000000a, tags: {"latch:managed": "true"}}
    instances:
      - {id: i-000000000000000b1, private_ip: 10.9.0.5, public_ip: 127.0.0.1, security_groups: [base, jit], tags: {Name: bastion}}
      - {id: i-000000000000000c1, security_groups: [jit], tags: {Name: twin}}
      - {id: i-000000000000000c2, public_ip: 198.51.100.2, state: stopped, security_groups: [jit], tags: {Name: twin}}
      - {id: i-000000000000000c3, state: terminated, security_groups: [jit], tags: {Name: twin}}
      - {id: i-000000000000000d1, security_groups: [jit], tags: {Name: "web-*"}}
      - {id: i-000000000000000d2, security_groups: [jit], tags: {Name: web-1}}
      - {id: i-000000000000000d3, security_groups: [jit], tags: {Name: 'back\slash'}}
      - {id: i-000000000000000e1, state: terminated, security_groups: [jit], tags: {Name: gone}}
`

func namedInventory(t *testing.T) *latchaws.Inventory {
	t.Helper()
	// Stopped and terminated twins, and a public address: states and
	// addresses only a simulator fleet sets (namedInventory runs on the
	// in-repo simulator whatever LATCH_TEST_EC2_ENDPOINT says).
	env := awstest.NewSim(t, ec2sim.Options{})
	f, err := ec2sim.ParseFleet([]byte(namedFleet))
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Sim.LoadFleet(f); err != nil {
		t.Fatal(err)
	}
	return latchaws.NewInventory(env.Config(), nil)
}

func TestInstancesNamed(t *testing.T) {
	inv := namedInventory(t)
	got, err := inv.InstancesNamed(t.Context(), "bastion")
	if err != nil || len(got) != 1 {
		t.Fatalf("InstancesNamed(bastion) = %+v, %v; want one", got, err)
	}
	in := got[0]
	var groups []latch.GroupID
	for _, g := range in.Groups {
		groups = append(groups, g.ID)
	}
	if in.ID != "i-000000000000000b1" || in.Name != "bastion" || in.State != "running" ||
		in.PrivateIP != netip.MustParseAddr("10.9.0.5") || in.PublicIP != netip.MustParseAddr("127.0.0.1") ||
		!slices.Equal(groups, []latch.GroupID{"sg-000000000000000a1", "sg-000000000000000a2"}) {
		t.Errorf("bastion = %+v", in)
	}
	if g, err := in.ManagedGroup(); err != nil || g.ID != "sg-000000000000000a2" {
		t.Errorf("ManagedGroup() = %v, %v; want the jit group", g.ID, err)
	}
}

func TestInstancesNamed_Matches(t *testing.T) {
	inv := namedInventory(t)
	tests := []struct {
		name string
		want []latch.InstanceID
	}{
		{"nobody", nil},
		{"twin", []latch.InstanceID{"i-000000000000000c1", "i-000000000000000c2"}}, // not the terminated one
		{"web-*", []latch.InstanceID{"i-000000000000000d1"}},                       // literally, not web-1
		{"web-?", nil},
		{`back\slash`, []latch.InstanceID{"i-000000000000000d3"}}, // unescaped, it would match only "backslash"
		{"gone", nil}, // terminated
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inv.InstancesNamed(t.Context(), tt.name)
			if err != nil {
				t.Fatal(err)
			}
			var ids []latch.InstanceID
			for _, in := range got {
				ids = append(ids, in.ID)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, tt.want) {
				t.Errorf("got %v, want %v", ids, tt.want)
			}
		})
	}
}

func TestInstancesNamed_Stopped(t *testing.T) {
	got, err := namedInventory(t).InstancesNamed(t.Context(), "twin")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range got {
		if in.ID == "i-000000000000000c2" && (in.State != "stopped" || in.PublicIP.IsValid() || !in.PrivateIP.IsValid()) {
			t.Errorf("stopped twin = %+v; want state stopped, a private address and no public one", in)
		}
	}
}
