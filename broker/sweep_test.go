package broker_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/internal/awstest"
)

// openDirect opens a rule with tags and no store record, as a process that
// died before recording it would leave it.
func openDirect(t testing.TB, f *fixture, src string, tags map[string]string) latch.RuleID {
	t.Helper()
	o := latch.Opening{Region: awstest.Region, GroupID: f.group, Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22}, Source: netip.MustParsePrefix(src)}
	r, _, err := f.env.Firewall(t).Authorize(t.Context(), o, tags)
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func TestSweepNeedsNoStore(t *testing.T) {
	f := newFixture(t, awstest.New(t), broker.Options{})
	expired := openDirect(t, f, "203.0.113.1/32", latch.RuleTags(latch.Grant{ID: "g-0000000000000001", ExpiresAt: start.Add(-time.Minute)}))
	live := openDirect(t, f, "203.0.113.2/32", latch.RuleTags(latch.Grant{ID: "g-0000000000000002", ExpiresAt: start.Add(time.Minute)}))
	garbled := openDirect(t, f, "203.0.113.3/32", map[string]string{latch.TagExpiresAt: "next tuesday"})
	untagged := openDirect(t, f, "203.0.113.4/32", map[string]string{"owner": "terraform"})
	fws := []latch.Firewall{f.env.Firewall(t)}

	reports, err := broker.Sweep(t.Context(), fws, start, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(reports[0].Swept); got != 2 {
		t.Fatalf("dry run found %d expired rules, want 2 (expired and garbled)", got)
	}
	if len(f.ruleTags(t)) != 4 {
		t.Fatal("dry run revoked something")
	}

	if _, err := broker.Sweep(t.Context(), fws, start, false, nil); err != nil {
		t.Fatal(err)
	}
	rules := f.ruleTags(t)
	for id, want := range map[latch.RuleID]bool{expired: false, garbled: false, live: true, untagged: true} {
		if _, ok := rules[id]; ok != want {
			t.Errorf("rule %s present = %v after sweep, want %v", id, ok, want)
		}
	}
}

func TestBrokerSweepEndsKnownGrants(t *testing.T) {
	f := newFixture(t, awstest.New(t), broker.Options{})
	g := f.grant(t, "203.0.113.7", 10*time.Minute)
	f.clock.Advance(10 * time.Minute)
	if err := f.b.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(f.ruleTags(t)) != 0 {
		t.Fatal("sweep left the expired rule")
	}
	if got := f.state(t, g.ID); got.State != latch.StateExpired {
		t.Errorf("grant is %s after sweep, want expired", got.State)
	}
	if !strings.Contains(f.logs.String(), `"via":"sweep"`) {
		t.Error("no evidence line for the swept rule")
	}
}

// A rule whose tag says expired while the store knows a live grant on it
// had its tags left stale by a crash: the sweep mends them, not revokes.
func TestSweepMendsStaleTags(t *testing.T) {
	f := newFixture(t, awstest.New(t), broker.Options{})
	g := f.grant(t, "203.0.113.7", 30*time.Minute)
	if err := f.env.Firewall(t).Tag(t.Context(), g.RuleID, map[string]string{latch.TagExpiresAt: latch.FormatExpiry(start)}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if err := f.b.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if tags := f.ruleTags(t)[g.RuleID]; tags[latch.TagExpiresAt] != latch.FormatExpiry(g.ExpiresAt) {
		t.Errorf("rule tags %v, want expiry mended to %s", tags, latch.FormatExpiry(g.ExpiresAt))
	}
}

// A grant left requested by a process that died is settled by a sweep once
// SettleTime has passed: active if its rule exists, failed if not.
func TestSweepSettlesRequestedGrants(t *testing.T) {
	f := newFixture(t, awstest.New(t), broker.Options{SettleTime: time.Minute})
	ctx := t.Context()
	mk := func(src string) latch.Grant {
		r := f.request(src, 30*time.Minute)
		g, err := f.store.CreateGrant(ctx, latch.Grant{ID: latch.NewGrantID(), State: latch.StateRequested, Region: r.Region,
			GroupID: r.GroupID, Protocol: r.Protocol, Ports: r.Ports, Source: r.Source, Requester: r.Requester, Reason: r.Reason,
			CreatedAt: start, ExpiresAt: start.Add(r.Duration)}, "requested")
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	beforeAWS := mk("203.0.113.1")
	afterAWS := mk("203.0.113.2")
	rule := openDirect(t, f, "203.0.113.2/32", latch.RuleTags(afterAWS))

	if err := f.b.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if f.state(t, beforeAWS.ID).State != latch.StateRequested {
		t.Fatal("settled a grant before SettleTime: its process may still be working")
	}
	f.clock.Advance(time.Minute)
	if err := f.b.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.state(t, beforeAWS.ID); got.State != latch.StateFailed {
		t.Errorf("grant that never reached AWS is %s, want failed", got.State)
	}
	got := f.state(t, afterAWS.ID)
	if got.State != latch.StateActive || got.RuleID != rule {
		t.Errorf("grant whose rule exists is %s on %q, want active on %s", got.State, got.RuleID, rule)
	}
}
