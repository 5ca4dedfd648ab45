package broker_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/internal/awstest"
	"github.com/latchdev/latch/mock"
	"github.com/latchdev/latch/sqlite"
)

var start = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// fixture is one broker on a real store and an EC2 endpoint.
type fixture struct {
	env   *awstest.Env
	store *sqlite.Store
	clock *mock.Clock
	b     *broker.Broker
	group latch.GroupID
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.String()
}

func newFixture(t testing.TB, env *awstest.Env, opts broker.Options) *fixture {
	t.Helper()
	f := &fixture{env: env, clock: mock.NewClock(start), logs: &syncBuffer{}}
	var err error
	f.store, err = sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latch.db"), sqlite.Options{Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	opts.Clock = f.clock
	opts.Logger = slog.New(slog.NewJSONHandler(f.logs, nil))
	f.b = broker.New(f.store, []latch.Firewall{env.Firewall(t)}, map[string]broker.GroupLookup{awstest.Region: latchaws.NewInventory(env.Config(), nil)}, opts)
	f.group = env.ManagedGroup(t)
	return f
}

func (f *fixture) request(src string, d time.Duration) latch.GrantRequest {
	return latch.GrantRequest{
		Region: awstest.Region, GroupID: f.group, Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22},
		Source: mustSource(src), Duration: d, Requester: "alice@example.com", Reason: "deploy",
	}
}

func (f *fixture) grant(t *testing.T, src string, d time.Duration) latch.Grant {
	t.Helper()
	g, err := f.b.Grant(t.Context(), f.request(src, d))
	if err != nil {
		t.Fatalf("Grant(%s for %s) = %v", src, d, err)
	}
	return g
}

func (f *fixture) state(t *testing.T, id latch.GrantID) latch.Grant {
	t.Helper()
	g, err := f.store.Grant(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// ruleTags returns the tags of every ingress rule in the group, by rule ID.
func (f *fixture) ruleTags(t *testing.T) map[latch.RuleID]map[string]string {
	t.Helper()
	out := map[latch.RuleID]map[string]string{}
	for _, r := range f.env.Ingress(t, f.group) {
		out[latch.RuleID(*r.SecurityGroupRuleId)] = awstest.Tags(r)
	}
	return out
}

func TestGrantOpensTaggedRule(t *testing.T) {
	f := newFixture(t, awstest.New(t), broker.Options{})
	g := f.grant(t, "203.0.113.7", 30*time.Minute)

	if g.State != latch.StateActive || g.RuleID == "" {
		t.Fatalf("grant = %s with rule %q, want active with a rule", g.State, g.RuleID)
	}
	if !g.ExpiresAt.Equal(start.Add(30 * time.Minute)) {
		t.Errorf("expires at %v, want start+30m", g.ExpiresAt)
	}
	rules := f.env.Ingress(t, f.group)
	if len(rules) != 1 {
		t.Fatalf("group has %d ingress rules, want 1", len(rules))
	}
	r := rules[0]
	if *r.SecurityGroupRuleId != string(g.RuleID) || *r.CidrIpv4 != "203.0.113.7/32" || *r.FromPort != 22 || *r.ToPort != 22 || *r.IpProtocol != "tcp" {
		t.Errorf("rule = %s %s %d-%d %s, want %s tcp 22 from 203.0.113.7/32", *r.SecurityGroupRuleId, *r.IpProtocol, *r.FromPort, *r.ToPort, *r.CidrIpv4, g.RuleID)
	}
	want := map[string]string{latch.TagGrantID: string(g.ID), latch.TagExpiresAt: "2026-11-23T10:30:00Z", latch.TagRequester: "alice@example.com"}
	for k, v := range want {
		if got := awstest.Tags(r)[k]; got != v {
			t.Errorf("tag %s = %q, want %q", k, got, v)
		}
	}
	hist, err := f.store.History(t.Context(), g.ID)
	if err != nil || len(hist) != 2 || hist[0].State != latch.StateRequested || hist[1].State != latch.StateActive {
		t.Errorf("history = %+v, %v; want requested then active", hist, err)
	}
	line := evidence(t, f.logs.String(), "granted")
	for _, k := range []string{`"grant_id":"` + string(g.ID), `"rule_id":"` + string(g.RuleID), `"group_id":"` + string(f.group),
		`"source":"203.0.113.7/32"`, `"ports":"22"`, `"requester":"alice@example.com"`, `"expires_at":"2026-11-23T10:30:00Z"`} {
		if !strings.Contains(line, k) {
			t.Errorf("evidence line %s lacks %s", line, k)
		}
	}
}

// evidence returns the one JSON log line with msg.
func evidence(t *testing.T, logs, msg string) string {
	t.Helper()
	var found []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"msg":"`+msg+`"`) {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %q evidence lines, want 1:\n%s", len(found), msg, logs)
	}
	return found[0]
}

func TestBadRequestRecordsNothing(t *testing.T) {
	f := newFixture(t, awstest.New(t), broker.Options{})
	for name, edit := range map[string]func(*latch.GrantRequest){
		"whole internet":   func(r *latch.GrantRequest) { r.Source = netip.MustParsePrefix("0.0.0.0/0") },
		"too long":         func(r *latch.GrantRequest) { r.Duration = 2 * time.Hour },
		"no reason":        func(r *latch.GrantRequest) { r.Reason = "" },
		"unknown region":   func(r *latch.GrantRequest) { r.Region = "eu-west-1" },
		"malformed group":  func(r *latch.GrantRequest) { r.GroupID = "sg-12" },
		"IPv6 whole world": func(r *latch.GrantRequest) { r.Source = netip.MustParsePrefix("::/0") },
	} {
		req := f.request("203.0.113.7", time.Minute)
		edit(&req)
		if _, err := f.b.Grant(t.Context(), req); latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("%s: Grant() = %v, want EINVALID", name, err)
		}
	}
	if gs, _ := f.store.Grants(t.Context(), latch.GrantFilter{}); len(gs) != 0 {
		t.Errorf("%d grants recorded for bad requests", len(gs))
	}
	if rules := f.env.Ingress(t, f.group); len(rules) != 0 {
		t.Errorf("%d rules opened for bad requests", len(rules))
	}
}

// A group that passes the managed check but is gone when the rule is
// authorized (deleted in between) fails the grant, recorded with the error.
func TestGroupGoneAtAuthorizeFailsTheGrant(t *testing.T) {
	env := awstest.New(t)
	f := newFixture(t, env, broker.Options{})
	const gone = "sg-0000000000000dead"
	f.b = broker.New(f.store, []latch.Firewall{env.Firewall(t)},
		map[string]broker.GroupLookup{awstest.Region: managedLookup{}}, broker.Options{Clock: f.clock})
	req := f.request("203.0.113.7", time.Minute)
	req.GroupID = gone
	g, err := f.b.Grant(t.Context(), req)
	if latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Fatalf("Grant() = %v, want ENOTFOUND", err)
	}
	if got := f.state(t, g.ID); got.State != latch.StateFailed || got.LastError == "" {
		t.Errorf("grant = %s (%q), want failed with the error", got.State, got.LastError)
	}
}

// managedLookup says every group exists and is managed.
type managedLookup struct{}

func (managedLookup) Group(_ context.Context, id latch.GroupID) (latch.Group, error) {
	return latch.Group{ID: id, Tags: map[string]string{latch.TagManaged: "true"}}, nil
}

func TestExpireRevokesTheRule(t *testing.T) {
	f := newFixture(t, awstest.New(t), broker.Options{})
	g := f.grant(t, "2001:db8::7", 30*time.Minute)

	f.clock.Advance(30*time.Minute - time.Second)
	if err := f.b.Expire(t.Context(), g.ID); err != nil {
		t.Fatal(err)
	}
	if len(f.ruleTags(t)) != 1 {
		t.Fatal("Expire revoked a rule a second before its expiry")
	}
	f.clock.Advance(time.Second)
	if err := f.b.Expire(t.Context(), g.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(f.ruleTags(t)); n != 0 {
		t.Fatalf("%d rules left after expiry", n)
	}
	got := f.state(t, g.ID)
	if got.State != latch.StateExpired || !got.EndedAt.Equal(start.Add(30*time.Minute)) {
		t.Errorf("grant = %s ended %v, want expired at expiry", got.State, got.EndedAt)
	}
	if err := f.b.Expire(t.Context(), g.ID); err != nil {
		t.Errorf("second Expire = %v, want nil (idempotent)", err)
	}
	evidence(t, f.logs.String(), "expired")
}

func TestRevokeEndsEarly(t *testing.T) {
	f := newFixture(t, awstest.New(t), broker.Options{})
	g := f.grant(t, "203.0.113.7", 30*time.Minute)
	f.clock.Advance(time.Minute)
	got, err := f.b.Revoke(t.Context(), g.ID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Grant.State != latch.StateRevoked || got.KeptFor != nil || len(f.ruleTags(t)) != 0 {
		t.Fatalf("after Revoke: %s (kept for %v) with %d rules, want revoked with none", got.Grant.State, got.KeptFor, len(f.ruleTags(t)))
	}
	if _, err := f.b.Revoke(t.Context(), g.ID, "alice"); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Errorf("second Revoke = %v, want ECONFLICT", err)
	}
	if _, err := f.b.Revoke(t.Context(), "g-0000000000000000", "alice"); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("Revoke(unknown) = %v, want ENOTFOUND", err)
	}
}

func TestRuleGoneOutOfBandCountsAsRevoked(t *testing.T) {
	f := newFixture(t, awstest.New(t), broker.Options{})
	g := f.grant(t, "203.0.113.7", 30*time.Minute)
	revokeDirectly(t, f, g.RuleID)
	if _, err := f.b.Revoke(t.Context(), g.ID, "alice"); err != nil {
		t.Fatalf("Revoke of a rule already gone = %v, want nil", err)
	}
}

func revokeDirectly(t *testing.T, f *fixture, id latch.RuleID) {
	t.Helper()
	fw := f.env.Firewall(t)
	if err := fw.Revoke(context.Background(), f.group, id); err != nil {
		t.Fatal(err)
	}
}

func mustSource(s string) netip.Prefix {
	p, err := latch.ParseSource(s)
	if err != nil {
		panic(err)
	}
	return p
}

// A caller that gives up (Ctrl-C) after the rule is made still gets it
// recorded, so it can revoke it, rather than leaving a rule the store does
// not know.
func TestGrantFinishesItsStepWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	f := newFixture(t, awstest.New(t), broker.Options{Checkpoint: func(name string) {
		if name == "after-authorize" {
			cancel()
		}
	}})
	g, err := f.b.Grant(ctx, f.request("203.0.113.7", time.Minute))
	if err != nil {
		t.Fatalf("Grant() = %v, want the step finished despite the cancel", err)
	}
	if got := f.state(t, g.ID); got.State != latch.StateActive || got.RuleID == "" {
		t.Fatalf("grant recorded as %s on %q, want active with its rule", got.State, got.RuleID)
	}
}
