package notify_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/notify"
	"github.com/latchdev/latch/storetest"
)

type noopSink struct{ n atomic.Int64 }

func (s *noopSink) Deliver(context.Context, latch.Route, latch.Event) error { s.n.Add(1); return nil }

// BenchmarkOutboxThroughput measures claiming, delivering to a no-op sink
// and settling events from a SQLite outbox: the worker's own cost, per
// event.
func BenchmarkOutboxThroughput(b *testing.B) {
	f := newFixture(b, pager)
	sink := &noopSink{}
	f.worker = newWorker(f, sink)
	for b.Loop() {
		b.StopTimer()
		for range 256 {
			f.enqueue(b)
		}
		b.StartTimer()
		for f.pending(b) {
			f.worker.Pass(b.Context())
		}
	}
	b.ReportMetric(float64(sink.n.Load())/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkCreateRequest measures recording a request, which writes its
// request.created event in the same transaction: with no worker, and with
// a worker draining the outbox at the same time.
func BenchmarkCreateRequest(b *testing.B) {
	b.Run("worker=off", func(b *testing.B) { benchCreateRequest(b, false) })
	b.Run("worker=on", func(b *testing.B) { benchCreateRequest(b, true) })
}

func benchCreateRequest(b *testing.B, worker bool) {
	f := newFixture(b, pager)
	sink := &noopSink{}
	f.worker = notify.New(f.store, notify.RouterFunc(func(latch.Event) []latch.Route { return []latch.Route{pager} }),
		map[string]latch.Sink{latch.SinkWebhook: sink}, notify.Options{Clock: f.clock, Coalesce: notify.ServerCoalesce, Logger: slog.New(slog.DiscardHandler)})
	if worker {
		ctx, cancel := context.WithCancel(b.Context())
		done := make(chan error)
		go func() { done <- f.worker.Run(ctx) }()
		defer func() { cancel(); <-done }()
	}
	for b.Loop() {
		if _, err := f.store.CreateRequest(b.Context(), storetest.NewRequest(start)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(sink.n.Load()), "delivered")
}
