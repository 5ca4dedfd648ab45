package notify_test

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/notify"
	"github.com/latchdev/latch/storetest"
)

// One broken destination (a webhook that is down, answering 500) holds
// nothing for the others: the break-glass alert reaches the working pager
// at once. (An outbox that delivered a request's events strictly in order
// held it behind request.created, still retrying for the broken route, for
// hours.) Order where it matters, a chat message's edits, is the sink's
// business: see slack's TestMessageNeverGoesBack.
func TestWorker_BrokenRouteHoldsNothingForOthers(t *testing.T) {
	f := newFixture(t, pager, teams)
	f.sink.fail = func(to latch.Route, _ latch.Event, _ int) error {
		if to == teams {
			return errors.New("webhook teams answered 500 Internal Server Error")
		}
		return nil
	}
	// The server's defaults, but for the jitter and the clock.
	w := notify.New(f.store, notify.RouterFunc(func(latch.Event) []latch.Route { return []latch.Route{pager, teams} }),
		map[string]latch.Sink{latch.SinkWebhook: f.sink},
		notify.Options{Clock: f.clock, Jitter: func() float64 { return 0.5 }, Logger: slog.New(slog.DiscardHandler)})

	r := storetest.NewRequest(start)
	r.BreakGlass, r.State, r.DecidedAt, r.ApprovalsNeeded = true, latch.RequestApproved, start, 0
	if _, err := f.store.CreateRequest(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	var breakGlass latch.EventID
	items, err := f.store.OutboxEvents(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Event.Kind == latch.EventBreakGlassUsed {
			breakGlass = it.Event.ID
		}
	}
	if breakGlass == "" {
		t.Fatalf("no breakglass.used event in %+v", items)
	}
	// Fifteen minutes of the worker running, a pass every 5 s.
	for range 180 {
		w.Pass(t.Context())
		f.clock.Advance(5 * time.Second)
	}
	for _, d := range f.sink.deliveries() {
		if d.to == pager && d.id == breakGlass {
			return
		}
	}
	it := f.item(t, breakGlass)
	t.Fatalf("after 15 minutes the break-glass alert has not reached the working pager (state %s, attempts %d): "+
		"it waits behind request.created, which only the broken teams webhook keeps pending", it.State, it.Attempts)
}
