package portal

import (
	"context"
	"sync"
	"time"

	"github.com/latchdev/latch"
)

// A grant page's proof costs CloudTrail LookupEvents calls, and the
// account has 2 a second for everything that reads CloudTrail: without a
// cache, anyone who may see a grant could spend that quota by reloading
// its page. So proofs are kept per grant for proofTTL, at most maxProofs
// of them, and views of a grant while its proof is being looked up wait
// for that lookup rather than making their own.
const (
	proofTTL  = time.Minute
	maxProofs = 1024
)

// proofCache holds recent proofs by grant ID. It is safe for concurrent
// use.
type proofCache struct {
	clock latch.Clock
	mu    sync.Mutex
	m     map[latch.GrantID]*cachedProof
}

// cachedProof is a proof looked up, or being looked up until done closes.
type cachedProof struct {
	version int // the grant's Version the proof is of: a change of state makes it stale
	done    chan struct{}
	at      time.Time // when the lookup ended; set with view, before done closes
	view    proofView
}

func newProofCache(clock latch.Clock) *proofCache {
	return &proofCache{clock: clock, m: make(map[latch.GrantID]*cachedProof)}
}

// get returns g's proof as look finds it, calling look only when no proof
// of g at its version is fresh or being looked up.
func (c *proofCache) get(ctx context.Context, g latch.Grant, look func() proofView) proofView {
	c.mu.Lock()
	e, ok := c.m[g.ID]
	if ok && e.version == g.Version && (!e.ready() || c.clock.Now().Sub(e.at) < proofTTL) {
		c.mu.Unlock()
		select {
		case <-e.done:
			return e.view
		case <-ctx.Done():
			return proofView{Status: "unavailable", Note: "CloudTrail could not be read just now"}
		}
	}
	e = &cachedProof{version: g.Version, done: make(chan struct{})}
	cached := c.makeRoom()
	if cached {
		c.m[g.ID] = e
	}
	c.mu.Unlock()

	v := look()
	c.mu.Lock()
	e.view, e.at = v, c.clock.Now()
	c.mu.Unlock()
	close(e.done)
	return v
}

// ready says whether e's lookup has ended; c.mu is held.
func (e *cachedProof) ready() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// makeRoom makes room for one more entry, dropping stale entries, then
// the oldest; false if every entry is a lookup in progress. c.mu is held.
func (c *proofCache) makeRoom() bool {
	if len(c.m) < maxProofs {
		return true
	}
	now := c.clock.Now()
	var oldest latch.GrantID
	for id, e := range c.m {
		if !e.ready() {
			continue
		}
		if now.Sub(e.at) >= proofTTL {
			delete(c.m, id)
		} else if oldest == "" || e.at.Before(c.m[oldest].at) {
			oldest = id
		}
	}
	if len(c.m) < maxProofs {
		return true
	}
	if oldest == "" {
		return false
	}
	delete(c.m, oldest)
	return true
}
