package broker_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
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

// opCounter counts the EC2 operations a firewall calls, once per call
// whatever the SDK's retries: the simulator counts every attempt, and
// loopback HTTP now and then loses a response, which the SDK retries.
type opCounter struct {
	mu       sync.Mutex
	ops      map[string]int
	attempts int // HTTP requests, retries included
}

func (c *opCounter) get(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops[op]
}

// countingFirewall is a firewall on env whose operations c counts.
func countingFirewall(env *awstest.Env) (*latchaws.Firewall, *opCounter) {
	c := &opCounter{ops: map[string]int{}}
	cfg := env.Config()
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		err := st.Finalize.Add(middleware.FinalizeMiddlewareFunc("latchCountAttempt",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				c.mu.Lock()
				c.attempts++
				c.mu.Unlock()
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
		if err != nil {
			return err
		}
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("latchCount",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				c.mu.Lock()
				c.ops[awsmiddleware.GetOperationName(ctx)]++
				c.mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
	return latchaws.NewFirewall(cfg, nil), c
}

// wantCalls checks the EC2 calls a sweep of groups×perGroup expired rules
// made: one Describe per 1,000 rules listed, one Revoke per batch of up to
// latch.MaxRevokeBatch rules of a group.
func wantCalls(t *testing.T, sim *ec2sim.Server, c *opCounter, groups, perGroup, rules int) {
	t.Helper()
	revokes, describes := c.get("RevokeSecurityGroupIngress"), c.get("DescribeSecurityGroupRules")
	c.mu.Lock()
	retries := c.attempts - revokes - describes
	c.mu.Unlock()
	wantRevokes := groups * ((perGroup + latch.MaxRevokeBatch - 1) / latch.MaxRevokeBatch)
	// A Revoke whose response was lost is retried by the SDK and answered
	// NotFound (it took effect); RevokeMany then describes the batch once.
	wantDescribes := rules/1000 + 1 + retries
	t.Logf("%d expired rules (%d listed) over %d groups: %d RevokeSecurityGroupIngress (want %d), %d DescribeSecurityGroupRules (at most %d), %d SDK retries",
		groups*perGroup, rules, groups, revokes, wantRevokes, describes, wantDescribes, retries)
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
			fw, ops := countingFirewall(env)
			reps, err := broker.Sweep(t.Context(), []latch.Firewall{fw}, start, false, nil)
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
			wantCalls(t, sim, ops, c.groups, c.perGroup, rules)
		})
	}
}

func TestBrokerSweepRevokesInBatchesPerGroup(t *testing.T) {
	const groups, perGroup = 40, 50
	env := awstest.NewSim(t, ec2sim.Options{RuleLimit: 1000})
	f := newFixture(t, env, broker.Options{})
	sim, rules := burst(t, env, groups, perGroup)
	fw, ops := countingFirewall(env)
	b := broker.New(f.store, []latch.Firewall{fw}, nil, broker.Options{Clock: f.clock})
	reps, _, err := b.SweepOnce(t.Context())
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
	wantCalls(t, sim, ops, groups, perGroup, rules)
}

// ghostFirewall lists, besides the real rules, one expired rule that is no
// longer in AWS: revoked by someone else between the sweep's list and its
// revoke. EC2 then fails the whole batch's call with NotFound.
type ghostFirewall struct {
	latch.Firewall
	ghost latch.Rule
}

func (g ghostFirewall) Rules(ctx context.Context) ([]latch.Rule, error) {
	rules, err := g.Firewall.Rules(ctx)
	return append(rules, g.ghost), err
}

// One batch holding a known expired grant's rule, a rule a live grant holds
// (stale tags), an orphan and a rule already gone: the known grant ends, the
// live one keeps its rule with tags mended, the orphan is audited, the gone
// rule counts as revoked, and the group's other rules go in one call after
// the one EC2 refused.
func TestBrokerSweepMixedBatch(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{})
	f := newFixture(t, env, broker.Options{})
	known := f.grant(t, "203.0.113.1", 10*time.Minute)
	kept := f.grant(t, "203.0.113.2", 30*time.Minute)
	if err := f.env.Firewall(t).Tag(t.Context(), kept.RuleID, map[string]string{latch.TagExpiresAt: latch.FormatExpiry(start)}); err != nil {
		t.Fatal(err)
	}
	orphan := openDirect(t, f, "203.0.113.3/32", latch.RuleTags(latch.Grant{ID: "g-00000000000000aa", ExpiresAt: start}))
	ghost := latch.Rule{ID: "sgr-0000000000000dead", Opening: latch.Opening{Region: awstest.Region, GroupID: f.group, Protocol: latch.TCP,
		Ports: latch.PortRange{From: 22, To: 22}, Source: netip.MustParsePrefix("203.0.113.4/32")},
		Tags: latch.RuleTags(latch.Grant{ID: "g-00000000000000bb", ExpiresAt: start})}
	f.clock.Advance(10 * time.Minute)
	fw, ops := countingFirewall(env)
	b := broker.New(f.store, []latch.Firewall{ghostFirewall{fw, ghost}}, nil, broker.Options{Clock: f.clock})

	reps, _, err := b.SweepOnce(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := ops.get("RevokeSecurityGroupIngress"); n != 2 {
		t.Errorf("%d Revoke calls, want 2 (the batch refused for the gone rule, then the rest)", n)
	}
	got := map[latch.RuleID]broker.Swept{}
	for _, s := range reps[0].Swept {
		got[s.Rule.ID] = s
	}
	for _, id := range []latch.RuleID{known.RuleID, orphan, ghost.ID} {
		if s := got[id]; !s.Revoked || s.Err != nil {
			t.Errorf("rule %s: revoked %v, err %v; want revoked", id, s.Revoked, s.Err)
		}
	}
	if s := got[kept.RuleID]; s.Revoked || s.KeptFor == nil || s.KeptFor.ID != kept.ID {
		t.Errorf("rule %s: revoked %v, kept for %v; want kept for %s", kept.RuleID, s.Revoked, s.KeptFor, kept.ID)
	}
	if st := f.state(t, known.ID).State; st != latch.StateExpired {
		t.Errorf("known grant is %s, want expired", st)
	}
	if st := f.state(t, kept.ID).State; st != latch.StateActive {
		t.Errorf("kept grant is %s, want active", st)
	}
	rules := f.ruleTags(t)
	if len(rules) != 1 || rules[kept.RuleID][latch.TagExpiresAt] != latch.FormatExpiry(kept.ExpiresAt) {
		t.Errorf("rules left %v, want only %s with its expiry mended", rules, kept.RuleID)
	}
	entries, err := f.store.AuditEntries(t.Context(), latch.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	orphans := map[string]bool{}
	for _, e := range entries {
		if e.Action == latch.AuditSweptOrphan {
			orphans[e.Details["rule_id"]] = true
		}
	}
	if !orphans[string(orphan)] || !orphans[string(ghost.ID)] || len(orphans) != 2 {
		t.Errorf("swept-orphan entries for %v, want %s and %s", orphans, orphan, ghost.ID)
	}
}
