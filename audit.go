package latch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// AuditFilter selects audit entries. Zero fields match everything.
type AuditFilter struct {
	Since   time.Time // at or after
	Actor   string    // exact
	GrantID GrantID
	Limit   int // at most this many, oldest first; 0 means no limit
}
