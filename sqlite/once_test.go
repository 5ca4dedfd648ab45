package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/sqlite"
	"github.com/latchdev/latch/storetest"
)

// Two Store values on one file, as two server replicas: each key is fresh
// to exactly one of them.
func TestSharedStoreConformance(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (latch.Store, latch.Store) {
		path := filepath.Join(t.TempDir(), "latch.db")
		return mustOpen(t, path, sqlite.Options{}), mustOpen(t, path, sqlite.Options{})
	})
}

// Used keys do not pile up: each UseOnce forgets those expired by the
// store's clock.
func TestUseOncePrunesByTheStoresClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	c := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := mustOpen(t, path, sqlite.Options{Now: c.Now})
	for i := range 10 {
		if fresh, err := s.UseOnce(t.Context(), fmt.Sprint("k", i), c.Now().Add(time.Minute)); err != nil || !fresh {
			t.Fatalf("UseOnce(k%d) = %v, %v", i, fresh, err)
		}
	}
	count := func() (n int) {
		t.Helper()
		if err := rawDB(t, path).QueryRowContext(t.Context(), `SELECT count(*) FROM used_once`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 10 {
		t.Fatalf("%d keys stored, want 10", n)
	}
	c.Set(c.Now().Add(time.Minute)) // until itself is not yet past
	if fresh, _ := s.UseOnce(t.Context(), "k0", c.Now()); fresh {
		t.Fatal("k0 was fresh again at its until; want it kept through that instant")
	}
	c.Set(c.Now().Add(time.Second))
	if fresh, err := s.UseOnce(t.Context(), "k10", c.Now().Add(time.Minute)); err != nil || !fresh {
		t.Fatalf("UseOnce(k10) = %v, %v", fresh, err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d keys stored after the first ten expired, want 1", n)
	}
}
