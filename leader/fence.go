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

// fencedBy marks a context as the revoker's work under an elector, so that
// a [Firewall] fences each call made with it.
type fencedBy struct{}

func fencing(ctx context.Context) *Elector {
	e, _ := ctx.Value(fencedBy{}).(*Elector)
	return e
}

// FenceExpirer returns x fenced by e: each grant, or each batch when x
// expires in batches, passes the fence first and runs under its deadline,
// and each revoke it makes through a [Firewall] passes it again.
func (e *Elector) FenceExpirer(x Expirer) *FencedExpirer { return &FencedExpirer{e, x} }

// FenceSweeper returns s fenced by e: a sweep starts only if the fence
// lets it, and each revoke it makes through a [Firewall] passes the fence
// again, under a deadline of its own, so that a long sweep outlives any
// one renewal but no revoke outlives the term.
func (e *Elector) FenceSweeper(s Sweeper) Sweeper { return fencedSweeper{e, s} }

// FencedExpirer is an Expirer that expires only while its elector leads.
type FencedExpirer struct {
	e *Elector
	x Expirer
}

// Expire expires one grant if this process leads.
func (f *FencedExpirer) Expire(ctx context.Context, id latch.GrantID) error {
	return f.e.Fence(context.WithValue(ctx, fencedBy{}, f.e), func(ctx context.Context) error { return f.x.Expire(ctx, id) })
}

// ExpireMany expires a pass of due grants if this process leads: in
// batches if the expirer can, else one by one. The pass starts only if
// the fence lets it, and, as for a sweep, each revoke it makes through a
// [Firewall] passes the fence again under a deadline of its own: a pass of
// thousands of grants paced inside EC2's throttle outlasts any one term's
// deadline, while no revoke outlasts the term.
func (f *FencedExpirer) ExpireMany(ctx context.Context, ids []latch.GrantID) error {
	if _, err := f.e.check(ctx); err != nil {
		return err
	}
	ctx = context.WithValue(ctx, fencedBy{}, f.e)
	if b, ok := f.x.(batchExpirer); ok {
		return b.ExpireMany(ctx, ids)
	}
	var errs []error
	for _, id := range ids {
		errs = append(errs, f.Expire(ctx, id))
	}
	return errors.Join(errs...)
}

type fencedSweeper struct {
	e *Elector
	s Sweeper
}

func (f fencedSweeper) Sweep(ctx context.Context) error {
	if _, err := f.e.check(ctx); err != nil {
		return err
	}
	return f.s.Sweep(context.WithValue(ctx, fencedBy{}, f.e))
}

// Firewall returns fw with the revoker's calls fenced: a revoke or retag
// made with a context from a fenced expirer or sweeper first passes its
// elector's fence (the store's check of the term, and a deadline at the
// lease's fence), so the fencing token is checked on every batch. Calls
// made with any other context (a person's revoke through the API, on any
// replica) pass straight through.
func Firewall(fw latch.Firewall) latch.Firewall { return fencedFirewall{fw} }

type fencedFirewall struct{ latch.Firewall }

func (f fencedFirewall) guard(ctx context.Context, do func(ctx context.Context) error) error {
	if e := fencing(ctx); e != nil {
		return e.Fence(ctx, do)
	}
	return do(ctx)
}

func (f fencedFirewall) Tag(ctx context.Context, id latch.RuleID, tags map[string]string) error {
	return f.guard(ctx, func(ctx context.Context) error { return f.Firewall.Tag(ctx, id, tags) })
}

func (f fencedFirewall) Revoke(ctx context.Context, group latch.GroupID, id latch.RuleID) error {
	return f.guard(ctx, func(ctx context.Context) error { return f.Firewall.Revoke(ctx, group, id) })
}

func (f fencedFirewall) RevokeMany(ctx context.Context, group latch.GroupID, ids []latch.RuleID) (gone []latch.RuleID, err error) {
	err = f.guard(ctx, func(ctx context.Context) error {
		gone, err = f.Firewall.RevokeMany(ctx, group, ids)
		return err
	})
	return gone, err
}

// GroupRules counts a group's rules through the firewall wrapped, if it
// can (reads are never fenced), so that the fence hides nothing a caller
// asks of it.
func (f fencedFirewall) GroupRules(ctx context.Context, group latch.GroupID) ([]latch.Rule, error) {
	gr, ok := f.Firewall.(interface {
		GroupRules(ctx context.Context, group latch.GroupID) ([]latch.Rule, error)
	})
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return gr.GroupRules(ctx, group)
}
