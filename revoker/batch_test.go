package revoker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/mock"
	"github.com/latchdev/latch/revoker"
)

// batchExpirer records the batches it is given and ends their grants in
// the schedule; fail, if set, decides a batch's outcome.
type batchExpirer struct {
	s       *schedule
	clock   *mock.Clock
	mu      sync.Mutex
	batches []int
	singles int
	endedAt map[latch.GrantID]time.Time
	fail    func(call int) bool
}

func (e *batchExpirer) Expire(context.Context, latch.GrantID) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.singles++
	return nil
}

func (e *batchExpirer) ExpireMany(_ context.Context, ids []latch.GrantID) error {
	e.mu.Lock()
	e.batches = append(e.batches, len(ids))
	call := len(e.batches)
	e.mu.Unlock()
	if e.fail != nil && e.fail(call) {
		for _, id := range ids {
			e.s.set(id, e.clock.Now().Add(time.Minute)) // the expirer's backoff
		}
		return errors.New("throttled")
	}
	now := e.clock.Now()
	e.mu.Lock()
	for _, id := range ids {
		e.endedAt[id] = now
	}
	e.mu.Unlock()
	for _, id := range ids {
		e.s.set(id, time.Time{})
	}
	return nil
}

func (e *batchExpirer) ended() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.endedAt)
}

// A burst of 10,000 grants due in the same second goes to ExpireMany in
// batches of BatchSize, at that second (no clock time passes: the lag is
// the expirer's work alone), never one by one.
func TestBurstGoesToExpireManyInBatches(t *testing.T) {
	const n = 10000
	clock := mock.NewClock(start)
	due := map[latch.GrantID]time.Time{}
	at := start.Add(time.Minute)
	for i := range n {
		due[latch.GrantID(fmt.Sprintf("g-%016x", i))] = at
	}
	s := newSchedule(due)
	e := &batchExpirer{s: s, clock: clock, endedAt: map[latch.GrantID]time.Time{}}
	run(t, revoker.New(s, e, nil, revoker.Options{Clock: clock, Logger: logger(t), Recheck: time.Hour}))

	waitForAlarm(t, clock)
	if e.ended() != 0 {
		t.Fatal("expired before due")
	}
	clock.Advance(time.Minute)
	deadline := time.Now().Add(10 * time.Second) // a bound for a hung test
	for e.ended() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d expired", e.ended(), n)
		}
		time.Sleep(time.Millisecond) // polling for the revoker's goroutine, not the clock
	}
	waitForAlarm(t, clock)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.singles != 0 {
		t.Errorf("%d grants expired one by one, want all in batches", e.singles)
	}
	want := n / revoker.DefaultBatchSize
	if len(e.batches) != want {
		t.Errorf("batches %v, want %d of %d", e.batches, want, revoker.DefaultBatchSize)
	}
	for _, b := range e.batches {
		if b > revoker.DefaultBatchSize {
			t.Errorf("a batch of %d, more than %d", b, revoker.DefaultBatchSize)
		}
	}
	for id, ended := range e.endedAt {
		if !ended.Equal(at) {
			t.Fatalf("grant %s ended at %v, want at its expiry %v", id, ended, at)
		}
	}
}

// A failed batch is tried again when its grants' next attempt comes, not
// before, and not in a busy loop.
func TestFailedBatchIsRetriedAtNextAttempt(t *testing.T) {
	clock := mock.NewClock(start)
	s := newSchedule(map[latch.GrantID]time.Time{"g1": start, "g2": start})
	e := &batchExpirer{s: s, clock: clock, endedAt: map[latch.GrantID]time.Time{}, fail: func(call int) bool { return call == 1 }}
	run(t, revoker.New(s, e, nil, revoker.Options{Clock: clock, Logger: logger(t), Recheck: time.Hour}))
	waitForAlarm(t, clock)
	e.mu.Lock()
	calls := len(e.batches)
	e.mu.Unlock()
	if calls != 1 || e.ended() != 0 {
		t.Fatalf("%d calls, %d ended before the backoff passed; want 1, 0", calls, e.ended())
	}
	clock.Advance(time.Minute)
	deadline := time.Now().Add(5 * time.Second)
	for e.ended() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("not retried after its backoff")
		}
		time.Sleep(time.Millisecond)
	}
}

// notLeading refuses every batch as a lapsed leader's fence does: nothing
// done, nothing recorded.
type notLeading struct {
	mu    sync.Mutex
	calls int
}

func (n *notLeading) Expire(context.Context, latch.GrantID) error { return latch.ErrNotLeading }

func (n *notLeading) ExpireMany(context.Context, []latch.GrantID) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls++
	return fmt.Errorf("fence: %w", latch.ErrNotLeading)
}

// A full page of due grants that the fence refuses (this process lost the
// lease and its elector has yet to end the term) is not asked for again
// at once: the revoker waits RetryDelay on its clock instead of spinning
// on Due and the fence's check.
func TestRefusedBatchWaitsInsteadOfSpinning(t *testing.T) {
	clock := mock.NewClock(start)
	due := map[latch.GrantID]time.Time{}
	for i := range 10 {
		due[latch.GrantID(fmt.Sprintf("g-%016x", i))] = start
	}
	x := &notLeading{}
	r := revoker.New(newSchedule(due), x, nil, revoker.Options{Clock: clock, BatchSize: 10, RetryDelay: 5 * time.Second})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for x.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // a spinning revoker would call thousands of times meanwhile
	if n := x.count(); n != 1 {
		t.Errorf("%d refused passes before the clock moved; want 1", n)
	}
	clock.Advance(5 * time.Second)
	for x.count() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := x.count(); n != 2 {
		t.Errorf("%d refused passes after RetryDelay; want 2", n)
	}
	cancel()
	<-done
}

func (n *notLeading) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls
}
