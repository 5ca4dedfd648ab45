package http

import (
	"fmt"
	"testing"
	"time"
)

// A full limiter forgets the callers whose buckets have refilled, not the
// ones still spending: a flood of new addresses cannot reset a busy
// caller's budget while idle buckets remain to drop.
func TestLimiterForgetsIdleBucketsFirst(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := newLimiter(1, 2)
	l.now = func() time.Time { return now }
	for range 2 {
		if ok, _ := l.take("busy"); !ok {
			t.Fatal("the first two takes are refused")
		}
	}
	for i := range maxBuckets - 1 {
		l.take(fmt.Sprint("idle-", i))
	}
	now = now.Add(1500 * time.Millisecond) // the idle ones are full again; busy has 1.5 of 2
	if ok, _ := l.take("newcomer"); !ok {
		t.Fatal("a newcomer to a full limiter is refused")
	}
	if n := len(l.buckets); n != 2 {
		t.Errorf("%d buckets after forgetting, want 2 (busy, newcomer)", n)
	}
	if ok, _ := l.take("busy"); !ok {
		t.Fatal("busy has a token left and is refused")
	}
	if ok, wait := l.take("busy"); ok || wait != 500*time.Millisecond {
		t.Errorf("busy's budget was forgotten: take = %v, wait %s; want refused, 500ms", ok, wait)
	}
}
