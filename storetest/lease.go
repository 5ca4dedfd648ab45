package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

// RunLeases runs the conformance suite of [latch.Leases] on two handles
// of one database, as two replicas: open returns them, new and empty.
func RunLeases(t *testing.T, open func(t *testing.T) (a, b latch.Leases)) {
	t0 := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	ttl := 10 * time.Second
	acquire := func(t *testing.T, s latch.Leases, holder string, now time.Time, want bool) latch.Lease {
		t.Helper()
		l, ok, err := s.AcquireLease(t.Context(), "revoker", holder, now, now.Add(ttl))
		if err != nil || ok != want {
			t.Fatalf("AcquireLease(%s at %s) = %+v, %v, %v; want held %v", holder, now.Format(time.TimeOnly), l, ok, err, want)
		}
		return l
	}
	t.Run("HeldLeaseKeepsOthersOut", func(t *testing.T) {
		a, b := open(t)
		la := acquire(t, a, "a", t0, true)
		if la.Holder != "a" || la.Token < 1 || !la.Until.Equal(t0.Add(ttl)) {
			t.Fatalf("acquired %+v", la)
		}
		lb := acquire(t, b, "b", t0.Add(ttl-time.Second), false)
		if lb.Holder != "a" || lb.Token != la.Token {
			t.Errorf("a refused acquire reports %+v; want a's lease %+v", lb, la)
		}
		if err := b.CheckLease(t.Context(), la, t0.Add(time.Second)); err != nil {
			t.Errorf("a's live lease fails its check: %v", err)
		}
	})
	t.Run("RenewalKeepsTheToken", func(t *testing.T) {
		a, b := open(t)
		la := acquire(t, a, "a", t0, true)
		again := acquire(t, a, "a", t0.Add(5*time.Second), true)
		if again.Token != la.Token || !again.Until.Equal(t0.Add(15*time.Second)) {
			t.Fatalf("renewal %+v of %+v", again, la)
		}
		acquire(t, b, "b", t0.Add(12*time.Second), false) // a's first term would have lapsed; its renewal has not
		if err := a.CheckLease(t.Context(), la, t0.Add(12*time.Second)); err != nil {
			t.Errorf("renewed lease fails its check: %v", err)
		}
	})
	t.Run("LapsedLeasePassesOnAndFencesTheOldHolder", func(t *testing.T) {
		a, b := open(t)
		la := acquire(t, a, "a", t0, true)
		if err := a.CheckLease(t.Context(), la, t0.Add(ttl)); latch.ErrorCode(err) != latch.ECONFLICT {
			t.Errorf("check at the lease's end = %v; want ECONFLICT (lapsed)", err)
		}
		lb := acquire(t, b, "b", t0.Add(ttl), true)
		if lb.Token <= la.Token {
			t.Errorf("new term's token %d; want more than the old %d", lb.Token, la.Token)
		}
		// a wakes with a clock that lags: its lease looks live to it, but
		// the store knows better.
		if err := a.CheckLease(t.Context(), la, t0.Add(time.Second)); latch.ErrorCode(err) != latch.ECONFLICT {
			t.Errorf("old holder's check after takeover = %v; want ECONFLICT", err)
		}
		acquire(t, a, "a", t0.Add(ttl+time.Second), false)
		// a takes it again only after b's lapses, in a later term still.
		la2 := acquire(t, a, "a", t0.Add(2*ttl), true)
		if la2.Token <= lb.Token {
			t.Errorf("third term's token %d; want more than %d", la2.Token, lb.Token)
		}
		if err := b.CheckLease(t.Context(), lb, t0.Add(ttl+time.Second)); latch.ErrorCode(err) != latch.ECONFLICT {
			t.Errorf("b's check after a took over = %v; want ECONFLICT", err)
		}
	})
	t.Run("ReleaseLetsAnotherInAtOnce", func(t *testing.T) {
		a, b := open(t)
		la := acquire(t, a, "a", t0, true)
		stale := la
		stale.Token--
		if err := b.ReleaseLease(t.Context(), stale); err != nil {
			t.Fatal(err)
		}
		acquire(t, b, "b", t0.Add(time.Second), false) // a stale term released nothing
		if err := a.ReleaseLease(t.Context(), la); err != nil {
			t.Fatal(err)
		}
		acquire(t, b, "b", t0.Add(time.Second), true)
	})
	t.Run("RacingAcquiresOneWins", func(t *testing.T) {
		a, b := open(t)
		stores := []latch.Leases{a, b}
		var mu sync.Mutex
		var winners []string
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				holder := fmt.Sprint("h", i)
				_, ok, err := stores[i%2].AcquireLease(t.Context(), "revoker", holder, t0, t0.Add(ttl))
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					winners = append(winners, holder)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Errorf("%d racing acquires held the lease (%v); want exactly one", len(winners), winners)
		}
	})
}
