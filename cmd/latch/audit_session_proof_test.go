package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/sqlite"
)

// sessionGrant runs latch session with port forwarding on box-1 until the
// session is connected, stops it (which ends the grant), and returns the
// grant it made.
func (w *ssmWorld) sessionGrant(t *testing.T) latch.Grant {
	t.Helper()
	seen := map[latch.GrantID]bool{}
	for _, g := range w.grants(t) {
		seen[g.ID] = true
	}
	before := len(seen)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() {
		done <- w.latchCtx(ctx, t, "session", "box-1", "--document", "port-forward", "--port", "7", "--local-port", strconv.Itoa(freePort(t)), "--plugin", w.plugin)
	}()
	waitFor(t, "the session", func() bool {
		ss := w.sessions()
		return len(ss) == before+1 && ss[len(ss)-1].Status == "Connected"
	}, func() string { return w.server.output() })
	// AWS lists the session as soon as it starts; the server records it
	// just after. Ending it before that (a loaded machine) would race the
	// record, which is what the proof reads.
	waitFor(t, "the server to record the session", func() bool { return w.recordedSessions(t) == before+1 },
		func() string { return w.server.output() })
	cancel()
	if r := <-done; !strings.Contains(r.stderr, "revoked g-") {
		t.Fatalf("stopping latch session did not end its grant: %s", r.stderr)
	}
	gs := w.grants(t)
	if len(gs) != before+1 {
		t.Fatalf("%d grants; want %d", len(gs), before+1)
	}
	for _, g := range gs {
		if !seen[g.ID] {
			return g
		}
	}
	panic("unreachable")
}

// audit proof of a Session Manager grant finds the session's StartSession,
// made by the session role as the requester (its source identity names
// them), and the TerminateSession latch made at the grant's end; with
// CloudTrail late, both are pending, then missing after 15 minutes.
func TestAuditProofSessions(t *testing.T) {
	w := startSSMWorld(t)
	g := w.sessionGrant(t)
	if g.Access != latch.AccessSSM || g.State.Open() {
		t.Fatalf("grant %+v; want an ended Session Manager grant", g)
	}
	sessions := w.sessions()
	sid := sessions[0].ID
	who := latch.RoleSessionName(aliceARN)

	r := w.latch(t, "audit", "proof", string(g.ID))
	if r.code != 0 || !strings.Contains(r.stdout, "session "+sid) || !strings.Contains(r.stdout, "started 20") ||
		!strings.Contains(r.stdout, "StartSession by arn:aws:sts::123456789012:assumed-role/latch-session/"+who+" (source identity "+who+")") ||
		!strings.Contains(r.stdout, "AWS-StartPortForwardingSession on "+boxInstance) || !strings.Contains(r.stdout, "TerminateSession by ") {
		t.Fatalf("proof: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = w.latch(t, "audit", "proof", string(g.ID), "--json")
	p := decode[struct {
		Grant    latchhttp.GrantJSON
		Opened   *proofSide
		Sessions []sessionProof
	}](t, r.stdout)
	if r.code != 0 || p.Grant.ID != g.ID || p.Opened != nil || len(p.Sessions) != 1 {
		t.Fatalf("proof --json: exit %d %+v\n%s", r.code, p, r.stdout)
	}
	s := p.Sessions[0]
	if s.SessionID != sid || !s.Recorded || s.Started.Status != "found" || s.Started.Event != "StartSession" || s.Started.SourceIdentity != who ||
		!strings.Contains(s.Started.What, string(g.ID)) || s.Terminated.Status != "found" || s.Terminated.Event != "TerminateSession" ||
		s.Terminated.EventID == "" || s.Terminated.EventID == s.Started.EventID {
		t.Errorf("session proof %+v", s)
	}
	for _, want := range []string{"session-started", "session-terminated", "session_id=" + sid, "document_name=AWS-StartPortForwardingSession"} {
		if out := w.latch(t, "audit", "ls").stdout; !strings.Contains(out, want) {
			t.Errorf("audit ls does not show %q:\n%s", want, out)
		}
	}

	// CloudTrail late: the second grant's calls are not delivered yet.
	w.env.Sim.SetCloudTrailDelay(time.Hour)
	g2 := w.sessionGrant(t)
	r = w.latch(t, "audit", "proof", string(g2.ID))
	if r.code != 0 || strings.Count(r.stdout, "pending: ") != 2 || !strings.Contains(r.stdout, "StartSession for session ") {
		t.Fatalf("proof before delivery: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	w.setClock(t, g2.EndedAt.Add(16*time.Minute))
	r = w.latch(t, "audit", "proof", string(g2.ID), "--json")
	p = decode[struct {
		Grant    latchhttp.GrantJSON
		Opened   *proofSide
		Sessions []sessionProof
	}](t, r.stdout)
	if r.code != exitRuntime || len(p.Sessions) != 1 || p.Sessions[0].Started.Status != "missing" || p.Sessions[0].Terminated.Status != "missing" {
		t.Fatalf("proof after the delivery window: exit %d %+v\n%s", r.code, p, r.stderr)
	}
}

// A Session Manager grant that started no session has nothing in
// CloudTrail to prove: audit proof says so, and succeeds.
func TestAuditProofNoSession(t *testing.T) {
	w := trailWorld(t, 0)
	store, err := sqlite.Open(t.Context(), w.vars["LATCH_DB"], sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := store.CreateGrant(t.Context(), latch.Grant{ID: "g-00000000000000ef", State: latch.StateActive, Region: "us-east-1",
		Access: latch.AccessSSM, Target: "i-0b0c00000000000b1", Document: latch.DocShell,
		Requester: "alice", Reason: "x", CreatedAt: start, ExpiresAt: start.Add(time.Hour)}, "made by hand")
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := w.latch(t, "audit", "proof", string(g.ID))
	if r.code != 0 || !strings.Contains(r.stdout, "no session was started: nothing to prove beyond the grant") {
		t.Fatalf("proof: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = w.latch(t, "audit", "proof", string(g.ID), "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"sessions":[]`) || strings.Contains(r.stdout, `"opened"`) {
		t.Fatalf("proof --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// recordedSessions counts the sessions the server's store records.
func (w *ssmWorld) recordedSessions(t *testing.T) int {
	t.Helper()
	store, err := sqlite.Open(t.Context(), w.vars["LATCH_DB"], sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	n := 0
	for _, g := range w.grants(t) {
		ss, err := store.GrantSessions(t.Context(), g.ID)
		if err != nil {
			t.Fatal(err)
		}
		n += len(ss)
	}
	return n
}
