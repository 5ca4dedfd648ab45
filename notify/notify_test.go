package notify_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/mock"
	"github.com/latchdev/latch/notify"
	"github.com/latchdev/latch/sqlite"
	"github.com/latchdev/latch/storetest"
)

var start = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

var (
	pager = latch.Route{Sink: latch.SinkWebhook, To: "pager"}
	teams = latch.Route{Sink: latch.SinkWebhook, To: "teams"}
)

// fakeSink records deliveries, failing those its fail function says.
type fakeSink struct {
	mu   sync.Mutex
	got  []delivery
	fail func(to latch.Route, e latch.Event, n int) error // n: earlier attempts at this route and event
}

type delivery struct {
	to latch.Route
	id latch.EventID
}

func (s *fakeSink) Deliver(_ context.Context, to latch.Route, e latch.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, d := range s.got {
		if d.to == to && d.id == e.ID {
			n++
		}
	}
	s.got = append(s.got, delivery{to, e.ID})
	if s.fail != nil {
		return s.fail(to, e, n)
	}
	return nil
}

func (s *fakeSink) deliveries() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

type fixture struct {
	store  *sqlite.Store
	clock  *mock.Clock
	sink   *fakeSink
	worker *notify.Worker
}

func newFixture(t testing.TB, routes ...latch.Route) *fixture {
	t.Helper()
	clock := mock.NewClock(start)
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "latch.db"), sqlite.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	sink := &fakeSink{}
	w := notify.New(store, notify.RouterFunc(func(latch.Event) []latch.Route { return routes }),
		map[string]latch.Sink{latch.SinkWebhook: sink},
		notify.Options{Clock: clock, Jitter: func() float64 { return 0.5 }, BaseDelay: 10 * time.Second, MaxAttempts: 4,
			Logger: slog.New(slog.DiscardHandler)})
	return &fixture{store: store, clock: clock, sink: sink, worker: w}
}

// newWorker is f's worker delivering to sink.
func newWorker(f *fixture, sink latch.Sink) *notify.Worker {
	return notify.New(f.store, notify.RouterFunc(func(latch.Event) []latch.Route { return []latch.Route{pager} }),
		map[string]latch.Sink{latch.SinkWebhook: sink}, notify.Options{Clock: f.clock, Logger: slog.New(slog.DiscardHandler)})
}

// pending reports whether any event is due.
func (f *fixture) pending(t testing.TB) bool {
	t.Helper()
	at, ok, err := f.store.NextEvent(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return ok && !at.After(f.clock.Now())
}

func (f *fixture) enqueue(t testing.TB) latch.Event {
	t.Helper()
	e := latch.Event{ID: latch.NewEventID(), Kind: latch.EventRuleOutOfBand, At: f.clock.Now(), RuleID: "sgr-1"}
	if err := f.store.EnqueueEvent(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	return e
}

func (f *fixture) item(t *testing.T, id latch.EventID) latch.OutboxItem {
	t.Helper()
	it, err := f.store.OutboxEvent(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func TestWorker_DeliversToEveryRouteOnce(t *testing.T) {
	f := newFixture(t, pager, teams)
	e := f.enqueue(t)
	f.worker.Pass(t.Context())
	f.clock.Advance(time.Hour)
	f.worker.Pass(t.Context())
	want := []delivery{{pager, e.ID}, {teams, e.ID}}
	if got := f.sink.deliveries(); !slices.Equal(got, want) {
		t.Fatalf("deliveries = %v, want %v", got, want)
	}
	if it := f.item(t, e.ID); it.State != latch.EventDelivered || it.Attempts != 0 {
		t.Errorf("after delivery: %+v", it)
	}
}

// A route that fails is retried with the same event ID after a doubling,
// jittered delay; the route that took the event is not sent it again.
func TestWorker_RetriesWithBackoff(t *testing.T) {
	f := newFixture(t, pager, teams)
	f.sink.fail = func(to latch.Route, _ latch.Event, n int) error {
		if to == teams && n < 2 {
			return errors.New("500 Internal Server Error")
		}
		return nil
	}
	e := f.enqueue(t)
	// Jitter 0.5 gives 3/4 of each delay: 7.5s, then 15s.
	for i, wait := range []time.Duration{7500 * time.Millisecond, 15 * time.Second} {
		next := f.worker.Pass(t.Context())
		it := f.item(t, e.ID)
		if it.State != latch.EventPending || it.Attempts != i+1 || !it.DueAt.Equal(f.clock.Now().Add(wait)) {
			t.Fatalf("after failure %d: %+v, want due in %v", i+1, it, wait)
		}
		if !next.Equal(it.DueAt) {
			t.Errorf("next pass at %v, want at the retry %v", next, it.DueAt)
		}
		f.clock.Advance(wait - time.Second)
		f.worker.Pass(t.Context()) // too early: nothing is sent
		f.clock.Advance(time.Second)
	}
	f.worker.Pass(t.Context())
	want := []delivery{{pager, e.ID}, {teams, e.ID}, {teams, e.ID}, {teams, e.ID}}
	if got := f.sink.deliveries(); !slices.Equal(got, want) {
		t.Fatalf("deliveries = %v, want %v", got, want)
	}
	if it := f.item(t, e.ID); it.State != latch.EventDelivered {
		t.Errorf("after the third attempt: %+v", it)
	}
}

// A destination's Retry-After (Slack's 429) is honoured when it asks for
// longer than the backoff; a shorter one leaves the backoff as it is.
func TestWorker_HonoursRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		after, want time.Duration
	}{{90 * time.Second, 90 * time.Second}, {time.Second, 7500 * time.Millisecond}} {
		f := newFixture(t, pager)
		f.sink.fail = func(_ latch.Route, _ latch.Event, n int) error {
			if n == 0 {
				return &latch.RetryAfterError{After: tt.after, Err: errors.New("429 Too Many Requests")}
			}
			return nil
		}
		e := f.enqueue(t)
		f.worker.Pass(t.Context())
		if it := f.item(t, e.ID); it.State != latch.EventPending || !it.DueAt.Equal(f.clock.Now().Add(tt.want)) {
			t.Fatalf("Retry-After %v: %+v, want due in %v", tt.after, it, tt.want)
		}
		f.clock.Advance(tt.want - time.Second)
		f.worker.Pass(t.Context())
		if n := len(f.sink.deliveries()); n != 1 {
			t.Fatalf("Retry-After %v: %d attempts before it was due, want 1", tt.after, n)
		}
		f.clock.Advance(time.Second)
		f.worker.Pass(t.Context())
		if it := f.item(t, e.ID); it.State != latch.EventDelivered {
			t.Errorf("Retry-After %v, after the wait: %+v", tt.after, it)
		}
	}
}

// Settled events are pruned once past the retention, at most hourly;
// pending ones never are.
func TestWorker_PrunesSettledEvents(t *testing.T) {
	f := newFixture(t, pager)
	f.worker = notify.New(f.store, notify.RouterFunc(func(latch.Event) []latch.Route { return []latch.Route{pager} }),
		map[string]latch.Sink{latch.SinkWebhook: f.sink}, notify.Options{Clock: f.clock, Retention: 24 * time.Hour, Logger: slog.New(slog.DiscardHandler)})
	delivered := f.enqueue(t)
	f.worker.Pass(t.Context())
	if it := f.item(t, delivered.ID); it.State != latch.EventDelivered {
		t.Fatalf("not delivered: %+v", it)
	}
	f.sink.fail = func(latch.Route, latch.Event, int) error { return errors.New("500") }
	f.clock.Advance(time.Minute) // the delivered event's settling is now in the past
	waiting := f.enqueue(t)
	f.clock.Advance(25 * time.Hour)
	f.worker.Pass(t.Context())
	if _, err := f.store.OutboxEvent(t.Context(), delivered.ID); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("delivered event a day later: %v, want pruned", err)
	}
	if it := f.item(t, waiting.ID); it.State != latch.EventPending {
		t.Errorf("pending event: %+v, want kept", it)
	}
}

func TestWorker_GivesUpAfterMaxAttempts(t *testing.T) {
	f := newFixture(t, pager)
	f.sink.fail = func(latch.Route, latch.Event, int) error { return errors.New("connection refused") }
	e := f.enqueue(t)
	for range 4 {
		f.worker.Pass(t.Context())
		f.clock.Advance(notify.DefaultMaxDelay)
	}
	f.worker.Pass(t.Context())
	if n := len(f.sink.deliveries()); n != 4 {
		t.Errorf("%d attempts, want MaxAttempts = 4", n)
	}
	if it := f.item(t, e.ID); it.State != latch.EventDead || it.Attempts != 4 || it.LastError != "webhook:pager: connection refused" {
		t.Errorf("after giving up: %+v", it)
	}
}

func TestWorker_UnknownSinkIsDeadAtOnce(t *testing.T) {
	f := newFixture(t, latch.Route{Sink: latch.SinkSlack, To: "#ops"})
	e := f.enqueue(t)
	f.worker.Pass(t.Context())
	if it := f.item(t, e.ID); it.State != latch.EventDead || it.Attempts != 1 {
		t.Errorf("an event for an unconfigured sink: %+v, want dead after one attempt", it)
	}
}

func TestWorker_BackoffIsCapped(t *testing.T) {
	w := notify.New(nil, nil, nil, notify.Options{Jitter: func() float64 { return 0.999999 }})
	for _, n := range []int{1, 5, 10, 50, 1000} {
		if d := w.Backoff(n); d > notify.DefaultMaxDelay || d < notify.DefaultBaseDelay/2 {
			t.Errorf("Backoff(%d) = %v, want within [%v, %v]", n, d, notify.DefaultBaseDelay/2, notify.DefaultMaxDelay)
		}
	}
}

// A sink that hangs holds up neither the store nor the changes that write
// events: delivery is apart from them.
func TestWorker_HungSinkDoesNotBlockRequests(t *testing.T) {
	f := newFixture(t, pager)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	f.sink.fail = func(latch.Route, latch.Event, int) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- f.worker.Run(ctx) }()
	defer func() { close(release); cancel(); <-done }()

	f.enqueue(t)
	<-entered // the worker is stuck in the sink
	r, err := f.store.CreateRequest(t.Context(), storetest.NewRequest(start))
	if err != nil || r.State != latch.RequestPending {
		t.Fatalf("CreateRequest while a sink hangs: %v", err)
	}
}

// Run wakes for an event written through the store at once, and for a
// retry when the clock reaches it.
func TestWorker_RunWakesOnChangeAndAlarm(t *testing.T) {
	f := newFixture(t, pager)
	delivered := make(chan latch.EventID, 4)
	f.sink.fail = func(_ latch.Route, e latch.Event, n int) error {
		delivered <- e.ID
		if n == 0 {
			return errors.New("503")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- f.worker.Run(ctx) }()
	e := f.enqueue(t)
	wait := func(what string) {
		t.Helper()
		select {
		case id := <-delivered:
			if id != e.ID {
				t.Fatalf("%s: delivered %s, want %s", what, id, e.ID)
			}
		case <-time.After(10 * time.Second): // a bound for a hung test, not a sleep
			t.Fatalf("%s: no delivery", what)
		}
	}
	wait("first attempt")
	for f.item(t, e.ID).Attempts != 1 { // settled by another goroutine
		runtime.Gosched()
	}
	f.clock.Advance(time.Minute)
	wait("retry")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}
