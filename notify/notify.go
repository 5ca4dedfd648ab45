// Package notify delivers the outbox's events to their sinks.
//
// A [Worker] claims due events with a lease, so that several server
// replicas never deliver one event at the same time, delivers each to the
// routes its [Router] names, and settles it: delivered, retried later with
// jittered exponential backoff, or given up (dead) after MaxAttempts.
// Delivery runs apart from the changes that cause events: the store writes
// an event in the change's transaction and returns, so a slow or broken
// sink never delays or fails a grant or a revoke.
//
// Delivery is at least once. A worker that dies mid-delivery loses its
// lease, and another (or itself, restarted) delivers again with the same
// event ID, which receivers use to deduplicate. Routes that took an event
// are recorded, and skipped when it is retried for another.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/latchdev/latch"
)

// Outbox is what the worker needs from the store.
type Outbox interface {
	ClaimEvents(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]latch.OutboxItem, error)
	SettleEvents(ctx context.Context, owner string, s []latch.Settlement) error
	NextEvent(ctx context.Context) (at time.Time, ok bool, err error)
	PruneEvents(ctx context.Context, before time.Time) (int, error)
	// Changed returns a channel closed after the next change through this
	// store value, such as a new event.
	Changed() <-chan struct{}
}

// Router names the routes an event goes to, by the policy in force when it
// is delivered. No routes means nothing to do: the event is settled as
// delivered.
type Router interface {
	Routes(e latch.Event) []latch.Route
}

// RouterFunc is a Router that is a function.
type RouterFunc func(e latch.Event) []latch.Route

// Routes calls f.
func (f RouterFunc) Routes(e latch.Event) []latch.Route { return f(e) }

// Defaults for Options.
const (
	DefaultLease          = time.Minute
	DefaultAttemptTimeout = 10 * time.Second
	DefaultMaxAttempts    = 12
	DefaultBaseDelay      = 10 * time.Second
	DefaultMaxDelay       = time.Hour
	DefaultBatch          = 16
	DefaultRecheck        = 30 * time.Second
	DefaultRetention      = 30 * 24 * time.Hour
	// ServerCoalesce is the Coalesce latch server runs with: a burst of
	// events costs two write transactions, not two an event.
	ServerCoalesce = 20 * time.Millisecond
	// pruneEvery is how often a worker prunes settled events.
	pruneEvery = time.Hour
)

// Options are a Worker's settings. The zero value is ready to use, but for
// Owner, which replicas sharing a database must set apart.
type Options struct {
	Owner  string        // names this worker's leases; "" means "latch"
	Clock  latch.Clock   // nil means latch.SystemClock
	Logger *slog.Logger  // nil discards
	Lease  time.Duration // how long a claim holds an event; 0 means DefaultLease
	// AttemptTimeout bounds one delivery to one route; 0 means
	// DefaultAttemptTimeout. Keep Lease above it times the most routes a
	// rule names, or a lease can run out mid-delivery.
	AttemptTimeout time.Duration
	MaxAttempts    int           // failed attempts before an event is dead; 0 means DefaultMaxAttempts
	BaseDelay      time.Duration // the first retry's delay, doubled each time; 0 means DefaultBaseDelay
	MaxDelay       time.Duration // the longest delay; 0 means DefaultMaxDelay
	Batch          int           // events claimed, and delivered in parallel, at once; 0 means DefaultBatch
	Recheck        time.Duration // longest wait with nothing due (other processes write events too); 0 means DefaultRecheck
	Retention      time.Duration // how long settled events are kept; 0 means DefaultRetention
	// Coalesce is how long Run waits after a new event before it claims,
	// so that a burst is claimed and settled in one batch: fewer write
	// transactions in the store, whose single writer grants and requests
	// share. It delays each notification by as much. 0 claims at once.
	Coalesce time.Duration
	// Jitter returns a number in [0, 1) that spreads retries; nil means
	// math/rand/v2.Float64.
	Jitter func() float64
}

// Worker delivers events. Run it once per process.
type Worker struct {
	outbox Outbox
	router Router
	sinks  map[string]latch.Sink
	opts   Options
	log    *slog.Logger
	pruned time.Time // when Pass last pruned; Pass is not called concurrently
}

// New returns a worker delivering from outbox to sinks, keyed by
// [latch.Route].Sink ("webhook", "slack").
func New(outbox Outbox, router Router, sinks map[string]latch.Sink, opts Options) *Worker {
	if opts.Owner == "" {
		opts.Owner = "latch"
	}
	if opts.Clock == nil {
		opts.Clock = latch.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Lease = or(opts.Lease, DefaultLease)
	opts.AttemptTimeout = or(opts.AttemptTimeout, DefaultAttemptTimeout)
	opts.MaxAttempts = or(opts.MaxAttempts, DefaultMaxAttempts)
	opts.BaseDelay = or(opts.BaseDelay, DefaultBaseDelay)
	opts.MaxDelay = or(opts.MaxDelay, DefaultMaxDelay)
	opts.Batch = or(opts.Batch, DefaultBatch)
	opts.Recheck = or(opts.Recheck, DefaultRecheck)
	opts.Retention = or(opts.Retention, DefaultRetention)
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	return &Worker{outbox: outbox, router: router, sinks: sinks, opts: opts, log: opts.Logger}
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Run delivers events as they fall due until ctx is done, then returns nil.
// Store and sink errors are logged and retried; they never end the loop.
func (w *Worker) Run(ctx context.Context) error {
	w.log.Info("notification worker started", "owner", w.opts.Owner)
	for {
		changed := w.outbox.Changed() // fetched before the pass, so no change slips by
		next := w.Pass(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-w.opts.Clock.Alarm(next):
		case <-changed:
			if w.opts.Coalesce > 0 {
				// A scheduling pause, not a time anything is due at: it
				// runs on the wall clock, so a test clock that stands
				// still does not hold deliveries.
				t := time.NewTimer(w.opts.Coalesce)
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-t.C:
				}
			}
		}
	}
}

// Pass claims and delivers one batch of due events, and returns when to
// look again.
func (w *Worker) Pass(ctx context.Context) time.Time {
	now := w.opts.Clock.Now()
	if now.Sub(w.pruned) >= pruneEvery {
		w.pruned = now
		if n, err := w.outbox.PruneEvents(ctx, now.Add(-w.opts.Retention)); err != nil {
			w.log.Error("prune settled events", "err", err)
		} else if n > 0 {
			w.log.Info("pruned settled events", "count", n, "settled_before", now.Add(-w.opts.Retention))
		}
	}
	items, err := w.outbox.ClaimEvents(ctx, w.opts.Owner, now, w.opts.Lease, w.opts.Batch)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Error("claim events", "err", err)
		}
		return now.Add(w.opts.Recheck)
	}
	// Delivered in parallel, settled together: one write transaction for
	// the batch, which the store's single writer shares with grants.
	settled := make([]*latch.Settlement, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Go(func() { settled[i] = w.deliver(ctx, it) })
	}
	wg.Wait()
	var batch []latch.Settlement
	for _, st := range settled {
		if st != nil {
			batch = append(batch, *st)
		}
	}
	if len(batch) > 0 {
		if err := w.outbox.SettleEvents(ctx, w.opts.Owner, batch); err != nil {
			w.log.Error("settle events", "err", err)
		}
	}
	if len(items) == w.opts.Batch {
		return now // more may be due
	}
	next, ok, err := w.outbox.NextEvent(ctx)
	switch {
	case err != nil:
		w.log.Error("find next event", "err", err)
		return now.Add(w.opts.Recheck)
	case !ok || next.After(now.Add(w.opts.Recheck)):
		return now.Add(w.opts.Recheck)
	}
	return next
}

// deliver sends it to the routes that have not taken it, and returns how
// it settles; nil when shutting down.
func (w *Worker) deliver(ctx context.Context, it latch.OutboxItem) *latch.Settlement {
	e := it.Event
	st := latch.Settlement{ID: e.ID, State: latch.EventDelivered}
	var retry, final []error
	var wait time.Duration // the longest Retry-After a destination asked for
	for _, r := range w.router.Routes(e) {
		if slices.Contains(it.Delivered, r) {
			continue
		}
		err := w.send(ctx, r, e)
		switch {
		case err == nil:
			st.Delivered = append(st.Delivered, r)
		case latch.ErrorCode(err) == latch.EINVALID:
			final = append(final, fmt.Errorf("%s: %w", r, err))
		default:
			retry = append(retry, fmt.Errorf("%s: %w", r, err))
			if ra, ok := errors.AsType[*latch.RetryAfterError](err); ok {
				wait = max(wait, ra.After)
			}
		}
	}
	if ctx.Err() != nil {
		return nil // shutting down: the lease runs out and the event is claimed again
	}
	attempts := it.Attempts
	if err := errors.Join(append(final, retry...)...); err != nil {
		st.Error = err.Error()
		attempts++
	}
	log := w.log.With("event_id", e.ID, "kind", e.Kind, "attempts", attempts)
	switch {
	case len(retry) > 0 && attempts < w.opts.MaxAttempts:
		st.State, st.RetryAt = latch.EventPending, w.opts.Clock.Now().Add(max(w.Backoff(attempts), wait))
		log.Warn("event delivery failed; will retry", "retry_at", st.RetryAt, "err", st.Error)
	case st.Error != "":
		st.State = latch.EventDead
		log.Error("event delivery given up", "err", st.Error)
	default:
		log.Debug("event delivered", "routes", len(st.Delivered))
	}
	return &st
}

// send delivers e to one route, in at most AttemptTimeout.
func (w *Worker) send(ctx context.Context, r latch.Route, e latch.Event) error {
	sink, ok := w.sinks[r.Sink]
	if !ok {
		return latch.Invalidf("notify", "no %s sink is configured", r.Sink)
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.AttemptTimeout)
	defer cancel()
	return sink.Deliver(ctx, r, e)
}

// Backoff is the delay before the retry that follows the given number of
// failed attempts: BaseDelay doubled per attempt, capped at MaxDelay, the
// upper half jittered so that replicas and events spread out.
func (w *Worker) Backoff(attempts int) time.Duration {
	d := w.opts.MaxDelay
	if attempts = max(attempts, 1); attempts <= 20 { // past 20 doublings, any sane cap has been reached
		d = min(w.opts.BaseDelay<<(attempts-1), w.opts.MaxDelay)
	}
	return d/2 + time.Duration(w.opts.Jitter()*float64(d/2))
}
