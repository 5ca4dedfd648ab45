package broker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

// A revoke that keeps failing is retried with growing delays, marked
// revoke-failed (logged at ERROR on every attempt) and never given up.
func TestRevokeRetriesForever(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{})
	f := newFixture(t, env, broker.Options{FailAfter: 3, RetryBase: time.Second, RetryMax: 10 * time.Second})
	g := f.grant(t, "203.0.113.7", time.Minute)
	env.Sim.SetFaults(ec2sim.Faults{ServerErrorRate: 1, Actions: []string{"RevokeSecurityGroupIngress"}})

	f.clock.Advance(time.Minute)
	var delays []time.Duration
	for attempt := 1; attempt <= 6; attempt++ {
		if err := f.b.Expire(t.Context(), g.ID); err == nil {
			t.Fatalf("attempt %d succeeded against a failing EC2", attempt)
		}
		got := f.state(t, g.ID)
		if got.Attempts != attempt {
			t.Fatalf("attempts = %d, want %d", got.Attempts, attempt)
		}
		wantState := latch.StateRevoking
		if attempt >= 3 {
			wantState = latch.StateRevokeFailed
		}
		if got.State != wantState {
			t.Fatalf("after %d failures state = %s, want %s", attempt, got.State, wantState)
		}
		delay := got.NextAttempt.Sub(f.clock.Now())
		delays = append(delays, delay)
		if err := f.b.Expire(t.Context(), g.ID); err != nil || f.state(t, g.ID).Attempts != attempt {
			t.Fatalf("Expire before the next attempt time acted: %v", err)
		}
		f.clock.Advance(delay)
	}
	// Base 1s doubling, ±25% jitter, rounded up to whole seconds, capped at
	// 10s: about 1, 2, 4, 8, 10, 10.
	if !(delays[2] > delays[0] && delays[3] > delays[2]) || delays[5] > 13*time.Second || delays[5] < 7*time.Second {
		t.Errorf("retry delays %v: want growing, then capped near RetryMax", delays)
	}
	if n := strings.Count(f.logs.String(), `"level":"ERROR"`); n != 4 {
		t.Errorf("%d ERROR lines, want one per attempt from the 3rd (4)", n)
	}

	env.Sim.SetFaults(ec2sim.Faults{})
	if err := f.b.Expire(t.Context(), g.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.state(t, g.ID); got.State != latch.StateExpired || len(f.ruleTags(t)) != 0 {
		t.Fatalf("after EC2 recovered: %s with %d rules, want expired with none", got.State, len(f.ruleTags(t)))
	}
}
