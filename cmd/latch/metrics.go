package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/metrics"
)

// startMetrics serves /metrics on addr until ctx ends, with the grant
// gauges read from store. It must run before any AWS client is made, so
// that their calls are counted.
func (a *app) startMetrics(ctx context.Context, addr string, store latch.Store) (*metrics.Metrics, error) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, func(ctx context.Context) (active, revokeFailed int, err error) {
		gs, err := store.Grants(ctx, latch.GrantFilter{States: []latch.GrantState{
			latch.StateRequested, latch.StateActive, latch.StateRevoking, latch.StateRevokeFailed}})
		for _, g := range gs { // every open grant is active; revoke-failed ones are also counted apart
			active++
			if g.State == latch.StateRevokeFailed {
				revokeFailed++
			}
		}
		return active, revokeFailed, err
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	a.metrics = m
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics server stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	a.log.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return m, nil
}
