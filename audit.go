package latch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"
)

// AuditAction names what an audit entry records.
type AuditAction string

// The audited events.
const (
	AuditRequested      AuditAction = "requested"
	AuditApproved       AuditAction = "approved"
	AuditDenied         AuditAction = "denied"
	AuditWithdrawn      AuditAction = "withdrawn"
	AuditTimedOut       AuditAction = "timed-out"
	AuditGranted        AuditAction = "granted"
	AuditGrantFailed    AuditAction = "grant-failed"
	AuditRevokeFailed   AuditAction = "revoke-failed"
	AuditRevoked        AuditAction = "revoked"
	AuditExpired        AuditAction = "expired"
	AuditSweptOrphan    AuditAction = "swept-orphan"
	AuditPolicyReloaded AuditAction = "policy-reloaded"
	AuditLogin          AuditAction = "login"
	AuditReverted       AuditAction = "reverted"        // an out-of-band rule revoked by reconcile
	AuditSSHCertificate AuditAction = "ssh-certificate" // an SSH certificate issued for a grant
	AuditSSHKeyPushed   AuditAction = "ssh-key-pushed"  // a key pushed with EC2 Instance Connect for a grant
	// A Session Manager session started for a grant, and ended by latch
	// (at the grant's end, or by a sweep).
	AuditSessionStarted    AuditAction = "session-started"
	AuditSessionTerminated AuditAction = "session-terminated"
	// latch adopt: a plan recorded before any of its changes (Target is
	// the plan ID, Details["plan"] the plan as JSON), each change made,
	// each change undone, and a change that failed.
	AuditAdoptPlanned AuditAction = "adopt-planned"
	AuditAdoptChanged AuditAction = "adopt-changed"
	AuditAdoptUndone  AuditAction = "adopt-undone"
	AuditAdoptFailed  AuditAction = "adopt-failed"
)

// AuditEntry is one link of the hash-chained audit log. The log assigns
// Seq, PrevHash, Hash and Signature when it appends the entry.
type AuditEntry struct {
	Seq       int64
	At        time.Time
	Actor     string // who caused it: a subject, or "latch" for the revoker and sweeps
	Action    AuditAction
	Target    string // what it was about: a group, instance or rule ID
	GrantID   GrantID
	RequestID RequestID
	Details   map[string]string

	PrevHash  string // hex SHA-256 of the previous entry; "" for the first
	Hash      string // hex SHA-256 of this entry's canonical form, PrevHash included
	Signature string // base64 ed25519 signature of Hash; "" when no key is configured
}

// canonicalEntry fixes the order and spelling of the hashed fields; JSON
// sorts map keys, so Details is canonical too.
type canonicalEntry struct {
	Seq       int64             `json:"seq"`
	At        string            `json:"at"`
	Actor     string            `json:"actor"`
	Action    AuditAction       `json:"action"`
	Target    string            `json:"target"`
	GrantID   GrantID           `json:"grant_id"`
	RequestID RequestID         `json:"request_id"`
	Details   map[string]string `json:"details"`
	PrevHash  string            `json:"prev_hash"`
}

// ComputeHash returns the hex SHA-256 of e's canonical form: every field
// but Hash and Signature, time in UTC to the microsecond.
func (e AuditEntry) ComputeHash() string {
	b, _ := json.Marshal(canonicalEntry{ // marshalling strings and ints cannot fail
		Seq: e.Seq, At: e.At.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano), Actor: e.Actor, Action: e.Action,
		Target: e.Target, GrantID: e.GrantID, RequestID: e.RequestID, Details: e.Details, PrevHash: e.PrevHash,
	})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// AuditHead is where the audit log ends: its last entry's Seq and Hash (0
// and "" for an empty log) and, when the log is signed, Signature: the
// standard base64 ed25519 signature of [AuditHead.Message]. Stores keep the
// head apart from the entries and move it with each append, so that
// entries cut off the end show; the signature stops whoever can write the
// database from moving the head back onto the last entry left. It cannot
// stop them putting back an older head latch signed: only a head kept
// elsewhere shows that (see [VerifyAuditAgainst]), which is why latch logs
// the head on each append.
type AuditHead struct {
	Seq       int64
	Hash      string
	Signature string // "" when no key is configured
}

// NewAuditHead returns the head at (seq, hash), signed with sign if it is
// not nil.
func NewAuditHead(seq int64, hash string, sign func(msg string) string) AuditHead {
	h := AuditHead{Seq: seq, Hash: hash}
	if sign != nil {
		h.Signature = sign(h.Message())
	}
	return h
}

// Message is what a head's signature signs: "latch-audit-head", the Seq
// and the Hash, one a line. An entry's signature signs its bare hex Hash,
// so neither signature can stand in for the other.
func (h AuditHead) Message() string {
	return "latch-audit-head\n" + strconv.FormatInt(h.Seq, 10) + "\n" + h.Hash
}

// LogValue is how a head appears in a log line, as an object
// {"seq", "hash", "signature"} under the line's key: the form
// 'latch audit verify --head' reads back.
func (h AuditHead) LogValue() slog.Value {
	return slog.GroupValue(slog.Int64("seq", h.Seq), slog.String("hash", h.Hash), slog.String("signature", h.Signature))
}

// AuditFilter selects audit entries. Zero fields match everything.
type AuditFilter struct {
	Since   time.Time // at or after
	Actor   string    // exact
	GrantID GrantID
	Target  string // exact
	Limit   int    // at most this many, oldest first; 0 means no limit
}
