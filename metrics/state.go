package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StateTimeout bounds each call of the [StateFunc] at scrape time, so that
// a stuck store cannot hold scrapes open.
const StateTimeout = 5 * time.Second

// stateCollector reads the grant gauges from the store at each scrape. It
// owns latch_state_errors_total so that the scrape whose read failed
// already shows the failure.
type stateCollector struct {
	state        StateFunc // nil: no gauges
	active       *prometheus.Desc
	revokeFailed *prometheus.Desc
	errors       prometheus.Counter
}

func newStateCollector(state StateFunc) *stateCollector {
	return &stateCollector{
		state: state,
		active: prometheus.NewDesc("latch_grants_active",
			"Grants that are open (requested, active, revoking or revoke-failed), read from the store.", nil, nil),
		revokeFailed: prometheus.NewDesc("latch_grants_revoke_failed",
			"Grants whose revocation has failed repeatedly and is still being retried, read from the store.", nil, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "latch_state_errors_total",
			Help: "Scrapes that could not read the grant gauges from the store.",
		}),
	}
}

// Describe implements [prometheus.Collector].
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.active
	ch <- c.revokeFailed
	c.errors.Describe(ch)
}

// Collect implements [prometheus.Collector].
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.state != nil {
		// Collectors get no context from the scrape; the timeout stands in.
		ctx, cancel := context.WithTimeout(context.Background(), StateTimeout)
		active, revokeFailed, err := c.state(ctx)
		cancel()
		if err != nil {
			c.errors.Inc()
		} else {
			ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(active))
			ch <- prometheus.MustNewConstMetric(c.revokeFailed, prometheus.GaugeValue, float64(revokeFailed))
		}
	}
	c.errors.Collect(ch)
}

var _ prometheus.Collector = (*stateCollector)(nil)
