package leader_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/internal/awstest"
	"github.com/latchdev/latch/internal/pgtest"
	"github.com/latchdev/latch/leader"
	"github.com/latchdev/latch/mock"
	"github.com/latchdev/latch/postgres"
	"github.com/latchdev/latch/revoker"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

const ttl = 10 * time.Second

func open(t *testing.T, dsn string, clock latch.Clock) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// run runs e until the test ends, leading with lead. The function it
// returns stops e and waits for Run to return (a lease it held released).
func run(t *testing.T, e *leader.Elector, lead func(ctx context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, lead) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run(%s) = %v", e.Holder(), err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func idle(ctx context.Context) error { <-ctx.Done(); return nil }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func leading(e *leader.Elector) bool { _, ok := e.Leading(); return ok }

// One process leads while it renews; the other takes over at once when
// the leader lets go, in a later term.
func TestOneLeaderAtATime(t *testing.T) {
	dsn := pgtest.Start(t)
	clock := mock.NewClock(t0)
	var mu sync.Mutex
	var seen []string
	observe := func(name string) func(bool, int64) {
		return func(leading bool, token int64) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, fmt.Sprint(name, " ", leading, " ", token))
		}
	}
	a := leader.New(open(t, dsn, clock), leader.Options{Holder: "a", TTL: ttl, Clock: clock, Observe: observe("a")})
	b := leader.New(open(t, dsn, clock), leader.Options{Holder: "b", TTL: ttl, Clock: clock, Observe: observe("b")})
	stopA := run(t, a, idle)
	waitFor(t, "a to lead", func() bool { return leading(a) })
	first, _ := a.Leading()
	run(t, b, idle)
	for range 12 { // two minutes of renewals: b never leads
		clock.Advance(ttl / 3)
		now := clock.Now()
		waitFor(t, "a to renew", func() bool { l, _ := a.Leading(); return l.Until.Sub(now) > ttl/2 })
		if leading(b) {
			t.Fatalf("b leads at %s while a renews", now)
		}
	}
	if l, _ := a.Leading(); l.Token != first.Token {
		t.Errorf("renewals changed a's token from %d to %d", first.Token, l.Token)
	}
	stopA() // returns once a has released the lease
	if leading(a) {
		t.Fatal("a leads after it stopped")
	}
	clock.Advance(ttl / 3) // b's next campaign
	waitFor(t, "b to take over", func() bool { return leading(b) })
	lb, _ := b.Leading()
	if lb.Token <= first.Token {
		t.Errorf("b's term %d; want later than a's %d", lb.Token, first.Token)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{fmt.Sprint("a true ", first.Token), fmt.Sprint("a false ", first.Token), fmt.Sprint("b true ", lb.Token)}; !slices.Equal(seen, want) {
		t.Errorf("observed %q; want %q (each change once, renewals not at all)", seen, want)
	}
}

// A leader whose clock stood still (a paused process, or one whose clock
// lags) believes its lease is live after another took it over; the fence's
// check in the store refuses it all the same, before anything is revoked.
func TestFenceRefusesAStaleLeader(t *testing.T) {
	dsn := pgtest.Start(t)
	clockA, clockB := mock.NewClock(t0), mock.NewClock(t0)
	a := leader.New(open(t, dsn, clockA), leader.Options{Holder: "a", TTL: ttl, Clock: clockA})
	b := leader.New(open(t, dsn, clockB), leader.Options{Holder: "b", TTL: ttl, Clock: clockB})
	run(t, a, idle)
	waitFor(t, "a to lead", func() bool { return leading(a) })
	var swept atomic.Int32
	sweep := a.FenceSweeper(sweeperFunc(func(context.Context) error { swept.Add(1); return nil }))
	if err := sweep.Sweep(t.Context()); err != nil || swept.Load() != 1 {
		t.Fatalf("the leader's sweep: %v, %d sweeps", err, swept.Load())
	}
	run(t, b, idle)
	clockB.Advance(ttl + time.Second) // a's lease lapses, by b's clock only
	waitFor(t, "b to take over", func() bool { return leading(b) })
	if !leading(a) {
		t.Fatal("a noticed; this test wants it to believe it still leads")
	}
	err := sweep.Sweep(t.Context())
	if latch.ErrorCode(err) != latch.ECONFLICT || swept.Load() != 1 {
		t.Fatalf("a stale leader's sweep: %v, %d sweeps; want ECONFLICT and no sweep", err, swept.Load())
	}
	t.Logf("refused: %v", err)
}

// A sweep that began while its process led checks the fence again before
// every batch: once another process has the lease, its next batch is
// refused, though the sweep itself goes on.
func TestFenceChecksEveryBatchOfASweep(t *testing.T) {
	env := awstest.New(t)
	dsn := pgtest.Start(t)
	clockA, clockB := mock.NewClock(t0), mock.NewClock(t0)
	a := leader.New(open(t, dsn, clockA), leader.Options{Holder: "a", TTL: ttl, Clock: clockA})
	b := leader.New(open(t, dsn, clockB), leader.Options{Holder: "b", TTL: ttl, Clock: clockB})
	run(t, a, idle)
	waitFor(t, "a to lead", func() bool { return leading(a) })
	var revokes atomic.Int32
	fw := leader.Firewall(&countingFirewall{Firewall: env.Firewall(t), n: &revokes})
	group := env.ManagedGroup(t)
	var errs []error
	sweep := a.FenceSweeper(sweeperFunc(func(ctx context.Context) error {
		_, err := fw.RevokeMany(ctx, group, nil)
		errs = append(errs, err)
		run(t, b, idle)
		clockB.Advance(ttl + time.Second) // b takes over mid-sweep
		waitFor(t, "b to take over", func() bool { return leading(b) })
		_, err = fw.RevokeMany(ctx, group, nil)
		errs = append(errs, err, fw.Revoke(ctx, group, "sgr-0123456789abcdef0"), fw.Tag(ctx, "sgr-0123456789abcdef0", nil))
		return nil
	}))
	if err := sweep.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || revokes.Load() != 1 {
		t.Fatalf("the first batch, while a led: %v (%d calls)", errs[0], revokes.Load())
	}
	for i, err := range errs[1:] {
		if latch.ErrorCode(err) != latch.ECONFLICT {
			t.Errorf("call %d after b took over = %v; want ECONFLICT", i+2, err)
		}
	}
	if revokes.Load() != 1 {
		t.Errorf("%d revoke calls; want only the first batch's", revokes.Load())
	}
	// The same firewall, outside the revoker (a person's revoke through
	// the API of a replica that does not lead), is not fenced.
	if _, err := fw.RevokeMany(t.Context(), group, nil); err != nil || revokes.Load() != 2 {
		t.Errorf("an unfenced call: %v, %d calls", err, revokes.Load())
	}
}

type sweeperFunc func(ctx context.Context) error

func (f sweeperFunc) Sweep(ctx context.Context) error { return f(ctx) }

// replica is one latch process's revoking half: its own connection to the
// database, its own firewall, an elector and a revoker run while it leads.
type replica struct {
	e       *leader.Elector
	store   *postgres.Store
	b       *broker.Broker
	revokes atomic.Int32 // RevokeSecurityGroupIngress calls this replica made
}

func newReplica(t *testing.T, env *awstest.Env, dsn, name string, clock latch.Clock) *replica {
	r := &replica{store: open(t, dsn, clock)}
	fw := leader.Firewall(&countingFirewall{Firewall: env.Firewall(t), n: &r.revokes})
	r.b = broker.New(r.store, []latch.Firewall{fw}, map[string]broker.GroupLookup{awstest.Region: latchaws.NewInventory(env.Config(), nil)}, broker.Options{Clock: clock})
	r.e = leader.New(r.store, leader.Options{Holder: name, TTL: ttl, Clock: clock})
	return r
}

// lead runs the revoker, fenced, with x (the broker, or a wrapper of it).
func (r *replica) lead(clock latch.Clock, x leader.Expirer) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		return revoker.New(r.store, r.e.FenceExpirer(x), nil, revoker.Options{Clock: clock, Recheck: time.Second}).Run(ctx)
	}
}

type countingFirewall struct {
	latch.Firewall
	n *atomic.Int32
}

func (f *countingFirewall) Revoke(ctx context.Context, g latch.GroupID, id latch.RuleID) error {
	f.n.Add(1)
	return f.Firewall.Revoke(ctx, g, id)
}

func (f *countingFirewall) RevokeMany(ctx context.Context, g latch.GroupID, ids []latch.RuleID) ([]latch.RuleID, error) {
	f.n.Add(1)
	return f.Firewall.RevokeMany(ctx, g, ids)
}

// gated holds each expiry until released: a leader's batch in flight,
// slowed (by AWS, say) across the moment it loses the database.
type gated struct {
	x       leader.Expirer
	entered chan struct{}
	release chan struct{}
}

func (g gated) Expire(ctx context.Context, id latch.GrantID) error {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.release
	return g.x.Expire(ctx, id)
}

// A leader cut off from the database stops revoking at its fence, before
// the lease lapses and another replica can take it: its batch in flight
// revokes nothing afterwards, and the new leader revokes every grant.
func TestPartitionedLeaderStopsBeforeAnotherStarts(t *testing.T) {
	env := awstest.New(t)
	dsn := pgtest.Start(t)
	dsnA, partition := pgtest.Partitioned(t, dsn)
	clock := mock.NewClock(t0)
	a, b := newReplica(t, env, dsnA, "a", clock), newReplica(t, env, dsn, "b", clock)
	group := env.ManagedGroup(t)
	var grants []latch.Grant
	for _, src := range []string{"198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32"} {
		g, err := b.b.Grant(t.Context(), latch.GrantRequest{
			Region: awstest.Region, GroupID: group, Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22},
			Source: netip.MustParsePrefix(src), Duration: time.Minute, Requester: "alice@example.com", Reason: "deploy",
		})
		if err != nil {
			t.Fatal(err)
		}
		grants = append(grants, g)
	}
	clock.Advance(55 * time.Second)
	gate := gated{x: a.b, entered: make(chan struct{}, 1), release: make(chan struct{})}
	run(t, a.e, a.lead(clock, gate))
	waitFor(t, "a to lead", func() bool { return leading(a.e) })
	run(t, b.e, b.lead(clock, b.b))

	clock.Advance(5 * time.Second) // the grants fall due; a starts its batch
	<-gate.entered
	partition.Cut()
	la, _ := a.e.Leading()
	fenceAt := la.Until.Add(-ttl / 5)
	clock.Set(fenceAt)
	waitFor(t, "a to stop leading at its fence", func() bool { return !leading(a.e) })
	if leading(b.e) {
		t.Fatal("b leads while a's lease is live")
	}
	stoppedAt := clock.Now()

	clock.Set(la.Until.Add(ttl / 3)) // a's lease has lapsed, and b campaigns again
	waitFor(t, "b to take over", func() bool { return leading(b.e) })
	lb, _ := b.e.Leading()
	if started := lb.Until.Add(-ttl); !stoppedAt.Before(started) || !la.Until.After(stoppedAt) {
		t.Errorf("a stopped at %s, its lease ended %s, b's term began %s; want a stopped first", stoppedAt, la.Until, started)
	}
	waitFor(t, "b to expire every grant", func() bool {
		for _, g := range grants {
			if got, err := b.store.Grant(t.Context(), g.ID); err != nil || got.State != latch.StateExpired {
				return false
			}
		}
		return true
	})
	close(gate.release) // a's batch in flight resumes, too late
	waitFor(t, "a's revoker to stop", func() bool { return len(gate.entered) == 0 })
	if n := a.revokes.Load(); n != 0 {
		t.Errorf("the cut-off leader made %d revoke calls; want none", n)
	}
	if n := b.revokes.Load(); n == 0 {
		t.Error("the new leader made no revoke call")
	}
	if rules := env.Ingress(t, group); len(rules) != 0 {
		t.Errorf("%d rules left open", len(rules))
	}
}

type deadlineProbe struct{ hadDeadline atomic.Bool }

func (p *deadlineProbe) Expire(context.Context, latch.GrantID) error { return nil }
func (p *deadlineProbe) ExpireMany(ctx context.Context, _ []latch.GrantID) error {
	_, ok := ctx.Deadline()
	p.hadDeadline.Store(ok)
	return nil
}

// A pass of due grants has no deadline of its own: paced inside EC2's
// throttle, 200 Revoke calls take about 40 s, longer than any one term's
// fence, and each call is fenced (with its own deadline) by the Firewall.
// With the term's deadline on the whole pass, its later batches failed on
// a healthy leader and were recorded as failed revokes.
func TestFencedPassHasNoDeadlineOfItsOwn(t *testing.T) {
	dsn := pgtest.Start(t)
	clock := mock.NewClock(t0)
	a := leader.New(open(t, dsn, clock), leader.Options{Holder: "a", TTL: ttl, Clock: clock})
	run(t, a, idle)
	waitFor(t, "a to lead", func() bool { return leading(a) })
	p := &deadlineProbe{}
	if err := a.FenceExpirer(p).ExpireMany(t.Context(), []latch.GrantID{"g-0000000000000001"}); err != nil {
		t.Fatal(err)
	}
	if p.hadDeadline.Load() {
		t.Error("the pass ran under the term's deadline")
	}
}

// The fence hides nothing the broker asks of the firewall it wraps: the
// rule count its placement messages give ("sg-A is full (60 rules)").
func TestFirewallPassesGroupRulesThrough(t *testing.T) {
	env := awstest.New(t)
	fw := leader.Firewall(env.Firewall(t))
	gr, ok := fw.(interface {
		GroupRules(ctx context.Context, group latch.GroupID) ([]latch.Rule, error)
	})
	if !ok {
		t.Fatal("leader.Firewall hides GroupRules")
	}
	if _, err := gr.GroupRules(t.Context(), env.ManagedGroup(t)); err != nil {
		t.Fatal(err)
	}
}
