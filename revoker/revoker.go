// Package revoker decides when grants are revoked.
//
// A Revoker keeps one alarm, set for the earliest due grant (its expiry, or
// its next retry after a failed revoke), and re-reads the store whenever it
// reports a change or Recheck passes, which catches grants written by other
// processes. Independently, in a goroutine of its own, it sweeps every
// SweepInterval: the sweep finds expired rules in AWS from their tags
// alone, so revocation survives a lost store. It sweeps once at start, which
// is the reconcile after a crash. A sweep never holds up an expiry.
//
// Revoking is the Expirer's job (the broker's); the revoker only decides
// when. Nothing here sleeps: every wait is an alarm on the injected clock.
package revoker

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/latchdev/latch"
)

// Schedule is what the revoker needs from the store.
type Schedule interface {
	Due(ctx context.Context, now time.Time, limit int) ([]latch.GrantID, error)
	NextDue(ctx context.Context) (at time.Time, ok bool, err error)
	Changed() <-chan struct{}
}

// Expirer revokes one due grant. It must be idempotent, and on failure it
// must push the grant's next attempt back so that Due skips it until then.
type Expirer interface {
	Expire(ctx context.Context, id latch.GrantID) error
}

// BatchExpirer is an Expirer that also revokes many due grants at once,
// in batches (the broker: one RevokeSecurityGroupIngress and one store
// transaction per group and batch). The same rules hold for each grant:
// idempotent, and a failure pushes that grant's next attempt back. pass
// hands it up to BatchSize due grants in one call.
type BatchExpirer interface {
	Expirer
	ExpireMany(ctx context.Context, ids []latch.GrantID) error
}

// Sweeper revokes every expired rule found in AWS.
type Sweeper interface {
	Sweep(ctx context.Context) error
}

// Defaults for Options.
const (
	DefaultSweepInterval = 60 * time.Second
	DefaultRecheck       = 10 * time.Second
	DefaultRetryDelay    = 5 * time.Second
	DefaultConcurrency   = 8
	// DefaultBatchSize is how many due grants one pass hands a
	// BatchExpirer: read in one query, revoked in per-group batches of up
	// to latch.MaxRevokeBatch. A burst of 10,000 over 200 groups is one
	// pass of 200 Revoke calls; in passes of 2,000 it was 1,000 calls (10
	// per group), and inside EC2's throttle (about 5 Revoke calls a
	// second) calls, not the store, are what a burst costs.
	DefaultBatchSize = 10000
	batchSize        = 100 // due grants per pass for a plain Expirer
)

// Options are the revoker's optional settings.
type Options struct {
	Clock         latch.Clock   // nil means latch.SystemClock
	Logger        *slog.Logger  // nil discards logs
	SweepInterval time.Duration // 0 means DefaultSweepInterval
	Recheck       time.Duration // longest wait without looking at the store; 0 means DefaultRecheck
	RetryDelay    time.Duration // wait after a store error; 0 means DefaultRetryDelay
	Concurrency   int           // grants expired at once; 0 means DefaultConcurrency
	BatchSize     int           // due grants per pass for a BatchExpirer; 0 means DefaultBatchSize
}

// Revoker runs expiry and sweeps. Create it with New; Run it once.
type Revoker struct {
	schedule Schedule
	expirer  Expirer
	sweeper  Sweeper
	clock    latch.Clock
	log      *slog.Logger
	opts     Options
}

// New returns a revoker. sweeper may be nil to disable sweeping.
func New(s Schedule, e Expirer, sw Sweeper, opts Options) *Revoker {
	if opts.Clock == nil {
		opts.Clock = latch.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = DefaultSweepInterval
	}
	if opts.Recheck == 0 {
		opts.Recheck = DefaultRecheck
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = DefaultRetryDelay
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	return &Revoker{schedule: s, expirer: e, sweeper: sw, clock: opts.Clock, log: opts.Logger, opts: opts}
}

// Run revokes grants as they fall due and sweeps on schedule until ctx is
// done, then returns nil. Store and AWS errors are logged and retried; they
// never end the loop. Sweeps run in their own goroutine, one at a time, so
// that a long sweep (thousands of expired rules) never delays an expiry.
func (r *Revoker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if r.sweeper != nil {
		wg.Go(func() { r.sweepLoop(ctx) })
	}
	for {
		changed := r.schedule.Changed() // fetched before the pass, so no change slips by
		next := r.pass(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-r.clock.Alarm(next):
		case <-changed:
		}
	}
}

// sweepLoop sweeps at once and then whenever the last sweep says, until
// ctx is done.
func (r *Revoker) sweepLoop(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		var next time.Time
		next, failures = r.sweep(ctx, r.clock.Now(), failures)
		select {
		case <-ctx.Done():
			return
		case <-r.clock.Alarm(next):
		}
	}
}

// sweep runs one sweep and returns when the next is due: one interval on,
// or sooner, with jittered backoff, after a failure (throttling, 5xx).
func (r *Revoker) sweep(ctx context.Context, now time.Time, failures int) (time.Time, int) {
	err := r.sweeper.Sweep(ctx)
	if err == nil {
		return now.Add(r.opts.SweepInterval), 0
	}
	if ctx.Err() != nil {
		return now, failures
	}
	failures++
	wait := min(r.opts.RetryDelay<<min(failures-1, 10), r.opts.SweepInterval)
	wait = time.Duration(float64(wait) * (0.75 + rand.Float64()/2))
	r.log.WarnContext(ctx, "sweep failed", "err", err, "failures", failures, "retry_in", wait.String())
	return now.Add(wait), failures
}

// pass expires every due grant and returns when to look again.
func (r *Revoker) pass(ctx context.Context) time.Time {
	now := r.clock.Now()
	limit := batchSize
	batch, batched := r.expirer.(BatchExpirer)
	if batched {
		limit = r.opts.BatchSize
	}
	due, err := r.schedule.Due(ctx, now, limit)
	if err != nil {
		r.logError(ctx, "list due grants", err)
		return now.Add(r.opts.RetryDelay)
	}
	if batched && len(due) > 0 {
		err := batch.ExpireMany(ctx, due)
		if errors.Is(err, latch.ErrNotLeading) {
			// Nothing was done or recorded: wait, rather than ask again
			// at once, until the elector ends the term.
			return now.Add(r.opts.RetryDelay)
		}
		if err != nil && ctx.Err() == nil {
			// Each failed grant's next attempt was pushed back; the
			// others ended.
			r.log.DebugContext(ctx, "expire grants", "grants", len(due), "err", err)
		}
	} else {
		r.expireAll(ctx, due)
	}
	if len(due) == limit {
		return now // more are due
	}
	next, ok, err := r.schedule.NextDue(ctx)
	switch {
	case err != nil:
		r.logError(ctx, "find next due grant", err)
		return now.Add(r.opts.RetryDelay)
	case !ok || next.After(now.Add(r.opts.Recheck)):
		return now.Add(r.opts.Recheck)
	case !next.After(now) && len(due) > 0:
		// A grant we just tried is still due: its failure was not recorded
		// (the store is failing too). Back off rather than spin.
		return now.Add(r.opts.RetryDelay)
	default:
		return next
	}
}

// expireAll expires ids with bounded concurrency and waits for all of them.
func (r *Revoker) expireAll(ctx context.Context, ids []latch.GrantID) {
	sem := make(chan struct{}, r.opts.Concurrency)
	var wg sync.WaitGroup
	for _, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := r.expirer.Expire(ctx, id); err != nil && ctx.Err() == nil {
				// The expirer recorded the failure and pushed this grant's
				// next attempt back; the others still go.
				r.log.DebugContext(ctx, "expire grant", "grant_id", id, "err", err)
			}
		})
	}
	wg.Wait()
}

// logError logs a store failure, unless it is only the shutdown.
func (r *Revoker) logError(ctx context.Context, msg string, err error) {
	if ctx.Err() == nil {
		r.log.ErrorContext(ctx, msg, "err", err)
	}
}
