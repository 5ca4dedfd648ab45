package latch

import "time"

// Clock is how latch reads and waits on time. Everything that schedules
// takes one, so tests move time instead of sleeping.
type Clock interface {
	Now() time.Time
	// Alarm returns a channel that receives once the clock reaches at.
	Alarm(at time.Time) <-chan time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current wall-clock time.
func (SystemClock) Now() time.Time { return time.Now() }

// Alarm fires at the wall-clock time at.
func (SystemClock) Alarm(at time.Time) <-chan time.Time { return time.After(time.Until(at)) }
