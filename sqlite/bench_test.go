package sqlite_test

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/sqlite"
	"github.com/latchdev/latch/storetest"
)

// benchGrants is how many grants the read benchmarks run against.
const benchGrants = 10_000

// mustFill records n grants around now: a quarter ended, a quarter ending
// with retries spread over the next hours, and half active with expiries
// spread over the next week, except for the first few dozen, which are due.
func mustFill(b *testing.B, s *sqlite.Store, now time.Time, n int) []latch.Grant {
	b.Helper()
	gs := make([]latch.Grant, n)
	for i := range gs {
		g := storetest.NewGrant(now.Add(-time.Hour))
		switch i % 4 {
		case 0:
			g.State, g.EndedAt = latch.StateRevoked, now.Add(-time.Minute)
		case 1:
			g.State, g.EndAs, g.NextAttempt = latch.StateRevoking, latch.StateExpired, now.Add(time.Duration(i)*time.Second)
		default:
			g.ExpiresAt = now.Add(time.Duration(i-100) * time.Minute) // i < 100 is due
		}
		gs[i] = g
	}
	if err := s.CreateGrantsInOneTx(b.Context(), gs); err != nil {
		b.Fatal(err)
	}
	return gs
}

// openBench opens a store in a fresh file, logging nowhere.
func openBench(b *testing.B) *sqlite.Store {
	return mustOpen(b, filepath.Join(b.TempDir(), "latch.db"), sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
}

func BenchmarkCreateGrant(b *testing.B) {
	s := openBench(b)
	now := time.Now()
	for b.Loop() {
		if _, err := s.CreateGrant(b.Context(), storetest.NewGrant(now), "requested"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpdateGrant(b *testing.B) {
	s := openBench(b)
	g, err := s.CreateGrant(b.Context(), storetest.NewGrant(time.Now()), "")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		g.Attempts++
		if g, err = s.UpdateGrant(b.Context(), g, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGrant(b *testing.B) {
	s := openBench(b)
	gs := mustFill(b, s, time.Now(), benchGrants)
	i := 0
	for b.Loop() {
		if _, err := s.Grant(b.Context(), gs[i%len(gs)].ID); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkDue(b *testing.B) {
	s := openBench(b)
	now := time.Now()
	mustFill(b, s, now, benchGrants)
	var due []latch.GrantID
	for b.Loop() {
		var err error
		if due, err = s.Due(b.Context(), now, 100); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(due)), "due/op")
}

func BenchmarkNextDue(b *testing.B) {
	s := openBench(b)
	mustFill(b, s, time.Now(), benchGrants)
	for b.Loop() {
		if _, _, err := s.NextDue(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGrantsByOpening(b *testing.B) {
	s := openBench(b)
	gs := mustFill(b, s, time.Now(), benchGrants)
	g := gs[0]
	g.ID, g.Ports = latch.NewGrantID(), latch.PortRange{From: 443, To: 443}
	if _, err := s.CreateGrant(b.Context(), g, ""); err != nil {
		b.Fatal(err)
	}
	o := g.Opening()
	for b.Loop() {
		if _, err := s.Grants(b.Context(), latch.GrantFilter{Opening: &o, States: []latch.GrantState{latch.StateActive}}); err != nil {
			b.Fatal(err)
		}
	}
}
