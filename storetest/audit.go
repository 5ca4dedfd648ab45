package storetest

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

// NewAuditEntry returns the i'th of a run of entries as the broker writes
// them, at epoch plus i minutes and a few nanoseconds, with details.
func NewAuditEntry(i int) latch.AuditEntry {
	return latch.AuditEntry{
		At:        epoch().Add(time.Duration(i)*time.Minute + 123456789),
		Actor:     "alice@example.com",
		Action:    latch.AuditGranted,
		Target:    "sg-0123456789abcdef0",
		GrantID:   latch.GrantID(fmt.Sprintf("g-%d", i)),
		RequestID: latch.RequestID(fmt.Sprintf("r-%d", i)),
		Details:   map[string]string{"n": fmt.Sprint(i), "reason": "INC-1234: look at the stuck queue"},
	}
}

// AuditKeys returns a fixed ed25519 key pair, and the public half of
// another, for signing tests.
func AuditKeys() (priv ed25519.PrivateKey, pub, other ed25519.PublicKey) {
	priv = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	other = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	return priv, priv.Public().(ed25519.PublicKey), other
}

func mustAppend(t *testing.T, s latch.Store, e latch.AuditEntry, sign func(string) string) latch.AuditEntry {
	t.Helper()
	got, err := s.AppendAudit(t.Context(), e, sign)
	if err != nil {
		t.Fatalf("AppendAudit(%s %s): %v", e.Action, e.GrantID, err)
	}
	return got
}

func mustAuditEntries(t *testing.T, s latch.Store, f latch.AuditFilter) []latch.AuditEntry {
	t.Helper()
	es, err := s.AuditEntries(t.Context(), f)
	if err != nil {
		t.Fatalf("AuditEntries(%+v): %v", f, err)
	}
	return es
}

// mustVerify reads the whole log and fails t unless it verifies with pub.
func mustVerify(t *testing.T, s latch.Store, pub ed25519.PublicKey) []latch.AuditEntry {
	t.Helper()
	es, head, err := latch.ReadAudit(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if ps := latch.VerifyAudit(es, head, pub); len(ps) > 0 {
		t.Fatalf("the log does not verify: %+v", ps)
	}
	return es
}

// diffAudit lists the fields in which got and want differ. At must be the
// same instant, in UTC.
func diffAudit(got, want latch.AuditEntry) string {
	var d string
	if !got.At.Equal(want.At) || got.At.Location() != time.UTC {
		d += fmt.Sprintf("  At: got %v, want %v (UTC)\n", got.At, want.At)
	}
	if !maps.Equal(got.Details, want.Details) {
		d += fmt.Sprintf("  Details: got %q, want %q\n", got.Details, want.Details)
	}
	got.At, got.Details, want.At, want.Details = time.Time{}, nil, time.Time{}, nil
	if !reflect.DeepEqual(got, want) {
		d += fmt.Sprintf("  got  %+v\n  want %+v\n", got, want)
	}
	return d
}

func seqs(es []latch.AuditEntry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

// testAudit checks the audit log. Beyond what [latch.Store] documents, it
// expects entries to keep At to the microsecond (the hash covers it), to
// come back from AuditEntries exactly as AppendAudit returned them, oldest
// first, and to verify with [latch.VerifyAudit]. AppendAudit may or may not
// close Changed.
func testAudit(t *testing.T, open func(t *testing.T) latch.Store) {
	t.Run("Empty", func(t *testing.T) {
		s := open(t)
		if h, err := s.AuditHead(t.Context()); err != nil || h != (latch.AuditHead{}) {
			t.Fatalf("AuditHead of a new store = %+v, %v; want the zero head", h, err)
		}
		if es := mustVerify(t, s, nil); len(es) != 0 {
			t.Fatalf("a new store has audit entries: %+v", es)
		}
	})

	t.Run("AppendLinksEntries", func(t *testing.T) {
		s := open(t)
		var appended []latch.AuditEntry
		for i := range 5 {
			e := NewAuditEntry(i)
			e.Seq, e.PrevHash, e.Hash, e.Signature = 99, "junk", "junk", "junk" // the log's to set
			got := mustAppend(t, s, e, nil)
			prev := ""
			if i > 0 {
				prev = appended[i-1].Hash
			}
			want := latch.LinkAudit(NewAuditEntry(i), int64(i), prev, nil)
			if got.Seq != int64(i+1) || got.PrevHash != prev || got.Hash != got.ComputeHash() || got.Signature != "" {
				t.Fatalf("AppendAudit of entry %d = %+v; want seq %d linked to %q, hashed, unsigned", i+1, got, i+1, prev)
			}
			if d := diffAudit(got, want); d != "" {
				t.Fatalf("AppendAudit of entry %d returned a different entry:\n%s", i+1, d)
			}
			appended = append(appended, got)
		}
		stored := mustVerify(t, s, nil)
		if len(stored) != len(appended) {
			t.Fatalf("AuditEntries lists %d entries, want %d", len(stored), len(appended))
		}
		for i := range stored {
			if d := diffAudit(stored[i], appended[i]); d != "" {
				t.Fatalf("entry %d differs from what AppendAudit returned:\n%s", i+1, d)
			}
		}
		if h, err := s.AuditHead(t.Context()); err != nil || h != (latch.AuditHead{Seq: 5, Hash: appended[4].Hash}) {
			t.Fatalf("AuditHead = %+v, %v; want 5, the last entry's hash %q and no signature", h, err, appended[4].Hash)
		}
	})

	t.Run("KeepsWhatWasWritten", func(t *testing.T) {
		s := open(t)
		odd := []latch.AuditEntry{
			{At: time.Date(2030, 1, 2, 3, 4, 5, 999999999, time.FixedZone("X", -7*3600)), Actor: "bob", Action: latch.AuditLogin},
			{Actor: "no time", Action: latch.AuditLogin, Details: map[string]string{}},
			{At: epoch(), Action: latch.AuditPolicyReloaded, Details: map[string]string{
				"quotes": `"'\`, "html": "<b>&amp;</b>", "lines": "a\nb\tc", "unicode": "Zoë 🔑 \u2028", "nul": "a\x00b", "": "empty key",
			}},
			{At: epoch(), Actor: "not UTF-8: \xff\xfe", Action: latch.AuditLogin, Details: map[string]string{"k\xff": "v\xfe"}},
			{At: time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC), Action: latch.AuditLogin},
		}
		var appended []latch.AuditEntry
		for _, e := range odd {
			appended = append(appended, mustAppend(t, s, e, nil))
		}
		stored := mustVerify(t, s, nil)
		for i := range stored {
			if d := diffAudit(stored[i], appended[i]); d != "" {
				t.Errorf("entry %d differs from what AppendAudit returned:\n%s", i+1, d)
			}
		}
		if want := time.Date(2030, 1, 2, 10, 4, 5, 999999000, time.UTC); stored[0].At != want {
			t.Errorf("At = %v, want %v: UTC, to the microsecond", stored[0].At, want)
		}
		if !stored[1].At.IsZero() {
			t.Errorf("a zero At came back as %v", stored[1].At)
		}
	})

	t.Run("Filters", func(t *testing.T) {
		s := open(t)
		for i, e := range []struct {
			actor  string
			grant  latch.GrantID
			target string
		}{{"alice", "g-1", "sg-1"}, {"bob", "g-2", "adopt-1"}, {"alice", "g-2", "sg-1"}, {"latch", "g-1", "adopt-1"}, {"alice", "", "adopt-10"}} {
			a := NewAuditEntry(i)
			a.Actor, a.GrantID, a.Target = e.actor, e.grant, e.target
			mustAppend(t, s, a, nil)
		}
		third := NewAuditEntry(2).At.Truncate(time.Microsecond)
		tests := []struct {
			name string
			f    latch.AuditFilter
			want []int64
		}{
			{"all", latch.AuditFilter{}, []int64{1, 2, 3, 4, 5}},
			{"actor", latch.AuditFilter{Actor: "alice"}, []int64{1, 3, 5}},
			{"no such actor", latch.AuditFilter{Actor: "mallory"}, nil},
			{"grant", latch.AuditFilter{GrantID: "g-2"}, []int64{2, 3}},
			{"since an entry's time", latch.AuditFilter{Since: third}, []int64{3, 4, 5}},
			{"since just after it", latch.AuditFilter{Since: third.Add(time.Nanosecond)}, []int64{4, 5}},
			{"since in another zone", latch.AuditFilter{Since: third.In(time.FixedZone("X", 5*3600))}, []int64{3, 4, 5}},
			{"actor and grant", latch.AuditFilter{Actor: "alice", GrantID: "g-2"}, []int64{3}},
			{"target", latch.AuditFilter{Target: "adopt-1"}, []int64{2, 4}}, // exact: not adopt-10
			{"no such target", latch.AuditFilter{Target: "adopt-2"}, nil},
			{"target and actor", latch.AuditFilter{Target: "adopt-1", Actor: "latch"}, []int64{4}},
			{"target and limit", latch.AuditFilter{Target: "sg-1", Limit: 1}, []int64{1}},
			{"limit keeps the oldest", latch.AuditFilter{Limit: 2}, []int64{1, 2}},
			{"actor and limit", latch.AuditFilter{Actor: "alice", Limit: 2}, []int64{1, 3}},
			{"since and limit", latch.AuditFilter{Since: third, Limit: 1}, []int64{3}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := seqs(mustAuditEntries(t, s, tt.f)); !slices.Equal(got, tt.want) {
					t.Fatalf("AuditEntries(%+v) lists entries %v, want %v", tt.f, got, tt.want)
				}
			})
		}
	})

	t.Run("ConcurrentAppendsMakeOneChain", func(t *testing.T) {
		s := open(t)
		const writers, each = 16, 8
		got := make([][]int64, writers)
		errs := make([]error, writers)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					e, err := s.AppendAudit(t.Context(), NewAuditEntry(w*each+i), nil)
					if err != nil {
						errs[w] = err
						return
					}
					got[w] = append(got[w], e.Seq)
				}
			})
		}
		wg.Wait()
		for w, err := range errs {
			if err != nil {
				t.Fatalf("writer %d: %v", w, err)
			}
		}
		var all []int64
		for w := range got {
			if !slices.IsSorted(got[w]) {
				t.Errorf("writer %d's appends got seqs %v, not increasing", w, got[w])
			}
			all = append(all, got[w]...)
		}
		slices.Sort(all)
		stored := mustVerify(t, s, nil)
		if want := seqs(stored); len(all) != writers*each || !slices.Equal(all, want) {
			t.Fatalf("appends returned seqs %v; the log holds %v", all, want)
		}
		for i, seq := range all {
			if seq != int64(i+1) {
				t.Fatalf("seqs %v, want 1 to %d", all, writers*each)
			}
		}
	})

	t.Run("ReadWhileAppending", func(t *testing.T) {
		s := open(t)
		const writers, each = 4, 16
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					if _, err := s.AppendAudit(t.Context(), NewAuditEntry(w*each+i), nil); err != nil {
						t.Errorf("AppendAudit: %v", err)
						return
					}
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		// A failing read stops reading but waits for the writers, which
		// must not outlive the test.
		for reading := true; reading; {
			select {
			case <-done:
				reading = false
			default:
			}
			es, head, err := latch.ReadAudit(t.Context(), s)
			if latch.ErrorCode(err) == latch.EUNAVAILABLE {
				continue // appends kept landing mid-read; read again
			}
			if err != nil {
				t.Error(err)
				break
			}
			if ps := latch.VerifyAudit(es, head, nil); len(ps) > 0 {
				t.Errorf("a log read while appending, %d entries to head %d, does not verify: %+v", len(es), head.Seq, ps)
				break
			}
		}
		<-done
		if t.Failed() {
			t.FailNow()
		}
		if es := mustVerify(t, s, nil); len(es) != writers*each {
			t.Fatalf("%d entries, want %d", len(es), writers*each)
		}
	})

	t.Run("Signatures", func(t *testing.T) {
		s := open(t)
		priv, pub, other := AuditKeys()
		sign := latch.SignAudit(priv)
		var last latch.AuditEntry
		for i := range 3 {
			if last = mustAppend(t, s, NewAuditEntry(i), sign); last.Signature == "" {
				t.Fatalf("entry %d is unsigned", last.Seq)
			}
		}
		// The head is signed with the entry, in the same transaction.
		if h, err := s.AuditHead(t.Context()); err != nil || h != latch.NewAuditHead(3, last.Hash, sign) {
			t.Fatalf("AuditHead = %+v, %v; want entry 3's head, signed", h, err)
		}
		mustVerify(t, s, pub)
		es, head, err := latch.ReadAudit(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		want := []latch.AuditProblem{{Seq: 1, Kind: latch.ProblemBadSignature}, {Seq: 2, Kind: latch.ProblemBadSignature},
			{Seq: 3, Kind: latch.ProblemBadSignature}, {Seq: 3, Kind: latch.ProblemBadSignature}}
		if got := latch.VerifyAudit(es, head, other); !sameProblems(got, want) {
			t.Fatalf("verified with the wrong key: %+v; want a bad signature on each entry and the head", got)
		}

		mustAppend(t, s, NewAuditEntry(3), nil)
		es, head, err = latch.ReadAudit(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		want = []latch.AuditProblem{{Seq: 4, Kind: latch.ProblemUnsigned}, {Seq: 4, Kind: latch.ProblemUnsigned}}
		if got := latch.VerifyAudit(es, head, pub); !sameProblems(got, want) {
			t.Fatalf("verified with an unsigned entry and head: %+v; want both unsigned", got)
		}
		if got := latch.VerifyAudit(es, head, nil); len(got) > 0 {
			t.Fatalf("verified without a key: %+v; want no problems", got)
		}
	})
}

// sameProblems compares problems by Seq and Kind, in order.
func sameProblems(got, want []latch.AuditProblem) bool {
	return slices.EqualFunc(got, want, func(a, b latch.AuditProblem) bool { return a.Seq == b.Seq && a.Kind == b.Kind })
}
