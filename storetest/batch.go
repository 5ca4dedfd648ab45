package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

// testUpdateGrants checks the batch write: every grant, history, event and
// audit entry of a batch in one transaction, the audit entries in one
// chain, and a stale grant skipped without losing the others.
func testUpdateGrants(t *testing.T, open func(t *testing.T) latch.Store) {
	priv, pub, _ := AuditKeys()
	sign := latch.SignAudit(priv)
	far := epoch().Add(100 * time.Hour)

	// batchOf creates n active grants and returns the changes that end
	// them, each with an audit entry, after one entry appended alone.
	batchOf := func(t *testing.T, s latch.Store, n int) []latch.GrantChange {
		t.Helper()
		mustAppend(t, s, NewAuditEntry(0), sign)
		var cs []latch.GrantChange
		for i := range n {
			g := mustCreate(t, s, NewGrant(far.Add(-time.Hour)), "created")
			g.State, g.EndAs, g.EndedAt = latch.StateExpired, latch.StateExpired, far.Add(-30*time.Minute)
			e := NewAuditEntry(i + 1)
			e.GrantID, e.Action = g.ID, latch.AuditExpired
			cs = append(cs, latch.GrantChange{Grant: g, Note: "rule revoked", Audit: &e})
		}
		return cs
	}

	t.Run("WritesEveryGrantHistoryEventAndAuditEntry", func(t *testing.T) {
		s := open(t)
		cs := batchOf(t, s, 5)
		cs[2].Audit = nil                             // a change without an entry
		settle(t, s, "w1", claimAll(t, s, "w1", far)) // the grant.opened notices
		changed := s.Changed()
		got, err := s.UpdateGrants(t.Context(), cs, sign)
		if err != nil || len(got) != len(cs) {
			t.Fatalf("UpdateGrants = %d changes, %v; want %d, nil", len(got), err, len(cs))
		}
		select {
		case <-changed:
		default:
			t.Error("Changed was not closed by UpdateGrants")
		}
		for i, c := range cs {
			want := c.Grant
			want.Version++
			if d := diffGrant(got[i].Grant, want); d != "" {
				t.Errorf("UpdateGrants[%d] returned a different grant:\n%s", i, d)
			}
			mustGet(t, s, want)
			h := mustHistory(t, s, c.Grant.ID)
			if last := h[len(h)-1]; len(h) != 2 || last.State != latch.StateExpired || last.Note != "rule revoked" {
				t.Errorf("history of %s = %+v, want created then expired with the note", c.Grant.ID, h)
			}
			if (got[i].Audit == nil) != (c.Audit == nil) {
				t.Errorf("UpdateGrants[%d].Audit = %v, want an entry iff one was given", i, got[i].Audit)
			}
		}
		wantKinds(t, "after the batch", claimAll(t, s, "w1", far),
			latch.EventGrantEnded, latch.EventGrantEnded, latch.EventGrantEnded, latch.EventGrantEnded, latch.EventGrantEnded)
		es := mustVerify(t, s, pub)
		if !slices.Equal(seqs(es), []int64{1, 2, 3, 4, 5}) {
			t.Fatalf("audit seqs = %v, want 1..5", seqs(es))
		}
		// In the order of the changes, as returned.
		for i, j := range []int{0, 1, 3, 4} {
			if es[i+1].GrantID != cs[j].Grant.ID {
				t.Errorf("audit entry %d is for %s, want %s", i+2, es[i+1].GrantID, cs[j].Grant.ID)
			}
			if d := diffAudit(es[i+1], *got[j].Audit); d != "" {
				t.Errorf("stored entry %d differs from the returned one:\n%s", i+2, d)
			}
		}
		head, err := s.AuditHead(t.Context())
		if err != nil || head.Seq != 5 || head.Hash != es[4].Hash || head.Signature == "" {
			t.Errorf("head = %+v, %v; want seq 5, signed, at the last entry", head, err)
		}
		// A single append afterwards links to the batch's last entry.
		mustAppend(t, s, NewAuditEntry(9), sign)
		mustVerify(t, s, pub)
	})

	t.Run("StaleGrantSkippedOthersWritten", func(t *testing.T) {
		s := open(t)
		cs := batchOf(t, s, 3)
		moved := cs[1].Grant
		moved.State, moved.EndAs, moved.EndedAt = latch.StateActive, "", time.Time{}
		moved.Reason = "changed elsewhere"
		moved = mustUpdate(t, s, moved, "")
		gone := NewGrant(far)
		gone.Version = 1
		e := NewAuditEntry(7)
		cs = append(cs, latch.GrantChange{Grant: gone, Note: "x", Audit: &e})

		got, err := s.UpdateGrants(t.Context(), cs, sign)
		if len(got) != 4 {
			t.Fatalf("UpdateGrants = %d changes, %v; want 4 (partial)", len(got), err)
		}
		wantCode(t, "UpdateGrants with a stale grant", err, latch.ECONFLICT)
		if got[1].Grant.ID != "" || got[1].Audit != nil || got[3].Grant.ID != "" {
			t.Errorf("skipped changes returned %+v and %+v, want zero", got[1], got[3])
		}
		if got[0].Grant.Version != 2 || got[2].Grant.Version != 2 {
			t.Errorf("written versions %d, %d; want 2", got[0].Grant.Version, got[2].Grant.Version)
		}
		mustGet(t, s, moved) // untouched by the stale write
		if h := mustHistory(t, s, moved.ID); len(h) != 1 {
			t.Errorf("stale grant's history = %+v, want only its creation", h)
		}
		es := mustVerify(t, s, pub)
		if !slices.Equal(seqs(es), []int64{1, 2, 3}) || es[1].GrantID != cs[0].Grant.ID || es[2].GrantID != cs[2].Grant.ID {
			t.Errorf("audit = %v, want the first entry, then the written grants' only", seqs(es))
		}
	})

	t.Run("EmptyBatch", func(t *testing.T) {
		s := open(t)
		if got, err := s.UpdateGrants(t.Context(), nil, sign); err != nil || len(got) != 0 {
			t.Fatalf("UpdateGrants(nil) = %v, %v", got, err)
		}
	})

	t.Run("GrantsByIDs", func(t *testing.T) {
		s := open(t)
		a := mustCreate(t, s, withID(NewGrant(epoch()), 'a'), "")
		mustCreate(t, s, withID(NewGrant(epoch()), 'b'), "")
		c := mustCreate(t, s, withID(NewGrant(epoch()), 'c'), "")
		mustList(t, s, latch.GrantFilter{IDs: []latch.GrantID{a.ID, c.ID, "g-unknown"}}, c, a)
		mustList(t, s, latch.GrantFilter{IDs: []latch.GrantID{a.ID, c.ID}, States: []latch.GrantState{latch.StateExpired}})
	})

	t.Run("GrantsByRuleIDs", func(t *testing.T) {
		s := open(t)
		a, b, c := NewGrant(epoch()), NewGrant(epoch().Add(time.Second)), NewGrant(epoch().Add(2*time.Second))
		a.RuleID, b.RuleID, c.RuleID = "sgr-a", "sgr-b", "sgr-c"
		a, c = mustCreate(t, s, a, ""), mustCreate(t, s, c, "")
		mustCreate(t, s, b, "")
		mustList(t, s, latch.GrantFilter{RuleIDs: []latch.RuleID{"sgr-a", "sgr-c", "sgr-x"}}, c, a)
	})
}
