package main

import (
	"context"
	"fmt"
	"time"

	"github.com/latchdev/latch"
)

// countdown shows the time left on g until it expires (false) or ctx ends
// (true). On a terminal it redraws one line every second; otherwise it
// writes a line each minute, so logs stay readable.
func (a *app) countdown(ctx context.Context, g latch.Grant) (interrupted bool) {
	tty := isTerminal(a.stderr)
	step := time.Minute
	if tty {
		step = time.Second
	}
	fmt.Fprintf(a.stderr, "Holding %s open; Ctrl-C revokes it now.\n", g.ID)
	for {
		now := a.clock.Now()
		left := g.ExpiresAt.Sub(now)
		if left <= 0 {
			if tty {
				fmt.Fprint(a.stderr, "\r\033[K")
			}
			fmt.Fprintf(a.stderr, "%s expired; revoking.\n", g.ID)
			return false
		}
		if tty {
			fmt.Fprintf(a.stderr, "\r\033[K%s  %s from %s: %s left", g.ID, opens(g.Protocol, g.Ports), g.Source, left.Round(time.Second))
		} else {
			fmt.Fprintf(a.stderr, "%s: %s left\n", g.ID, left.Round(time.Second))
		}
		next := now.Add(step).Truncate(step)
		if next.After(g.ExpiresAt) {
			next = g.ExpiresAt
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprint(a.stderr, "\r\033[K")
			}
			fmt.Fprintf(a.stderr, "Interrupted; revoking %s.\n", g.ID)
			return true
		case <-a.clock.Alarm(next):
		}
	}
}
