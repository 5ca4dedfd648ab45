package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

func testUseOnce(t *testing.T, open func(t *testing.T) latch.Store) {
	later := func() time.Time { return time.Now().Add(time.Hour) }

	t.Run("FreshOnce", func(t *testing.T) {
		s := open(t)
		mustUseOnce(t, s, "k1", later(), true)
		mustUseOnce(t, s, "k1", later(), false)
		mustUseOnce(t, s, "k2", later(), true)
		mustUseOnce(t, s, "k1", later().Add(time.Hour), false)
		mustUseOnce(t, s, "K1", later(), true) // keys are exact
	})

	t.Run("ExpiredKeysAreForgotten", func(t *testing.T) {
		s := open(t)
		past := time.Now().Add(-time.Minute)
		mustUseOnce(t, s, "live", later(), true)
		mustUseOnce(t, s, "expired", past, true)
		mustUseOnce(t, s, "expired", past, true)
		mustUseOnce(t, s, "live", later(), false)
	})

	t.Run("RacingUsesOneFresh", func(t *testing.T) {
		racingUses(t, []latch.Store{open(t)})
	})

	t.Run("EmptyKey", func(t *testing.T) {
		_, err := open(t).UseOnce(t.Context(), "", later())
		wantCode(t, `UseOnce("")`, err, latch.EINVALID)
	})
}

// RunShared runs the part of the suite that needs two Store values on one
// database, as two replicas of the server have: open returns them, both
// closed by t.Cleanup, on a new, empty database.
func RunShared(t *testing.T, open func(t *testing.T) (a, b latch.Store)) {
	t.Run("UseOnceSeenByTheOther", func(t *testing.T) {
		a, b := open(t)
		until := time.Now().Add(time.Hour)
		mustUseOnce(t, a, "k", until, true)
		mustUseOnce(t, b, "k", until, false)
		mustUseOnce(t, b, "k2", until, true)
		mustUseOnce(t, a, "k2", until, false)
	})
	t.Run("RacingUsesOneFresh", func(t *testing.T) {
		a, b := open(t)
		racingUses(t, []latch.Store{a, b})
	})
	t.Run("AuditAppendsFromBothMakeOneChain", func(t *testing.T) {
		a, b := open(t)
		sharedAuditChain(t, a, b)
	})
}

// racingUses has 16 writers, spread over stores, use one key at once, and
// checks that exactly one was fresh; then again for a second key.
func racingUses(t *testing.T, stores []latch.Store) {
	const n = 16
	for round := range 2 {
		key := fmt.Sprintf("racing-%d", round)
		until := time.Now().Add(time.Hour)
		fresh := make([]bool, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { fresh[i], errs[i] = stores[i%len(stores)].UseOnce(t.Context(), key, until) })
		}
		wg.Wait()
		wins := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("UseOnce(%q) by writer %d: %v", key, i, errs[i])
			}
			if fresh[i] {
				wins++
			}
		}
		if wins != 1 {
			t.Fatalf("%d of %d racing UseOnce(%q) were fresh, want 1", wins, n, key)
		}
	}
}

func mustUseOnce(t *testing.T, s latch.Store, key string, until time.Time, want bool) {
	t.Helper()
	fresh, err := s.UseOnce(t.Context(), key, until)
	if err != nil {
		t.Fatalf("UseOnce(%q, %v): %v", key, until, err)
	}
	if fresh != want {
		t.Fatalf("UseOnce(%q, %v) = %v, want %v", key, until, fresh, want)
	}
}
