package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/internal/awstest"
	"github.com/latchdev/latch/revoker"
)

// The whole path through the SDK: grant → rule with tags visible through
// DescribeSecurityGroupRules → expiry on the fake clock → rule gone.
func TestRevokerClosesGrantAtExpiry(t *testing.T) {
	f := newFixture(t, awstest.New(t), broker.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	r := revoker.New(f.store, f.b, f.b, revoker.Options{Clock: f.clock, SweepInterval: time.Hour, Recheck: time.Hour})
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	g := f.grant(t, "203.0.113.7", 15*time.Minute)
	if tags := f.ruleTags(t)[g.RuleID]; tags[latch.TagExpiresAt] != "2026-11-23T10:15:00Z" || tags[latch.TagGrantID] != string(g.ID) {
		t.Fatalf("rule tags = %v", tags)
	}
	f.clock.Advance(15*time.Minute - time.Second)
	if waitEnded(t, f, g.ID, 200*time.Millisecond) {
		t.Fatal("revoked a second early")
	}
	f.clock.Advance(time.Second)
	if !waitEnded(t, f, g.ID, 10*time.Second) {
		t.Fatal("grant not revoked at its expiry")
	}
	if n := len(f.ruleTags(t)); n != 0 {
		t.Fatalf("%d rules left after expiry", n)
	}
}

// waitEnded waits up to limit of real time for another goroutine to end the
// grant, watching the store's change notifications.
func waitEnded(t *testing.T, f *fixture, id latch.GrantID, limit time.Duration) bool {
	t.Helper()
	deadline := time.After(limit)
	for {
		changed := f.store.Changed()
		if !f.state(t, id).State.Open() {
			return true
		}
		select {
		case <-changed:
		case <-deadline:
			return false
		}
	}
}
