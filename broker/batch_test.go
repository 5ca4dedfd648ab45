package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

// burst loads groups security groups into the simulator, each with perGroup
// rules tagged expired a minute before start and one live rule, and returns
// the simulator and the number of latch rules.
func burst(t testing.TB, env *awstest.Env, groups, perGroup int) (*ec2sim.Server, int) {
	t.Helper()
	sim := env.RequireSim(t, "counts EC2 calls")
	expired := latch.RuleTags(latch.Grant{ID: "g-0000000000000001", ExpiresAt: start.Add(-time.Minute)})
	live := latch.RuleTags(latch.Grant{ID: "g-0000000000000002", ExpiresAt: start.Add(time.Hour)})
	var fleet ec2sim.FleetRegion
	for g := range groups {
		fg := ec2sim.FleetGroup{Name: fmt.Sprintf("burst-%d", g)}
		for i := range perGroup + 1 {
			tags := expired
			if i == perGroup {
				tags = live
			}
			fg.Rules = append(fg.Rules, ec2sim.FleetRule{Protocol: "tcp", FromPort: 22, ToPort: 22,
				CIDR: fmt.Sprintf("10.%d.%d.%d/32", i>>16&255, i>>8&255, i&255), Tags: tags})
		}
		fleet.SecurityGroups = append(fleet.SecurityGroups, fg)
	}
	if err := sim.LoadFleet(ec2sim.Fleet{Regions: map[string]ec2sim.FleetRegion{awstest.Region: fleet}}); err != nil {
		t.Fatal(err)
	}
	return sim, groups * (perGroup + 1)
}

// wantCalls checks the EC2 calls a sweep of groups×perGroup expired rules
// made since before: one Describe per 1,000 rules listed, one Revoke per
// batch of up to latch.MaxRevokeBatch rules of a group.
func wantCalls(t *testing.T, sim *ec2sim.Server, before map[string]int, groups, perGroup, rules int) {
	t.Helper()
	revokes := sim.Calls("RevokeSecurityGroupIngress") - before["RevokeSecurityGroupIngress"]
	describes := sim.Calls("DescribeSecurityGroupRules") - before["DescribeSecurityGroupRules"]
	wantRevokes := groups * ((perGroup + latch.MaxRevokeBatch - 1) / latch.MaxRevokeBatch)
	wantDescribes := rules/1000 + 1
	t.Logf("%d expired rules (%d listed) over %d groups: %d RevokeSecurityGroupIngress (want %d), %d DescribeSecurityGroupRules (at most %d)",
		groups*perGroup, rules, groups, revokes, wantRevokes, describes, wantDescribes)
	if revokes != wantRevokes {
		t.Errorf("%d RevokeSecurityGroupIngress calls, want %d", revokes, wantRevokes)
	}
	if describes > wantDescribes {
		t.Errorf("%d DescribeSecurityGroupRules calls, want at most %d", describes, wantDescribes)
	}
	if left := len(sim.Rules(awstest.Region, "")); left != groups { // the live rule of each group
		t.Errorf("%d rules left, want %d (the live ones)", left, groups)
	}
}

func calls(sim *ec2sim.Server) map[string]int {
	return map[string]int{
		"RevokeSecurityGroupIngress": sim.Calls("RevokeSecurityGroupIngress"),
		"DescribeSecurityGroupRules": sim.Calls("DescribeSecurityGroupRules"),
	}
}

func TestSweepRevokesInBatchesPerGroup(t *testing.T) {
	for _, c := range []struct{ groups, perGroup int }{
		{40, 50},  // 2,000 rules: one call per group
		{2, 450},  // three batches per group: 200, 200, 50
		{200, 50}, // the burst: 10,000 rules over 200 groups
		{1, 1},
	} {
		t.Run(fmt.Sprintf("%dx%d", c.groups, c.perGroup), func(t *testing.T) {
			env := awstest.NewSim(t, ec2sim.Options{RuleLimit: 1000})
			sim, rules := burst(t, env, c.groups, c.perGroup)
			before := calls(sim)
			reps, err := broker.Sweep(t.Context(), []latch.Firewall{env.Firewall(t)}, start, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(reps[0].Swept); n != c.groups*c.perGroup {
				t.Fatalf("swept %d rules, want %d", n, c.groups*c.perGroup)
			}
			for _, s := range reps[0].Swept {
				if !s.Revoked || s.Err != nil {
					t.Fatalf("rule %s: revoked %v, err %v", s.Rule.ID, s.Revoked, s.Err)
				}
			}
			wantCalls(t, sim, before, c.groups, c.perGroup, rules)
		})
	}
}

func TestBrokerSweepRevokesInBatchesPerGroup(t *testing.T) {
	const groups, perGroup = 40, 50
	env := awstest.NewSim(t, ec2sim.Options{RuleLimit: 1000})
	f := newFixture(t, env, broker.Options{})
	sim, rules := burst(t, env, groups, perGroup)
	before := calls(sim)
	reps, _, err := f.b.SweepOnce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, s := range reps[0].Swept {
		if s.Revoked {
			revoked++
		}
	}
	if revoked != groups*perGroup {
		t.Fatalf("revoked %d rules, want %d", revoked, groups*perGroup)
	}
	wantCalls(t, sim, before, groups, perGroup, rules)
}
