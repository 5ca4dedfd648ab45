package broker_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

// A sweep and an expiry batch over the same openings, both waiting behind
// a grant that holds one of them, take their locks in one order: neither
// holds a lock the other waits for. Rules made in the order .9 then .1 led
// the sweep (Describe's order) and ExpireMany (sorted) into opposite
// orders, and both hung forever. The pauses only line the three up; in
// any other order the test passes without proving anything.
func TestSweepAndExpireManyDoNotDeadlock(t *testing.T) {
	for _, order := range [][2]string{{"203.0.113.9", "203.0.113.1"}, {"203.0.113.1", "203.0.113.9"}} {
		t.Run(order[0], func(t *testing.T) {
			env := awstest.NewSim(t, ec2sim.Options{})
			held, release := make(chan struct{}), make(chan struct{})
			var armed atomic.Bool
			f := newFixture(t, env, broker.Options{Checkpoint: func(name string) {
				if name == "before-authorize" && armed.CompareAndSwap(true, false) {
					close(held)
					<-release
				}
			}})
			x := f.grant(t, order[0], 10*time.Minute)
			y := f.grant(t, order[1], 10*time.Minute)
			f.clock.Advance(11 * time.Minute)
			armed.Store(true)
			ctx := context.Background()
			go func() { _, _ = f.b.Grant(ctx, f.request("203.0.113.1", time.Hour)) }()
			<-held
			expDone, swDone := make(chan error, 1), make(chan error, 1)
			go func() { expDone <- f.b.ExpireMany(ctx, []latch.GrantID{x.ID, y.ID}) }()
			time.Sleep(300 * time.Millisecond)
			go func() { swDone <- f.b.Sweep(ctx) }()
			time.Sleep(300 * time.Millisecond)
			close(release)
			select {
			case err := <-expDone:
				t.Logf("ExpireMany: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("ExpireMany still waiting after 10s: deadlocked with the sweep")
			}
			select {
			case err := <-swDone:
				t.Logf("Sweep: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("Sweep still waiting after 10s")
			}
		})
	}
}
