package storetest

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

// mustList runs Grants(f) and checks it returns exactly want, in order.
func mustList(t *testing.T, s latch.Store, f latch.GrantFilter, want ...latch.Grant) {
	t.Helper()
	got, err := s.Grants(t.Context(), f)
	if err != nil {
		t.Fatalf("Grants(%+v): %v", f, err)
	}
	if !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("Grants(%+v) = %v, want %v", f, ids(got), ids(want))
	}
	for i := range got {
		if d := diffGrant(got[i], want[i]); d != "" {
			t.Fatalf("Grants(%+v)[%d] differs from what was written:\n%s", f, i, d)
		}
	}
}

// withID returns g with the ID "g-" followed by 16 copies of hex digit c,
// so that tests can order grants by ID.
func withID(g latch.Grant, c byte) latch.Grant {
	id := make([]byte, 0, 18)
	id = append(id, 'g', '-')
	for range 16 {
		id = append(id, c)
	}
	g.ID = latch.GrantID(id)
	return g
}

func testGrants(t *testing.T, open func(t *testing.T) latch.Store) {
	t.Run("AllNewestFirstThenByIDDescending", func(t *testing.T) {
		s := open(t)
		old := mustCreate(t, s, withID(NewGrant(epoch()), 'f'), "")
		tieLow := mustCreate(t, s, withID(NewGrant(epoch().Add(time.Minute)), 'a'), "")
		newest := mustCreate(t, s, withID(NewGrant(epoch().Add(time.Hour)), '0'), "")
		tieHigh := mustCreate(t, s, withID(NewGrant(epoch().Add(time.Minute)), 'b'), "")
		mustList(t, s, latch.GrantFilter{}, newest, tieHigh, tieLow, old)
	})

	t.Run("EmptyStoreListsNothing", func(t *testing.T) {
		s := open(t)
		mustList(t, s, latch.GrantFilter{})
	})

	t.Run("ByStates", func(t *testing.T) {
		s := open(t)
		var byState = map[latch.GrantState]latch.Grant{}
		for i, st := range []latch.GrantState{latch.StateRequested, latch.StateActive, latch.StateRevoking,
			latch.StateRevokeFailed, latch.StateRevoked, latch.StateExpired, latch.StateFailed} {
			g := NewGrant(epoch().Add(time.Duration(i) * time.Minute))
			g.State = st
			byState[st] = mustCreate(t, s, g, "")
		}
		mustList(t, s, latch.GrantFilter{States: []latch.GrantState{latch.StateActive}}, byState[latch.StateActive])
		mustList(t, s, latch.GrantFilter{States: []latch.GrantState{latch.StateRevoking, latch.StateRevokeFailed, latch.StateRequested}},
			byState[latch.StateRevokeFailed], byState[latch.StateRevoking], byState[latch.StateRequested])
	})

	t.Run("ByOpeningMatchesAllFiveFields", func(t *testing.T) {
		s := open(t)
		base := NewGrant(epoch())
		var others []latch.Grant
		for i, change := range []func(*latch.Grant){
			func(g *latch.Grant) { g.Region = "us-east-1" },
			func(g *latch.Grant) { g.GroupID = "sg-0fedcba9876543210" },
			func(g *latch.Grant) { g.Protocol = latch.UDP },
			func(g *latch.Grant) { g.Ports.From = 21 },
			func(g *latch.Grant) { g.Ports.To = 23 },
			func(g *latch.Grant) { g.Source = netip.MustParsePrefix("203.0.113.8/32") },
			func(g *latch.Grant) { g.Source = netip.MustParsePrefix("2001:db8::1/128") },
		} {
			g := NewGrant(epoch().Add(time.Duration(i+1) * time.Minute))
			change(&g)
			others = append(others, mustCreate(t, s, g, ""))
		}
		a := mustCreate(t, s, base, "")
		b := NewGrant(epoch().Add(time.Hour)) // same opening, other grant
		b.RuleID, b.Requester = "", "bob@example.com"
		b = mustCreate(t, s, b, "")

		o := base.Opening()
		mustList(t, s, latch.GrantFilter{Opening: &o}, b, a)
		for _, g := range others {
			o := g.Opening()
			mustList(t, s, latch.GrantFilter{Opening: &o}, g)
		}
	})

	t.Run("ByOpeningWithICMPAndIPv6", func(t *testing.T) {
		s := open(t)
		g := NewGrant(epoch())
		g.Protocol, g.Ports = latch.ICMP, latch.PortRange{From: -1, To: -1}
		g.Source = netip.MustParsePrefix("2001:db8::1/128")
		g = mustCreate(t, s, g, "")
		mustCreate(t, s, NewGrant(epoch()), "")
		o := g.Opening()
		mustList(t, s, latch.GrantFilter{Opening: &o}, g)
	})

	t.Run("ByRuleID", func(t *testing.T) {
		s := open(t)
		a := mustCreate(t, s, NewGrant(epoch()), "")
		b := NewGrant(epoch().Add(time.Minute))
		b.RuleID = "sgr-0fedcba9876543210"
		b = mustCreate(t, s, b, "")
		c := NewGrant(epoch().Add(2 * time.Minute))
		c.RuleID = ""
		mustCreate(t, s, c, "")
		mustList(t, s, latch.GrantFilter{RuleIDs: []latch.RuleID{a.RuleID}}, a)
		mustList(t, s, latch.GrantFilter{RuleIDs: []latch.RuleID{b.RuleID}}, b)
		mustList(t, s, latch.GrantFilter{RuleIDs: []latch.RuleID{"sgr-00000000000000000"}})
	})

	t.Run("ByRequesterExactly", func(t *testing.T) {
		s := open(t)
		mk := func(i int, requester string) latch.Grant {
			g := NewGrant(epoch().Add(time.Duration(i) * time.Minute))
			g.Requester = requester
			return mustCreate(t, s, g, "")
		}
		a1 := mk(0, "alice@example.com")
		b := mk(1, "bob@example.com")
		a2 := mk(2, "alice@example.com")
		mk(3, "Alice@example.com")
		mk(4, "alice@example.co")
		mustList(t, s, latch.GrantFilter{Requester: "alice@example.com"}, a2, a1)
		mustList(t, s, latch.GrantFilter{Requester: "bob@example.com"}, b)
		mustList(t, s, latch.GrantFilter{Requester: "carol@example.com"})
		mustList(t, s, latch.GrantFilter{Requester: "alice@example.com", States: []latch.GrantState{latch.StateActive}, Limit: 1}, a2)
	})

	t.Run("LimitKeepsTheNewest", func(t *testing.T) {
		s := open(t)
		var gs []latch.Grant
		for i := range 5 {
			gs = append(gs, mustCreate(t, s, NewGrant(epoch().Add(time.Duration(i)*time.Minute)), ""))
		}
		slices.Reverse(gs)
		mustList(t, s, latch.GrantFilter{Limit: 2}, gs[:2]...)
		mustList(t, s, latch.GrantFilter{Limit: 5}, gs...)
		mustList(t, s, latch.GrantFilter{Limit: 50}, gs...)
	})

	t.Run("FiltersCombine", func(t *testing.T) {
		s := open(t)
		want := mustCreate(t, s, NewGrant(epoch()), "")
		otherState := NewGrant(epoch().Add(time.Minute))
		otherState.State = latch.StateRevoked
		mustCreate(t, s, otherState, "")
		otherRule := NewGrant(epoch().Add(2 * time.Minute))
		otherRule.RuleID = "sgr-0fedcba9876543210"
		mustCreate(t, s, otherRule, "")
		otherOpening := NewGrant(epoch().Add(3 * time.Minute))
		otherOpening.Ports = latch.PortRange{From: 443, To: 443}
		mustCreate(t, s, otherOpening, "")

		otherRequester := NewGrant(epoch().Add(4 * time.Minute))
		otherRequester.Requester = "bob@example.com"
		mustCreate(t, s, otherRequester, "")

		o := want.Opening()
		mustList(t, s, latch.GrantFilter{States: []latch.GrantState{latch.StateActive}, Opening: &o, RuleIDs: []latch.RuleID{want.RuleID},
			Requester: want.Requester, Limit: 10}, want)
	})

	t.Run("SeesUpdates", func(t *testing.T) {
		s := open(t)
		g := mustCreate(t, s, NewGrant(epoch()), "")
		g.State = latch.StateRevoking
		g = mustUpdate(t, s, g, "")
		mustList(t, s, latch.GrantFilter{States: []latch.GrantState{latch.StateActive}})
		mustList(t, s, latch.GrantFilter{States: []latch.GrantState{latch.StateRevoking}}, g)
	})
}
