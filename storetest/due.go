package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

// dueMix records one grant of each kind Due must tell apart, around now,
// and returns them all.
func dueMix(t *testing.T, s latch.Store, now time.Time) []latch.Grant {
	t.Helper()
	mk := func(st latch.GrantState, expires, next time.Time) latch.Grant {
		g := NewGrant(now.Add(-2 * time.Hour))
		g.State, g.ExpiresAt, g.NextAttempt = st, expires, next
		if st.Ending() {
			g.EndAs = latch.StateExpired
		}
		return mustCreate(t, s, g, "")
	}
	past, future := now.Add(-time.Minute), now.Add(time.Minute)
	return []latch.Grant{
		mk(latch.StateActive, now.Add(-time.Hour), time.Time{}),     // due, earliest
		mk(latch.StateActive, now, time.Time{}),                     // due, at the boundary
		mk(latch.StateActive, future, time.Time{}),                  // not yet
		mk(latch.StateActive, future, past),                         // NextAttempt means nothing while active
		mk(latch.StateRevoking, future, past),                       // due: ExpiresAt means nothing while ending
		mk(latch.StateRevokeFailed, past, now.Add(-30*time.Minute)), // due
		mk(latch.StateRevoking, past, future),                       // retry not yet
		mk(latch.StateRevokeFailed, past, future),                   // retry not yet
		mk(latch.StateRequested, past, past),                        // the revoker leaves it alone
		mk(latch.StateRevoked, past, past),                          // ended
		mk(latch.StateExpired, past, past),                          // ended
		mk(latch.StateFailed, past, past),                           // never opened
		mk(latch.StateActive, now.Add(time.Second), time.Time{}),    // not yet, just
	}
}

// wantDue returns the IDs of the grants in gs due at now, earliest first,
// by latch.Grant.DueAt.
func wantDue(gs []latch.Grant, now time.Time) []latch.GrantID {
	var due []latch.Grant
	for _, g := range gs {
		if at, ok := g.DueAt(); ok && !at.After(now) {
			due = append(due, g)
		}
	}
	slices.SortStableFunc(due, func(a, b latch.Grant) int {
		at, _ := a.DueAt()
		bt, _ := b.DueAt()
		if c := at.Compare(bt); c != 0 {
			return c
		}
		return strings.Compare(string(a.ID), string(b.ID))
	})
	return ids(due)
}

func mustDue(t *testing.T, s latch.Store, now time.Time, limit int) []latch.GrantID {
	t.Helper()
	got, err := s.Due(t.Context(), now, limit)
	if err != nil {
		t.Fatalf("Due(%v, %d): %v", now, limit, err)
	}
	return got
}

func testDue(t *testing.T, open func(t *testing.T) latch.Store) {
	t.Run("ReturnsOnlyDueGrantsEarliestFirst", func(t *testing.T) {
		s := open(t)
		now := epoch()
		want := wantDue(dueMix(t, s, now), now)
		if len(want) != 4 {
			t.Fatalf("fixture: %d grants due, want 4", len(want))
		}
		if got := mustDue(t, s, now, 100); !slices.Equal(got, want) {
			t.Fatalf("Due = %v, want %v", got, want)
		}
	})

	t.Run("AtMostLimit", func(t *testing.T) {
		s := open(t)
		now := epoch()
		want := wantDue(dueMix(t, s, now), now)
		for _, limit := range []int{1, 2, 3} {
			if got := mustDue(t, s, now, limit); !slices.Equal(got, want[:limit]) {
				t.Errorf("Due(limit %d) = %v, want %v", limit, got, want[:limit])
			}
		}
	})

	t.Run("NothingDueBeforeTime", func(t *testing.T) {
		s := open(t)
		dueMix(t, s, epoch())
		if got := mustDue(t, s, epoch().Add(-2*time.Hour), 100); len(got) != 0 {
			t.Fatalf("Due two hours early = %v, want none", got)
		}
	})

	t.Run("EmptyStoreHasNothingDue", func(t *testing.T) {
		s := open(t)
		if got := mustDue(t, s, epoch(), 100); len(got) != 0 {
			t.Fatalf("Due = %v, want none", got)
		}
	})

	t.Run("EndingWithoutNextAttemptIsDueAtOnce", func(t *testing.T) {
		s := open(t)
		g := NewGrant(epoch())
		g.State, g.EndAs = latch.StateRevoking, latch.StateRevoked
		g = mustCreate(t, s, g, "")
		if got := mustDue(t, s, epoch().Add(-24*time.Hour), 10); !slices.Equal(got, []latch.GrantID{g.ID}) {
			t.Fatalf("Due = %v, want [%s]", got, g.ID)
		}
	})

	t.Run("FollowsUpdates", func(t *testing.T) {
		s := open(t)
		now := epoch()
		g := NewGrant(now.Add(-time.Hour))
		g.ExpiresAt = now.Add(-time.Second)
		g = mustCreate(t, s, g, "")
		check := func(step string, want ...latch.GrantID) {
			t.Helper()
			if got := mustDue(t, s, now, 10); !slices.Equal(got, want) {
				t.Fatalf("%s: Due = %v, want %v", step, got, want)
			}
		}
		check("active and expired", g.ID)

		g.State, g.EndAs, g.NextAttempt = latch.StateRevoking, latch.StateExpired, now.Add(time.Minute)
		g = mustUpdate(t, s, g, "")
		check("revoking, retry in a minute")

		g.State, g.Attempts, g.NextAttempt = latch.StateRevokeFailed, 5, now.Add(-time.Second)
		g = mustUpdate(t, s, g, "")
		check("revoke-failed, retry now", g.ID)

		g.State, g.EndedAt = latch.StateExpired, now
		mustUpdate(t, s, g, "")
		check("expired")
	})
}

func testNextDue(t *testing.T, open func(t *testing.T) latch.Store) {
	mustNextDue := func(t *testing.T, s latch.Store) (time.Time, bool) {
		t.Helper()
		at, ok, err := s.NextDue(t.Context())
		if err != nil {
			t.Fatalf("NextDue: %v", err)
		}
		return at, ok
	}

	t.Run("NoneInEmptyStore", func(t *testing.T) {
		s := open(t)
		if at, ok := mustNextDue(t, s); ok {
			t.Fatalf("NextDue = %v, true; want false", at)
		}
	})

	t.Run("NoneWhenNothingIsScheduled", func(t *testing.T) {
		s := open(t)
		for _, st := range []latch.GrantState{latch.StateRequested, latch.StateRevoked, latch.StateExpired, latch.StateFailed} {
			g := NewGrant(epoch())
			g.State, g.NextAttempt = st, epoch()
			mustCreate(t, s, g, "")
		}
		if at, ok := mustNextDue(t, s); ok {
			t.Fatalf("NextDue = %v, true; want false", at)
		}
	})

	t.Run("EarliestDueAt", func(t *testing.T) {
		s := open(t)
		now := epoch()
		gs := dueMix(t, s, now)
		var want time.Time
		for _, g := range gs {
			if at, ok := g.DueAt(); ok && (want.IsZero() || at.Before(want)) {
				want = at
			}
		}
		at, ok := mustNextDue(t, s)
		if !ok || !at.Equal(want) || at.Location() != time.UTC {
			t.Fatalf("NextDue = %v, %t; want %v, true", at, ok, want)
		}
	})

	t.Run("FollowsUpdates", func(t *testing.T) {
		s := open(t)
		now := epoch()
		later := mustCreate(t, s, NewGrant(now), "") // due at now+1h
		g := NewGrant(now.Add(-time.Hour))           // due at now
		g = mustCreate(t, s, g, "")
		check := func(step string, want time.Time) {
			t.Helper()
			if at, ok := mustNextDue(t, s); !ok || !at.Equal(want) {
				t.Fatalf("%s: NextDue = %v, %t; want %v, true", step, at, ok, want)
			}
		}
		check("both active", now)
		g.State, g.EndAs, g.NextAttempt = latch.StateRevoking, latch.StateRevoked, now.Add(-time.Minute)
		g = mustUpdate(t, s, g, "")
		check("one revoking", now.Add(-time.Minute))
		g.State, g.EndedAt = latch.StateRevoked, now
		mustUpdate(t, s, g, "")
		check("one revoked", later.ExpiresAt)
	})
}
