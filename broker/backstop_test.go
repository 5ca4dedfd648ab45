package broker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/internal/awstest"
)

// backstops records what the broker asks of its backstop.
type backstops struct {
	mu    sync.Mutex
	calls []string
}

func (b *backstops) Ensure(_ context.Context, region string, group latch.GroupID, rule latch.RuleID, at time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf("ensure %s at +%s", rule, at.Sub(start)))
	return nil
}

func (b *backstops) Cancel(_ context.Context, region string, rule latch.RuleID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf("cancel %s", rule))
	return nil
}

// Grants sharing a rule share one schedule at the latest expiry; ending the
// longest early moves it down to the next; the last end deletes it.
func TestBackstopFollowsTheSharedRule(t *testing.T) {
	bs := &backstops{}
	f := newFixture(t, awstest.New(t), broker.Options{Backstop: bs})
	a := f.grant(t, "203.0.113.7", 30*time.Minute)
	b := f.grant(t, "203.0.113.7", 60*time.Minute)
	if _, err := f.b.Revoke(t.Context(), b.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Minute)
	if err := f.b.Expire(t.Context(), a.ID); err != nil {
		t.Fatal(err)
	}
	r := a.RuleID
	want := []string{
		"ensure " + string(r) + " at +30m0s",
		"ensure " + string(r) + " at +1h0m0s",
		"ensure " + string(r) + " at +30m0s",
		"cancel " + string(r),
	}
	if fmt.Sprint(bs.calls) != fmt.Sprint(want) {
		t.Fatalf("backstop calls:\n%v\nwant:\n%v", bs.calls, want)
	}
}
