package sqlite_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/sqlite"
	"github.com/latchdev/latch/storetest"
)

// Two Store values on one file stand in for two processes: they share
// nothing but the file.
func TestTwoStoresOnOneFile(t *testing.T) {
	open2 := func(t *testing.T) (a, b *sqlite.Store) {
		path := filepath.Join(t.TempDir(), "latch.db")
		return mustOpen(t, path, sqlite.Options{}), mustOpen(t, path, sqlite.Options{})
	}

	t.Run("SeeEachOthersWrites", func(t *testing.T) {
		a, b := open2(t)
		g, err := a.CreateGrant(t.Context(), storetest.NewGrant(time.Now()), "by a")
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Grant(t.Context(), g.ID)
		if err != nil {
			t.Fatalf("b cannot see a's grant: %v", err)
		}
		got.State = latch.StateRevoking
		if _, err := b.UpdateGrant(t.Context(), got, "by b"); err != nil {
			t.Fatal(err)
		}
		evs, err := a.History(t.Context(), g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 || evs[1].Note != "by b" {
			t.Fatalf("a sees history %+v, want b's update last", evs)
		}
		if ids, err := a.Due(t.Context(), time.Now(), 10); err != nil || len(ids) != 1 || ids[0] != g.ID {
			t.Fatalf("a: Due = %v, %v; want [%s]", ids, err, g.ID)
		}
	})

	t.Run("StaleVersionConflictsAcrossStores", func(t *testing.T) {
		a, b := open2(t)
		g, err := a.CreateGrant(t.Context(), storetest.NewGrant(time.Now()), "")
		if err != nil {
			t.Fatal(err)
		}
		fromB, err := b.Grant(t.Context(), g.ID)
		if err != nil {
			t.Fatal(err)
		}
		g.Attempts = 1
		if _, err := a.UpdateGrant(t.Context(), g, ""); err != nil {
			t.Fatal(err)
		}
		fromB.Attempts = 99
		_, err = b.UpdateGrant(t.Context(), fromB, "")
		if latch.ErrorCode(err) != latch.ECONFLICT {
			t.Fatalf("b's stale update: %v, want ECONFLICT", err)
		}
	})

	t.Run("RacingUpdatesAcrossStoresOneWins", func(t *testing.T) {
		a, b := open2(t)
		g, err := a.CreateGrant(t.Context(), storetest.NewGrant(time.Now()), "")
		if err != nil {
			t.Fatal(err)
		}
		const n = 16
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() { _, errs[i] = s.UpdateGrant(t.Context(), g, fmt.Sprint(i)) })
		}
		wg.Wait()
		storetest.OneWins(t, "writer", errs)
	})

	t.Run("ChangedIsPerStore", func(t *testing.T) {
		a, b := open2(t)
		chA, chB := a.Changed(), b.Changed()
		if _, err := a.CreateGrant(t.Context(), storetest.NewGrant(time.Now()), ""); err != nil {
			t.Fatal(err)
		}
		select {
		case <-chA:
		default:
			t.Fatal("a's channel is open after a's write")
		}
		select {
		case <-chB:
			t.Fatal("b's channel closed after a's write; only writes through b should close it")
		default:
		}
	})
}

// childEnv names the database a child process works on; see
// TestChildProcess.
const childEnv = "LATCH_SQLITE_TEST_CHILD"

// TestProcesses runs several processes against one file. Each increments
// one grant's Attempts by read-modify-write, retrying on ECONFLICT, and
// creates grants of its own. No increment may be lost.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const procs, rounds = 4, 20
	path := filepath.Join(t.TempDir(), "latch.db")
	s := mustOpen(t, path, sqlite.Options{})
	g, err := s.CreateGrant(t.Context(), storetest.NewGrant(time.Now()), "")
	if err != nil {
		t.Fatal(err)
	}

	runChildren(t, procs, "TestChildProcess", childEnv+"="+path, "LATCH_SQLITE_TEST_GRANT="+string(g.ID),
		"LATCH_SQLITE_TEST_ROUNDS="+strconv.Itoa(rounds))

	got, err := s.Grant(t.Context(), g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attempts != procs*rounds || got.Version != 1+procs*rounds {
		t.Fatalf("Attempts = %d, Version = %d; want %d and %d", got.Attempts, got.Version, procs*rounds, 1+procs*rounds)
	}
	all, err := s.Grants(t.Context(), latch.GrantFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + procs*rounds; len(all) != want {
		t.Fatalf("%d grants, want %d", len(all), want)
	}
}

// TestChildProcess is one of TestProcesses' processes; run on its own it
// does nothing.
func TestChildProcess(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("run by TestProcesses")
	}
	id := latch.GrantID(os.Getenv("LATCH_SQLITE_TEST_GRANT"))
	rounds, err := strconv.Atoi(os.Getenv("LATCH_SQLITE_TEST_ROUNDS"))
	if err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, path, sqlite.Options{})
	for range rounds {
		for {
			g, err := s.Grant(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			g.Attempts++
			_, err = s.UpdateGrant(t.Context(), g, "")
			if err == nil {
				break
			}
			if latch.ErrorCode(err) != latch.ECONFLICT {
				t.Fatal(err)
			}
		}
		if _, err := s.CreateGrant(t.Context(), storetest.NewGrant(time.Now()), ""); err != nil {
			t.Fatal(err)
		}
	}
}

// runChildren runs the test named test in procs copies of this test
// binary, as separate processes sharing a database, and waits for them.
func runChildren(t *testing.T, procs int, test string, env ...string) {
	t.Helper()
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d: %v", i, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}
