package broker_test

import (
	"context"
	"fmt"
	"slices"
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

// sessionBackstops is a backstop that also ends sessions.
type sessionBackstops struct {
	backstops
	fail error
}

func (b *sessionBackstops) EnsureSession(_ context.Context, region string, id latch.SSMSessionID, at time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf("ensure session %s in %s at +%s", id, region, at.Sub(start)))
	return b.fail
}

func (b *sessionBackstops) CancelSession(_ context.Context, region string, id latch.SSMSessionID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf("cancel session %s in %s", id, region))
	return nil
}

func (b *sessionBackstops) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	calls := b.calls
	b.calls = nil
	return calls
}

// Each session latch starts gets a schedule that terminates it at its
// grant's expiry; latch deletes it when it terminates the session itself,
// by the grant's end or by a sweep. A schedule that cannot be set does
// not fail the session.
func TestSessionBackstop(t *testing.T) {
	bs := &sessionBackstops{}
	f := newSSMFixtureWith(t, bs)
	ctx := t.Context()
	session := func(d time.Duration) (latch.Grant, latch.SSMSessionID) {
		t.Helper()
		req := ssmRequest(boxManaged, latch.DocShell, 0)
		req.Duration = d
		g, err := f.b.Grant(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		h, err := f.b.StartSession(ctx, g.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		return g, h.SessionID
	}
	want := func(what string, calls ...string) {
		t.Helper()
		if got := bs.take(); fmt.Sprint(got) != fmt.Sprint(calls) {
			t.Fatalf("%s: backstop calls\n%v\nwant\n%v", what, got, calls)
		}
	}

	revoked, s1 := session(30 * time.Minute)
	want("start", "ensure session "+string(s1)+" in us-east-1 at +30m0s")
	if _, err := f.b.Revoke(ctx, revoked.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	want("revoke", "cancel session "+string(s1)+" in us-east-1")

	expired, s2 := session(time.Hour)
	swept, s3 := session(20 * time.Minute)
	want("start two", "ensure session "+string(s2)+" in us-east-1 at +1h0m0s", "ensure session "+string(s3)+" in us-east-1 at +20m0s")
	f.clock.Set(swept.ExpiresAt)
	if _, err := f.b.SweepSessions(ctx); err != nil {
		t.Fatal(err)
	}
	want("sweep", "cancel session "+string(s3)+" in us-east-1")
	f.clock.Set(expired.ExpiresAt)
	if err := f.b.Expire(ctx, expired.ID); err != nil {
		t.Fatal(err)
	}
	want("expire", "cancel session "+string(s2)+" in us-east-1")

	bs.fail = latch.Errorf(latch.EUNAVAILABLE, "ThrottlingException")
	_, s4 := session(10 * time.Minute)
	if !slices.Contains(f.ssm.running(), s4) {
		t.Errorf("running %v; want %s though its schedule failed", f.ssm.running(), s4)
	}
}
