package storetest

import (
	"net/netip"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

func testCreateGrant(t *testing.T, open func(t *testing.T) latch.Store) {
	t.Run("RoundTripsEveryField", func(t *testing.T) {
		s := open(t)
		g := NewGrant(epoch())
		g.State = latch.StateRevokeFailed
		g.Ports = latch.PortRange{From: 8000, To: 8443}
		g.Protocol = latch.UDP
		g.EndedAt = epoch().Add(30 * time.Minute)
		g.EndAs = latch.StateRevoked
		g.Attempts = 7
		g.NextAttempt = epoch().Add(31 * time.Minute)
		g.LastError = "UnauthorizedOperation: you are not authorized"
		g.Version = 42 // ignored: a new grant is at version 1
		g = mustCreate(t, s, g, "created")
		mustGet(t, s, g)
	})

	t.Run("RoundTripsIPv6ICMPAndZeroValues", func(t *testing.T) {
		s := open(t)
		g := NewGrant(epoch())
		g.State = latch.StateRequested
		g.Protocol = latch.ICMP
		g.Ports = latch.PortRange{From: -1, To: -1}
		g.Source = netip.MustParsePrefix("2001:db8::1/128")
		g.RuleID = ""
		g = mustCreate(t, s, g, "")
		mustGet(t, s, g)
	})

	t.Run("ReturnsTimesInUTC", func(t *testing.T) {
		s := open(t)
		g := NewGrant(epoch().In(time.FixedZone("UTC+5:30", 5*3600+1800)))
		g.ExpiresAt = g.ExpiresAt.In(time.FixedZone("UTC-8", -8*3600))
		created, err := s.CreateGrant(t.Context(), g, "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Grant(t.Context(), g.ID)
		if err != nil {
			t.Fatal(err)
		}
		g.Version = 1
		if d := diffGrant(got, g); d != "" { // the same instants, in UTC
			t.Fatalf("Grant(%s):\n%s", g.ID, d)
		}
		if d := diffGrant(created, got); d != "" {
			t.Fatalf("CreateGrant returned a grant other than the one stored:\n%s", d)
		}
	})

	t.Run("KeepsTimesToTheSecondAtLeast", func(t *testing.T) {
		s := open(t)
		g := NewGrant(epoch().Add(123456789 * time.Nanosecond))
		g.EndedAt = g.CreatedAt.Add(time.Minute)
		g.NextAttempt = g.CreatedAt.Add(2 * time.Minute)
		created, err := s.CreateGrant(t.Context(), g, "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Grant(t.Context(), g.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name      string
			got, want time.Time
		}{
			{"CreatedAt", got.CreatedAt, g.CreatedAt},
			{"ExpiresAt", got.ExpiresAt, g.ExpiresAt},
			{"EndedAt", got.EndedAt, g.EndedAt},
			{"NextAttempt", got.NextAttempt, g.NextAttempt},
		} {
			if !c.got.Truncate(time.Second).Equal(c.want.Truncate(time.Second)) {
				t.Errorf("%s = %v, want %v to the second", c.name, c.got, c.want)
			}
		}
		if d := diffGrant(created, got); d != "" {
			t.Fatalf("CreateGrant returned a grant other than the one stored:\n%s", d)
		}
		got.ExpiresAt = got.ExpiresAt.Add(987654321 * time.Nanosecond)
		updated, err := s.UpdateGrant(t.Context(), got, "")
		if err != nil {
			t.Fatal(err)
		}
		stored, err := s.Grant(t.Context(), g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffGrant(updated, stored); d != "" {
			t.Fatalf("UpdateGrant returned a grant other than the one stored:\n%s", d)
		}
	})

	t.Run("DuplicateIDConflictsAndChangesNothing", func(t *testing.T) {
		s := open(t)
		g := mustCreate(t, s, NewGrant(epoch()), "first")
		dup := NewGrant(epoch().Add(time.Minute))
		dup.ID = g.ID
		dup.Requester = "mallory@example.com"
		_, err := s.CreateGrant(t.Context(), dup, "second")
		wantCode(t, "CreateGrant with a taken ID", err, latch.ECONFLICT)
		mustGet(t, s, g)
		if evs := mustHistory(t, s, g.ID); len(evs) != 1 || evs[0].Note != "first" {
			t.Fatalf("History = %+v, want only the first create", evs)
		}
	})

	t.Run("UnknownIDNotFound", func(t *testing.T) {
		s := open(t)
		mustCreate(t, s, NewGrant(epoch()), "")
		_, err := s.Grant(t.Context(), latch.NewGrantID())
		wantCode(t, "Grant of an unknown ID", err, latch.ENOTFOUND)
	})
}

func testUpdateGrant(t *testing.T, open func(t *testing.T) latch.Store) {
	t.Run("AdvancesVersion", func(t *testing.T) {
		s := open(t)
		g := mustCreate(t, s, NewGrant(epoch()), "")
		g.Attempts = 1
		g = mustUpdate(t, s, g, "")
		if g.Version != 2 {
			t.Fatalf("after one update Version = %d, want 2", g.Version)
		}
		g.Attempts = 2
		g = mustUpdate(t, s, g, "")
		if g.Version != 3 {
			t.Fatalf("after two updates Version = %d, want 3", g.Version)
		}
		mustGet(t, s, g)
	})

	t.Run("WritesEveryField", func(t *testing.T) {
		s := open(t)
		g := mustCreate(t, s, NewGrant(epoch()), "")
		g.State = latch.StateRevoking
		g.Region = "us-east-1"
		g.GroupID = "sg-0fedcba9876543210"
		g.Protocol = latch.ICMP
		g.Ports = latch.PortRange{From: 8, To: -1}
		g.Source = netip.MustParsePrefix("2001:db8::2/128")
		g.RuleID = "sgr-0fedcba9876543210"
		g.Requester = "bob@example.com"
		g.Reason = "changed"
		g.CreatedAt = epoch().Add(-time.Hour)
		g.ExpiresAt = epoch().Add(2 * time.Hour)
		g.EndedAt = epoch().Add(3 * time.Hour)
		g.EndAs = latch.StateExpired
		g.Attempts = 3
		g.NextAttempt = epoch().Add(4 * time.Hour)
		g.LastError = "RequestLimitExceeded"
		g = mustUpdate(t, s, g, "")
		mustGet(t, s, g)

		// And back to zero values.
		g.RuleID, g.EndedAt, g.EndAs, g.NextAttempt, g.LastError, g.Attempts = "", time.Time{}, "", time.Time{}, "", 0
		g = mustUpdate(t, s, g, "")
		mustGet(t, s, g)
	})

	t.Run("StaleVersionConflictsAndChangesNothing", func(t *testing.T) {
		s := open(t)
		stale := mustCreate(t, s, NewGrant(epoch()), "created")
		fresh := stale
		fresh.RuleID = "sgr-00000000000000001"
		fresh = mustUpdate(t, s, fresh, "rule known")
		before := mustHistory(t, s, fresh.ID)

		stale.State = latch.StateRevoking
		stale.LastError = "should not be written"
		_, err := s.UpdateGrant(t.Context(), stale, "should not be recorded")
		wantCode(t, "UpdateGrant with a stale version", err, latch.ECONFLICT)
		mustGet(t, s, fresh)
		if after := mustHistory(t, s, fresh.ID); len(after) != len(before) {
			t.Fatalf("a refused update changed the history from %+v to %+v", before, after)
		}
	})

	t.Run("FutureVersionConflicts", func(t *testing.T) {
		s := open(t)
		g := mustCreate(t, s, NewGrant(epoch()), "")
		g.Version = 5
		_, err := s.UpdateGrant(t.Context(), g, "")
		wantCode(t, "UpdateGrant with a version never stored", err, latch.ECONFLICT)
	})

	t.Run("UnknownIDNotFound", func(t *testing.T) {
		s := open(t)
		g := NewGrant(epoch())
		g.Version = 1
		_, err := s.UpdateGrant(t.Context(), g, "")
		wantCode(t, "UpdateGrant of an unknown ID", err, latch.ENOTFOUND)
		_, err = s.Grant(t.Context(), g.ID)
		wantCode(t, "Grant after UpdateGrant of an unknown ID", err, latch.ENOTFOUND)
	})
}

func testHistory(t *testing.T, open func(t *testing.T) latch.Store) {
	t.Run("RecordsCreateStateChangesAndNotesOldestFirst", func(t *testing.T) {
		s := open(t)
		type want struct {
			state latch.GrantState
			note  string
			when  window
		}
		var wants []want
		g := NewGrant(epoch())
		g.State = latch.StateRequested
		w := during(func() { g = mustCreate(t, s, g, "requested by alice") })
		wants = append(wants, want{latch.StateRequested, "requested by alice", w})

		g.State = latch.StateActive
		w = during(func() { g = mustUpdate(t, s, g, "") })
		wants = append(wants, want{latch.StateActive, "", w})

		g.Attempts++ // no state change, no note: no event
		g = mustUpdate(t, s, g, "")

		w = during(func() { g = mustUpdate(t, s, g, "rule tagged") })
		wants = append(wants, want{latch.StateActive, "rule tagged", w})

		g.State = latch.StateRevoking
		g.EndAs = latch.StateRevoked
		w = during(func() { g = mustUpdate(t, s, g, "revoked by bob") })
		wants = append(wants, want{latch.StateRevoking, "revoked by bob", w})

		g.State = latch.StateRevoked
		w = during(func() { g = mustUpdate(t, s, g, "") })
		wants = append(wants, want{latch.StateRevoked, "", w})

		evs := mustHistory(t, s, g.ID)
		if len(evs) != len(wants) {
			t.Fatalf("History has %d events, want %d: %+v", len(evs), len(wants), evs)
		}
		for i, e := range evs {
			w := wants[i]
			if e.GrantID != g.ID || e.State != w.state || e.Note != w.note {
				t.Errorf("event %d = {%s %s %q}, want {%s %s %q}", i, e.GrantID, e.State, e.Note, g.ID, w.state, w.note)
			}
			if !w.when.contains(e.At) || e.At.Location() != time.UTC {
				t.Errorf("event %d at %v, want UTC within [%v, %v]", i, e.At, w.when.from, w.when.to)
			}
			if i > 0 && e.At.Before(evs[i-1].At) {
				t.Errorf("event %d at %v is before event %d at %v", i, e.At, i-1, evs[i-1].At)
			}
		}
	})

	t.Run("KeepsGrantsApart", func(t *testing.T) {
		s := open(t)
		a := mustCreate(t, s, NewGrant(epoch()), "a")
		b := mustCreate(t, s, NewGrant(epoch()), "b")
		b.State = latch.StateRevoking
		mustUpdate(t, s, b, "b ends")
		if evs := mustHistory(t, s, a.ID); len(evs) != 1 || evs[0].Note != "a" || evs[0].GrantID != a.ID {
			t.Fatalf("History(a) = %+v, want only a's create", evs)
		}
		if evs := mustHistory(t, s, b.ID); len(evs) != 2 || evs[1].Note != "b ends" {
			t.Fatalf("History(b) = %+v, want b's create and end", evs)
		}
	})

	t.Run("UnknownIDNotFound", func(t *testing.T) {
		s := open(t)
		_, err := s.History(t.Context(), latch.NewGrantID())
		wantCode(t, "History of an unknown ID", err, latch.ENOTFOUND)
	})
}
