package main

import (
	"os"
	"strings"
	"sync"
	"time"
)

// fileClock reads the time from a file that a test rewrites, so that crash
// tests can move the time of real latch processes without waiting. It is
// used only when LATCH_TEST_CLOCK_FILE is set.
type fileClock struct {
	path string

	mu      sync.Mutex
	alarms  []fileAlarm // guarded by mu
	polling bool        // guarded by mu
}

type fileAlarm struct {
	at time.Time
	c  chan time.Time
}

func newFileClock(path string) *fileClock { return &fileClock{path: path} }

// Now returns the file's time, or the wall clock if the file is unreadable.
func (c *fileClock) Now() time.Time {
	b, err := os.ReadFile(c.path)
	if err != nil {
		return time.Now()
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Now()
	}
	return t
}

// Alarm fires once the file's time reaches at. One goroutine polls the file
// while any alarm is pending.
func (c *fileClock) Alarm(at time.Time) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alarms = append(c.alarms, fileAlarm{at, ch})
	if !c.polling {
		c.polling = true
		go c.poll()
	}
	return ch
}

func (c *fileClock) poll() {
	for {
		now := c.Now()
		c.mu.Lock()
		pending := c.alarms[:0]
		for _, a := range c.alarms {
			if a.at.After(now) {
				pending = append(pending, a)
			} else {
				a.c <- now
			}
		}
		c.alarms = pending
		if len(pending) == 0 {
			c.polling = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}
