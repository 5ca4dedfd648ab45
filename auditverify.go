package latch

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// The kinds of [AuditProblem].
const (
	// ProblemChanged: an entry's content no longer matches its hash, or its
	// hash was recomputed after a change, so that the next entry's PrevHash
	// (or the head, for the last entry) no longer links to it.
	ProblemChanged = "changed"
	// ProblemRemoved: entries are missing from inside the log. Seq is the
	// first missing one.
	ProblemRemoved = "removed"
	// ProblemInserted: an entry that is not part of the chain: a second
	// entry with a Seq the chain already has, an entry past the head, or a
	// Seq below 1.
	ProblemInserted = "inserted"
	// ProblemReordered: an entry of the chain stored out of order.
	ProblemReordered = "reordered"
	// ProblemTruncated: the log ends before its head. Seq is the first
	// missing entry.
	ProblemTruncated = "truncated"
	// ProblemBadSignature: a signature that does not verify with the key.
	ProblemBadSignature = "bad-signature"
	// ProblemUnsigned: an entry or head without a signature, when a key is
	// given.
	ProblemUnsigned = "unsigned"
	// ProblemDiverged: the log's entry at a head kept elsewhere is missing
	// or has another hash: the log was rewritten up to there.
	ProblemDiverged = "diverged"
)

// AuditProblem is one way the log differs from an untouched chain.
type AuditProblem struct {
	Seq     int64  `json:"seq"`     // the entry at fault; for removed and truncated, the first missing one
	Kind    string `json:"kind"`    // one of the Problem kinds
	Message string `json:"message"` // a sentence naming the entries involved
}

// LinkAudit returns e as the entry after the head (headSeq, headHash): Seq
// headSeq+1, PrevHash headHash, At in UTC to the microsecond, Hash its
// [AuditEntry.ComputeHash] and, if sign is not nil, Signature sign(Hash).
// Strings are made valid UTF-8 first, since the hash sees invalid bytes as
// U+FFFD, and an empty Details becomes nil, so that no store has to keep
// nil and empty apart; Details is copied. Stores call it inside the
// transaction that moves the head.
func LinkAudit(e AuditEntry, headSeq int64, headHash string, sign func(hash string) string) AuditEntry {
	e.Seq, e.PrevHash = headSeq+1, headHash
	e.At = e.At.UTC().Truncate(time.Microsecond)
	e.Actor, e.Target = validUTF8(e.Actor), validUTF8(e.Target)
	e.Action = AuditAction(validUTF8(string(e.Action)))
	e.GrantID, e.RequestID = GrantID(validUTF8(string(e.GrantID))), RequestID(validUTF8(string(e.RequestID)))
	if len(e.Details) == 0 {
		e.Details = nil
	} else {
		d := make(map[string]string, len(e.Details))
		for k, v := range e.Details {
			d[validUTF8(k)] = validUTF8(v)
		}
		e.Details = d
	}
	e.Hash, e.Signature = e.ComputeHash(), ""
	if sign != nil {
		e.Signature = sign(e.Hash)
	}
	return e
}

// validUTF8 replaces invalid bytes with U+FFFD, as JSON would when hashing:
// stored and hashed text must be the same bytes, or two different stored
// values could share one hash.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// SignAudit returns a signer for AppendAudit: the standard base64 of the
// ed25519 signature of its message, an entry's hex Hash or a head's
// [AuditHead.Message]. It panics at once if priv is not
// an ed25519 private key, rather than at the first append.
func SignAudit(priv ed25519.PrivateKey) func(msg string) string {
	if len(priv) != ed25519.PrivateKeySize {
		panic(fmt.Sprintf("latch.SignAudit: the private key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize))
	}
	return func(msg string) string {
		return base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(msg)))
	}
}

// ReadAudit reads the whole log and its head from s as of one moment, for
// [VerifyAudit]. Read one after the other, an append in between would look
// like an entry past the head, or a log that ends before it; so ReadAudit
// reads the head before and after the entries, and reads again if it moved.
// Returns EUNAVAILABLE if appends keep landing in between.
func ReadAudit(ctx context.Context, s Store) (entries []AuditEntry, head AuditHead, err error) {
	head, err = s.AuditHead(ctx)
	if err != nil {
		return nil, AuditHead{}, fmt.Errorf("read the audit log: %w", err)
	}
	for range 5 {
		if entries, err = s.AuditEntries(ctx, AuditFilter{}); err != nil {
			return nil, AuditHead{}, fmt.Errorf("read the audit log: %w", err)
		}
		after, err := s.AuditHead(ctx)
		if err != nil {
			return nil, AuditHead{}, fmt.Errorf("read the audit log: %w", err)
		}
		if after == head {
			return entries, head, nil
		}
		head = after
	}
	return nil, AuditHead{}, Errorf(EUNAVAILABLE, "the audit log kept growing while it was read; try again")
}

// VerifyAudit checks a whole audit log, entries in the order the store
// holds them (which an attacker may have changed), against its head, and
// returns every problem found, ordered by Seq; none means the log is the
// untouched chain the head ends. [ReadAudit] reads a log and head that go
// together. With pub nil, signatures are not checked;
// otherwise every entry and the head must carry a signature that verifies
// with pub (a pub that is not an ed25519 key is one bad-signature problem
// at Seq 0). An empty log's head is never signed, so with pub an empty log
// is a problem too: it cannot be told from an emptied one.
//
// Entries whose hash matches their content are trusted to be where their
// Seq says. The chain is then rebuilt from the head down: of two entries
// with one Seq, the one the next entry's PrevHash (or the head) names is
// the chain's, and the other was inserted. Chain entries that are not in
// increasing Seq order, keeping the longest run that is, were moved. Walking
// the chain in Seq order, a gap is a removal, a break between neighbours is
// a change whose hash was recomputed, and an end short of the head is a
// truncation.
//
// A hash chain shows edits, not rewrites: whoever can write the database
// can rebuild every hash after an edit and move the head. Signatures close
// that (a rebuilt entry's signature fails, and so does a head moved back
// onto an earlier entry) unless the key leaked. What they cannot show is
// entries cut off the end together with an older signed head put back
// (from a copy of the database, or a log line): that shows only against a
// head kept elsewhere, with [VerifyAuditAgainst].
func VerifyAudit(entries []AuditEntry, head AuditHead, pub ed25519.PublicKey) []AuditProblem {
	v := &verifier{headSeq: head.Seq, headHash: head.Hash}
	items := examine(entries, head.Seq, head.Hash)
	chain := v.pick(items)
	v.order(chain)
	slices.SortFunc(chain, func(a, b *auditItem) int { return cmp.Compare(a.Seq, b.Seq) })
	v.links(chain)
	v.signatures(items, pub)
	v.headSignature(head, pub)
	slices.SortStableFunc(v.problems, func(a, b AuditProblem) int { return cmp.Compare(a.Seq, b.Seq) })
	return v.problems
}

// auditItem is one stored entry as the verifier sees it.
type auditItem struct {
	AuditEntry        // as stored, except that Seq is its true place when the chain tells it
	pos        int    // 1-based place in storage order
	stored     int64  // Seq as stored
	intact     bool   // the content matches Hash
	why        string // why it is not intact
}

// examine checks each entry against its hash. An altered entry's Seq may be
// altered too; when an intact entry (or the head) links to its hash, that
// link tells where it really belongs.
func examine(entries []AuditEntry, headSeq int64, headHash string) []*auditItem {
	items := make([]*auditItem, len(entries))
	vouched := map[string]int64{} // hash → the Seq an intact successor says it has
	if headSeq > 0 {
		vouched[headHash] = headSeq
	}
	for i, e := range entries {
		it := &auditItem{AuditEntry: e, pos: i + 1, stored: e.Seq}
		switch {
		case !isValidUTF8(e):
			it.why = "it holds text that is not UTF-8, which latch never writes"
		case e.ComputeHash() != e.Hash:
			it.why = "its content no longer matches its hash"
		default:
			it.intact = true
			if e.Seq > 1 {
				if _, ok := vouched[e.PrevHash]; !ok {
					vouched[e.PrevHash] = e.Seq - 1
				}
			}
		}
		items[i] = it
	}
	// Only a Seq that makes the content match its hash again is taken: a
	// hash edited to another entry's must not move the entry there.
	for _, it := range items {
		s, ok := vouched[it.Hash]
		if !ok || it.intact || s == it.Seq || !isValidUTF8(it.AuditEntry) {
			continue
		}
		e := it.AuditEntry
		e.Seq = s
		if e.ComputeHash() == e.Hash {
			it.Seq, it.why = s, fmt.Sprintf("its seq was set to %d", it.stored)
		}
	}
	return items
}

func isValidUTF8(e AuditEntry) bool {
	for _, s := range []string{e.Actor, string(e.Action), e.Target, string(e.GrantID), string(e.RequestID), e.PrevHash, e.Hash} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for k, v := range e.Details {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return false
		}
	}
	return true
}

type verifier struct {
	headSeq  int64
	headHash string
	problems []AuditProblem
	changed  map[int64]bool // entries already reported changed
}

func (v *verifier) add(seq int64, kind, format string, args ...any) {
	v.problems = append(v.problems, AuditProblem{Seq: seq, Kind: kind, Message: fmt.Sprintf(format, args...)})
}

// change reports entry seq changed, once: an entry can show its change in
// its content, its link to the previous entry and the next's link to it.
func (v *verifier) change(seq int64, format string, args ...any) {
	if v.changed[seq] {
		return
	}
	if v.changed == nil {
		v.changed = map[int64]bool{}
	}
	v.changed[seq] = true
	v.add(seq, ProblemChanged, format, args...)
}

// pick returns the entries that make up the chain, in storage order, and
// reports the rest as inserted. It goes from the head down, so that of two
// entries with one Seq it keeps the one the chain above links to.
func (v *verifier) pick(items []*auditItem) []*auditItem {
	bySeq := map[int64][]*auditItem{}
	var past []int64
	for _, it := range items {
		switch {
		case it.Seq < 1:
			v.add(it.Seq, ProblemInserted, "the entry at position %d has seq %d, and the log starts at 1", it.pos, it.Seq)
		case it.Seq > v.headSeq:
			past = append(past, it.Seq)
		default:
			bySeq[it.Seq] = append(bySeq[it.Seq], it)
		}
	}
	v.pastHead(past)

	seqs := make([]int64, 0, len(bySeq))
	for s := range bySeq {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	var chain []*auditItem
	var above *auditItem // the chain's entry at the Seq above, if any
	for _, s := range slices.Backward(seqs) {
		var want, linker string
		switch {
		case s == v.headSeq:
			want, linker = v.headHash, "the head"
		case above != nil && above.Seq == s+1:
			want, linker = above.PrevHash, fmt.Sprintf("entry %d", s+1)
		}
		cands := bySeq[s]
		keep := cands[0]
		if i := slices.IndexFunc(cands, func(it *auditItem) bool { return linker != "" && it.Hash == want }); i >= 0 {
			keep = cands[i]
		} else if i := slices.IndexFunc(cands, func(it *auditItem) bool { return it.intact }); i >= 0 {
			keep = cands[i]
		}
		for _, it := range cands {
			switch {
			case it == keep:
			case it.Hash == keep.Hash:
				v.add(s, ProblemInserted, "entry %d is stored twice, at positions %d and %d", s, keep.pos, it.pos)
			case linker != "" && keep.Hash == want:
				v.add(s, ProblemInserted, "the entry %d at position %d is not part of the chain: %s links to the entry %d at position %d",
					s, it.pos, linker, s, keep.pos)
			default:
				v.add(s, ProblemInserted, "entry %d is stored more than once, at positions %d and %d, and nothing links to either; the one at position %d is taken to be inserted",
					s, keep.pos, it.pos, it.pos)
			}
		}
		chain = append(chain, keep)
		above = keep
	}
	slices.SortFunc(chain, func(a, b *auditItem) int { return a.pos - b.pos })
	return chain
}

// pastHead reports entries with a Seq beyond the head, one problem per run
// of consecutive Seqs.
func (v *verifier) pastHead(seqs []int64) {
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		v.add(seqs[i], ProblemInserted, "%s past the log's head, entry %d: added without moving the head, or the head was moved back",
			span(seqs[i], seqs[j], "is", "are"), v.headSeq)
		i = j + 1
	}
}

// span names entries a to b: "entry 7" or "entries 7 to 9", followed by the
// singular or plural verb.
func span(a, b int64, one, many string) string {
	if a == b {
		return fmt.Sprintf("entry %d %s", a, one)
	}
	return fmt.Sprintf("entries %d to %d %s", a, b, many)
}

// order reports the chain's entries that are out of Seq order in storage:
// all but one longest increasing run, which is the fewest entries that,
// moved back, put the log in order.
func (v *verifier) order(chain []*auditItem) {
	tails := []int{}                // tails[k]: index of the least last entry of an increasing run of length k+1
	prev := make([]int, len(chain)) // the entry before each in its run, or -1
	for i, it := range chain {
		k := sort.Search(len(tails), func(j int) bool { return chain[tails[j]].Seq >= it.Seq })
		prev[i] = -1
		if k > 0 {
			prev[i] = tails[k-1]
		}
		if k == len(tails) {
			tails = append(tails, i)
		} else {
			tails[k] = i
		}
	}
	if len(tails) == len(chain) {
		return
	}
	inRun := make([]bool, len(chain))
	for i := tails[len(tails)-1]; i >= 0; i = prev[i] {
		inRun[i] = true
	}
	for i, it := range chain {
		if inRun[i] {
			continue
		}
		var where string
		switch {
		case i == 0:
			where = fmt.Sprintf("first, before entry %d", chain[1].Seq)
		case i == len(chain)-1:
			where = fmt.Sprintf("last, after entry %d", chain[i-1].Seq)
		default:
			where = fmt.Sprintf("between entries %d and %d", chain[i-1].Seq, chain[i+1].Seq)
		}
		v.add(it.Seq, ProblemReordered, "entry %d is out of order: it is stored %s", it.Seq, where)
	}
}

// links walks the chain in Seq order and reports altered entries, gaps,
// broken links and an end short of the head.
func (v *verifier) links(chain []*auditItem) {
	for i, it := range chain {
		if !it.intact {
			v.change(it.Seq, "entry %d was changed: %s", it.Seq, it.why)
		}
		if i == 0 {
			if it.Seq > 1 {
				v.add(1, ProblemRemoved, "%s removed: the log starts at entry %d", span(1, it.Seq-1, "was", "were"), it.Seq)
			} else if it.intact && it.PrevHash != "" {
				v.change(1, "entry 1 was changed and its hash recomputed: it links to an entry before it, and the first entry has none")
			}
			continue
		}
		prev := chain[i-1]
		switch {
		case it.Seq > prev.Seq+1:
			how := fmt.Sprintf("its prev_hash is not entry %d's hash", prev.Seq)
			if it.PrevHash == prev.Hash {
				how = fmt.Sprintf("it was relinked to entry %d and its hash recomputed", prev.Seq)
			}
			v.add(prev.Seq+1, ProblemRemoved, "%s removed: entry %d follows entry %d, and %s",
				span(prev.Seq+1, it.Seq-1, "was", "were"), it.Seq, prev.Seq, how)
		case it.PrevHash != prev.Hash && prev.intact && it.intact:
			v.change(prev.Seq, "entry %d was changed and its hash recomputed: entry %d's prev_hash is not entry %d's hash",
				prev.Seq, it.Seq, prev.Seq)
		}
	}
	if len(chain) == 0 {
		if v.headSeq > 0 {
			v.add(1, ProblemTruncated, "the log is empty, but its head is entry %d: %s cut off", v.headSeq, span(1, v.headSeq, "was", "were"))
		}
		return
	}
	last := chain[len(chain)-1]
	switch {
	case last.Seq < v.headSeq:
		v.add(last.Seq+1, ProblemTruncated, "the log ends at entry %d, but its head is entry %d: %s cut off",
			last.Seq, v.headSeq, span(last.Seq+1, v.headSeq, "was", "were"))
	case last.Hash != v.headHash && last.intact:
		v.change(last.Seq, "entry %d was changed and its hash recomputed, or the head was moved: the head's hash is not entry %d's hash",
			last.Seq, last.Seq)
	}
}

// signatures checks every stored entry's signature, inserted ones too.
func (v *verifier) signatures(items []*auditItem, pub ed25519.PublicKey) {
	if pub == nil {
		return
	}
	if len(pub) != ed25519.PublicKeySize {
		v.add(0, ProblemBadSignature, "the key is %d bytes, not an ed25519 public key, so no signature can be checked", len(pub))
		return
	}
	for _, it := range items {
		if it.Signature == "" {
			v.add(it.Seq, ProblemUnsigned, "entry %d (position %d) is not signed", it.Seq, it.pos)
			continue
		}
		if !signed(pub, it.Hash, it.Signature) {
			v.add(it.Seq, ProblemBadSignature, "entry %d's signature (position %d) does not verify with the key", it.Seq, it.pos)
		}
	}
}

// headSignature checks the head's signature. Without one, whoever can
// write the database can delete entries off the end and move the head
// back onto the last one left, and every check above passes.
func (v *verifier) headSignature(h AuditHead, pub ed25519.PublicKey) {
	if len(pub) != ed25519.PublicKeySize { // none given, or already reported
		return
	}
	switch {
	case h.Seq == 0 && h.Signature == "":
		v.add(0, ProblemUnsigned, "the log is empty, and its head (entry 0) is not signed: an emptied log looks the same; check it against a head kept elsewhere (--head)")
	case h.Signature == "":
		v.add(h.Seq, ProblemUnsigned, "the head (entry %d) is not signed: entries may have been cut off the end and the head moved back (a log written before latch signed its head gets a signed head at its next append)", h.Seq)
	case !signed(pub, h.Message(), h.Signature):
		v.add(h.Seq, ProblemBadSignature, "the head's signature (at entry %d) does not verify with the key: the head was moved (as when entries are cut off the end and the head moved back), or signed with another key", h.Seq)
	}
}

// signed reports whether sig is the standard base64 of pub's signature of
// msg.
func signed(pub ed25519.PublicKey, msg, sig string) bool {
	b, err := base64.StdEncoding.DecodeString(sig)
	return err == nil && ed25519.Verify(pub, []byte(msg), b)
}

// VerifyAuditAgainst checks a log against kept, a head kept outside the
// database (the last one latch logged, say), which whoever can write the
// database cannot move back: the log must reach kept.Seq, and its entry
// there must have kept.Hash. With pub, kept must also be signed with it. It
// returns the problems found, ordered by Seq.
//
// Run it beside [VerifyAudit], which checks the log up to its own head:
// when neither finds a problem, every entry up to kept is as latch wrote it,
// since each entry's hash covers the one before. A kept head older than the
// log's is fine: the log has grown since.
func VerifyAuditAgainst(entries []AuditEntry, head, kept AuditHead, pub ed25519.PublicKey) []AuditProblem {
	v := &verifier{}
	if len(pub) == ed25519.PublicKeySize {
		switch {
		case kept.Signature == "":
			v.add(kept.Seq, ProblemUnsigned, "the head kept elsewhere (entry %d) is not signed, so nothing shows latch wrote it", kept.Seq)
		case !signed(pub, kept.Message(), kept.Signature):
			v.add(kept.Seq, ProblemBadSignature, "the head kept elsewhere (entry %d) has a signature that does not verify with the key", kept.Seq)
		}
	}
	switch {
	case kept.Seq > head.Seq:
		v.add(head.Seq+1, ProblemTruncated, "the log's head is entry %d, but the head kept elsewhere is entry %d: %s cut off the end, and the head moved back",
			head.Seq, kept.Seq, span(head.Seq+1, kept.Seq, "was", "were"))
	case kept.Seq > 0:
		i := slices.IndexFunc(entries, func(e AuditEntry) bool { return e.Seq == kept.Seq && e.Hash == kept.Hash })
		j := slices.IndexFunc(entries, func(e AuditEntry) bool { return e.Seq == kept.Seq })
		switch {
		case i >= 0:
		case j < 0:
			v.add(kept.Seq, ProblemDiverged, "entry %d, where the head kept elsewhere is, is not in the log", kept.Seq)
		default:
			v.add(kept.Seq, ProblemDiverged, "entry %d's hash is %s, but the head kept elsewhere says %s: the log was rewritten, from entry %d or before",
				kept.Seq, short(entries[j].Hash), short(kept.Hash), kept.Seq)
		}
	}
	slices.SortStableFunc(v.problems, func(a, b AuditProblem) int { return cmp.Compare(a.Seq, b.Seq) })
	return v.problems
}

// short abbreviates a hash for a message, as git does.
func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12] + "…"
	}
	return hash
}
