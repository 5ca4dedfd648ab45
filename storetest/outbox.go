package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

// claimAll claims every event due by at for owner, and returns them by kind.
func claimAll(t *testing.T, s latch.Store, owner string, at time.Time) map[latch.EventKind][]latch.OutboxItem {
	t.Helper()
	items, err := s.ClaimEvents(t.Context(), owner, at, time.Minute, 0)
	if err != nil {
		t.Fatalf("ClaimEvents: %v", err)
	}
	out := map[latch.EventKind][]latch.OutboxItem{}
	for _, it := range items {
		out[it.Event.Kind] = append(out[it.Event.Kind], it)
	}
	return out
}

func settle(t *testing.T, s latch.Store, owner string, items map[latch.EventKind][]latch.OutboxItem) {
	t.Helper()
	for _, its := range items {
		for _, it := range its {
			if err := s.SettleEvent(t.Context(), owner, latch.Settlement{ID: it.Event.ID, State: latch.EventDelivered}); err != nil {
				t.Fatalf("SettleEvent(%s): %v", it.Event.ID, err)
			}
		}
	}
}

func kinds(m map[latch.EventKind][]latch.OutboxItem) []latch.EventKind {
	var ks []latch.EventKind
	for k, its := range m {
		for range its {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

func wantKinds(t *testing.T, step string, got map[latch.EventKind][]latch.OutboxItem, want ...latch.EventKind) {
	t.Helper()
	slices.Sort(want)
	if g := kinds(got); !slices.Equal(g, want) {
		t.Fatalf("%s: events %v, want %v", step, g, want)
	}
}

// testOutbox checks that notifiable changes write their events, and the
// claim, lease and settle contract.
func testOutbox(t *testing.T, open func(t *testing.T) latch.Store) {
	far := epoch().Add(100 * time.Hour) // every event written is due by then

	t.Run("RequestEvents", func(t *testing.T) {
		s := open(t)
		r := mustCreateRequest(t, s, NewRequest(epoch()))
		bg := NewRequest(epoch())
		bg.BreakGlass, bg.State, bg.ApprovalsNeeded = true, latch.RequestApproved, 0
		mustCreateRequest(t, s, bg)
		got := claimAll(t, s, "w1", far)
		wantKinds(t, "after two creates", got, latch.EventRequestCreated, latch.EventRequestCreated, latch.EventBreakGlassUsed)
		e := got[latch.EventBreakGlassUsed][0].Event
		if e.RequestID != bg.ID || e.Rule != "prod-ssh" || e.Requester != "alice@example.com" || e.InstanceID != "i-0123456789abcdef0" ||
			e.Protocol != latch.TCP || e.FromPort != 22 || e.ToPort != 22 || e.Duration != 1800 || !e.BreakGlass || e.ID == "" {
			t.Errorf("breakglass.used = %+v", e)
		}
		settle(t, s, "w1", got)

		r.Reviews = []latch.Review{{By: reviewer("bob@example.com", "sre"), Approve: false, Reason: "not now", At: epoch()}}
		r.State, r.DecidedAt = latch.RequestDenied, epoch()
		mustUpdateRequest(t, s, r)
		got = claimAll(t, s, "w1", far)
		wantKinds(t, "after a denial", got, latch.EventRequestDenied)
		if e := got[latch.EventRequestDenied][0].Event; e.Reviewer != "bob@example.com" || e.ReviewReason != "not now" || e.State != "denied" {
			t.Errorf("request.denied = %+v", e)
		}
	})

	t.Run("GrantEvents", func(t *testing.T) {
		s := open(t)
		g := NewGrant(far.Add(-time.Hour)) // expires at far: its ending notice is due by far
		g.State = latch.StateRequested
		g, err := s.CreateGrant(t.Context(), g, "")
		if err != nil {
			t.Fatal(err)
		}
		wantKinds(t, "after a requested grant", claimAll(t, s, "w1", far))
		g.State = latch.StateActive
		if g, err = s.UpdateGrant(t.Context(), g, ""); err != nil {
			t.Fatal(err)
		}
		got := claimAll(t, s, "w1", far.Add(-latch.EndingNotice-time.Second))
		wantKinds(t, "before the ending notice is due", got, latch.EventGrantOpened)
		settle(t, s, "w1", got)
		g.State, g.EndAs = latch.StateRevoking, latch.StateRevoked
		if g, err = s.UpdateGrant(t.Context(), g, ""); err != nil {
			t.Fatal(err)
		}
		g.State, g.EndedAt = latch.StateRevoked, far.Add(-30*time.Minute)
		if _, err = s.UpdateGrant(t.Context(), g, ""); err != nil {
			t.Fatal(err)
		}
		got = claimAll(t, s, "w1", far)
		wantKinds(t, "after an early revoke", got, latch.EventGrantEnded) // and no ending notice
		if e := got[latch.EventGrantEnded][0].Event; e.GrantID != g.ID || e.State != "revoked" || !e.ExpiresAt.Equal(far) {
			t.Errorf("grant.ended = %+v", e)
		}
	})

	t.Run("LeaseAndSettle", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		e := latch.Event{ID: latch.NewEventID(), Kind: latch.EventRuleOutOfBand, At: epoch(), RuleID: "sgr-1"}
		if err := s.EnqueueEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
		if err := s.EnqueueEvent(ctx, e); latch.ErrorCode(err) != latch.ECONFLICT {
			t.Fatalf("EnqueueEvent twice: %v, want ECONFLICT", err)
		}
		if got := claimAll(t, s, "w1", epoch().Add(-time.Second)); len(got) != 0 {
			t.Fatalf("claimed %v before it was due", kinds(got))
		}
		if at, ok, err := s.NextEvent(ctx); err != nil || !ok || !at.Equal(epoch()) {
			t.Fatalf("NextEvent = %v %v %v, want %v", at, ok, err, epoch())
		}
		wantKinds(t, "w1's claim", claimAll(t, s, "w1", epoch()), latch.EventRuleOutOfBand)
		wantKinds(t, "w2's claim inside w1's lease", claimAll(t, s, "w2", epoch().Add(59*time.Second)))
		got := claimAll(t, s, "w2", epoch().Add(time.Minute))
		wantKinds(t, "w2's claim once w1's lease ran out", got, latch.EventRuleOutOfBand)
		if err := s.SettleEvent(ctx, "w1", latch.Settlement{ID: e.ID, State: latch.EventDelivered}); latch.ErrorCode(err) != latch.ECONFLICT {
			t.Fatalf("settle by a worker whose lease ran out: %v, want ECONFLICT", err)
		}
		hook := latch.Route{Sink: latch.SinkWebhook, To: "pager"}
		retry := epoch().Add(5 * time.Minute)
		if err := s.SettleEvent(ctx, "w2", latch.Settlement{ID: e.ID, State: latch.EventPending, Delivered: []latch.Route{hook},
			RetryAt: retry, Error: "slack: 500"}); err != nil {
			t.Fatal(err)
		}
		it, err := s.OutboxEvent(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if it.State != latch.EventPending || it.Attempts != 1 || !it.DueAt.Equal(retry) || !slices.Equal(it.Delivered, []latch.Route{hook}) || it.LastError != "slack: 500" {
			t.Fatalf("after a failed attempt: %+v", it)
		}
		wantKinds(t, "before the retry", claimAll(t, s, "w3", retry.Add(-time.Second)))
		got = claimAll(t, s, "w3", retry)
		wantKinds(t, "at the retry", got, latch.EventRuleOutOfBand)
		if it := got[latch.EventRuleOutOfBand][0]; it.Event.ID != e.ID || it.Attempts != 1 {
			t.Fatalf("retried item: %+v", it)
		}
		if err := s.SettleEvent(ctx, "w3", latch.Settlement{ID: e.ID, State: latch.EventDead, Error: "gave up"}); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.NextEvent(ctx); ok {
			t.Error("NextEvent found a pending event after the only one died")
		}
		if it, _ := s.OutboxEvent(ctx, e.ID); it.State != latch.EventDead || it.Attempts != 2 {
			t.Errorf("dead item: %+v", it)
		}
		if _, err := s.OutboxEvent(ctx, latch.NewEventID()); latch.ErrorCode(err) != latch.ENOTFOUND {
			t.Errorf("OutboxEvent(unknown) = %v, want ENOTFOUND", err)
		}
	})

	t.Run("SettleBatch", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		a := latch.Event{ID: latch.NewEventID(), Kind: latch.EventRuleOutOfBand, At: epoch(), RuleID: "sgr-1"}
		b := latch.Event{ID: latch.NewEventID(), Kind: latch.EventRuleOutOfBand, At: epoch().Add(time.Second), RuleID: "sgr-2"}
		for _, e := range []latch.Event{a, b} {
			if err := s.EnqueueEvent(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(claimAll(t, s, "w1", epoch().Add(time.Second))[latch.EventRuleOutOfBand]); n != 2 {
			t.Fatalf("w1 claimed %d events, want 2", n)
		}
		// w1's lease runs out; w2 takes a (the earliest due) alone.
		if items, err := s.ClaimEvents(ctx, "w2", epoch().Add(2*time.Minute), time.Minute, 1); err != nil || len(items) != 1 || items[0].Event.ID != a.ID {
			t.Fatalf("w2's claim = %+v %v, want a", items, err)
		}
		err := s.SettleEvents(ctx, "w1", []latch.Settlement{{ID: a.ID, State: latch.EventDelivered}, {ID: b.ID, State: latch.EventDelivered}})
		if latch.ErrorCode(err) != latch.ECONFLICT {
			t.Fatalf("w1 settling a batch with an event it lost: %v, want ECONFLICT", err)
		}
		if it, _ := s.OutboxEvent(ctx, a.ID); it.State != latch.EventPending {
			t.Errorf("a, leased to w2: %+v, want still pending", it)
		}
		if it, _ := s.OutboxEvent(ctx, b.ID); it.State != latch.EventDelivered {
			t.Errorf("b, still w1's: %+v, want delivered despite a's conflict", it)
		}
	})

	t.Run("Prune", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		pending := latch.Event{ID: latch.NewEventID(), Kind: latch.EventRuleOutOfBand, At: epoch(), RuleID: "sgr-1"}
		settled := latch.Event{ID: latch.NewEventID(), Kind: latch.EventRuleOutOfBand, At: epoch(), RuleID: "sgr-2"}
		for _, e := range []latch.Event{pending, settled} {
			if err := s.EnqueueEvent(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		got := claimAll(t, s, "w1", epoch())
		for _, it := range got[latch.EventRuleOutOfBand] {
			if it.Event.ID == settled.ID {
				if err := s.SettleEvent(ctx, "w1", latch.Settlement{ID: settled.ID, State: latch.EventDelivered}); err != nil {
					t.Fatal(err)
				}
			}
		}
		// The store's own clock dates the settling: a cut-off long before
		// keeps it, one long after prunes it, and never the pending one.
		if n, err := s.PruneEvents(ctx, time.Unix(0, 0)); err != nil || n != 0 {
			t.Fatalf("PruneEvents(before it settled) = %d %v, want 0", n, err)
		}
		if n, err := s.PruneEvents(ctx, epoch().Add(1000*time.Hour)); err != nil || n != 1 {
			t.Fatalf("PruneEvents = %d %v, want the settled event only", n, err)
		}
		if _, err := s.OutboxEvent(ctx, settled.ID); latch.ErrorCode(err) != latch.ENOTFOUND {
			t.Errorf("settled event after pruning: %v, want ENOTFOUND", err)
		}
		if it, err := s.OutboxEvent(ctx, pending.ID); err != nil || it.State != latch.EventPending {
			t.Errorf("pending event after pruning: %+v %v, want it kept", it, err)
		}
	})
}
