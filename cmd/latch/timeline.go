package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/latchdev/latch"
)

// timeline prints the demo's story with elapsed times, and receives the
// JSON log lines so that it can show the evidence and wait for it.
type timeline struct {
	out   io.Writer
	clock latch.Clock
	start time.Time

	mu      sync.Mutex
	seen    map[[2]string]bool // (msg, rule_id) of evidence lines; guarded by mu
	changed chan struct{}      // closed on each new evidence line; guarded by mu
	partial []byte             // guarded by mu
}

func newTimeline(out io.Writer, clock latch.Clock) *timeline {
	return &timeline{out: out, clock: clock, start: clock.Now(), seen: map[[2]string]bool{}, changed: make(chan struct{})}
}

func (t *timeline) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(t, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func (t *timeline) stamp() string {
	return fmt.Sprintf("%+7.1fs", t.clock.Now().Sub(t.start).Seconds())
}

func (t *timeline) say(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, "%s  %s\n", t.stamp(), fmt.Sprintf(format, args...))
}

// Write takes JSON log lines from slog.
func (t *timeline) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := t.partial[:i]
		var rec struct {
			Msg    string `json:"msg"`
			RuleID string `json:"rule_id"`
		}
		_ = json.Unmarshal(line, &rec)
		label := "log     "
		if rec.Msg == "granted" || rec.Msg == "expired" || rec.Msg == "revoked" {
			label = "evidence"
			t.seen[[2]string{rec.Msg, rec.RuleID}] = true
			close(t.changed)
			t.changed = make(chan struct{})
		}
		fmt.Fprintf(t.out, "%s    %s %s\n", t.stamp(), label, line)
		t.partial = t.partial[i+1:]
	}
}

// await waits until an evidence line with msg about rule has been written.
func (t *timeline) await(ctx context.Context, msg, rule string, limit time.Duration) error {
	deadline := t.clock.Alarm(t.clock.Now().Add(limit))
	for {
		t.mu.Lock()
		done, changed := t.seen[[2]string{msg, rule}], t.changed
		t.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-deadline:
			return fmt.Errorf("demo: no %q evidence for rule %s within %s", msg, rule, limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
