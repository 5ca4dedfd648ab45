package revoker_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/mock"
	"github.com/latchdev/latch/revoker"
)

var start = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// schedule is an in-memory revoker.Schedule.
type schedule struct {
	mu      sync.Mutex
	due     map[latch.GrantID]time.Time
	changed chan struct{}
}

func newSchedule(due map[latch.GrantID]time.Time) *schedule {
	return &schedule{due: due, changed: make(chan struct{})}
}

func (s *schedule) Due(_ context.Context, now time.Time, limit int) ([]latch.GrantID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []latch.GrantID
	for id, at := range s.due {
		if !at.After(now) && len(ids) < limit {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (s *schedule) NextDue(context.Context) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	for _, at := range s.due {
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next, !next.IsZero(), nil
}

func (s *schedule) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *schedule) set(id latch.GrantID, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at.IsZero() {
		delete(s.due, id)
	} else {
		s.due[id] = at
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

type expirerFunc func(context.Context, latch.GrantID) error

func (f expirerFunc) Expire(ctx context.Context, id latch.GrantID) error { return f(ctx, id) }

type sweeperFunc func(context.Context) error

func (f sweeperFunc) Sweep(ctx context.Context) error { return f(ctx) }

func run(t *testing.T, r *revoker.Revoker) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil after cancel", err)
		}
	})
}

func receive[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(5 * time.Second): // a deadline for a hung test, not a sleep
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func none[T any](t *testing.T, c <-chan T, what string) {
	t.Helper()
	select {
	case v := <-c:
		t.Fatalf("unexpected %s: %v", what, v)
	default:
	}
}

func logger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

func TestExpiresAtExpiryNotBefore(t *testing.T) {
	clock := mock.NewClock(start)
	s := newSchedule(map[latch.GrantID]time.Time{"g1": start.Add(15 * time.Minute), "g2": start.Add(20 * time.Minute)})
	expired := make(chan latch.GrantID, 4)
	r := revoker.New(s, expirerFunc(func(_ context.Context, id latch.GrantID) error {
		s.set(id, time.Time{})
		expired <- id
		return nil
	}), nil, revoker.Options{Clock: clock, Logger: logger(t), Recheck: time.Hour})
	run(t, r)

	waitForAlarm(t, clock)
	clock.Advance(15*time.Minute - time.Second)
	waitForAlarm(t, clock)
	none(t, expired, "expiry a second early")
	clock.Advance(time.Second)
	if id := receive(t, expired, "g1 expiry"); id != "g1" {
		t.Fatalf("expired %s first, want g1", id)
	}
	waitForAlarm(t, clock)
	none(t, expired, "g2 expiry five minutes early")
	clock.Advance(5 * time.Minute)
	if id := receive(t, expired, "g2 expiry"); id != "g2" {
		t.Fatalf("expired %s, want g2", id)
	}
}

// waitForAlarm waits until the revoker is parked on an alarm, i.e. it has
// finished its pass at the current time.
func waitForAlarm(t *testing.T, clock *mock.Clock) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for clock.Pending() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("revoker never waited on an alarm")
		}
		time.Sleep(time.Millisecond) // polling for a goroutine to park, not waiting on the clock
	}
}

func TestNewGrantWakesRevoker(t *testing.T) {
	clock := mock.NewClock(start)
	s := newSchedule(map[latch.GrantID]time.Time{})
	expired := make(chan latch.GrantID, 1)
	r := revoker.New(s, expirerFunc(func(_ context.Context, id latch.GrantID) error {
		s.set(id, time.Time{})
		expired <- id
		return nil
	}), nil, revoker.Options{Clock: clock, Recheck: time.Hour})
	run(t, r)
	waitForAlarm(t, clock)
	s.set("g1", start.Add(time.Minute)) // a grant made after the revoker started
	waitForAlarm(t, clock)
	clock.Advance(time.Minute)
	receive(t, expired, "expiry of a grant added while running")
}

func TestFailedExpiryIsRetried(t *testing.T) {
	clock := mock.NewClock(start)
	s := newSchedule(map[latch.GrantID]time.Time{"g1": start})
	attempts := make(chan int, 10)
	n := 0
	r := revoker.New(s, expirerFunc(func(_ context.Context, id latch.GrantID) error {
		n++
		attempts <- n
		if n < 3 {
			s.set(id, clock.Now().Add(time.Duration(n)*time.Minute)) // the expirer's backoff
			return errors.New("throttled")
		}
		s.set(id, time.Time{})
		return nil
	}), nil, revoker.Options{Clock: clock, Recheck: time.Hour})
	run(t, r)
	receive(t, attempts, "first attempt")
	waitForAlarm(t, clock)
	none(t, attempts, "retry before its backoff")
	clock.Advance(time.Minute)
	receive(t, attempts, "second attempt")
	waitForAlarm(t, clock)
	clock.Advance(2 * time.Minute)
	if got := receive(t, attempts, "third attempt"); got != 3 {
		t.Fatalf("attempt %d, want 3", got)
	}
}

func TestSweepsAtStartAndEveryInterval(t *testing.T) {
	clock := mock.NewClock(start)
	s := newSchedule(map[latch.GrantID]time.Time{})
	sweeps := make(chan time.Time, 10)
	r := revoker.New(s, expirerFunc(func(context.Context, latch.GrantID) error { return nil }),
		sweeperFunc(func(context.Context) error { sweeps <- clock.Now(); return nil }),
		revoker.Options{Clock: clock, SweepInterval: time.Minute, Recheck: time.Hour})
	run(t, r)
	if at := receive(t, sweeps, "start-up sweep"); !at.Equal(start) {
		t.Fatalf("first sweep at %v, want at start", at)
	}
	waitForAlarm(t, clock)
	clock.Advance(59 * time.Second)
	waitForAlarm(t, clock)
	none(t, sweeps, "sweep before the interval")
	clock.Advance(time.Second)
	if at := receive(t, sweeps, "second sweep"); !at.Equal(start.Add(time.Minute)) {
		t.Fatalf("second sweep at %v, want one interval after start", at)
	}
}

func TestFailedSweepBacksOff(t *testing.T) {
	clock := mock.NewClock(start)
	s := newSchedule(map[latch.GrantID]time.Time{})
	sweeps := make(chan time.Time, 10)
	fail := true
	r := revoker.New(s, expirerFunc(func(context.Context, latch.GrantID) error { return nil }),
		sweeperFunc(func(context.Context) error {
			sweeps <- clock.Now()
			if fail {
				fail = false
				return errors.New("RequestLimitExceeded")
			}
			return nil
		}),
		revoker.Options{Clock: clock, SweepInterval: 10 * time.Minute, RetryDelay: 10 * time.Second, Recheck: time.Hour})
	run(t, r)
	receive(t, sweeps, "first sweep")
	waitForAlarm(t, clock)
	clock.Advance(15 * time.Second) // retry is 10s jittered to at most 12.5s
	if at := receive(t, sweeps, "retried sweep"); at.Sub(start) > 15*time.Second {
		t.Fatalf("retry at +%v", at.Sub(start))
	}
}

// A grant due while a sweep is still running (say 10,000 rules, or EC2
// throttling it) is expired on time: the sweep is not on the timer's path.
func TestExpiryDoesNotWaitForSweep(t *testing.T) {
	clock := mock.NewClock(start)
	s := newSchedule(map[latch.GrantID]time.Time{"g1": start.Add(time.Minute)})
	expired := make(chan time.Time, 1)
	sweeping, release := make(chan struct{}, 1), make(chan struct{})
	r := revoker.New(s, expirerFunc(func(_ context.Context, id latch.GrantID) error {
		s.set(id, time.Time{})
		expired <- clock.Now()
		return nil
	}), sweeperFunc(func(ctx context.Context) error {
		select {
		case sweeping <- struct{}{}:
		default:
		}
		select { // a sweep that lasts until the test releases it
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}), revoker.Options{Clock: clock, SweepInterval: time.Hour, Recheck: time.Hour})
	run(t, r)
	t.Cleanup(func() { close(release) })

	receive(t, sweeping, "start-up sweep")
	waitForAlarm(t, clock) // the timer, parked until g1 is due
	clock.Advance(time.Minute)
	if at := receive(t, expired, "g1 expiry during the sweep"); !at.Equal(start.Add(time.Minute)) {
		t.Fatalf("g1 expired at %v, want at its expiry", at)
	}
}
