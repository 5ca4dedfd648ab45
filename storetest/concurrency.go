package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/latchdev/latch"
)

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func testChanged(t *testing.T, open func(t *testing.T) latch.Store) {
	t.Run("OpenUntilAChange", func(t *testing.T) {
		s := open(t)
		ch := s.Changed()
		if isClosed(ch) {
			t.Fatal("Changed is closed before any change")
		}
		_, _ = s.Grant(t.Context(), latch.NewGrantID())
		_, _ = s.Grants(t.Context(), latch.GrantFilter{})
		_, _ = s.Due(t.Context(), epoch(), 10)
		_, _, _ = s.NextDue(t.Context())
		if isClosed(ch) {
			t.Fatal("Changed is closed after reads only")
		}
	})

	t.Run("ClosedAfterCreate", func(t *testing.T) {
		s := open(t)
		ch := s.Changed()
		mustCreate(t, s, NewGrant(epoch()), "")
		if !isClosed(ch) {
			t.Fatal("Changed is still open after CreateGrant returned")
		}
		if isClosed(s.Changed()) {
			t.Fatal("Changed after CreateGrant returned a closed channel; want a fresh one")
		}
	})

	t.Run("ClosedAfterUpdate", func(t *testing.T) {
		s := open(t)
		g := mustCreate(t, s, NewGrant(epoch()), "")
		ch := s.Changed()
		if isClosed(ch) {
			t.Fatal("Changed is closed before the update")
		}
		g.Attempts++
		g = mustUpdate(t, s, g, "")
		if !isClosed(ch) {
			t.Fatal("Changed is still open after UpdateGrant returned")
		}
		ch = s.Changed()
		if isClosed(ch) {
			t.Fatal("Changed after UpdateGrant returned a closed channel; want a fresh one")
		}
		g.State = latch.StateRevoking
		mustUpdate(t, s, g, "")
		if !isClosed(ch) {
			t.Fatal("the fresh channel is still open after a second UpdateGrant")
		}
	})
}

func testConcurrency(t *testing.T, open func(t *testing.T) latch.Store) {
	const n = 16

	t.Run("OneOfRacingUpdatesWins", func(t *testing.T) {
		s := open(t)
		g := mustCreate(t, s, NewGrant(epoch()), "")
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				mine := g
				mine.State = latch.StateRevoking
				mine.LastError = fmt.Sprintf("writer %d", i)
				_, errs[i] = s.UpdateGrant(t.Context(), mine, fmt.Sprintf("writer %d", i))
			})
		}
		wg.Wait()
		winner := OneWins(t, "writer", errs)
		want := g
		want.State, want.LastError, want.Version = latch.StateRevoking, fmt.Sprintf("writer %d", winner), 2
		mustGet(t, s, want)
		if evs := mustHistory(t, s, g.ID); len(evs) != 2 || evs[1].Note != want.LastError {
			t.Fatalf("History = %+v, want the create and the winner's update", evs)
		}
	})

	t.Run("ConcurrentCreatesAllLand", func(t *testing.T) {
		s := open(t)
		gs := make([]latch.Grant, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			gs[i] = NewGrant(epoch())
			wg.Go(func() { _, errs[i] = s.CreateGrant(t.Context(), gs[i], "") })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("CreateGrant %d: %v", i, err)
			}
		}
		got, err := s.Grants(t.Context(), latch.GrantFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("Grants lists %d grants, want %d", len(got), n)
		}
	})

	t.Run("RacingCreatesOfOneIDOneWins", func(t *testing.T) {
		s := open(t)
		g := NewGrant(epoch())
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { _, errs[i] = s.CreateGrant(t.Context(), g, "") })
		}
		wg.Wait()
		OneWins(t, "creator", errs)
	})
}

// OneWins checks the errors of racing writers, errs[i] being writer i's:
// exactly one must have succeeded and every other failed with ECONFLICT.
// It returns the winner's index; who names a writer in failure messages.
func OneWins(t testing.TB, who string, errs []error) int {
	t.Helper()
	winner, wins := -1, 0
	for i, err := range errs {
		switch latch.ErrorCode(err) {
		case "":
			winner = i
			wins++
		case latch.ECONFLICT:
		default:
			t.Fatalf("%s %d: %v; want success or ECONFLICT", who, i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d %ss won, want 1", wins, who)
	}
	return winner
}
