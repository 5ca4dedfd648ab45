package main

import (
	"context"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/leader"
	"github.com/latchdev/latch/revoker"
)

// runRevoker runs the revoker until ctx ends. On a store that elects
// leaders (PostgreSQL, shared by replicas), it runs only while this
// process holds the lease, and every batch of expiries and every sweep
// passes the lease's fence first.
func (a *app) runRevoker(ctx context.Context, store latch.Store, x revoker.Expirer, sw revoker.Sweeper, opts revoker.Options, lease time.Duration) error {
	leases, ok := store.(latch.Leases)
	if !ok {
		return revoker.New(store, x, sw, opts).Run(ctx)
	}
	lopts := leader.Options{TTL: lease, Clock: a.clock, Logger: a.log.With("component", "leader")}
	if a.metrics != nil {
		lopts.Observe = a.metrics.Leading
	}
	el := leader.New(leases, lopts)
	r := revoker.New(store, el.FenceExpirer(x), el.FenceSweeper(sw), opts)
	a.log.Info("revoker runs on the replica that holds the lease", "holder", el.Holder(), "lease", lease.String())
	return el.Run(ctx, r.Run)
}
