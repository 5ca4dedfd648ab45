package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
)

// observer is the broker's Observer: it notes the wall time each grant
// ends by expiry.
type observer struct {
	mu   sync.Mutex
	at   []time.Time // guarded by mu
	seen atomic.Int64
}

func (o *observer) GrantOpened() {}

func (o *observer) GrantEnded(outcome latch.GrantState, _ time.Duration) {
	if outcome != latch.StateExpired {
		return
	}
	now := time.Now()
	o.mu.Lock()
	o.at = append(o.at, now)
	o.mu.Unlock()
	o.seen.Add(1)
}

func (o *observer) RevokeFailed()                                    {}
func (o *observer) SweepDone(string, time.Duration, int, int, error) {}

func (o *observer) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.at = nil
	o.seen.Store(0)
}

func (o *observer) count() int { return int(o.seen.Load()) }

// ends returns the end times so far, earliest first.
func (o *observer) ends() []time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := slices.Clone(o.at)
	slices.SortFunc(out, time.Time.Compare)
	return out
}

var _ broker.Observer = (*observer)(nil)

// callCounts are the simulator's requests received, per action.
type callCounts map[string]int

// calls reads the simulator's request counts through its admin endpoint,
// which lists every action, so no mutating one is missed.
func (r *run) calls(ctx context.Context) (callCounts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url+"/_sim/calls", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the simulator's call counts: %w", err)
	}
	defer resp.Body.Close()
	var c callCounts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		return nil, fmt.Errorf("read the simulator's call counts: %w", err)
	}
	return c, nil
}

// sub returns c minus before, per action.
func (c callCounts) sub(before callCounts) callCounts {
	out := callCounts{}
	for k, v := range c {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// mutating sums the calls that change something: all but reads, which
// EC2 throttles in a bucket of their own.
func (c callCounts) mutating() int {
	n := 0
	for k, v := range c {
		if !isRead(k) {
			n += v
		}
	}
	return n
}

// describes sums the Describe calls.
func (c callCounts) describes() int {
	n := 0
	for k, v := range c {
		if strings.HasPrefix(k, "Describe") {
			n += v
		}
	}
	return n
}

func isRead(action string) bool {
	for _, p := range []string{"Describe", "Get", "List", "Lookup"} {
		if strings.HasPrefix(action, p) {
			return true
		}
	}
	return false
}

// heapAlloc is the live heap after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// rssBytes is the process's resident set (VmRSS) after returning freed
// memory to the OS; 0 where /proc is not there.
func rssBytes() int64 {
	debug.FreeOSMemory()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// quantiles returns the p50, p99 and max of xs (nearest rank).
func quantiles(xs []float64) (p50, p99, maxV float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return rank(0.50), rank(0.99), s[len(s)-1]
}

// progressCounter counts done work across goroutines.
type progressCounter struct{ n atomic.Int64 }

func (p *progressCounter) add() int { return int(p.n.Add(1)) }
