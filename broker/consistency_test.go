package broker_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
	"github.com/latchdev/latch/mock"
)

// describeLag is how far the simulator's Describes lag its mutations in
// these tests: EC2's eventual consistency, usually well under this.
const describeLag = 5 * time.Second

// laggingFixture is a fixture whose simulator shows security group rules
// to Describe calls describeLag late, on the fixture's clock.
func laggingFixture(t *testing.T) (*fixture, *ec2sim.Server) {
	t.Helper()
	var clock atomic.Pointer[mock.Clock]
	env := awstest.NewSim(t, ec2sim.Options{DescribeLag: describeLag, Now: func() time.Time {
		if c := clock.Load(); c != nil {
			return c.Now()
		}
		return start
	}})
	sim := env.RequireSim(t, "lags Describe behind mutations")
	f := newFixture(t, env, broker.Options{})
	clock.Store(f.clock)
	return f, sim
}

// A grant revoked right after it opened is closed, although no Describe
// has seen its rule yet: open and close use the rule's ID, not a listing.
func TestConsistency_GrantThenRevoke(t *testing.T) {
	f, sim := laggingFixture(t)
	g := f.grant(t, "203.0.113.7", 30*time.Minute)
	if n := len(f.ruleTags(t)); n != 0 {
		t.Fatalf("Describe shows %d rules at once; the simulator does not lag", n)
	}
	got, err := f.b.Revoke(t.Context(), g.ID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Grant.State != latch.StateRevoked {
		t.Errorf("grant %s, want revoked", got.Grant.State)
	}
	if rules := sim.Rules(awstest.Region, string(f.group)); len(rules) != 0 {
		t.Errorf("rules left in EC2: %v", rules)
	}
	f.clock.Advance(describeLag)
	if n := len(f.ruleTags(t)); n != 0 {
		t.Errorf("%d rules visible after the lag", n)
	}
}

// A sweep right after another sees the rules the first revoked (Describe
// lags), revokes them again, and takes the NotFound for done: no error,
// nothing reopened, every grant stays expired.
func TestConsistency_SweepAfterSweep(t *testing.T) {
	f, sim := laggingFixture(t)
	var grants []latch.Grant
	for _, src := range []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"} {
		grants = append(grants, f.grant(t, src, 10*time.Minute))
	}
	live := f.grant(t, "203.0.113.9", time.Hour)
	f.clock.Advance(10 * time.Minute)
	if err := f.b.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(f.ruleTags(t)); n != 4 {
		t.Fatalf("Describe shows %d rules right after the sweep, want all 4 (it lags)", n)
	}
	if err := f.b.Sweep(t.Context()); err != nil {
		t.Fatalf("second sweep over rules already revoked: %v", err)
	}
	reports, err := broker.Sweep(t.Context(), []latch.Firewall{f.env.Firewall(t)}, f.clock.Now(), false, nil)
	if err != nil {
		t.Fatalf("store-less sweep over rules already revoked: %v", err)
	}
	if n := len(reports[0].Swept); n > 3 {
		t.Errorf("store-less sweep swept %d rules, want at most the 3 expired", n)
	}
	for _, g := range grants {
		if got := f.state(t, g.ID); got.State != latch.StateExpired {
			t.Errorf("grant %s is %s, want expired", g.ID, got.State)
		}
	}
	rules := sim.Rules(awstest.Region, string(f.group))
	if len(rules) != 1 || rules[0].ID != string(live.RuleID) {
		t.Errorf("rules in EC2 %v, want only the live grant's %s", rules, live.RuleID)
	}
	if got := f.state(t, live.ID); got.State != latch.StateActive {
		t.Errorf("live grant is %s", got.State)
	}
	f.clock.Advance(describeLag)
	if tags := f.ruleTags(t); len(tags) != 1 {
		t.Errorf("after the lag Describe shows %d rules, want 1", len(tags))
	}
}

// A sweep that mended a rule's stale expiry tag sees the old tag again
// on the next pass (CreateTags lags too); it mends again and never revokes
// the live grant's rule.
func TestConsistency_MendedTagsLag(t *testing.T) {
	f, sim := laggingFixture(t)
	g := f.grant(t, "203.0.113.7", 30*time.Minute)
	f.clock.Advance(describeLag)
	if err := f.env.Firewall(t).Tag(t.Context(), g.RuleID, map[string]string{latch.TagExpiresAt: latch.FormatExpiry(start)}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(describeLag) // the stale tag is now what Describe shows
	for range 3 {
		if err := f.b.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		if rules := sim.Rules(awstest.Region, string(f.group)); len(rules) != 1 {
			t.Fatalf("the live grant's rule was revoked: %v", rules)
		}
	}
	if got := f.state(t, g.ID); got.State != latch.StateActive {
		t.Errorf("grant is %s, want active", got.State)
	}
	f.clock.Advance(describeLag)
	if tags := f.ruleTags(t)[g.RuleID]; tags[latch.TagExpiresAt] != latch.FormatExpiry(g.ExpiresAt) {
		t.Errorf("rule tags %v after the lag, want expiry mended to %s", tags, latch.FormatExpiry(g.ExpiresAt))
	}
}

// Two grants sharing one opening: the second's Authorize meets EC2's
// duplicate check (immediate), and the aws firewall then looks the rule up
// with a Describe, which does not list it yet. The second grant fails,
// retryably, leaving the first grant and its rule as they were; once the
// lag has passed it opens on the shared rule.
func TestConsistency_SharedRuleWhileDescribeLags(t *testing.T) {
	f, sim := laggingFixture(t)
	a := f.grant(t, "203.0.113.7", 30*time.Minute)
	_, err := f.b.Grant(t.Context(), f.request("203.0.113.7", time.Hour))
	if err != nil && latch.ErrorCode(err) != latch.EUNAVAILABLE {
		t.Fatalf("a second grant on the same opening while Describe lags: %v, want success or a retryable error", err)
	}
	if rules := sim.Rules(awstest.Region, string(f.group)); len(rules) != 1 || rules[0].ID != string(a.RuleID) {
		t.Fatalf("rules %v, want only the first grant's %s", rules, a.RuleID)
	}
	if got := f.state(t, a.ID); got.State != latch.StateActive {
		t.Fatalf("first grant is %s, want active", got.State)
	}
	f.clock.Advance(describeLag)
	b, err := f.b.Grant(t.Context(), f.request("203.0.113.7", time.Hour))
	if err != nil {
		t.Fatalf("the second grant once Describe caught up: %v", err)
	}
	if b.RuleID != a.RuleID {
		t.Errorf("second grant's rule %s, want the shared %s", b.RuleID, a.RuleID)
	}
}

// A sweep right after a batch of expiries, while Describe still lists the
// rules just revoked, believes the store: it makes no Revoke call for them
// (a NotFound batch with a lagging Describe fell back to one call per
// rule) and records no false orphan. Past the lag, the listing is right.
func TestSweepInsideDescribeLagTrustsRecentRevokes(t *testing.T) {
	f, sim := laggingFixture(t)
	var ids []latch.GrantID
	for i := range 20 {
		ids = append(ids, f.grant(t, fmt.Sprintf("203.0.113.%d", i+1), 10*time.Minute).ID)
	}
	f.clock.Advance(10*time.Minute + describeLag)
	if err := f.b.ExpireMany(t.Context(), ids); err != nil {
		t.Fatal(err)
	}
	before := sim.Calls("RevokeSecurityGroupIngress")
	if err := f.b.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := sim.Calls("RevokeSecurityGroupIngress") - before; n != 0 {
		t.Errorf("the sweep made %d Revoke calls for rules the store had just revoked; want 0", n)
	}
	es, err := f.store.AuditEntries(t.Context(), latch.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Action == latch.AuditSweptOrphan {
			t.Fatalf("a false orphan: %+v", e)
		}
	}
	f.clock.Advance(describeLag)
	if rules := f.env.Ingress(t, f.group); len(rules) != 0 {
		t.Errorf("%d rules listed past the lag", len(rules))
	}
}
