package reconcile_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/reconcile"
)

// sessions is a store's record of grants' Session Manager sessions.
type sessions map[latch.GrantID][]latch.SSMSession

func (s sessions) GrantSessions(_ context.Context, id latch.GrantID) ([]latch.SSMSession, error) {
	return s[id], nil
}

func TestProveSessions(t *testing.T) {
	const (
		roleARN  = "arn:aws:sts::123456789012:assumed-role/latch-session/alice"
		latchARN = "arn:aws:iam::123456789012:role/latch"
		sid      = "alice-0123456789abcdef0"
		instance = "i-0b0c00000000000b1"
	)
	opened, ended := start.Add(-time.Hour), start.Add(-10*time.Minute)
	expires := start.Add(time.Hour)
	grant := latch.Grant{ID: "g-00000000000000a1", Access: latch.AccessSSM, Document: latch.DocShell, State: latch.StateRevoked,
		CreatedAt: opened, ExpiresAt: expires, EndedAt: ended, Requester: "alice"}
	reason := latch.SessionReason(grant.ID, expires)
	recorded := latch.SSMSession{ID: sid, GrantID: grant.ID, Target: instance, Document: latch.DocShell, Reason: reason,
		StartedAt: opened.Add(time.Minute), EndedAt: ended}
	startEv := reconcile.Event{ID: "e1", Name: "StartSession", Time: opened.Add(time.Minute), Actor: roleARN, SourceIdentity: "alice",
		SessionID: sid, Target: instance, Document: "SSM-SessionManagerRunShell", Reason: reason}
	failedStart := reconcile.Event{ID: "e0", Name: "StartSession", Actor: roleARN, Target: instance, Reason: reason, ErrorCode: "TargetNotConnected"}
	termEv := reconcile.Event{ID: "e2", Name: "TerminateSession", Time: ended, Actor: latchARN, SessionID: sid}
	failedTerm := reconcile.Event{ID: "e3", Name: "TerminateSession", Time: ended, Actor: latchARN, SessionID: sid, ErrorCode: "ThrottlingException"}
	// A session latch started for the grant but failed to record, found by
	// its reason; and one for another grant, which is not this grant's.
	unrecordedStart := reconcile.Event{ID: "e4", Name: "StartSession", Time: opened.Add(2 * time.Minute), Actor: roleARN, SourceIdentity: "alice",
		SessionID: "alice-00000000000000002", Target: instance, Reason: reason}
	otherStart := reconcile.Event{ID: "e5", Name: "StartSession", Time: opened.Add(2 * time.Minute), Actor: roleARN,
		SessionID: "alice-00000000000000003", Target: instance, Reason: latch.SessionReason("g-00000000000000b2", expires)}

	tests := []struct {
		name                string
		grant               func(g *latch.Grant)
		recorded            []latch.SSMSession
		events              []reconcile.Event
		now                 time.Time
		started, terminated []string // per session
		note                string   // part of the first session's terminated note
		missing             bool
	}{
		{name: "both found", recorded: []latch.SSMSession{recorded}, events: []reconcile.Event{failedStart, startEv, termEv, otherStart}, now: start,
			started: []string{reconcile.ProofFound}, terminated: []string{reconcile.ProofFound}},
		{name: "terminate not delivered yet", recorded: []latch.SSMSession{recorded}, events: []reconcile.Event{startEv, failedTerm}, now: start,
			started: []string{reconcile.ProofFound}, terminated: []string{reconcile.ProofPending}, note: "expected by 2026-11-23T10:05:00Z"},
		{name: "terminate never delivered", recorded: []latch.SSMSession{recorded}, events: []reconcile.Event{startEv}, now: start.Add(5 * time.Minute),
			started: []string{reconcile.ProofFound}, terminated: []string{reconcile.ProofMissing}, note: "no successful TerminateSession", missing: true},
		{name: "start not delivered yet", grant: func(g *latch.Grant) { g.State, g.EndedAt = latch.StateActive, time.Time{} },
			recorded: []latch.SSMSession{{ID: sid, StartedAt: opened.Add(time.Minute)}}, events: []reconcile.Event{failedStart}, now: opened.Add(5 * time.Minute),
			started: []string{reconcile.ProofPending}, terminated: []string{reconcile.ProofNotYet}},
		{name: "start never delivered", recorded: []latch.SSMSession{recorded}, events: []reconcile.Event{termEv}, now: start,
			started: []string{reconcile.ProofMissing}, terminated: []string{reconcile.ProofFound}, missing: true},
		{name: "still open", grant: func(g *latch.Grant) { g.State, g.EndedAt = latch.StateActive, time.Time{} },
			recorded: []latch.SSMSession{{ID: sid, StartedAt: opened.Add(time.Minute)}}, events: []reconcile.Event{startEv, termEv}, now: start,
			started: []string{reconcile.ProofFound}, terminated: []string{reconcile.ProofNotYet}, note: "the grant is active"},
		{name: "unrecorded session found by its reason", recorded: []latch.SSMSession{recorded}, events: []reconcile.Event{startEv, termEv, unrecordedStart, otherStart},
			now: start.Add(time.Hour), started: []string{reconcile.ProofFound, reconcile.ProofFound},
			terminated: []string{reconcile.ProofFound, reconcile.ProofMissing}, missing: true},
		{name: "no session", events: []reconcile.Event{otherStart, failedStart}, now: start},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := grant
			if tt.grant != nil {
				tt.grant(&g)
			}
			ps, err := reconcile.ProveSessions(t.Context(), &cloud{events: tt.events}, sessions{g.ID: tt.recorded}, g, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != len(tt.started) || ps.Missing() != tt.missing {
				t.Fatalf("ProveSessions = %+v; want %d session(s), missing %v", ps, len(tt.started), tt.missing)
			}
			if ps == nil {
				t.Error("ProveSessions = nil; want an empty list")
			}
			for i, p := range ps {
				if p.Started.Status != tt.started[i] || p.Terminated.Status != tt.terminated[i] {
					t.Errorf("session %d = %+v; want started %s, terminated %s", i, p, tt.started[i], tt.terminated[i])
				}
			}
			if len(ps) == 0 {
				return
			}
			p := ps[0]
			if !strings.Contains(p.Terminated.Note, tt.note) {
				t.Errorf("terminated note %q; want it to mention %q", p.Terminated.Note, tt.note)
			}
			if p.SessionID != sid || !p.Recorded {
				t.Errorf("first session = %+v; want %s, recorded", p, sid)
			}
			if p.Started.Status == reconcile.ProofFound && (p.Started.EventID != "e1" || p.Started.Actor != roleARN || p.Started.SourceIdentity != "alice" ||
				p.Started.What != "session "+sid+": SSM-SessionManagerRunShell on "+instance+`, reason "`+reason+`"`) {
				t.Errorf("started = %+v", p.Started)
			}
			if p.Terminated.Status == reconcile.ProofFound && (p.Terminated.EventID != "e2" || p.Terminated.Actor != latchARN) {
				t.Errorf("terminated = %+v; want the successful e2", p.Terminated)
			}
			if len(ps) > 1 && (ps[1].SessionID != "alice-00000000000000002" || ps[1].Recorded || ps[1].Started.EventID != "e4") {
				t.Errorf("second session = %+v; want the unrecorded one started by e4", ps[1])
			}
		})
	}

	t.Run("NotSSM", func(t *testing.T) {
		g := grant
		g.Access = latch.AccessNetwork
		if _, err := reconcile.ProveSessions(t.Context(), &cloud{}, sessions{}, g, start); latch.ErrorCode(err) != latch.ECONFLICT {
			t.Fatalf("err = %v; want ECONFLICT", err)
		}
	})
}
