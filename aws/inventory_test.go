package aws_test

import (
	"testing"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

func TestInventory(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{}) // instances come from a fleet; no RunInstances
	if err := env.Sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		t.Fatal(err)
	}
	inv := latchaws.NewInventory(env.Config(), nil)

	in, err := inv.Instance(t.Context(), ec2sim.DemoWeb1)
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != "web-1" || in.Tags["env"] != "dev" || len(in.Groups) < 2 {
		t.Fatalf("web-1 = %+v", in)
	}
	g, err := in.ManagedGroup()
	if err != nil || g.ID != ec2sim.DemoWebLatchGroup {
		t.Fatalf("ManagedGroup() = %v, %v; want %s", g.ID, err, ec2sim.DemoWebLatchGroup)
	}
	if _, err := inv.Instance(t.Context(), "i-0000000000000dead"); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("Instance(unknown) = %v, want ENOTFOUND", err)
	}
	grp, err := inv.Group(t.Context(), ec2sim.DemoDBLatchGroup)
	if err != nil || !grp.Managed() || grp.Name != "db-latch" {
		t.Errorf("Group(db-latch) = %+v, %v", grp, err)
	}
	if _, err := inv.Group(t.Context(), "sg-0000000000000dead"); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("Group(unknown) = %v, want ENOTFOUND", err)
	}
}
