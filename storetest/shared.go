package storetest

import (
	"sync"
	"testing"

	"github.com/latchdev/latch"
)

// sharedAuditChain has writers on two stores of one database (two
// replicas) append at once, some one entry at a time and some in batches
// with grant changes (UpdateGrants, as the leader's batched expiry
// does), and checks that the log is one chain with every entry once.
func sharedAuditChain(t *testing.T, a, b latch.Store) {
	stores := []latch.Store{a, b}
	const writers, each = 8, 6
	var grants []latch.Grant
	for range writers {
		grants = append(grants, mustCreate(t, a, NewGrant(epoch()), "created"))
	}
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			s := stores[w%2]
			if w%4 == 3 { // a batch: a grant change and its audit entries in one transaction
				e := NewAuditEntry(w * each)
				g := grants[w]
				g.LastError = "batched"
				_, errs[w] = s.UpdateGrants(t.Context(), []latch.GrantChange{{Grant: g, Note: "batched", Audit: &e}}, nil)
				return
			}
			for i := range each {
				if _, err := s.AppendAudit(t.Context(), NewAuditEntry(w*each+i), nil); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", w, err)
		}
	}
	stored := mustVerify(t, b, nil)
	want := 0
	for w := range writers {
		if w%4 == 3 {
			want++
		} else {
			want += each
		}
	}
	if len(stored) != want {
		t.Fatalf("the log holds %d entries; want %d", len(stored), want)
	}
	for i, e := range stored {
		if e.Seq != int64(i+1) {
			t.Fatalf("entry %d has seq %d: the chain has a gap or a fork", i, e.Seq)
		}
	}
}
