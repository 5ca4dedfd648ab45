package slack_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/slacktest"
	"github.com/latchdev/latch/mock"
	"github.com/latchdev/latch/notify"
	"github.com/latchdev/latch/slack"
	"github.com/latchdev/latch/sqlite"
)

// A 429's Retry-After holds the outbox's next attempt back, longer than
// the backoff would.
func TestWorkerWaitsOutRetryAfter(t *testing.T) {
	ctx := t.Context()
	start := time.Now().UTC().Truncate(time.Second)
	clock := mock.NewClock(start)
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latch.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	fake := slacktest.New(t, []string{"ops"}, alice)
	c := slack.NewClient(slacktest.Token, slack.ClientOptions{APIURL: fake.APIURL})
	w := notify.New(store, notify.RouterFunc(func(latch.Event) []latch.Route { return []latch.Route{ops} }),
		map[string]latch.Sink{latch.SinkSlack: slack.NewSink(c, store, slack.SinkOptions{})},
		notify.Options{Clock: clock, BaseDelay: time.Second, Jitter: func() float64 { return 0 }})

	e := event(latch.EventRuleOutOfBand)
	e.RequestID, e.At = "", start
	if err := store.EnqueueEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	fake.RateLimit("chat.postMessage", 45*time.Second)
	w.Pass(ctx)
	it, err := store.OutboxEvent(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if it.State != latch.EventPending || !it.DueAt.Equal(start.Add(45*time.Second)) {
		t.Fatalf("after a 429: %s, due %s; want pending, due in 45s (Retry-After), not 1s (backoff)", it.State, it.DueAt.Sub(start))
	}

	clock.Advance(44 * time.Second)
	w.Pass(ctx)
	if n := fake.Calls("chat.postMessage"); n != 1 {
		t.Fatalf("%d calls before Retry-After passed; want 1", n)
	}
	clock.Advance(time.Second)
	w.Pass(ctx)
	if it, _ := store.OutboxEvent(ctx, e.ID); it.State != latch.EventDelivered || len(fake.Messages()) != 1 {
		t.Fatalf("after Retry-After: %s, %d messages; want delivered, 1", it.State, len(fake.Messages()))
	}
}
