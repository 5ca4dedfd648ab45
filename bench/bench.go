// Package bench measures latch at scale, in one process: N grants over G
// security groups opened, expired in a burst and spread over a window, and
// swept, through the real broker, revoker, store and aws-sdk-go-v2 against
// the in-repo EC2 simulator served over loopback HTTP. It reports the
// figures issue #14 sets targets for (see [Report] and [Report.Targets]).
//
// Time is an injected clock ([mock.Clock]) that bench moves past each
// expiry, so nothing waits for a grant's duration; every lag is measured on
// the wall clock, from the moment the clock passes an expiry to the moment
// the broker reports the grant ended.
package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go/logging"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/mock"
	"github.com/latchdev/latch/notify"
	"github.com/latchdev/latch/sqlite"
)

// Defaults for Options.
const (
	DefaultGrants       = 10000
	DefaultGroups       = 200
	DefaultSharers      = 10
	DefaultSpreadWindow = 20 * time.Second
	DefaultStall        = 2 * time.Minute
	// MaxGrants bounds N: sources are distinct /32s under one /8 per phase.
	MaxGrants = 1 << 24
)

// region is the one region the benchmark runs in.
const region = "us-east-1"

// duration is every benchmark grant's length; the clock is moved past it.
const duration = 30 * time.Minute

// Options are a run's settings. The zero value, after defaults, is the
// issue's 10,000 grants over 200 groups on SQLite in a temporary directory.
type Options struct {
	Grants int // N, grants opened per phase; 0 means DefaultGrants
	Groups int // G, managed groups they spread over; 0 means DefaultGroups

	// Sharers is S, the grants sharing one rule in the shared phase; 0
	// means DefaultSharers. SharedOpenings is how many such rules; 0 means
	// min(Groups, 10).
	Sharers, SharedOpenings int
	// RawAuthorizes is how many raw SDK authorizes the baseline times; 0
	// means min(Grants, 1000).
	RawAuthorizes int
	// SpreadWindow is the clock time the spread phase's expiries cover,
	// one whole second apart; 0 means DefaultSpreadWindow. The clock moves
	// one second per SpreadStep of wall time (0 means one second), so that
	// expiries arrive at the rate they would.
	SpreadWindow time.Duration
	SpreadStep   time.Duration
	// Stall fails a phase whose grants stop ending for this long; 0 means
	// DefaultStall.
	Stall time.Duration

	// Notifier runs the notification worker `latch server` runs, with no
	// routes, so that the outbox's events are settled as they fall due, as
	// on a server; without it they stay pending, as under `latch run`,
	// which has no worker.
	Notifier bool

	// SimOptions configure the simulator. Its RuleLimit is raised to what
	// N/G needs when lower.
	SimOptions ec2sim.Options
	// Throttle, if not nil, is the simulator's model of EC2's token
	// buckets while grants are revoked (the burst, the sweep and the
	// spread): the revoking phases, whose question is whether revocation
	// fits inside EC2's throttle. Opening runs unthrottled, since 10,000
	// authorizes at EC2's 5 a second would take 33 minutes whatever latch
	// did. Mutating paces the revoker's mutating calls, as
	// --aws-mutating-rate does on a server; zero means unpaced.
	Throttle *ec2sim.Throttle
	Mutating latchaws.Limit
	// OpenStore opens the store the broker records grants in, with now as
	// its clock; nil means SQLite in a temporary directory, removed after.
	OpenStore func(ctx context.Context, now func() time.Time) (latch.Store, error)
	// DB names the store's kind in the report; "" means "sqlite".
	DB string

	// Progress, if set, is told how a long phase is going.
	Progress func(phase string, done, total int)
	Logger   *slog.Logger // nil discards logs
}

// Validate reports a setting out of range, naming it.
func (o Options) Validate() error {
	switch {
	case o.Grants < 0 || o.Grants > MaxGrants:
		return latch.Invalidf("grants", "grants %d: want 1 to %d", o.Grants, MaxGrants)
	case o.Groups < 0:
		return latch.Invalidf("groups", "groups %d: want at least 1", o.Groups)
	case o.Groups > o.withDefaults().Grants:
		return latch.Invalidf("groups", "groups %d: want at most grants (%d), so every group holds a grant", o.Groups, o.withDefaults().Grants)
	case o.Sharers < 0 || o.Sharers == 1:
		return latch.Invalidf("sharers", "sharers %d: want at least 2", o.Sharers)
	case o.SharedOpenings < 0 || o.RawAuthorizes < 0 || o.SpreadWindow < 0 || o.SpreadStep < 0 || o.Stall < 0:
		return latch.Invalidf("options", "negative setting in %+v", o)
	case o.SpreadWindow%time.Second != 0:
		return latch.Invalidf("spread_window", "spread window %s: want whole seconds", o.SpreadWindow)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Grants == 0 {
		o.Grants = DefaultGrants
	}
	if o.Groups == 0 {
		o.Groups = min(DefaultGroups, o.Grants)
	}
	if o.Sharers == 0 {
		o.Sharers = DefaultSharers
	}
	if o.SharedOpenings == 0 {
		o.SharedOpenings = min(o.Groups, 10)
	}
	if o.RawAuthorizes == 0 {
		o.RawAuthorizes = min(o.Grants, 1000)
	}
	if o.SpreadWindow == 0 {
		o.SpreadWindow = DefaultSpreadWindow
	}
	if o.SpreadStep == 0 {
		o.SpreadStep = time.Second
	}
	if o.Stall == 0 {
		o.Stall = DefaultStall
	}
	if o.DB == "" {
		o.DB = "sqlite"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = func(string, int, int) {}
	}
	// Each group holds at most ceil(N/G) benchmark rules at once, plus one
	// shared rule; the slack covers a phase's stragglers.
	if need := (o.Grants+o.Groups-1)/o.Groups + 16; o.SimOptions.RuleLimit < need {
		o.SimOptions.RuleLimit = need
	}
	return o
}

// Report is what one run measured. Durations are in seconds; lags are from
// the clock passing a grant's expiry to the broker reporting it ended.
type Report struct {
	DB       string `json:"db"`
	Notifier bool   `json:"notifier"`
	Grants   int    `json:"grants"`
	Groups   int    `json:"groups"`
	// Throttled says the revoking phases ran inside the simulator's model
	// of EC2's token buckets, paced by MutatingRate; ThrottledRequests is
	// how many requests the buckets refused (0 when the pacing holds).
	Throttled         bool   `json:"throttled"`
	MutatingRate      string `json:"mutating_rate"`
	ThrottledRequests int    `json:"throttled_requests"`

	GrantsPerSecond float64 `json:"grants_per_s"`
	OpenSeconds     float64 `json:"open_s"`

	BurstLagP50   float64 `json:"burst_revoke_lag_p50_s"`
	BurstLagP99   float64 `json:"burst_revoke_lag_p99_s"`
	BurstLagMax   float64 `json:"burst_revoke_lag_max_s"`
	BurstPerSec   float64 `json:"burst_grants_ended_per_s"`
	RevokeCalls   int     `json:"revoke_calls"`
	SpreadWindow  float64 `json:"spread_window_s"`
	SpreadLagP50  float64 `json:"spread_revoke_lag_p50_s"`
	SpreadLagP99  float64 `json:"spread_revoke_lag_p99_s"`
	SpreadLagMax  float64 `json:"spread_revoke_lag_max_s"`
	SweepRules    int     `json:"sweep_rules"`
	SweepSeconds  float64 `json:"sweep_s"`
	DescribeCalls int     `json:"describe_calls_per_sweep"`
	SweepRevokes  int     `json:"sweep_revoke_calls"`

	MutatingPerGrant float64 `json:"mutating_calls_per_grant"`
	Sharers          int     `json:"sharers"`
	SharedMutating   float64 `json:"shared_mutating_calls_per_sharer"`
	SharedDescribes  float64 `json:"shared_describe_calls_per_sharer"`
	BytesPerGrant    float64 `json:"bytes_per_active_grant"`
	HeapPerGrant     float64 `json:"heap_bytes_per_active_grant"`
	RSSPerGrant      float64 `json:"rss_bytes_per_active_grant"`
	SimHeapPerRule   float64 `json:"sim_heap_bytes_per_rule"`
	GrantSeconds     float64 `json:"grant_s"`
	RawAuthorize     float64 `json:"raw_authorize_s"`
	GrantVsRaw       float64 `json:"grant_vs_raw_authorize"`
	WallSeconds      float64 `json:"wall_s"`
	// PhaseSeconds is each phase's wall time, set-up included.
	PhaseSeconds      map[string]float64 `json:"phase_s"`
	MutatingCallsOpen int                `json:"mutating_calls_open"`
	MutatingCallsEnd  int                `json:"mutating_calls_burst"`
}

// run is one benchmark's world.
type run struct {
	opts   Options
	sim    *ec2sim.Server
	url    string
	ec2    *ec2.Client
	fw     *latchaws.Firewall
	store  latch.Store
	broker *broker.Broker
	// revoking is the broker the revoking phases use: the same store, with
	// its mutating calls paced by Options.Mutating.
	revoking *broker.Broker
	clock    *mock.Clock
	obs      *observer
	groups   []latch.GroupID
	rep      Report
	// describesPerGrant is an unshared grant's Describe calls, open to end.
	describesPerGrant float64
}

// Run runs every phase once and reports what it measured.
func Run(ctx context.Context, opts Options) (Report, error) {
	if err := opts.Validate(); err != nil {
		return Report{}, err
	}
	o := opts.withDefaults()
	began := time.Now()
	r := &run{opts: o, obs: &observer{}, rep: Report{DB: o.DB, Notifier: o.Notifier, Grants: o.Grants, Groups: o.Groups, Sharers: o.Sharers}}
	r.clock = mock.NewClock(time.Now().UTC().Truncate(time.Second))

	stop, err := r.serveSim(o.SimOptions)
	if err != nil {
		return Report{}, err
	}
	defer stop()
	closeStore, err := r.openStore(ctx)
	if err != nil {
		return Report{}, err
	}
	defer closeStore()
	cfg, err := latchaws.LoadConfig(ctx, latchaws.Config{Region: region, Endpoint: r.url, AccessKeyID: "AKIDLATCHBENCH", SecretAccessKey: "bench"})
	if err != nil {
		return Report{}, fmt.Errorf("aws config: %w", err)
	}
	cfg.Logger = logging.Nop{} // retries under throttling are expected here, not news
	r.ec2 = ec2.NewFromConfig(cfg)
	r.fw = latchaws.NewFirewall(cfg, nil)
	// Wired as `latch server` wires it: the inventory looks each group up.
	bopts := broker.Options{Clock: r.clock, Logger: o.Logger.With("component", "broker"), Observer: r.obs}
	r.broker = broker.New(r.store, []latch.Firewall{r.fw}, map[string]broker.GroupLookup{region: latchaws.NewInventory(cfg, nil)}, bopts)
	r.revoking = r.broker
	if o.Mutating.Rate > 0 {
		paced := cfg.Copy()
		latchaws.NewLimiter(o.Mutating).Install(&paced)
		r.revoking = broker.New(r.store, []latch.Firewall{latchaws.NewFirewall(paced, nil)},
			map[string]broker.GroupLookup{region: latchaws.NewInventory(paced, nil)}, bopts)
	}
	r.rep.Throttled = o.Throttle != nil
	r.rep.MutatingRate = o.Mutating.String()

	if o.Notifier {
		ob, ok := r.store.(notify.Outbox)
		if !ok {
			return Report{}, fmt.Errorf("the %s store has no outbox for the notifier", o.DB)
		}
		none := notify.RouterFunc(func(latch.Event) []latch.Route { return nil })
		w := notify.New(ob, none, nil, notify.Options{Owner: "latch-bench", Clock: r.clock, Logger: o.Logger.With("component", "notify"), Coalesce: notify.ServerCoalesce})
		nctx, stopNotify := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(nctx) }()
		defer func() { stopNotify(); <-done }()
	}
	r.rep.PhaseSeconds = map[string]float64{}
	for _, phase := range []struct {
		name string
		run  func(context.Context) error
	}{{"groups", r.createGroups}, {"raw", r.rawAuthorize}, {"burst", r.burst}, {"sweep", r.sweep}, {"spread", r.spread}, {"shared", r.shared}} {
		began := time.Now()
		if err := phase.run(ctx); err != nil {
			return r.rep, fmt.Errorf("%s phase: %w", phase.name, err)
		}
		r.rep.PhaseSeconds[phase.name] = time.Since(began).Seconds()
	}
	r.rep.WallSeconds = time.Since(began).Seconds()
	return r.rep, nil
}

// serveSim serves a fresh simulator on a loopback port.
func (r *run) serveSim(opts ec2sim.Options) (stop func(), err error) {
	r.sim = ec2sim.New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the simulator: %w", err)
	}
	srv := &http.Server{Handler: r.sim, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // Serve returns ErrServerClosed on Close
	r.url = "http://" + ln.Addr().String()
	return func() { srv.Close() }, nil
}

func (r *run) openStore(ctx context.Context) (closeStore func(), err error) {
	if r.opts.OpenStore != nil {
		s, err := r.opts.OpenStore(ctx, r.clock.Now)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		r.store = s
		return func() { s.Close() }, nil
	}
	dir, err := os.MkdirTemp("", "latch-bench-")
	if err != nil {
		return nil, err
	}
	s, err := sqlite.Open(ctx, filepath.Join(dir, "latch.db"), sqlite.Options{Now: r.clock.Now, Logger: r.opts.Logger.With("component", "store")})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("open store: %w", err)
	}
	r.store = s
	return func() { s.Close(); os.RemoveAll(dir) }, nil
}

// createGroups creates G groups tagged latch:managed=true.
func (r *run) createGroups(ctx context.Context) error {
	for i := range r.opts.Groups {
		id, err := r.createGroup(ctx, fmt.Sprintf("latch-bench-%d", i), map[string]string{latch.TagManaged: "true"})
		if err != nil {
			return err
		}
		r.groups = append(r.groups, id)
	}
	return nil
}

func (r *run) createGroup(ctx context.Context, name string, tags map[string]string) (latch.GroupID, error) {
	spec := types.TagSpecification{ResourceType: types.ResourceTypeSecurityGroup}
	for k, v := range tags {
		spec.Tags = append(spec.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	in := &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String("latch bench")}
	if len(spec.Tags) > 0 {
		in.TagSpecifications = []types.TagSpecification{spec}
	}
	out, err := r.ec2.CreateSecurityGroup(ctx, in)
	if err != nil {
		return "", fmt.Errorf("create group %s: %w", name, err)
	}
	return latch.GroupID(aws.ToString(out.GroupId)), nil
}

// source is the i-th distinct /32 of a phase: 10.x.y.z, 11.x.y.z, …
func source(phase, i int) netip.Prefix {
	n := i + 1
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(10 + phase), byte(n >> 16), byte(n >> 8), byte(n)}), 32)
}

// request is the i-th grant of a phase, in group i mod G.
func (r *run) request(phase, i int, d time.Duration) latch.GrantRequest {
	return latch.GrantRequest{
		Region: region, GroupID: r.groups[i%len(r.groups)], Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22},
		Source: source(phase, i), Duration: d, Requester: "bench@latch", Reason: "latch bench",
	}
}
