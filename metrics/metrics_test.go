package metrics_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

func TestGrants(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil)

	m.GrantOpened()
	m.GrantOpened()
	m.GrantOpened()
	m.GrantEnded(latch.StateExpired, 50*time.Millisecond)
	m.GrantEnded(latch.StateExpired, 2*time.Second)
	m.GrantEnded(latch.StateExpired, -time.Second) // revoked a moment early: counts as no lag
	m.GrantEnded(latch.StateRevoked, time.Hour)    // not an expiry: no lag recorded
	m.RevokeFailed()
	m.RevokeFailed()

	f := scrape(t, reg)
	f.want(
		s("latch_grants_opened_total", 3),
		s("latch_grants_ended_total", 3, "outcome", "expired"),
		s("latch_grants_ended_total", 1, "outcome", "revoked"),
		s("latch_grants_ended_total", 0, "outcome", "failed"),
		s("latch_revoke_failures_total", 2),
	)
	lag := f.histogram("latch_revoke_lag_seconds")
	if lag.GetSampleCount() != 3 || lag.GetSampleSum() != 2.05 {
		t.Errorf("revoke lag count, sum = %d, %v; want 3, 2.05", lag.GetSampleCount(), lag.GetSampleSum())
	}
	for _, b := range []struct {
		le   float64
		want uint64
	}{{0.1, 2}, {1, 2}, {2.5, 3}, {3600, 3}} {
		if got := bucket(t, lag, b.le); got != b.want {
			t.Errorf("revoke lag bucket le=%v = %d, want %d", b.le, got, b.want)
		}
	}
	if n := len(lag.GetBucket()); n != 15 {
		t.Errorf("revoke lag has %d buckets, want 14 from 0.1 s to 1 h, and +Inf", n)
	}
}

func TestGrants_FailedOutcome(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil)

	m.GrantEnded(latch.StateFailed, time.Minute)

	f := scrape(t, reg)
	f.want(
		s("latch_grants_ended_total", 1, "outcome", "failed"),
		s("latch_grants_ended_total", 0, "outcome", "expired"),
		s("latch_grants_opened_total", 0),
	)
	if n := f.histogram("latch_revoke_lag_seconds").GetSampleCount(); n != 0 {
		t.Errorf("revoke lag count = %d, want 0: a failed grant had no rule to revoke", n)
	}
}

func TestState(t *testing.T) {
	reg := prometheus.NewRegistry()
	var calls atomic.Int32 // the handler's goroutine calls state
	metrics.New(reg, func(ctx context.Context) (int, int, error) {
		calls.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			t.Error("state called without a deadline")
		}
		return 7, 2, nil
	})

	f := scrape(t, reg)
	f.want(
		s("latch_grants_active", 7),
		s("latch_grants_revoke_failed", 2),
		s("latch_state_errors_total", 0),
	)
	if n := calls.Load(); n != 1 {
		t.Errorf("state called %d times for one scrape, want 1", n)
	}
}

func TestState_Error(t *testing.T) {
	reg := prometheus.NewRegistry()
	var fail atomic.Bool
	fail.Store(true)
	metrics.New(reg, func(context.Context) (int, int, error) {
		if fail.Load() {
			return 0, 0, errors.New("database is locked")
		}
		return 4, 0, nil
	})

	f := scrape(t, reg) // still 200: the failure is a metric, not a failed scrape
	f.want(s("latch_state_errors_total", 1))
	f.absent("latch_grants_active")
	f.absent("latch_grants_revoke_failed")
	f.value("go_goroutines") // the rest is served

	fail.Store(false)
	f = scrape(t, reg)
	f.want(
		s("latch_state_errors_total", 1),
		s("latch_grants_active", 4),
		s("latch_grants_revoke_failed", 0),
	)
}

func TestState_Nil(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg, nil)

	f := scrape(t, reg)
	f.absent("latch_grants_active")
	f.absent("latch_grants_revoke_failed")
	f.want(s("latch_state_errors_total", 0))
}

func TestSweepDone(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil)

	m.SweepDone("us-east-1", 2*time.Second, 5, 2, nil)
	m.SweepDone("us-east-1", 30*time.Second, 9, 1, errors.New("RequestLimitExceeded"))
	m.SweepDone("eu-west-1", 500*time.Millisecond, 0, 0, nil)

	f := scrape(t, reg)
	f.want(
		s("latch_sweep_rules_found", 5, "region", "us-east-1"), // the failed sweep's 9 is partial
		s("latch_sweep_rules_found", 0, "region", "eu-west-1"),
		s("latch_sweep_revoked_total", 3, "region", "us-east-1"),
		s("latch_sweep_revoked_total", 0, "region", "eu-west-1"),
		s("latch_sweeps_total", 1, "region", "us-east-1", "result", "ok"),
		s("latch_sweeps_total", 1, "region", "us-east-1", "result", "error"),
		s("latch_sweeps_total", 1, "region", "eu-west-1", "result", "ok"),
	)
	if m := f.find("latch_sweeps_total", "region", "eu-west-1", "result", "error"); m != nil {
		t.Errorf("eu-west-1 error sweeps = %v, want no sample", m)
	}
	us := f.histogram("latch_sweep_duration_seconds", "region", "us-east-1")
	if us.GetSampleCount() != 2 || us.GetSampleSum() != 32 {
		t.Errorf("us-east-1 sweep duration count, sum = %d, %v; want 2, 32", us.GetSampleCount(), us.GetSampleSum())
	}
	eu := f.histogram("latch_sweep_duration_seconds", "region", "eu-west-1")
	if eu.GetSampleCount() != 1 || eu.GetSampleSum() != 0.5 || bucket(t, eu, 0.4) != 0 || bucket(t, eu, 0.8) != 1 {
		t.Errorf("eu-west-1 sweep duration = %v, want one 0.5 s sweep", eu)
	}
}

func TestNew_RuntimeCollectors(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg, nil)

	f := scrape(t, reg)
	if n := f.value("go_goroutines"); n < 1 {
		t.Errorf("go_goroutines = %v, want at least 1", n)
	}
	if n := f.value("process_start_time_seconds"); n <= 0 {
		t.Errorf("process_start_time_seconds = %v, want a time", n)
	}
}

func TestNew_TwiceOnOneRegistryPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg, nil)
	defer func() {
		if recover() == nil {
			t.Error("second New on one registry did not panic")
		}
	}()
	metrics.New(reg, nil)
}

func TestHandler_Twice(t *testing.T) {
	reg := prometheus.NewRegistry()
	metrics.New(reg, nil)
	metrics.Handler(reg) // a second handler on one registry shares its error counter
	scrape(t, reg).want(s("promhttp_metric_handler_errors_total", 0, "cause", "encoding"))
}

func TestGroupFull(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil)
	var _ broker.PlacementObserver = m // the broker finds it on its Observer

	m.GroupFull("us-east-1", "sg-0000000000000000a", "sg-0000000000000000b")
	m.GroupFull("us-east-1", "sg-0000000000000000a", "sg-0000000000000000b")
	m.GroupFull("us-east-1", "sg-0000000000000000b", "")

	scrape(t, reg).want(
		s("latch_group_full_total", 2, "group_id", "sg-0000000000000000a", "outcome", "placed", "region", "us-east-1"),
		s("latch_group_full_total", 1, "group_id", "sg-0000000000000000b", "outcome", "refused", "region", "us-east-1"),
	)
}

func TestLeading(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil)
	scrape(t, reg).want(s("latch_leader", 0), s("latch_leader_term", 0))
	m.Leading(true, 7)
	scrape(t, reg).want(s("latch_leader", 1), s("latch_leader_term", 7))
	m.Leading(false, 7)
	scrape(t, reg).want(s("latch_leader", 0), s("latch_leader_term", 7))
}

func TestGroupRules(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil)
	var _ broker.GroupRulesObserver = m // the broker finds it on its Observer
	m.GroupRules("us-east-1", map[latch.GroupID]int{"sg-0000000000000000a": 48, "sg-0000000000000000b": 3})
	m.GroupRules("eu-west-1", map[latch.GroupID]int{"sg-0000000000000000c": 1})
	m.GroupRules("us-east-1", map[latch.GroupID]int{"sg-0000000000000000a": 50}) // b emptied
	f := scrape(t, reg)
	f.want(
		s("latch_group_rules", 50, "group_id", "sg-0000000000000000a", "region", "us-east-1"),
		s("latch_group_rules", 1, "group_id", "sg-0000000000000000c", "region", "eu-west-1"),
	)
	if m := f.find("latch_group_rules", "group_id", "sg-0000000000000000b", "region", "us-east-1"); m != nil {
		t.Errorf("a group the last sweep found empty still has a sample: %v", m)
	}
}
