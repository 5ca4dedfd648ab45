package broker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
	"github.com/latchdev/latch/revoker"
)

// With 30% throttling, 10% server errors and some responses lost after
// their effect, every grant still becomes active, no rule is duplicated,
// and the revoker closes every one of them.
func TestConvergesUnderFaults(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{})
	f := newFixture(t, env, broker.Options{RetryBase: time.Second, RetryMax: 10 * time.Second})
	env.Sim.SetFaults(ec2sim.Faults{ThrottleRate: 0.3, ServerErrorRate: 0.1, LostResponseRate: 0.1, Seed: 7})

	const addrs, perAddr = 8, 3 // three overlapping grants per address
	var wg sync.WaitGroup
	grants := make(chan latch.Grant, addrs*perAddr)
	errs := make(chan error, addrs*perAddr)
	for i := range addrs * perAddr {
		wg.Go(func() {
			src := fmt.Sprintf("203.0.113.%d", i%addrs+1)
			g, err := f.b.Grant(t.Context(), f.request(src, time.Duration(10+i)*time.Minute))
			if err != nil {
				errs <- fmt.Errorf("grant %s: %w", src, err)
				return
			}
			grants <- g
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	close(grants)
	bySource := map[string]latch.RuleID{}
	for g := range grants {
		if g.State != latch.StateActive {
			t.Errorf("grant %s is %s, want active", g.ID, g.State)
		}
		if prev, ok := bySource[g.Source.String()]; ok && prev != g.RuleID {
			t.Errorf("grants for %s use rules %s and %s, want one shared rule", g.Source, prev, g.RuleID)
		}
		bySource[g.Source.String()] = g.RuleID
	}
	rules := f.env.Ingress(t, f.group)
	if len(rules) != addrs {
		t.Fatalf("%d rules for %d addresses: duplicates or losses", len(rules), addrs)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := revoker.New(f.store, f.b, f.b, revoker.Options{Clock: f.clock, SweepInterval: time.Minute, Recheck: time.Minute})
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(60 * time.Second) // a bound for a hung test
	for !allEnded(t, f) {
		if time.Now().After(deadline) {
			t.Fatalf("not converged: %d rules left, open grants remain", len(f.env.Ingress(t, f.group)))
		}
		f.clock.Advance(15 * time.Second)
		select {
		case <-f.store.Changed():
		case <-time.After(20 * time.Millisecond): // let the revoker act on the new time
		}
	}
	if n := len(f.env.Ingress(t, f.group)); n != 0 {
		t.Fatalf("%d rules left after every grant ended", n)
	}
	if env.Sim.Calls("RevokeSecurityGroupIngress") < addrs {
		t.Errorf("only %d revoke calls for %d rules", env.Sim.Calls("RevokeSecurityGroupIngress"), addrs)
	}
}

func allEnded(t *testing.T, f *fixture) bool {
	t.Helper()
	open, err := f.store.Grants(t.Context(), latch.GrantFilter{States: []latch.GrantState{
		latch.StateRequested, latch.StateActive, latch.StateRevoking, latch.StateRevokeFailed}})
	if err != nil {
		t.Fatal(err)
	}
	return len(open) == 0
}
