package leader

import (
	"context"
	"errors"

	"github.com/latchdev/latch"
)

// Expirer is what the revoker expires grants with (revoker.Expirer).
type Expirer interface {
	Expire(ctx context.Context, id latch.GrantID) error
}

// batchExpirer expires many grants in one batch (revoker.BatchExpirer).
type batchExpirer interface {
	ExpireMany(ctx context.Context, ids []latch.GrantID) error
}

// Sweeper is what the revoker sweeps with (revoker.Sweeper).
type Sweeper interface {
	Sweep(ctx context.Context) error
}

// FenceExpirer returns x fenced by e: each grant, or each batch when x
// expires in batches, passes the fence first.
func (e *Elector) FenceExpirer(x Expirer) *FencedExpirer { return &FencedExpirer{e, x} }

// FenceSweeper returns s fenced by e: each sweep passes the fence first.
func (e *Elector) FenceSweeper(s Sweeper) Sweeper { return fencedSweeper{e, s} }

// FencedExpirer is an Expirer that expires only while its elector leads.
type FencedExpirer struct {
	e *Elector
	x Expirer
}

// Expire expires one grant if this process leads.
func (f *FencedExpirer) Expire(ctx context.Context, id latch.GrantID) error {
	return f.e.Fence(ctx, func(ctx context.Context) error { return f.x.Expire(ctx, id) })
}

// ExpireMany expires a batch of grants if this process leads: in one
// batch if the expirer can, else one by one, all behind one fence check.
func (f *FencedExpirer) ExpireMany(ctx context.Context, ids []latch.GrantID) error {
	return f.e.Fence(ctx, func(ctx context.Context) error {
		if b, ok := f.x.(batchExpirer); ok {
			return b.ExpireMany(ctx, ids)
		}
		var errs []error
		for _, id := range ids {
			errs = append(errs, f.x.Expire(ctx, id))
		}
		return errors.Join(errs...)
	})
}

type fencedSweeper struct {
	e *Elector
	s Sweeper
}

func (f fencedSweeper) Sweep(ctx context.Context) error {
	return f.e.Fence(ctx, f.s.Sweep)
}
