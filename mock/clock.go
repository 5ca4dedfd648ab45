// Package mock has test doubles for latch's ports.
package mock

import (
	"sync"
	"time"

	"github.com/latchdev/latch"
)

// Clock is a latch.Clock that moves only when told to. Its zero value is not
// usable; call NewClock.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	alarms []alarm // guarded by mu
}

type alarm struct {
	at time.Time
	c  chan time.Time
}

// NewClock returns a clock stopped at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Alarm returns a channel that receives once the clock reaches at; at once
// if it already has.
func (c *Clock) Alarm(at time.Time) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !at.After(c.now) {
		ch <- c.now
		return ch
	}
	c.alarms = append(c.alarms, alarm{at, ch})
	return ch
}

// Advance moves the clock forward by d and rings every alarm now due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	pending := c.alarms[:0]
	for _, a := range c.alarms {
		if a.at.After(c.now) {
			pending = append(pending, a)
			continue
		}
		a.c <- c.now
	}
	c.alarms = pending
}

// Set moves the clock to t, which must not be earlier than now.
func (c *Clock) Set(t time.Time) { c.Advance(t.Sub(c.Now())) }

// Pending returns how many alarms are waiting.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.alarms)
}

var _ latch.Clock = (*Clock)(nil)
