package latch_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

var (
	auditKey   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	otherKey   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
	auditPub   = auditKey.Public().(ed25519.PublicKey)
	auditStart = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)
)

// auditLog is a log as a store would hand it to VerifyAudit.
type auditLog struct {
	entries []latch.AuditEntry
	head    latch.AuditHead
	heads   []latch.AuditHead // after each append, for first
}

// newAuditLog links n entries, signed if sign is not nil, as a store would.
func newAuditLog(n int, sign func(string) string) *auditLog {
	l := &auditLog{}
	actors := []string{"alice@example.com", "bob@example.com", "latch"}
	actions := []latch.AuditAction{latch.AuditRequested, latch.AuditApproved, latch.AuditGranted, latch.AuditExpired}
	for i := range n {
		e := latch.AuditEntry{
			At:        auditStart.Add(time.Duration(i) * time.Minute),
			Actor:     actors[i%len(actors)],
			Action:    actions[i%len(actions)],
			Target:    "sg-0123456789abcdef0",
			GrantID:   latch.GrantID(fmt.Sprintf("g-%d", i/4)),
			RequestID: latch.RequestID(fmt.Sprintf("r-%d", i/4)),
			Details:   map[string]string{"n": fmt.Sprint(i), "reason": "INC-1234 <look> & fix"},
		}
		if i%5 == 2 { // entries 3 and 8
			e.Details = nil
		}
		l.append(e, sign)
	}
	return l
}

// append adds e after the head and moves the head, as AppendAudit does.
func (l *auditLog) append(e latch.AuditEntry, sign func(string) string) {
	e = latch.LinkAudit(e, l.head.Seq, l.head.Hash, sign)
	l.entries = append(l.entries, e)
	l.head = latch.NewAuditHead(e.Seq, e.Hash, sign)
	l.heads = append(l.heads, l.head)
}

// first returns a copy of l's first n entries, as the log was after n
// appends.
func (l *auditLog) first(n int) *auditLog {
	c := &auditLog{entries: make([]latch.AuditEntry, n)}
	for i, e := range l.entries[:n] {
		e.Details = maps.Clone(e.Details)
		c.entries[i] = e
	}
	c.head, c.heads = l.heads[n-1], l.heads[:n:n]
	return c
}

// at returns the entry stored with seq.
func (l *auditLog) at(seq int64) *latch.AuditEntry {
	for i := range l.entries {
		if l.entries[i].Seq == seq {
			return &l.entries[i]
		}
	}
	panic(fmt.Sprintf("no entry %d", seq))
}

// remove deletes the entries with the given seqs.
func (l *auditLog) remove(seqs ...int64) {
	l.entries = slices.DeleteFunc(l.entries, func(e latch.AuditEntry) bool { return slices.Contains(seqs, e.Seq) })
}

// move takes the entry at index from out and puts it back at index to of
// what remains.
func (l *auditLog) move(from, to int) {
	e := l.entries[from]
	l.entries = slices.Insert(slices.Delete(l.entries, from, from+1), to, e)
}

// forge returns a well-formed entry claiming seq, linked to the stored
// entry seq-1 if there is one.
func (l *auditLog) forge(seq int64, sign func(string) string) latch.AuditEntry {
	prev := ""
	if i := slices.IndexFunc(l.entries, func(e latch.AuditEntry) bool { return e.Seq == seq-1 }); i >= 0 {
		prev = l.entries[i].Hash
	}
	e := latch.AuditEntry{At: auditStart, Actor: "mallory@example.com", Action: latch.AuditApproved, Target: "sg-0123456789abcdef0",
		GrantID: "g-forged", Details: map[string]string{"reason": "looks legitimate"}}
	return latch.LinkAudit(e, seq-1, prev, sign)
}

func rehash(e *latch.AuditEntry) { e.Hash = e.ComputeHash() }

// problem is what a test expects of an AuditProblem.
type problem struct {
	kind string
	seq  int64
}

func kinds(ps []latch.AuditProblem) []problem {
	out := make([]problem, len(ps))
	for i, p := range ps {
		out[i] = problem{p.Kind, p.Seq}
	}
	return out
}

func TestVerifyAudit(t *testing.T) {
	const n = 10
	sign := latch.SignAudit(auditKey)
	tests := []struct {
		name   string
		signed bool // the log is signed, and verified with auditPub
		tamper func(l *auditLog)
		want   []problem // in order
		says   string    // in the first problem's message
	}{
		{name: "untouched", tamper: func(*auditLog) {}},
		{name: "untouched and signed", signed: true, tamper: func(*auditLog) {}},
		{name: "empty", tamper: func(l *auditLog) { *l = auditLog{} }},

		{name: "edit details", tamper: func(l *auditLog) { l.at(5).Details["reason"] = "nothing to see" },
			want: []problem{{"changed", 5}}, says: "entry 5 was changed: its content no longer matches its hash"},
		{name: "add a detail", tamper: func(l *auditLog) { l.at(4).Details["extra"] = "x" }, want: []problem{{"changed", 4}}},
		{name: "details nil to empty", tamper: func(l *auditLog) { l.at(3).Details = map[string]string{} }, want: []problem{{"changed", 3}}},
		{name: "edit actor", tamper: func(l *auditLog) { l.at(5).Actor = "mallory@example.com" }, want: []problem{{"changed", 5}}},
		{name: "edit at", tamper: func(l *auditLog) { l.at(5).At = l.at(5).At.Add(-time.Hour) }, want: []problem{{"changed", 5}}},
		{name: "edit at by a microsecond", tamper: func(l *auditLog) { l.at(5).At = l.at(5).At.Add(time.Microsecond) }, want: []problem{{"changed", 5}}},
		{name: "edit action", tamper: func(l *auditLog) { l.at(1).Action = latch.AuditDenied }, want: []problem{{"changed", 1}}},
		{name: "edit grant", tamper: func(l *auditLog) { l.at(10).GrantID = "g-other" }, want: []problem{{"changed", 10}}},
		{name: "edit prev_hash", tamper: func(l *auditLog) { l.at(6).PrevHash = l.at(4).Hash }, want: []problem{{"changed", 6}}},
		{name: "edit hash", tamper: func(l *auditLog) { l.at(6).Hash = l.at(4).Hash }, want: []problem{{"changed", 6}}},
		{name: "edit seq", tamper: func(l *auditLog) { l.at(5).Seq = 50 },
			want: []problem{{"changed", 5}}, says: "its seq was set to 50"},
		{name: "swap seqs", tamper: func(l *auditLog) { l.entries[2].Seq, l.entries[6].Seq = 7, 3 },
			want: []problem{{"changed", 3}, {"changed", 7}}},
		{name: "text that is not UTF-8 but hashes the same", tamper: func(l *auditLog) {
			e := l.at(4) // as if it had been written so: rewrite the chain from it
			e.Actor = "eve\uFFFD"
			rehash(e)
			for s := int64(5); s <= 10; s++ {
				l.at(s).PrevHash = l.at(s - 1).Hash
				rehash(l.at(s))
			}
			l.head.Hash = l.at(10).Hash
			e.Actor = "eve\xff" // JSON hashes both as U+FFFD
		}, want: []problem{{"changed", 4}}, says: "not UTF-8"},

		{name: "edit and recompute the hash", tamper: func(l *auditLog) {
			l.at(5).Details["reason"] = "nothing to see"
			rehash(l.at(5))
		}, want: []problem{{"changed", 5}}, says: "entry 5 was changed and its hash recomputed: entry 6's prev_hash is not entry 5's hash"},
		{name: "edit and recompute the hash, signed", signed: true, tamper: func(l *auditLog) {
			l.at(5).Actor = "mallory@example.com"
			rehash(l.at(5))
		}, want: []problem{{"changed", 5}, {"bad-signature", 5}}},
		{name: "edit and recompute the first", tamper: func(l *auditLog) {
			l.at(1).Target = "sg-other"
			rehash(l.at(1))
		}, want: []problem{{"changed", 1}}},
		{name: "edit and recompute the last", tamper: func(l *auditLog) {
			l.at(10).Target = "sg-other"
			rehash(l.at(10))
		}, want: []problem{{"changed", 10}}, says: "the head's hash is not entry 10's hash"},
		{name: "rewrite the rest of the chain and move the head, signed", signed: true, tamper: func(l *auditLog) {
			l.at(8).Actor = "mallory@example.com"
			rehash(l.at(8))
			for s := int64(9); s <= 10; s++ {
				l.at(s).PrevHash = l.at(s - 1).Hash
				rehash(l.at(s))
			}
			l.head.Hash = l.at(10).Hash
		}, want: []problem{{"bad-signature", 8}, {"bad-signature", 9}, {"bad-signature", 10}, {"bad-signature", 10}}},
		{name: "first entry linked to something", tamper: func(l *auditLog) {
			l.at(1).PrevHash = l.at(2).Hash
			rehash(l.at(1))
		}, want: []problem{{"changed", 1}}, says: "the first entry has none"},

		{name: "delete one", tamper: func(l *auditLog) { l.remove(5) },
			want: []problem{{"removed", 5}}, says: "entry 5 was removed: entry 6 follows entry 4, and its prev_hash is not entry 4's hash"},
		{name: "delete the first", tamper: func(l *auditLog) { l.remove(1) },
			want: []problem{{"removed", 1}}, says: "entry 1 was removed: the log starts at entry 2"},
		{name: "delete several", tamper: func(l *auditLog) { l.remove(4, 5, 6) },
			want: []problem{{"removed", 4}}, says: "entries 4 to 6 were removed"},
		{name: "delete two apart", tamper: func(l *auditLog) { l.remove(3, 7) }, want: []problem{{"removed", 3}, {"removed", 7}}},
		{name: "delete one and relink", tamper: func(l *auditLog) {
			l.remove(5)
			l.at(6).PrevHash = l.at(4).Hash
			rehash(l.at(6))
		}, want: []problem{{"removed", 5}, {"changed", 6}}, says: "it was relinked to entry 4"},

		{name: "insert a forged entry", tamper: func(l *auditLog) {
			l.entries = slices.Insert(l.entries, 5, l.forge(6, nil))
		}, want: []problem{{"inserted", 6}}, says: "the entry 6 at position 6 is not part of the chain: entry 7 links to the entry 6 at position 7"},
		{name: "insert a forged entry at the end", tamper: func(l *auditLog) { l.entries = append(l.entries, l.forge(4, nil)) },
			want: []problem{{"inserted", 4}}},
		{name: "insert a forged last entry", tamper: func(l *auditLog) { l.entries = append(l.entries, l.forge(10, nil)) },
			want: []problem{{"inserted", 10}}, says: "the head links to"},
		{name: "append without moving the head", tamper: func(l *auditLog) { l.entries = append(l.entries, l.forge(11, nil)) },
			want: []problem{{"inserted", 11}}, says: "entry 11 is past the log's head, entry 10"},
		{name: "append without moving the head, signed", signed: true, tamper: func(l *auditLog) { l.entries = append(l.entries, l.forge(11, nil)) },
			want: []problem{{"inserted", 11}, {"unsigned", 11}}},
		{name: "head moved back", tamper: func(l *auditLog) { l.head.Seq, l.head.Hash = 7, l.at(7).Hash },
			want: []problem{{"inserted", 8}}, says: "entries 8 to 10 are past"},
		{name: "insert with seq 0", tamper: func(l *auditLog) { l.entries = slices.Insert(l.entries, 0, l.forge(0, nil)) },
			want: []problem{{"inserted", 0}}},
		{name: "copy an entry", tamper: func(l *auditLog) { l.entries = append(l.entries, *l.at(3)) },
			want: []problem{{"inserted", 3}}, says: "entry 3 is stored twice, at positions 3 and 11"},
		{name: "replace an entry", tamper: func(l *auditLog) {
			f := l.forge(6, nil)
			*l.at(6) = f
		}, want: []problem{{"changed", 6}}},

		{name: "swap two", tamper: func(l *auditLog) { l.entries[2], l.entries[6] = l.entries[6], l.entries[2] },
			want: []problem{{"reordered", 3}, {"reordered", 7}}, says: "entry 3 is out of order: it is stored between entries 6 and 8"},
		{name: "swap neighbours", tamper: func(l *auditLog) { l.entries[3], l.entries[4] = l.entries[4], l.entries[3] },
			want: []problem{{"reordered", 5}}},
		{name: "move one later", tamper: func(l *auditLog) { l.move(2, 7) },
			want: []problem{{"reordered", 3}}, says: "entry 3 is out of order: it is stored between entries 8 and 9"},
		{name: "move one to the end", tamper: func(l *auditLog) { l.move(2, 9) },
			want: []problem{{"reordered", 3}}, says: "stored last, after entry 10"},
		{name: "move one to the front", tamper: func(l *auditLog) { l.move(8, 0) },
			want: []problem{{"reordered", 9}}, says: "stored first, before entry 1"},
		{name: "reverse", tamper: func(l *auditLog) { slices.Reverse(l.entries[3:6]) },
			want: []problem{{"reordered", 5}, {"reordered", 6}}},

		{name: "truncate", tamper: func(l *auditLog) { l.remove(8, 9, 10) },
			want: []problem{{"truncated", 8}}, says: "the log ends at entry 7, but its head is entry 10: entries 8 to 10 were cut off"},
		{name: "truncate the last", tamper: func(l *auditLog) { l.remove(10) }, want: []problem{{"truncated", 10}}},
		{name: "truncate everything", tamper: func(l *auditLog) { l.entries = nil },
			want: []problem{{"truncated", 1}}},
		{name: "truncate and append", tamper: func(l *auditLog) {
			l.remove(8, 9, 10)
			l.append(latch.AuditEntry{At: auditStart, Actor: "latch", Action: latch.AuditExpired}, nil)
		}, want: []problem{{"removed", 8}}, says: "entries 8 to 10 were removed: entry 11 follows entry 7"},
		{name: "head moved to nothing", tamper: func(l *auditLog) { l.head.Hash = strings.Repeat("0", 64) },
			want: []problem{{"changed", 10}}, says: "or the head was moved"},

		{name: "bad signature", signed: true, tamper: func(l *auditLog) { l.at(4).Signature = latch.SignAudit(otherKey)(l.at(4).Hash) },
			want: []problem{{"bad-signature", 4}}, says: "entry 4's signature (position 4) does not verify"},
		{name: "another entry's signature", signed: true, tamper: func(l *auditLog) { l.at(4).Signature = l.at(5).Signature },
			want: []problem{{"bad-signature", 4}}},
		{name: "signature not base64", signed: true, tamper: func(l *auditLog) { l.at(4).Signature = "not base64!" },
			want: []problem{{"bad-signature", 4}}},
		{name: "empty, signed", signed: true, tamper: func(l *auditLog) { *l = auditLog{} },
			want: []problem{{"unsigned", 0}}, says: "an emptied log looks the same"},
		{name: "delete the last entry and move the head back, signed", signed: true, tamper: func(l *auditLog) {
			l.entries = l.entries[:9]
			l.head.Seq, l.head.Hash = 9, l.at(9).Hash
		}, want: []problem{{"bad-signature", 9}}, says: "the head's signature (at entry 9) does not verify"},
		{name: "delete the last entry, move the head back and unsign it", signed: true, tamper: func(l *auditLog) {
			l.entries = l.entries[:9]
			l.head = latch.AuditHead{Seq: 9, Hash: l.at(9).Hash}
		}, want: []problem{{"unsigned", 9}}, says: "the head (entry 9) is not signed"},
		{name: "head signed with an entry's signature", signed: true, tamper: func(l *auditLog) {
			l.entries = l.entries[:9]
			l.head = latch.AuditHead{Seq: 9, Hash: l.at(9).Hash, Signature: l.at(9).Signature}
		}, want: []problem{{"bad-signature", 9}}},
		{name: "head with another head's signature", signed: true, tamper: func(l *auditLog) { l.head.Signature = l.heads[8].Signature },
			want: []problem{{"bad-signature", 10}}},
		// The limit: a head latch once signed, put back. Only a head kept
		// elsewhere shows it (TestVerifyAuditAgainst).
		{name: "delete the last entry and put back the head before, signed", signed: true, tamper: func(l *auditLog) {
			l.entries, l.head = l.entries[:9], l.heads[8]
		}},
		{name: "missing signature", signed: true, tamper: func(l *auditLog) { l.at(4).Signature = "" },
			want: []problem{{"unsigned", 4}}, says: "entry 4 (position 4) is not signed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s func(string) string
			var pub ed25519.PublicKey
			if tt.signed {
				s, pub = sign, auditPub
			}
			l := newAuditLog(n, s)
			tt.tamper(l)
			got := latch.VerifyAudit(l.entries, l.head, pub)
			if !slices.Equal(kinds(got), tt.want) {
				t.Fatalf("VerifyAudit found %v, want %v:\n%s", kinds(got), tt.want, messages(got))
			}
			if tt.says != "" && !strings.Contains(got[0].Message, tt.says) {
				t.Fatalf("VerifyAudit says %q; want it to say %q", got[0].Message, tt.says)
			}
		})
	}
}

func messages(ps []latch.AuditProblem) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "\t%s %d: %s\n", p.Kind, p.Seq, p.Message)
	}
	return b.String()
}

func TestVerifyAuditKeys(t *testing.T) {
	signed := newAuditLog(4, latch.SignAudit(auditKey))
	unsigned := newAuditLog(4, nil)
	tests := []struct {
		name string
		log  *auditLog
		pub  ed25519.PublicKey
		want []problem
	}{
		{"signed, no key", signed, nil, nil},
		{"signed, right key", signed, auditPub, nil},
		{"signed, wrong key", signed, otherKey.Public().(ed25519.PublicKey),
			[]problem{{"bad-signature", 1}, {"bad-signature", 2}, {"bad-signature", 3}, {"bad-signature", 4}, {"bad-signature", 4}}},
		{"unsigned, no key", unsigned, nil, nil},
		{"unsigned, key", unsigned, auditPub, []problem{{"unsigned", 1}, {"unsigned", 2}, {"unsigned", 3}, {"unsigned", 4}, {"unsigned", 4}}},
		{"not a key", signed, ed25519.PublicKey("short"), []problem{{"bad-signature", 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := latch.VerifyAudit(tt.log.entries, tt.log.head, tt.pub)
			if !slices.Equal(kinds(got), tt.want) {
				t.Fatalf("VerifyAudit found %v, want %v:\n%s", kinds(got), tt.want, messages(got))
			}
		})
	}
}

func TestLinkAudit(t *testing.T) {
	in := latch.AuditEntry{
		At:      time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("CET", 3600)),
		Actor:   "bad\xffbytes",
		Action:  latch.AuditLogin,
		Details: map[string]string{"k\xfe": "v"},
	}
	e := latch.LinkAudit(in, 41, "abc", func(h string) string { return "sig:" + h })
	if e.Seq != 42 || e.PrevHash != "abc" || e.Hash != e.ComputeHash() || e.Signature != "sig:"+e.Hash {
		t.Fatalf("LinkAudit = %+v; want seq 42 after abc, hashed and signed", e)
	}
	if want := time.Date(2030, 1, 2, 2, 4, 5, 123456000, time.UTC); e.At != want {
		t.Errorf("At = %v, want %v", e.At, want)
	}
	if e.Actor != "bad\uFFFDbytes" || e.Details["k\uFFFD"] != "v" {
		t.Errorf("Actor %q, Details %q; want invalid UTF-8 replaced", e.Actor, e.Details)
	}
	in.Details["k\xfe"] = "changed"
	if e.Details["k\uFFFD"] != "v" {
		t.Error("LinkAudit's Details shares the caller's map")
	}
	if e := latch.LinkAudit(latch.AuditEntry{Details: map[string]string{}}, 0, "", nil); e.Details != nil || e.Seq != 1 || e.Signature != "" {
		t.Errorf("LinkAudit of the first entry with empty Details = %+v; want seq 1, nil Details, no signature", e)
	}
}

// growingLog is a Store whose audit log gets an append while its entries
// are being read, the first grows times.
type growingLog struct {
	latch.Store
	log   *auditLog
	grows int
}

func (g *growingLog) AuditHead(context.Context) (latch.AuditHead, error) {
	return g.log.head, nil
}

func (g *growingLog) AuditEntries(context.Context, latch.AuditFilter) ([]latch.AuditEntry, error) {
	es := slices.Clone(g.log.entries)
	if g.grows > 0 {
		g.grows--
		g.log.append(latch.AuditEntry{At: auditStart, Actor: "latch", Action: latch.AuditExpired}, nil)
	}
	return es, nil
}

func TestReadAudit(t *testing.T) {
	t.Run("ReadsAgainAfterAnAppend", func(t *testing.T) {
		s := &growingLog{log: newAuditLog(3, nil), grows: 2}
		es, head, err := latch.ReadAudit(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 5 || head.Seq != 5 {
			t.Fatalf("ReadAudit = %d entries, head %d; want 5 and 5", len(es), head.Seq)
		}
		if ps := latch.VerifyAudit(es, head, nil); len(ps) > 0 {
			t.Fatalf("VerifyAudit: %v", ps)
		}
	})
	t.Run("GivesUpOnALogThatKeepsGrowing", func(t *testing.T) {
		_, _, err := latch.ReadAudit(t.Context(), &growingLog{log: newAuditLog(3, nil), grows: 100})
		if latch.ErrorCode(err) != latch.EUNAVAILABLE {
			t.Fatalf("ReadAudit = %v, want EUNAVAILABLE", err)
		}
	})
}

func TestSignAuditRefusesABadKey(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("SignAudit accepted a 5-byte key")
		}
	}()
	latch.SignAudit(ed25519.PrivateKey("short"))
}

// TestVerifyAuditFindsAnyTampering tampers with random logs once each, in
// random ways, and checks that VerifyAudit finds a problem at an entry the
// tampering touched.
func TestVerifyAuditFindsAnyTampering(t *testing.T) {
	sign := latch.SignAudit(auditKey)
	rng := rand.New(rand.NewPCG(1, 2))
	type tampering func(l *auditLog) (what string, touched []int64)
	ways := []struct {
		signedOnly bool
		do         tampering
	}{
		{do: func(l *auditLog) (string, []int64) {
			e := &l.entries[rng.IntN(len(l.entries))]
			seq := e.Seq
			edits := []func(){
				func() { e.Actor += "!" },
				func() { e.At = e.At.Add(time.Duration(1+rng.IntN(1e9)) * time.Microsecond) },
				func() { e.Action = "forged" },
				func() { e.Target += "x" },
				func() { e.GrantID += "x" },
				func() { e.RequestID += "x" },
				func() { e.Details = map[string]string{"reason": "forged"} },
				func() { e.PrevHash = strings.Repeat("ab", 32) },
				func() { e.Hash = strings.Repeat("cd", 32) },
				func() { e.Seq += 1 + rng.Int64N(int64(len(l.entries))) },
			}
			k := rng.IntN(len(edits))
			edits[k]()
			if rng.IntN(2) == 0 && k < 7 {
				rehash(e)
				return fmt.Sprintf("edit %d of entry %d and rehash", k, seq), []int64{seq}
			}
			return fmt.Sprintf("edit %d of entry %d", k, seq), []int64{seq}
		}},
		{do: func(l *auditLog) (string, []int64) {
			i := rng.IntN(len(l.entries))
			j := i + rng.IntN(len(l.entries)-i)
			first := l.entries[i].Seq
			l.entries = slices.Delete(l.entries, i, j+1)
			return fmt.Sprintf("delete entries %d to %d", first, first+int64(j-i)), []int64{first}
		}},
		{do: func(l *auditLog) (string, []int64) {
			seq := rng.Int64N(int64(len(l.entries)) + 2)
			i := rng.IntN(len(l.entries) + 1)
			l.entries = slices.Insert(l.entries, i, l.forge(seq, nil))
			return fmt.Sprintf("insert a forged entry %d at %d", seq, i), []int64{seq}
		}},
		{do: func(l *auditLog) (string, []int64) {
			if len(l.entries) < 2 {
				return "", nil
			}
			i, j := rng.IntN(len(l.entries)), rng.IntN(len(l.entries))
			if i == j {
				return "", nil
			}
			l.entries[i], l.entries[j] = l.entries[j], l.entries[i]
			return fmt.Sprintf("swap %d and %d", l.entries[j].Seq, l.entries[i].Seq), []int64{l.entries[i].Seq, l.entries[j].Seq}
		}},
		{do: func(l *auditLog) (string, []int64) {
			if len(l.entries) < 2 {
				return "", nil
			}
			from, to := rng.IntN(len(l.entries)), rng.IntN(len(l.entries)-1)
			if to >= from {
				to++ // anywhere but back where it was
			}
			var touched []int64
			for k := min(from, to); k <= max(from, to); k++ {
				touched = append(touched, l.entries[k].Seq)
			}
			seq := l.entries[from].Seq
			l.move(from, to)
			return fmt.Sprintf("move %d from %d to %d", seq, from, to), touched
		}},
		{signedOnly: true, do: func(l *auditLog) (string, []int64) {
			e := &l.entries[rng.IntN(len(l.entries))]
			switch rng.IntN(3) {
			case 0:
				e.Signature = ""
			case 1:
				e.Signature = latch.SignAudit(otherKey)(e.Hash)
			default:
				e.Actor += "!"
				rehash(e)
			}
			return fmt.Sprintf("signature of %d", e.Seq), []int64{e.Seq}
		}},
		{signedOnly: true, do: func(l *auditLog) (string, []int64) {
			if len(l.entries) < 2 {
				return "", nil
			}
			l.entries = l.entries[:1+rng.IntN(len(l.entries)-1)]
			last := l.entries[len(l.entries)-1]
			l.head.Seq, l.head.Hash = last.Seq, last.Hash // the signature is the old head's
			if rng.IntN(2) == 0 {
				l.head.Signature = ""
			}
			return fmt.Sprintf("cut the log after %d and move the head back", last.Seq), []int64{last.Seq}
		}},
	}
	// Signing is the slow part: cut each trial's log from two made once.
	const most = 30
	logs := map[bool]*auditLog{false: newAuditLog(most, nil), true: newAuditLog(most, sign)}
	for trial := range 2000 {
		signed := trial%4 == 3
		var pub ed25519.PublicKey
		if signed {
			pub = auditPub
		}
		l := logs[signed].first(1 + rng.IntN(most))
		way := ways[rng.IntN(len(ways))]
		if way.signedOnly && !signed {
			continue
		}
		what, touched := way.do(l)
		if what == "" {
			continue
		}
		got := latch.VerifyAudit(l.entries, l.head, pub)
		if !slices.ContainsFunc(got, func(p latch.AuditProblem) bool { return slices.Contains(touched, p.Seq) }) {
			t.Fatalf("trial %d (signed %v, %d entries): %s: VerifyAudit found %v, want a problem at one of %v:\n%s",
				trial, signed, l.head.Seq, what, kinds(got), touched, messages(got))
		}
	}
}

func BenchmarkVerifyAudit(b *testing.B) {
	for _, signed := range []bool{false, true} {
		b.Run(fmt.Sprintf("signed=%v", signed), func(b *testing.B) {
			var s func(string) string
			var pub ed25519.PublicKey
			if signed {
				s, pub = latch.SignAudit(auditKey), auditPub
			}
			l := newAuditLog(10_000, s)
			for b.Loop() {
				if ps := latch.VerifyAudit(l.entries, l.head, pub); len(ps) != 0 {
					b.Fatal(ps)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10_000, "ns/entry")
		})
	}
}

func TestVerifyAuditAgainst(t *testing.T) {
	const n = 10
	sign := latch.SignAudit(auditKey)
	tests := []struct {
		name   string
		signed bool
		tamper func(l *auditLog) (kept latch.AuditHead)
		want   []problem // of VerifyAuditAgainst alone
		says   string
	}{
		{name: "the same head", signed: true, tamper: func(l *auditLog) latch.AuditHead { return l.head }},
		{name: "an older head: the log grew since", signed: true, tamper: func(l *auditLog) latch.AuditHead { return l.heads[3] }},
		{name: "unsigned, no key", tamper: func(l *auditLog) latch.AuditHead { return l.head }},
		{name: "tail cut and an older signed head put back", signed: true, tamper: func(l *auditLog) latch.AuditHead {
			kept := l.head
			l.entries, l.head = l.entries[:7], l.heads[6]
			return kept
		}, want: []problem{{"truncated", 8}}, says: "the log's head is entry 7, but the head kept elsewhere is entry 10: entries 8 to 10 were cut off"},
		{name: "the whole log emptied", signed: true, tamper: func(l *auditLog) latch.AuditHead {
			kept := l.head
			*l = auditLog{}
			return kept
		}, want: []problem{{"truncated", 1}}},
		{name: "rewritten from entry 5, unsigned", tamper: func(l *auditLog) latch.AuditHead {
			kept := l.head
			l.at(5).Actor = "mallory@example.com"
			rehash(l.at(5))
			for s := int64(6); s <= n; s++ {
				l.at(s).PrevHash = l.at(s - 1).Hash
				rehash(l.at(s))
			}
			l.head.Hash = l.at(n).Hash
			return kept
		}, want: []problem{{"diverged", 10}}, says: "the log was rewritten, from entry 10 or before"},
		{name: "the kept head's entry missing", tamper: func(l *auditLog) latch.AuditHead {
			l.entries = l.entries[:9]
			return l.head
		}, want: []problem{{"diverged", 10}}, says: "is not in the log"},
		{name: "kept head unsigned", signed: true, tamper: func(l *auditLog) latch.AuditHead {
			return latch.AuditHead{Seq: l.head.Seq, Hash: l.head.Hash}
		}, want: []problem{{"unsigned", 10}}},
		{name: "kept head forged", signed: true, tamper: func(l *auditLog) latch.AuditHead {
			return latch.NewAuditHead(12, strings.Repeat("ab", 32), latch.SignAudit(otherKey))
		}, want: []problem{{"truncated", 11}, {"bad-signature", 12}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s func(string) string
			var pub ed25519.PublicKey
			if tt.signed {
				s, pub = sign, auditPub
			}
			l := newAuditLog(n, s)
			kept := tt.tamper(l)
			got := latch.VerifyAuditAgainst(l.entries, l.head, kept, pub)
			if !slices.Equal(kinds(got), tt.want) {
				t.Fatalf("VerifyAuditAgainst found %v, want %v:\n%s", kinds(got), tt.want, messages(got))
			}
			if tt.says != "" && !strings.Contains(got[0].Message, tt.says) {
				t.Fatalf("VerifyAuditAgainst says %q; want it to say %q", got[0].Message, tt.says)
			}
		})
	}
}

func TestAuditHeadMessage(t *testing.T) {
	h := latch.NewAuditHead(42, "abc", func(m string) string { return "sig:" + m })
	if want := "latch-audit-head\n42\nabc"; h.Message() != want || h.Signature != "sig:"+want {
		t.Fatalf("head %+v, message %q; want message %q, signed", h, h.Message(), want)
	}
	if h := latch.NewAuditHead(1, "abc", nil); h.Signature != "" {
		t.Fatalf("NewAuditHead without a signer = %+v; want it unsigned", h)
	}
}
