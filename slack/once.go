package slack

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/latchdev/latch"
)

// maxMemOnce bounds the signatures memOnce holds. Only clicks Slack signed
// are recorded, each for the window (5 minutes): far more than a
// workspace clicks.
const maxMemOnce = 10000

// memOnce is Once in memory, for a handler given no store: it protects
// one process only. Full, it refuses new keys rather than forget live
// ones, which would let their replays through.
type memOnce struct {
	clock latch.Clock
	max   int
	mu    sync.Mutex
	until map[string]time.Time // guarded by mu
}

func newMemOnce(c latch.Clock, max int) *memOnce {
	return &memOnce{clock: c, max: max, until: map[string]time.Time{}}
}

func (m *memOnce) UseOnce(_ context.Context, key string, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock.Now()
	if u, ok := m.until[key]; ok && !u.Before(now) {
		return false, nil
	}
	if len(m.until) >= m.max {
		for k, u := range m.until {
			if u.Before(now) {
				delete(m.until, k)
			}
		}
		if len(m.until) >= m.max {
			return false, errors.New("too many recent clicks to remember")
		}
	}
	m.until[key] = until
	return true, nil
}
