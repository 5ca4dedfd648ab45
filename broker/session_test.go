package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/mock"
	"github.com/latchdev/latch/sqlite"
)

// fakeSSM is Session Manager in memory: enough to test what the broker
// decides. The real client against the simulator is tested in package
// aws and end to end in cmd/latch.
type fakeSSM struct {
	mu         sync.Mutex
	agents     map[latch.InstanceID]latch.AgentStatus
	live       map[latch.SSMSessionID]latch.SSMSession
	terminated []latch.SSMSessionID
	started    []latch.SessionStart
	n          int
	failEnd    error
	starting   func()
}

func newFakeSSM() *fakeSSM {
	return &fakeSSM{agents: map[latch.InstanceID]latch.AgentStatus{}, live: map[latch.SSMSessionID]latch.SSMSession{}}
}

func (f *fakeSSM) Agent(_ context.Context, id latch.InstanceID) (latch.AgentStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.agents[id], nil
}

func (f *fakeSSM) Start(_ context.Context, s latch.SessionStart) (latch.SessionHandle, error) {
	if f.starting != nil {
		f.starting() // AWS has the call, and lists no session yet
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	id := latch.SSMSessionID(fmt.Sprintf("%s-%017x", latch.RoleSessionName(s.Requester), f.n))
	reason := latch.SessionReason(s.Grant, s.Expires)
	g, exp, _ := latch.ParseSessionReason(reason)
	f.live[id] = latch.SSMSession{ID: id, GrantID: g, Target: s.Target, Document: s.Document, Reason: reason, Expires: exp}
	f.started = append(f.started, s)
	return latch.SessionHandle{SessionID: id, TokenValue: "secret-token", StreamURL: "wss://example/" + string(id), Target: s.Target, Document: s.Document}, nil
}

func (f *fakeSSM) Terminate(_ context.Context, id latch.SSMSessionID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failEnd != nil {
		return f.failEnd
	}
	delete(f.live, id)
	f.terminated = append(f.terminated, id)
	return nil
}

func (f *fakeSSM) Sessions(context.Context) ([]latch.SSMSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []latch.SSMSession
	for _, s := range f.live {
		out = append(out, s)
	}
	return out, nil
}

func (f *fakeSSM) running() []latch.SSMSessionID {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []latch.SSMSessionID
	for id := range f.live {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// instances is a lookup of instances and groups in memory.
type instances map[latch.InstanceID]latch.Instance

func (in instances) Instance(_ context.Context, id latch.InstanceID) (latch.Instance, error) {
	i, ok := in[id]
	if !ok {
		return latch.Instance{}, latch.Errorf(latch.ENOTFOUND, "instance %s not found", id)
	}
	return i, nil
}

func (instances) Group(_ context.Context, id latch.GroupID) (latch.Group, error) {
	return latch.Group{ID: id, Tags: map[string]string{latch.TagManaged: "true"}}, nil
}

const (
	boxManaged   latch.InstanceID = "i-0000000000000a001"
	boxUnmanaged latch.InstanceID = "i-0000000000000a002"
	boxOffline   latch.InstanceID = "i-0000000000000a003"
)

type ssmFixture struct {
	store *sqlite.Store
	clock *mock.Clock
	ssm   *fakeSSM
	b     *broker.Broker
}

func newSSMFixture(t *testing.T) *ssmFixture {
	t.Helper()
	return newSSMFixtureWith(t, nil)
}

// newSSMFixtureWith is newSSMFixture with a backstop.
func newSSMFixtureWith(t *testing.T, backstop broker.Backstop) *ssmFixture {
	t.Helper()
	f := &ssmFixture{clock: mock.NewClock(start), ssm: newFakeSSM()}
	var err error
	f.store, err = sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latch.db"), sqlite.Options{Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	managed := map[string]string{latch.TagManaged: "true"}
	lookup := instances{boxManaged: {ID: boxManaged, Tags: managed}, boxUnmanaged: {ID: boxUnmanaged, Tags: map[string]string{}},
		boxOffline: {ID: boxOffline, Tags: managed}}
	f.ssm.agents[boxManaged] = latch.AgentStatus{Registered: true, PingStatus: "Online"}
	f.ssm.agents[boxUnmanaged] = latch.AgentStatus{Registered: true, PingStatus: "Online"}
	f.ssm.agents[boxOffline] = latch.AgentStatus{Registered: true, PingStatus: "ConnectionLost"}
	f.b = broker.New(f.store, nil, map[string]broker.GroupLookup{"us-east-1": lookup}, broker.Options{
		Clock: f.clock, Logger: slog.New(slog.DiscardHandler), Sessions: map[string]latch.SessionManager{"us-east-1": f.ssm}, SessionRole: testSessionRole,
		Backstop: backstop,
	})
	return f
}

func ssmRequest(target latch.InstanceID, doc latch.SSMDocument, port int) latch.GrantRequest {
	r := latch.GrantRequest{Region: "us-east-1", Access: latch.AccessSSM, Target: target, Document: doc,
		Duration: 30 * time.Minute, Requester: "alice@example.com", Reason: "debug"}
	if doc.TakesPort() {
		r.Protocol, r.Ports = latch.TCP, latch.PortRange{From: port, To: port}
	}
	return r
}

// Session Manager access is refused, with nothing recorded, for an
// instance latch does not manage and for one whose agent is offline.
func TestSessionGrantRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target latch.InstanceID
		code   string
		says   string
	}{
		{"unmanaged", boxUnmanaged, latch.EFORBIDDEN, "not tagged latch:managed=true"},
		{"agent offline", boxOffline, latch.ECONFLICT, "ConnectionLost"},
		{"unknown", "i-0000000000000afff", latch.ENOTFOUND, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSSMFixture(t)
			_, err := f.b.Grant(t.Context(), ssmRequest(tc.target, latch.DocShell, 0))
			if latch.ErrorCode(err) != tc.code || !strings.Contains(latch.ErrorMessage(err), tc.says) {
				t.Fatalf("Grant = %v; want %s saying %q", err, tc.code, tc.says)
			}
			if gs, _ := f.store.Grants(t.Context(), latch.GrantFilter{}); len(gs) != 0 {
				t.Errorf("store holds %d grants; want none", len(gs))
			}
		})
	}
}

func TestSessionGrantBadInput(t *testing.T) {
	f := newSSMFixture(t)
	bad := map[string]latch.GrantRequest{}
	r := ssmRequest(boxManaged, latch.DocPortForward, 0)
	bad["port 0"] = r
	r = ssmRequest(boxManaged, latch.DocShell, 0)
	r.Ports = latch.PortRange{From: 22, To: 22}
	bad["shell with a port"] = r
	r = ssmRequest(boxManaged, "rdp", 0)
	bad["unknown document"] = r
	r = ssmRequest(boxManaged, latch.DocShell, 0)
	r.GroupID = "sg-0123456789abcdef0"
	bad["with a group"] = r
	for name, req := range bad {
		if _, err := f.b.Grant(t.Context(), req); latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("%s: Grant = %v; want EINVALID", name, err)
		}
	}
	if gs, _ := f.store.Grants(t.Context(), latch.GrantFilter{}); len(gs) != 0 {
		t.Errorf("store holds %d grants; want none", len(gs))
	}
}

// A session started for a grant is terminated when the grant expires,
// on the broker's clock, and recorded as ended.
func TestSessionEndsAtExpiry(t *testing.T) {
	f := newSSMFixture(t)
	g, err := f.b.Grant(t.Context(), ssmRequest(boxManaged, latch.DocPortForward, 5432))
	if err != nil {
		t.Fatal(err)
	}
	if g.State != latch.StateActive || g.RuleID != "" || g.GroupID != "" {
		t.Fatalf("grant = %+v; want active with no rule or group", g)
	}
	h, err := f.b.StartSession(t.Context(), g.ID, 15432)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(h.SessionID), "alice@example.com-") {
		t.Errorf("session %s is not named for the requester", h.SessionID)
	}
	if s := f.ssm.started[0]; s.Port != 5432 || s.LocalPort != 15432 || !s.Expires.Equal(g.ExpiresAt) {
		t.Errorf("started %+v; want port 5432, local port 15432, expiry %v", s, g.ExpiresAt)
	}
	if err := f.b.Expire(t.Context(), g.ID); err != nil { // not due yet
		t.Fatal(err)
	}
	if got := f.ssm.running(); len(got) != 1 {
		t.Fatalf("before expiry: running %v; want the session", got)
	}
	f.clock.Set(g.ExpiresAt)
	if err := f.b.Expire(t.Context(), g.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.ssm.running(); len(got) != 0 {
		t.Fatalf("after expiry: running %v; want none", got)
	}
	if got, _ := f.store.Grant(t.Context(), g.ID); got.State != latch.StateExpired {
		t.Errorf("grant %s; want expired", got.State)
	}
	ss, _ := f.store.GrantSessions(t.Context(), g.ID)
	if len(ss) != 1 || ss[0].ID != h.SessionID || !ss[0].EndedAt.Equal(g.ExpiresAt) {
		t.Errorf("recorded sessions %+v; want %s ended at %v", ss, h.SessionID, g.ExpiresAt)
	}
	if _, err := f.b.StartSession(t.Context(), g.ID, 0); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Errorf("StartSession on the expired grant = %v; want ECONFLICT", err)
	}
}

// Revoking a grant terminates its sessions even when the store lost
// their record: AWS lists them under the grant's name.
func TestRevokeEndsSessionsTheStoreDoesNotKnow(t *testing.T) {
	f := newSSMFixture(t)
	g, err := f.b.Grant(t.Context(), ssmRequest(boxManaged, latch.DocShell, 0))
	if err != nil {
		t.Fatal(err)
	}
	// A session started for this grant by a process that died before
	// recording it.
	if _, err := f.ssm.Start(t.Context(), latch.SessionStart{Grant: g.ID, Target: boxManaged, Document: latch.DocShell,
		Requester: g.Requester, Expires: g.ExpiresAt}); err != nil {
		t.Fatal(err)
	}
	// Another grant's session stays.
	other, err := f.b.Grant(t.Context(), ssmRequest(boxManaged, latch.DocShell, 0))
	if err != nil {
		t.Fatal(err)
	}
	kept, err := f.b.StartSession(t.Context(), other.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.b.Revoke(t.Context(), g.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if got := f.ssm.running(); !slices.Equal(got, []latch.SSMSessionID{kept.SessionID}) {
		t.Errorf("running %v; want only the other grant's %s", got, kept.SessionID)
	}
}

// When Session Manager refuses to terminate, the grant stays ending and
// is retried, as a rule's revoke is.
func TestSessionTerminateFailureIsRetried(t *testing.T) {
	f := newSSMFixture(t)
	g, err := f.b.Grant(t.Context(), ssmRequest(boxManaged, latch.DocShell, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.b.StartSession(t.Context(), g.ID, 0); err != nil {
		t.Fatal(err)
	}
	f.ssm.failEnd = latch.Errorf(latch.EUNAVAILABLE, "ThrottlingException")
	f.clock.Set(g.ExpiresAt)
	if err := f.b.Expire(t.Context(), g.ID); err == nil {
		t.Fatal("Expire succeeded though every terminate fails")
	}
	got, _ := f.store.Grant(t.Context(), g.ID)
	if got.State != latch.StateRevoking || got.Attempts != 1 || !strings.Contains(got.LastError, "ThrottlingException") {
		t.Fatalf("grant %s, %d attempts, %q; want revoking, 1, the error", got.State, got.Attempts, got.LastError)
	}
	f.ssm.failEnd = nil
	f.clock.Set(got.NextAttempt)
	if err := f.b.Expire(t.Context(), g.ID); err != nil {
		t.Fatal(err)
	}
	if running := f.ssm.running(); len(running) != 0 {
		t.Errorf("running %v after the retry; want none", running)
	}
}

// A sweep with no store ends every overdue latch session from AWS alone,
// and leaves sessions whose grant has time left.
func TestSweepSessionsWithoutAStore(t *testing.T) {
	f := newSSMFixture(t)
	ctx := t.Context()
	now := start.Add(time.Hour)
	overdue, _ := f.ssm.Start(ctx, latch.SessionStart{Grant: latch.NewGrantID(), Target: boxManaged, Requester: "alice", Expires: now.Add(-time.Second)})
	current, _ := f.ssm.Start(ctx, latch.SessionStart{Grant: latch.NewGrantID(), Target: boxManaged, Requester: "bob", Expires: now.Add(time.Minute)})

	reports, err := broker.SweepSessions(ctx, map[string]latch.SessionManager{"us-east-1": f.ssm}, now, true, nil, nil)
	if err != nil || len(reports[0].Swept) != 1 || reports[0].Swept[0].Terminated {
		t.Fatalf("dry run = %+v, %v; want one overdue session found, none terminated", reports, err)
	}
	if len(f.ssm.running()) != 2 {
		t.Fatal("a dry run terminated a session")
	}
	if _, err := broker.SweepSessions(ctx, map[string]latch.SessionManager{"us-east-1": f.ssm}, now, false, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.ssm.running(); !slices.Equal(got, []latch.SSMSessionID{current.SessionID}) {
		t.Errorf("running %v; want only %s (overdue %s ended)", got, current.SessionID, overdue.SessionID)
	}
}

// A grant ended while its session was starting does not leave the
// session running: the grant's end listed the sessions before AWS had
// this one, so StartSession, seeing the grant ended, terminates it.
func TestSessionStartedAsTheGrantEndsIsTerminated(t *testing.T) {
	f := newSSMFixture(t)
	g, err := f.b.Grant(t.Context(), ssmRequest(boxManaged, latch.DocShell, 0))
	if err != nil {
		t.Fatal(err)
	}
	f.ssm.starting = func() {
		f.ssm.starting = nil
		if _, err := f.b.Revoke(context.Background(), g.ID, "bob"); err != nil {
			t.Errorf("revoke during start: %v", err)
		}
	}
	_, err = f.b.StartSession(t.Context(), g.ID, 0)
	if latch.ErrorCode(err) != latch.ECONFLICT {
		t.Fatalf("StartSession = %v; want ECONFLICT (the grant ended)", err)
	}
	if got := f.ssm.running(); len(got) != 0 {
		t.Errorf("running %v; want none", got)
	}
	if len(f.ssm.terminated) != 1 {
		t.Errorf("terminated %v; want the one session, by StartSession", f.ssm.terminated)
	}
}

const testSessionRole = "arn:aws:iam::123456789012:role/latch-session"
