package broker

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/latchdev/latch"
)

// Defaults for Options.
const (
	DefaultFailAfter  = 5
	DefaultRetryBase  = 2 * time.Second
	DefaultRetryMax   = 5 * time.Minute
	DefaultSettleTime = 2 * time.Minute
)

// Options are the broker's optional settings.
type Options struct {
	Clock       latch.Clock   // nil means latch.SystemClock
	Logger      *slog.Logger  // nil discards logs
	MaxDuration time.Duration // longest grant; 0 means latch.DefaultMaxDuration
	FailAfter   int           // failed revokes before a grant is revoke-failed; 0 means DefaultFailAfter
	RetryBase   time.Duration // first revoke retry delay; 0 means DefaultRetryBase
	RetryMax    time.Duration // longest revoke retry delay; 0 means DefaultRetryMax
	// SettleTime is how long a requested grant may stay requested before a
	// sweep decides its process died; 0 means DefaultSettleTime.
	SettleTime time.Duration
	// Observer is told about grants and sweeps, for metrics; nil means none.
	Observer Observer
	// Backstop, if set, keeps a schedule in AWS per open rule that revokes
	// it at expiry even if no latch process is left.
	Backstop Backstop
	// Sign, if set, signs each audit entry's hash and the log's head
	// (latch.SignAudit).
	Sign func(msg string) string
	// Sessions are Session Manager, by region: grants of Session Manager
	// access end through them, and sweeps list latch's sessions with them.
	Sessions map[string]latch.SessionManager
	// SessionRole is the role sessions are started under; "" means this
	// process starts none (Session Manager access is off), though it still
	// ends them.
	SessionRole string
	// Checkpoint, if set, is called at named points of opening and ending a
	// grant ("before-authorize", "after-authorize", "before-revoke",
	// "after-revoke"). Crash
	// tests use it to kill the process at a known step.
	Checkpoint func(name string)
}

// Broker opens and ends grants. It is safe for concurrent use.
type Broker struct {
	store     latch.Store
	firewalls map[string]latch.Firewall
	groups    map[string]GroupLookup
	clock     latch.Clock
	log       *slog.Logger
	opts      Options

	mu    sync.Mutex
	locks map[latch.Opening]*openingLock // guarded by mu
}

type openingLock struct {
	sync.Mutex
	users int // guarded by Broker.mu
}

// GroupLookup finds a security group in one region. The broker looks each
// group up before opening it, and opens only those tagged
// latch:managed=true; [latch.Inventory] is one.
type GroupLookup interface {
	// Group returns a security group with its tags. Returns ENOTFOUND.
	Group(ctx context.Context, id latch.GroupID) (latch.Group, error)
}

// New returns a broker that records grants in store and opens rules through
// firewalls, one per region, in the groups that groups (by region) say are
// tagged latch:managed=true. A region with a firewall but no group lookup
// opens nothing.
func New(store latch.Store, firewalls []latch.Firewall, groups map[string]GroupLookup, opts Options) *Broker {
	if opts.Clock == nil {
		opts.Clock = latch.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxDuration == 0 {
		opts.MaxDuration = latch.DefaultMaxDuration
	}
	if opts.FailAfter == 0 {
		opts.FailAfter = DefaultFailAfter
	}
	if opts.RetryBase == 0 {
		opts.RetryBase = DefaultRetryBase
	}
	if opts.RetryMax == 0 {
		opts.RetryMax = DefaultRetryMax
	}
	if opts.SettleTime == 0 {
		opts.SettleTime = DefaultSettleTime
	}
	if opts.Observer == nil {
		opts.Observer = nopObserver{}
	}
	fws := make(map[string]latch.Firewall, len(firewalls))
	for _, fw := range firewalls {
		fws[fw.Region()] = fw
	}
	return &Broker{store: store, firewalls: fws, groups: groups, clock: opts.Clock, log: opts.Logger, opts: opts, locks: map[latch.Opening]*openingLock{}}
}

func (b *Broker) firewall(region string) (latch.Firewall, error) {
	fw, ok := b.firewalls[region]
	if !ok {
		return nil, latch.Invalidf("region", "region %q is not configured; configured: %v", region, b.regions())
	}
	return fw, nil
}

func (b *Broker) regions() []string {
	var rs []string
	for r := range b.firewalls {
		rs = append(rs, r)
	}
	return rs
}

// lock serialises work on one opening within this process, so that deciding
// whether a rule is shared and acting on it cannot interleave.
func (b *Broker) lock(o latch.Opening) (unlock func()) {
	b.mu.Lock()
	l, ok := b.locks[o]
	if !ok {
		l = &openingLock{}
		b.locks[o] = l
	}
	l.users++
	b.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		b.mu.Lock()
		if l.users--; l.users == 0 {
			delete(b.locks, o)
		}
		b.mu.Unlock()
	}
}

// lockAll locks several openings at once, in one order (their text, each
// once) that every holder of more than one uses, so that a sweep's batch
// and an expiry batch sharing openings cannot each hold one the other
// waits for. A holder of one opening needs no order.
func (b *Broker) lockAll(os []latch.Opening) (unlock func()) {
	keyed := make(map[string]latch.Opening, len(os))
	for _, o := range os {
		keyed[fmt.Sprint(o)] = o
	}
	var unlocks []func()
	for _, k := range slices.Sorted(maps.Keys(keyed)) {
		unlocks = append(unlocks, b.lock(keyed[k]))
	}
	return func() {
		for _, u := range slices.Backward(unlocks) {
			u()
		}
	}
}

func (b *Broker) checkpoint(name string) {
	if b.opts.Checkpoint != nil {
		b.opts.Checkpoint(name)
	}
}

// now is the broker's one reading of the clock per unit of work, in whole
// seconds because rule tags carry whole seconds.
func (b *Broker) now() time.Time { return b.clock.Now().UTC().Truncate(time.Second) }

// backoff is the delay before revoke attempt n+1: exponential from RetryBase,
// capped at RetryMax, jittered by ±25% so replicas do not retry in step.
func (b *Broker) backoff(n int) time.Duration {
	d := b.opts.RetryBase
	for i := 1; i < n && d < b.opts.RetryMax; i++ {
		d *= 2
	}
	d = min(d, b.opts.RetryMax)
	jitter := time.Duration((rand.Float64() - 0.5) * 0.5 * float64(d))
	return d + jitter
}

// evidence writes the one structured line per grant or revoke that a log
// query can use to answer "who had access to what, when".
func (b *Broker) evidence(ctx context.Context, msg string, g latch.Grant, attrs ...any) {
	where := []any{"group_id", g.GroupID, "rule_id", g.RuleID, "source", g.Source.String()}
	if g.Access == latch.AccessSSM {
		where = []any{"access", latch.AccessSSM, "instance_id", g.Target, "document", g.Document}
	}
	attrs = append(append(append([]any{"grant_id", g.ID, "region", g.Region}, where...),
		"protocol", g.Protocol, "ports", g.Ports.String(),
		"requester", g.Requester, "expires_at", latch.FormatExpiry(g.ExpiresAt)), attrs...)
	b.log.InfoContext(ctx, msg, attrs...)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprint(err)
}

// Get returns one grant. Returns ENOTFOUND.
func (b *Broker) Get(ctx context.Context, id latch.GrantID) (latch.Grant, error) {
	return b.store.Grant(ctx, id)
}
