package bench_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/bench"
)

// A small run measures every figure, and each is plausible: what the
// benchmark measures can be checked against what today's broker must do
// at the least.
func TestRunSmall(t *testing.T) {
	const grants, groups = 200, 4
	rep, err := bench.Run(t.Context(), bench.Options{
		Grants: grants, Groups: groups, Sharers: 3, SharedOpenings: 2, RawAuthorizes: 50,
		SpreadWindow: 2 * time.Second, SpreadStep: 200 * time.Millisecond, Stall: 30 * time.Second, Notifier: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", rep)

	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"grants", "groups", "grants_per_s", "burst_revoke_lag_p50_s", "burst_revoke_lag_p99_s",
		"burst_revoke_lag_max_s", "spread_revoke_lag_p50_s", "spread_revoke_lag_p99_s", "spread_revoke_lag_max_s",
		"revoke_calls", "mutating_calls_per_grant", "shared_mutating_calls_per_sharer", "describe_calls_per_sweep",
		"bytes_per_active_grant", "heap_bytes_per_active_grant", "rss_bytes_per_active_grant", "grant_vs_raw_authorize", "db"} {
		if _, ok := m[k]; !ok {
			t.Errorf("report has no %q: %s", k, raw)
		}
	}
	if rep.Grants != grants || rep.Groups != groups || rep.DB != "sqlite" || !rep.Notifier {
		t.Errorf("grants, groups, db = %d, %d, %q; want %d, %d, sqlite", rep.Grants, rep.Groups, rep.DB, grants, groups)
	}
	if rep.GrantsPerSecond <= 0 || rep.GrantVsRaw <= 0 {
		t.Errorf("grants/s %g, grant vs raw %g: want both > 0", rep.GrantsPerSecond, rep.GrantVsRaw)
	}
	for name, l := range map[string][3]float64{
		"burst":  {rep.BurstLagP50, rep.BurstLagP99, rep.BurstLagMax},
		"spread": {rep.SpreadLagP50, rep.SpreadLagP99, rep.SpreadLagMax},
	} {
		if l[0] < 0 || l[0] > l[1] || l[1] > l[2] || l[2] > 30 {
			t.Errorf("%s lag p50 %g, p99 %g, max %g: want 0 ≤ p50 ≤ p99 ≤ max, and under the stall limit", name, l[0], l[1], l[2])
		}
	}
	if rep.BurstLagMax == 0 {
		t.Error("burst lag max is 0: ending grants takes some time")
	}
	// Every group has rules to revoke, and a rule is at least one call;
	// opening and ending a grant take at least two mutating calls together.
	if rep.RevokeCalls < groups || rep.RevokeCalls > grants*3 {
		t.Errorf("revoke calls %d: want between %d and %d", rep.RevokeCalls, groups, grants*3)
	}
	if rep.MutatingPerGrant < float64(groups*2)/grants || rep.MutatingPerGrant > 10 {
		t.Errorf("mutating calls per grant %g: implausible", rep.MutatingPerGrant)
	}
	if rep.DescribeCalls < 1 || rep.SweepRules != grants || rep.SweepRevokes < groups {
		t.Errorf("sweep: %d Describe calls, %d rules, %d revokes; want ≥ 1, %d, ≥ %d", rep.DescribeCalls, rep.SweepRules, rep.SweepRevokes, grants, groups)
	}
	if rep.SharedMutating < -1 || rep.SharedMutating > 10 {
		t.Errorf("shared mutating calls per sharer %g: implausible", rep.SharedMutating)
	}
	if rep.HeapPerGrant <= 0 || rep.BytesPerGrant < 0 {
		t.Errorf("heap per grant %g, bytes per grant %g: want > 0 and ≥ 0", rep.HeapPerGrant, rep.BytesPerGrant)
	}
	ts := rep.Targets()
	if len(ts) != 7 {
		t.Errorf("%d targets, want 7", len(ts))
	}
	for _, tg := range ts {
		if _, ok := m[tg.Key]; !ok {
			t.Errorf("target %q names no report key", tg.Key)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		opts  bench.Options
		field string
	}{
		{bench.Options{Grants: -1}, "grants"},
		{bench.Options{Grants: bench.MaxGrants + 1}, "grants"},
		{bench.Options{Grants: 10, Groups: 11}, "groups"},
		{bench.Options{Groups: -3}, "groups"},
		{bench.Options{Sharers: 1}, "sharers"},
		{bench.Options{SpreadWindow: 1500 * time.Millisecond}, "spread_window"},
	} {
		err := tc.opts.Validate()
		if e, ok := err.(*latch.Error); !ok || e.Field != tc.field || e.Code != latch.EINVALID {
			t.Errorf("Validate(%+v) = %v; want EINVALID on %s", tc.opts, err, tc.field)
		}
	}
	if err := (bench.Options{Grants: 10, Groups: 10}).Validate(); err != nil {
		t.Errorf("10 grants over 10 groups: %v", err)
	}
}
