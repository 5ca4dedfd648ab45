package bench

import "fmt"

// Target is one of issue #14's targets, beside the figure it bounds.
type Target struct {
	Key   string  // the Report's JSON key
	What  string  // what the target says, for people
	Value float64 // the figure measured
	Limit float64 // the most it may be
	Met   bool
}

// Targets are issue #14's targets, stated at 10,000 grants over 200
// groups; the two that depend on the size scale with it: 1.25 Revoke
// calls per group for the burst, and one Describe page of 1,000 rules
// per 1,000 swept.
func (r Report) Targets() []Target {
	revokes := float64(r.Groups) * 1.25
	describes := float64((r.SweepRules + 999) / 1000)
	ts := []Target{
		{"burst_revoke_lag_p99_s", "burst p99 revoke lag ≤ 1 s", r.BurstLagP99, 1, false},
		{"revoke_calls", fmt.Sprintf("Revoke calls for the burst ≤ %g (1.25 per group)", revokes), float64(r.RevokeCalls), revokes, false},
		{"describe_calls_per_sweep", fmt.Sprintf("Describe calls per sweep of %d rules ≤ %g", r.SweepRules, describes), float64(r.DescribeCalls), describes, false},
		{"mutating_calls_per_grant", "mutating calls per unshared grant ≤ 1.05", r.MutatingPerGrant, 1.05, false},
		{"shared_mutating_calls_per_sharer", "extra mutating calls per sharer (expiry not later) = 0", r.SharedMutating, 0, false},
		{"grant_vs_raw_authorize", "grant ≤ 1.5× a raw SDK authorize", r.GrantVsRaw, 1.5, false},
		{"bytes_per_active_grant", "≤ 2 KB per active grant", r.BytesPerGrant, 2048, false},
	}
	for i := range ts {
		// The tolerance is for floating point only.
		ts[i].Met = ts[i].Value <= ts[i].Limit+1e-9
	}
	return ts
}
