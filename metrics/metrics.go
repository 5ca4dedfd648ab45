// Package metrics records latch's Prometheus metrics: grants opened and
// ended, revocation lag and failures, sweeps, and every AWS call latch
// makes.
//
// Everything goes into the [prometheus.Registry] passed to [New]; the
// package has no global state and never touches Prometheus's default
// registry. [Handler] serves that registry.
//
// # Metrics
//
// Counted by this process:
//
//	latch_grants_opened_total                          grants whose rule was opened
//	latch_grants_ended_total{outcome}                  grants ended: expired, revoked or failed
//	latch_revoke_lag_seconds                           histogram: expiry to rule revoked, expired grants only
//	latch_revoke_failures_total                        failed revoke attempts
//	latch_sweep_duration_seconds{region}               histogram: one sweep of a region
//	latch_sweep_rules_found{region}                    gauge: latch rules the last good sweep found
//	latch_sweep_revoked_total{region}                  rules sweeps revoked
//	latch_sweeps_total{region,result}                  sweeps, result ok or error
//	latch_group_full_total{region,group_id,outcome}    grants that found a security group at its rule quota:
//	                                                   outcome placed (opened in another of the instance's managed groups) or refused
//	latch_aws_calls_total{service,operation}           AWS operation calls, retries not counted
//	latch_aws_attempts_total{service,operation}        AWS HTTP attempts, retries counted
//	latch_aws_errors_total{service,operation,code}     AWS operation calls that failed
//	latch_state_errors_total                           scrapes whose state read failed
//
// Read from the store at scrape time, so that every latch process sharing
// a store reports the same numbers:
//
//	latch_grants_active                                grants that are open
//	latch_grants_revoke_failed                         grants whose revocation keeps failing
//
// The Go runtime and process collectors are registered too (go_*,
// process_*).
//
// # Concurrency
//
// A Metrics is safe for concurrent use; so is the middleware it returns.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/latchdev/latch"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StateFunc reads the grant counts from the store: active is the number of
// grants still open ([latch.GrantState.Open], so revoke-failed ones
// included), revokeFailed those in [latch.StateRevokeFailed]. It is called
// once per scrape, possibly by several scrapes at once.
type StateFunc func(ctx context.Context) (active, revokeFailed int, err error)

// Metrics records latch's metrics into one registry. Create it with [New].
type Metrics struct {
	grantsOpened   prometheus.Counter
	grantsEnded    *prometheus.CounterVec
	revokeLag      prometheus.Histogram
	revokeFailures prometheus.Counter

	sweepDuration *prometheus.HistogramVec
	sweepFound    *prometheus.GaugeVec
	sweepRevoked  *prometheus.CounterVec
	sweeps        *prometheus.CounterVec

	groupFull  *prometheus.CounterVec
	groupRules *prometheus.GaugeVec
	leading    prometheus.Gauge
	term       prometheus.Gauge

	awsCalls    *prometheus.CounterVec
	awsAttempts *prometheus.CounterVec
	awsErrors   *prometheus.CounterVec
}

// revokeLagBuckets span 0.1 s (a revoker that is on time) to an hour (one
// that was down, or whose revokes kept failing).
var revokeLagBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// sweepBuckets span a sweep of one page (50 ms) to one of many pages
// under throttling (about 100 s).
var sweepBuckets = prometheus.ExponentialBuckets(0.05, 2, 12)

// New registers latch's metrics, and the Go runtime and process
// collectors, in reg and returns the Metrics that records them. It panics
// if any of them is already registered in reg, as registering twice is a
// wiring mistake.
//
// state, when not nil, is called at each scrape with a context that ends
// after [StateTimeout], and gives latch_grants_active and
// latch_grants_revoke_failed. When it fails, that scrape leaves both
// gauges out (so they are absent, not a false zero) and counts the failure
// in latch_state_errors_total; the rest of the scrape is served.
func New(reg *prometheus.Registry, state StateFunc) *Metrics {
	m := &Metrics{
		grantsOpened: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_grants_opened_total",
			Help: "Grants whose security-group rule was opened.",
		}),
		grantsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_grants_ended_total",
			Help: "Grants that ended, by outcome: expired, revoked (ended early) or failed (never opened).",
		}, []string{"outcome"}),
		revokeLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "latch_revoke_lag_seconds",
			Help:    "Time from a grant's expiry to its rule being revoked, for expired grants.",
			Buckets: revokeLagBuckets,
		}),
		revokeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_revoke_failures_total",
			Help: "Attempts to revoke a grant's rule that failed.",
		}),
		sweepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "latch_sweep_duration_seconds",
			Help:    "Time one sweep of a region took, failed sweeps included.",
			Buckets: sweepBuckets,
		}, []string{"region"}),
		sweepFound: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "latch_sweep_rules_found",
			Help: "Latch-managed rules found by the last successful sweep of a region.",
		}, []string{"region"}),
		sweepRevoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_sweep_revoked_total",
			Help: "Rules revoked by sweeps of a region.",
		}, []string{"region"}),
		sweeps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_sweeps_total",
			Help: "Sweeps of a region, by result: ok or error.",
		}, []string{"region", "result"}),
		groupFull: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_group_full_total",
			Help: "Grants that found a security group at its inbound rule quota, by outcome: placed (opened in another of the instance's managed groups) or refused (none had room).",
		}, []string{"region", "group_id", "outcome"}),
		groupRules: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "latch_group_rules",
			Help: "Rules latch holds open in a security group, as the last sweep of its region found them. EC2's default quota is 60 inbound rules per group and address family: alert at 48 (80%).",
		}, []string{"region", "group_id"}),
		leading: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "latch_leader",
			Help: "1 while this replica holds the revoker's lease (it runs the revoker and the sweeps), else 0. Summed over replicas sharing a database it should be 1.",
		}),
		term: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "latch_leader_term",
			Help: "The fencing token of the revoker's lease as this replica last held it; it grows each time the lease changes hands.",
		}),
		awsCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_aws_calls_total",
			Help: "AWS API operation calls, each counted once however often the SDK retried it.",
		}, []string{"service", "operation"}),
		awsAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_aws_attempts_total",
			Help: "AWS API request attempts, retries included.",
		}, []string{"service", "operation"}),
		awsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "latch_aws_errors_total",
			Help: "AWS API operation calls that failed after any retries, by AWS error code, or network, canceled or other.",
		}, []string{"service", "operation", "code"}),
	}
	// Outcomes are known in advance, so they read 0 rather than missing
	// until the first grant ends.
	for _, o := range []latch.GrantState{latch.StateExpired, latch.StateRevoked, latch.StateFailed} {
		m.grantsEnded.WithLabelValues(string(o))
	}
	reg.MustRegister(
		m.grantsOpened, m.grantsEnded, m.revokeLag, m.revokeFailures,
		m.sweepDuration, m.sweepFound, m.sweepRevoked, m.sweeps, m.groupFull, m.groupRules, m.leading, m.term,
		m.awsCalls, m.awsAttempts, m.awsErrors,
		newStateCollector(state),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// GrantOpened counts a grant whose rule was opened.
func (m *Metrics) GrantOpened() {
	m.grantsOpened.Inc()
}

// GrantEnded counts a grant that ended as outcome: [latch.StateExpired],
// [latch.StateRevoked] or [latch.StateFailed]. For an expired grant, lag is
// the time from its expiry to its rule being revoked (negative counts as
// 0); for other outcomes it is ignored.
func (m *Metrics) GrantEnded(outcome latch.GrantState, lag time.Duration) {
	m.grantsEnded.WithLabelValues(string(outcome)).Inc()
	if outcome == latch.StateExpired {
		m.revokeLag.Observe(max(lag, 0).Seconds())
	}
}

// RevokeFailed counts one failed attempt to revoke a grant's rule.
func (m *Metrics) RevokeFailed() {
	m.revokeFailures.Inc()
}

// SweepDone records one sweep of region that took d, found rulesFound
// latch-managed rules and revoked revoked of them, and ended with err.
// Rules found are recorded only when err is nil, as a failed sweep may
// have seen only some; rules revoked are counted either way.
func (m *Metrics) SweepDone(region string, d time.Duration, rulesFound, revoked int, err error) {
	m.sweepDuration.WithLabelValues(region).Observe(d.Seconds())
	m.sweepRevoked.WithLabelValues(region).Add(float64(revoked))
	result := "ok"
	if err != nil {
		result = "error"
	} else {
		m.sweepFound.WithLabelValues(region).Set(float64(rulesFound))
	}
	m.sweeps.WithLabelValues(region, result).Inc()
}

// GroupFull counts a grant that found group full in region: placedIn is the
// group it opened in instead, "" if none of the instance's managed groups
// had room. Alert on it before the refusals start: a group placed out of
// is at its quota, and the next one is filling.
func (m *Metrics) GroupFull(region string, group, placedIn latch.GroupID) {
	outcome := "placed"
	if placedIn == "" {
		outcome = "refused"
	}
	m.groupFull.WithLabelValues(region, string(group), outcome).Inc()
}

// GroupRules records how many latch rules each group of region holds,
// as a sweep found them; groups it found none in are dropped.
func (m *Metrics) GroupRules(region string, rules map[latch.GroupID]int) {
	m.groupRules.DeletePartialMatch(prometheus.Labels{"region": region})
	for g, n := range rules {
		m.groupRules.WithLabelValues(region, string(g)).Set(float64(n))
	}
}

// Leading records whether this replica holds the revoker's lease, and
// the lease's term when it does.
func (m *Metrics) Leading(leading bool, term int64) {
	if !leading {
		m.leading.Set(0)
		return
	}
	m.leading.Set(1)
	m.term.Set(float64(term))
}

// Handler serves the metrics in reg in Prometheus's exposition formats. It
// also counts its own failures in reg (promhttp_metric_handler_errors_total).
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
