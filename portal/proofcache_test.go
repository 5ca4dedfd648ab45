package portal

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/mock"
)

// The cache holds at most maxProofs proofs, looks a grant up again once it
// changes, and makes one lookup for views that arrive together.
func TestProofCache(t *testing.T) {
	clock := mock.NewClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	c := newProofCache(clock)
	var lookups atomic.Int32
	look := func() proofView { lookups.Add(1); return proofView{Status: "checked"} }

	for i := range maxProofs + 10 {
		c.get(t.Context(), latch.Grant{ID: latch.GrantID(fmt.Sprintf("g-%016x", i))}, look)
		clock.Advance(time.Millisecond)
	}
	if len(c.m) > maxProofs {
		t.Errorf("the cache holds %d proofs, more than %d", len(c.m), maxProofs)
	}
	if _, ok := c.m[latch.GrantID(fmt.Sprintf("g-%016x", 0))]; ok {
		t.Error("the oldest proof was kept, a newer one dropped")
	}

	g := latch.Grant{ID: "g-a0000000000000aa", Version: 1}
	lookups.Store(0)
	c.get(t.Context(), g, look)
	c.get(t.Context(), g, look)
	g.Version++
	c.get(t.Context(), g, look)
	if n := lookups.Load(); n != 2 {
		t.Errorf("%d lookups for a grant viewed twice, then changed; want 2", n)
	}

	g = latch.Grant{ID: "g-b0000000000000bb"}
	lookups.Store(0)
	release := make(chan struct{})
	slow := func() proofView { lookups.Add(1); <-release; return proofView{Status: "checked"} }
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if v := c.get(context.Background(), g, slow); v.Status != "checked" {
				t.Errorf("a waiting view got %+v", v)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // let them queue behind the first
	close(release)
	wg.Wait()
	if n := lookups.Load(); n != 1 {
		t.Errorf("%d lookups for 20 views at once; want 1", n)
	}
}

// A Session Manager grant has no source address: pages say how it is
// reached instead of printing an empty prefix.
func TestFromSaysSessionManager(t *testing.T) {
	from := funcs["from"].(func(latch.Access, latch.SSMDocument, netip.Prefix) string)
	if got := from(latch.AccessSSM, latch.DocSSH, netip.Prefix{}); got != "through Session Manager (ssh), no port opened" {
		t.Errorf("ssm: %q", got)
	}
	if got := from("", "", netip.MustParsePrefix("203.0.113.7/32")); got != "from 203.0.113.7/32" {
		t.Errorf("network: %q", got)
	}
}
