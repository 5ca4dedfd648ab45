// Package leader elects, of several processes sharing a store, the one that
// runs the revoker and the sweeps, and fences it: a process that has lost
// the lease, or cannot tell whether it still holds it, revokes nothing.
//
// The lease lasts TTL and is renewed every TTL/3. A leader that cannot
// renew stops leading at Until-Margin by its own clock, before any other
// process can take the lease at Until; every batch of revokes it makes
// first checks in the store that its term is still the current one (the
// fencing token), and runs under a deadline at Until-Margin, so that no
// call of a lapsed leader starts after another has taken over. Revoking is
// idempotent, so even a brief overlap (clocks further apart than Margin)
// would only repeat a revoke, never miss one.
package leader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/latchdev/latch"
)

// Defaults for Options.
const (
	DefaultName = "revoker"
	DefaultTTL  = 10 * time.Second
)

// Options are an Elector's settings.
type Options struct {
	Name   string        // the lease; "" means DefaultName
	Holder string        // this process, unique among those sharing the store; "" means host, pid and a random suffix
	TTL    time.Duration // how long a lease lasts unrenewed; 0 means DefaultTTL
	Margin time.Duration // how long before its lease ends a leader stops; 0 means TTL/5
	Clock  latch.Clock   // nil means latch.SystemClock
	Logger *slog.Logger  // nil discards logs
	// Observe, if set, is told each time this process starts or stops
	// leading, with the term's token (for metrics).
	Observe func(leading bool, token int64)
}

// Elector campaigns for a lease and runs the leader's work while it holds
// it. Create it with New.
type Elector struct {
	leases latch.Leases
	opts   Options

	mu    sync.Mutex
	lease latch.Lease // guarded by mu
	held  bool        // guarded by mu
}

// New returns an elector for the lease in leases.
func New(leases latch.Leases, opts Options) *Elector {
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if opts.Holder == "" {
		opts.Holder = defaultHolder()
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Margin <= 0 || opts.Margin >= opts.TTL/2 {
		opts.Margin = opts.TTL / 5
	}
	if opts.Clock == nil {
		opts.Clock = latch.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Elector{leases: leases, opts: opts}
}

func defaultHolder() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Holder is the name this elector campaigns under.
func (e *Elector) Holder() string { return e.opts.Holder }

// Leading returns the lease while this process leads.
func (e *Elector) Leading() (latch.Lease, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lease, e.held
}

func (e *Elector) set(l latch.Lease, held bool) {
	e.mu.Lock()
	changed := held != e.held
	e.lease, e.held = l, held
	e.mu.Unlock()
	if changed && e.opts.Observe != nil {
		e.opts.Observe(held, l.Token)
	}
}

// Run campaigns until ctx is done and, during each term it wins, runs
// lead with a context that ends with the term. It returns nil when ctx
// ends (releasing a lease it holds, so another process takes over at
// once), or lead's error if lead returns while ctx is live.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context) error) error {
	retry := e.opts.TTL / 3
	for ctx.Err() == nil {
		now := e.opts.Clock.Now()
		l, ok, err := e.acquire(ctx, now)
		switch {
		case err != nil && ctx.Err() == nil:
			e.opts.Logger.WarnContext(ctx, "campaign for the lease failed", "lease", e.opts.Name, "err", err)
		case !ok:
			e.opts.Logger.DebugContext(ctx, "another process leads", "lease", e.opts.Name, "leader", l.Holder, "until", l.Until)
		default:
			if err := e.term(ctx, l, lead); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-e.opts.Clock.Alarm(now.Add(retry)):
		}
	}
	return nil
}

// acquire takes or renews the lease, giving up when a renewal would be
// too late to matter.
func (e *Elector) acquire(ctx context.Context, now time.Time) (latch.Lease, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.TTL/3)
	defer cancel()
	return e.leases.AcquireLease(ctx, e.opts.Name, e.opts.Holder, now, now.Add(e.opts.TTL))
}

type renewal struct {
	lease latch.Lease
	ok    bool
	err   error
}

// term runs lead while l is renewed, and returns once lead has stopped.
func (e *Elector) term(ctx context.Context, l latch.Lease, lead func(ctx context.Context) error) error {
	log := e.opts.Logger.With("lease", l.Name, "holder", l.Holder, "token", l.Token)
	log.InfoContext(ctx, "leading: this process runs the revoker and the sweeps")
	e.set(l, true)
	lctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- lead(lctx) }()
	renewed := make(chan renewal, 1)
	renewing := false
	nextRenew := l.Until.Add(-e.opts.TTL * 2 / 3)
	end := func(why string, attrs ...any) error {
		e.set(l, false) // fence first: nothing more is revoked under this term
		stop()
		err := <-done
		log.WarnContext(ctx, "stopped leading: "+why, attrs...)
		if ctx.Err() == nil && err != nil {
			return err
		}
		return nil
	}
	for {
		fenceAt := l.Until.Add(-e.opts.Margin)
		var renewAt <-chan time.Time
		if !renewing {
			renewAt = e.opts.Clock.Alarm(nextRenew)
		}
		select {
		case <-ctx.Done():
			e.set(l, false)
			stop()
			<-done
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			if err := e.leases.ReleaseLease(rctx, l); err != nil {
				log.WarnContext(rctx, "release the lease", "err", err)
			}
			return nil
		case err := <-done:
			done <- err // end waits on it
			return end("the leader's work ended", "err", err)
		case <-renewAt:
			renewing = true
			go func() {
				nl, ok, err := e.acquire(ctx, e.opts.Clock.Now())
				renewed <- renewal{nl, ok, err}
			}()
		case r := <-renewed:
			renewing = false
			switch {
			case r.err != nil:
				nextRenew = e.opts.Clock.Now().Add(e.opts.TTL / 10)
				log.WarnContext(ctx, "could not renew the lease; will stop leading at the fence unless a renewal succeeds",
					"err", r.err, "fence_at", fenceAt.Format(time.RFC3339Nano))
			case !r.ok:
				return end("the lease passed to another process", "new_holder", r.lease.Holder, "new_token", r.lease.Token)
			default:
				l = r.lease
				nextRenew = l.Until.Add(-e.opts.TTL * 2 / 3)
				e.set(l, true)
			}
		case <-e.opts.Clock.Alarm(fenceAt):
			return end("the lease could not be renewed in time", "fence_at", fenceAt.Format(time.RFC3339Nano))
		}
	}
}

// Fence runs do if this process leads, under a context that ends at its
// lease's fence, after checking in the store that its term is still the
// current one. Otherwise it returns ECONFLICT and does nothing.
func (e *Elector) Fence(ctx context.Context, do func(ctx context.Context) error) error {
	fenceAt, err := e.check(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithDeadline(ctx, e.wall(fenceAt))
	defer cancel()
	return do(ctx)
}

// check returns the fence of the current term if this process leads,
// asking the store, and ECONFLICT if it does not.
func (e *Elector) check(ctx context.Context) (time.Time, error) {
	l, held := e.Leading()
	now := e.opts.Clock.Now()
	fenceAt := l.Until.Add(-e.opts.Margin)
	if !held || !now.Before(fenceAt) {
		return time.Time{}, fmt.Errorf("%w: %w", latch.ErrNotLeading,
			latch.Errorf(latch.ECONFLICT, "this process does not lead (lease %s); it revokes nothing", e.opts.Name))
	}
	ctx, cancel := context.WithDeadline(ctx, e.wall(fenceAt))
	defer cancel()
	if err := e.leases.CheckLease(ctx, l, now); err != nil {
		return time.Time{}, fmt.Errorf("fence: %w: %w", latch.ErrNotLeading, err)
	}
	return fenceAt, nil
}

// wall is when, by the wall clock that deadlines use, the injected clock
// will read at.
func (e *Elector) wall(at time.Time) time.Time {
	return time.Now().Add(at.Sub(e.opts.Clock.Now()))
}
