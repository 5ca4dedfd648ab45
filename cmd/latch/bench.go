package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/bench"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/postgres"
	"github.com/latchdev/latch/sqlite"
)

type benchOptions struct {
	grants, groups int
	db             string
	spread         string
	asJSON         bool
	throttle       bool
	mutating       latchaws.Limit
	notifier       bool
	cpuProfile     string
}

func (a *app) benchCommand() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure latch at scale against an in-process EC2 simulator",
		Long: `Open --grants grants over --groups security groups against an in-process EC2
simulator, through the real broker, revoker, store and AWS SDK, and measure:

  - grants opened per second, and one grant's time against a raw SDK
    authorize on the same simulator;
  - revoke lag (p50, p99, max) when every grant expires in the same second,
    and when expiries spread over --spread (20 seconds);
  - the Revoke calls of that burst, the Describe calls of one sweep over as
    many expired rules, and the mutating calls per grant, unshared and per
    extra grant sharing a rule;
  - the heap and RSS each active grant costs;

then shows each figure beside issue 14's target for it. It needs no AWS
account and no network; the clock is simulated, so no grant's duration is
waited out. At the defaults it takes several minutes.

The grant database is a new SQLite file in a temporary directory, removed
after. --db names a PostgreSQL database (postgres://…) to measure instead,
or a SQLite file that does not exist yet; bench writes its grants there, so
name a scratch database. --db is read from the command line only, never
from LATCH_DB, so that a configured database is never filled by accident.`,
		Example: `  latch bench                                  # 10,000 grants over 200 groups
  latch bench --grants 1000 --groups 20 --json
  latch bench --db postgres://latch@localhost/latch_bench`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.bench(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.grants, "grants", bench.DefaultGrants, "grants opened in each phase")
	f.IntVar(&o.groups, "groups", bench.DefaultGroups, "managed security groups the grants spread over")
	f.StringVar(&o.spread, "spread", bench.DefaultSpreadWindow.String(), "the window the spread phase's expiries cover, in whole seconds, passed at the wall clock's pace")
	f.StringVar(&o.db, "db", "", "a scratch grant database: postgres://… or a new SQLite file (default: SQLite in a temporary directory)")
	f.BoolVar(&o.asJSON, "json", false, "print the figures as one JSON object")
	f.BoolVar(&o.throttle, "throttle", true, "while grants are revoked, have the simulator throttle as EC2's per-API token buckets do (at EC2's documented sizes), and pace latch's mutating calls by --aws-mutating-rate")
	o.mutating = latchaws.DefaultMutatingLimit
	f.Var(&o.mutating, "aws-mutating-rate", "with --throttle, the revoker's pace for mutating EC2 calls: RATE/BURST per second, as on a server")
	f.BoolVar(&o.notifier, "notifier", true, "run latch server's notification worker (with no routes), which settles the outbox; --notifier=false measures latch run, which has none")
	f.StringVar(&o.cpuProfile, "cpu-profile", "", "write a CPU profile of the whole run to this file (go tool pprof reads it)")
	commandLineOnly(cmd, "db", "cpu-profile")
	return cmd
}

func (a *app) bench(ctx context.Context, o benchOptions) error {
	switch {
	case o.grants < 1 || o.grants > bench.MaxGrants:
		return usagef("--grants %d: want 1 to %d", o.grants, bench.MaxGrants)
	case o.groups < 1:
		return usagef("--groups %d: want at least 1", o.groups)
	case o.groups > o.grants:
		return usagef("--groups %d: want at most --grants (%d), so that every group holds a grant", o.groups, o.grants)
	}
	spread, err := positiveDuration("spread", o.spread)
	if err != nil {
		return err
	}
	if spread%time.Second != 0 {
		return usagef("--spread %s: want whole seconds, e.g. 20s", o.spread)
	}
	opts := bench.Options{Grants: o.grants, Groups: o.groups, SpreadWindow: spread, Notifier: o.notifier}
	if o.throttle {
		opts.Throttle, opts.Mutating = ec2sim.EC2Throttle(), o.mutating
	}
	if a.logLevel != "" { // the broker logs every grant: only when asked
		opts.Logger = a.log
	}
	switch {
	case postgres.IsDSN(o.db):
		opts.DB = "postgres"
		opts.OpenStore = func(ctx context.Context, now func() time.Time) (latch.Store, error) {
			return postgres.Open(ctx, o.db, postgres.Options{Now: now, Logger: a.log.With("component", "store")})
		}
	case o.db != "":
		if _, err := os.Stat(o.db); err == nil {
			return usagef("--db %s exists: name a PostgreSQL database (postgres://…) or a new SQLite file, which bench fills with its grants", o.db)
		}
		if st, err := os.Stat(filepath.Dir(o.db)); err != nil || !st.IsDir() {
			return usagef("--db %s: directory %s does not exist", o.db, filepath.Dir(o.db))
		}
		opts.OpenStore = func(ctx context.Context, now func() time.Time) (latch.Store, error) {
			return sqlite.Open(ctx, o.db, sqlite.Options{Now: now, Logger: a.log.With("component", "store")})
		}
	}
	if isTerminal(a.stderr) {
		p := &progress{w: a.stderr}
		opts.Progress = p.show
		defer p.clear()
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return latch.Invalidf("cpu-profile", "--cpu-profile %s: %v", o.cpuProfile, err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := bench.Run(ctx, opts)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if o.asJSON {
		return writeBenchJSON(a.stdout, rep)
	}
	return writeBenchTable(a.stdout, rep)
}

// writeBenchJSON prints the report as one object, with each target's
// outcome under "targets".
func writeBenchJSON(w io.Writer, rep bench.Report) error {
	raw, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	targets := map[string]any{}
	for _, t := range rep.Targets() {
		targets[t.Key] = map[string]any{"limit": t.Limit, "met": t.Met}
	}
	m["targets"] = targets
	return json.NewEncoder(w).Encode(m)
}

func writeBenchTable(w io.Writer, r bench.Report) error {
	notifier := "notifier on"
	if !r.Notifier {
		notifier = "no notifier"
	}
	fmt.Fprintf(w, "latch bench: %d grants over %d groups, %s store, %s, simulator on loopback (took %s)\n\n",
		r.Grants, r.Groups, r.DB, notifier, (time.Duration(r.WallSeconds * float64(time.Second))).Round(time.Second))
	if r.Throttled {
		fmt.Fprintf(w, "Revoking runs inside EC2's token buckets (documented sizes), paced at %s a second: %d requests refused.\n\n", r.MutatingRate, r.ThrottledRequests)
	} else {
		fmt.Fprintf(w, "No throttle (--throttle=false): the figures bound latch's engine, not EC2.\n\n")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "open\t%.0f grants/s\t%.2f ms a grant; a raw SDK authorize %.2f ms: %.1f×\n",
		r.GrantsPerSecond, r.GrantSeconds*1000, r.RawAuthorize*1000, r.GrantVsRaw)
	fmt.Fprintf(tw, "burst (one second)\tlag p50 %.2f s, p99 %.2f s, max %.2f s\t%.0f grants ended/s; %d Revoke calls\n",
		r.BurstLagP50, r.BurstLagP99, r.BurstLagMax, r.BurstPerSec, r.RevokeCalls)
	fmt.Fprintf(tw, "spread (%.0f s)\tlag p50 %.2f s, p99 %.2f s, max %.2f s\t\n",
		r.SpreadWindow, r.SpreadLagP50, r.SpreadLagP99, r.SpreadLagMax)
	fmt.Fprintf(tw, "sweep\t%d expired rules in %.1f s\t%d Describe calls, %d Revoke calls\n",
		r.SweepRules, r.SweepSeconds, r.DescribeCalls, r.SweepRevokes)
	fmt.Fprintf(tw, "mutating calls\t%.2f per unshared grant\t%.2f more per sharer (%d on a rule), and %.2f more Describe calls\n",
		r.MutatingPerGrant, r.SharedMutating, r.Sharers, r.SharedDescribes)
	fmt.Fprintf(tw, "memory per active grant\t%s\theap %s and RSS %s with the simulator's rules; the simulator's heap is %s a rule\n",
		bytesString(r.BytesPerGrant), bytesString(r.HeapPerGrant), bytesString(r.RSSPerGrant), bytesString(r.SimHeapPerRule))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nIssue 14's targets:\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range r.Targets() {
		outcome := "missed"
		if t.Met {
			outcome = "met"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", outcome, t.What, trimFloat(t.Value))
	}
	return tw.Flush()
}

func bytesString(b float64) string {
	if b >= 1024 {
		return fmt.Sprintf("%.1f KB", b/1024)
	}
	return fmt.Sprintf("%.0f B", b)
}

func trimFloat(v float64) string { return fmt.Sprintf("%.3g", v) }

// progress keeps one status line on a terminal, redrawn at most ten times
// a second.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string // "latch bench" when empty
	last   time.Time
	phase  string
	shown  bool
}

func (p *progress) show(phase string, done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if phase == p.phase && done != total && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.phase, p.last, p.shown = phase, time.Now(), true
	fmt.Fprintf(p.w, "\r\033[K%s: %s %d/%d", cmp.Or(p.prefix, "latch bench"), phase, done, total)
}

func (p *progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
