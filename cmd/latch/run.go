package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch/leader"
	"github.com/latchdev/latch/revoker"
)

type runOptions struct {
	sweepInterval, recheck, metricsListen string
}

func (a *app) runCommand() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the revoker daemon until SIGTERM",
		Long: `Revoke grants as they expire, and sweep AWS for expired latch rules every
--sweep-interval, until interrupted.

At start it sweeps once and settles grants a crashed process left half
done, so restarting it after a crash (or with an empty database) converges:
every expired rule is revoked within one sweep interval. A revoke that fails
is retried with backoff, forever; after repeated failures the grant is
marked revoke-failed and every further failure is logged at ERROR.`,
		Example: `  latch run
  latch run --sweep-interval 30s --region us-east-1,eu-west-1
  latch run --metrics-listen 127.0.0.1:9464       # Prometheus metrics at /metrics`,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.daemon(cmd.Context(), o) },
	}
	cmd.Flags().StringVar(&o.sweepInterval, "sweep-interval", revoker.DefaultSweepInterval.String(), "how often to sweep AWS for expired rules")
	cmd.Flags().StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464)")
	cmd.Flags().StringVar(&o.recheck, "recheck", revoker.DefaultRecheck.String(), "how often to re-read the database for grants made by other processes")
	a.addFlags(cmd, append([]flagGroup{dbFlags}, brokerFlags...)...)
	return cmd
}

func (a *app) daemon(ctx context.Context, o runOptions) error {
	sweep, err := positiveDuration("sweep-interval", o.sweepInterval)
	if err != nil {
		return err
	}
	recheck, err := positiveDuration("recheck", o.recheck)
	if err != nil {
		return err
	}
	store, err := a.store(ctx)
	if err != nil {
		return err
	}
	if o.metricsListen != "" {
		if _, err := a.startMetrics(ctx, o.metricsListen, store); err != nil {
			return err
		}
	}
	b, err := a.broker(ctx, store, a.regions, 0)
	if err != nil {
		return err
	}
	ropts := revoker.Options{Clock: a.clock, Logger: a.log.With("component", "revoker"), SweepInterval: sweep, Recheck: recheck}
	a.log.Info("revoker started", "regions", a.regions, "sweep_interval", sweep.String(), "db", store.Path())
	err = a.runRevoker(ctx, store, b, b, ropts, leader.DefaultTTL)
	a.log.Info("revoker stopped")
	return err
}

func positiveDuration(flag, v string) (time.Duration, error) {
	d, err := durationFlag(flag, v)
	if err == nil && d <= 0 {
		return 0, usagef("--%s %s: want a positive duration", flag, v)
	}
	return d, err
}
