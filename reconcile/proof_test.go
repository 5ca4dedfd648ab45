package reconcile_test

import (
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/reconcile"
)

func TestProve(t *testing.T) {
	const latchARN = "arn:aws:iam::123456789012:role/latch"
	opened := start.Add(-time.Hour)
	grant := latch.Grant{ID: "g-1", GroupID: group, RuleID: "sgr-1", State: latch.StateRevoked, CreatedAt: opened, EndedAt: start.Add(-10 * time.Minute)}
	authorize := reconcile.Event{ID: "e1", Name: "AuthorizeSecurityGroupIngress", Time: opened, Actor: latchARN, GroupID: string(group),
		RuleIDs: []string{"sgr-1"}, Ports: []string{"tcp 22"}, CIDRs: []string{"203.0.113.7/32"}}
	failed := reconcile.Event{ID: "e0", Name: "RevokeSecurityGroupIngress", Actor: latchARN, RuleIDs: []string{"sgr-1"}, ErrorCode: "Client.RequestLimitExceeded"}
	revoke := reconcile.Event{ID: "e2", Name: "RevokeSecurityGroupIngress", Actor: latchARN, GroupID: string(group), RuleIDs: []string{"sgr-1"}}

	tests := []struct {
		name           string
		grant          func(g *latch.Grant)
		events         []reconcile.Event
		history        []latch.GrantEvent
		now            time.Time
		opened, closed string
		note           string // part of the closed side's note
		missing        bool
	}{
		{name: "both found", events: []reconcile.Event{authorize, revoke}, now: start, opened: reconcile.ProofFound, closed: reconcile.ProofFound},
		{name: "revoke not delivered yet", events: []reconcile.Event{authorize, failed}, now: start,
			opened: reconcile.ProofFound, closed: reconcile.ProofPending, note: "expected by 2026-11-23T10:05:00Z"},
		{name: "revoke never delivered", events: []reconcile.Event{authorize}, now: start.Add(5 * time.Minute),
			opened: reconcile.ProofFound, closed: reconcile.ProofMissing, missing: true},
		{name: "still open", grant: func(g *latch.Grant) {
			g.State, g.EndedAt, g.ExpiresAt = latch.StateActive, time.Time{}, start.Add(time.Hour)
		},
			events: []reconcile.Event{authorize}, now: start, opened: reconcile.ProofFound, closed: reconcile.ProofNotYet, note: "the grant is active"},
		{name: "rule handed on", events: []reconcile.Event{authorize}, history: []latch.GrantEvent{{Note: broker.NoteKept + " g-2 until 10:10"}},
			now: start.Add(time.Hour), opened: reconcile.ProofFound, closed: reconcile.ProofKept, note: "g-2"},
		{name: "authorize missing", events: nil, now: start, opened: reconcile.ProofMissing, closed: reconcile.ProofPending, missing: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := grant
			if tt.grant != nil {
				tt.grant(&g)
			}
			s := &store{history: map[latch.GrantID][]latch.GrantEvent{g.ID: tt.history}}
			p, err := reconcile.Prove(t.Context(), &cloud{events: tt.events}, s, g, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			if p.Opened.Status != tt.opened || p.Closed.Status != tt.closed || p.Missing() != tt.missing || !strings.Contains(p.Closed.Note, tt.note) {
				t.Fatalf("Prove = %+v; want opened %s, closed %s mentioning %q, missing %v", p, tt.opened, tt.closed, tt.note, tt.missing)
			}
			if p.Opened.Status == reconcile.ProofFound && (p.Opened.EventID != "e1" || p.Opened.What != "sgr-1 in "+string(group)+", tcp 22 from 203.0.113.7/32") {
				t.Errorf("opened = %+v", p.Opened)
			}
			if p.Closed.Status == reconcile.ProofFound && p.Closed.EventID != "e2" {
				t.Errorf("closed = %+v; want the successful revoke e2", p.Closed)
			}
		})
	}

	t.Run("NoRule", func(t *testing.T) {
		g := grant
		g.RuleID, g.State = "", latch.StateFailed
		if _, err := reconcile.Prove(t.Context(), &cloud{}, &store{}, g, start); latch.ErrorCode(err) != latch.ECONFLICT {
			t.Fatalf("err = %v; want ECONFLICT", err)
		}
	})
}
