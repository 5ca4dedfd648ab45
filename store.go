package latch

import (
	"context"
	"time"
)

// GrantFilter selects grants. Zero fields match everything.
type GrantFilter struct {
	States    []GrantState // any of these states
	Opening   *Opening     // only grants for this opening
	IDs       []GrantID    // only these grants (one query for a batch); empty matches every ID
	RuleIDs   []RuleID     // only grants on one of these rules; empty matches every rule
	Requester string       // only grants for this requester (exact, as Grant.Requester)
	Owners    []string     // only grants whose Owner is one of these identity keys
	Limit     int          // at most this many, newest first; 0 means no limit
}

// RequestFilter selects requests. Zero fields match everything.
type RequestFilter struct {
	States     []RequestState // any of these states
	Requesters []string       // only requests whose requester's key ([Identity.Key]) is one of these
	GrantID    GrantID        // only the request that opened this grant
	// VisibleTo, if not nil, keeps the requests its viewer may see: their
	// own, and those whose approvers name them.
	VisibleTo *Viewer
	// Before, if not nil, keeps the requests listed after it: older, or
	// as old with a smaller ID. It pages through a list.
	Before *RequestCursor
	Limit  int // at most this many, newest first; 0 means no limit
}

// Viewer is someone listing requests, as a store can match them against
// a request's requester and approvers.
type Viewer struct {
	Keys   []string // their identity keys: their own, and any linked to their person
	Groups []string // their groups
	// Users are the names an approver's users entry may call them by
	// (compared case-insensitively): see [UserNames].
	Users []string
	// Principal reports whether an approver's AWS principal pattern names
	// them; nil for none.
	Principal func(pattern string) bool
}

// RequestCursor is a place in a list of requests, newest first.
type RequestCursor struct {
	CreatedAt time.Time
	ID        RequestID
}

// GrantEvent is one entry of a grant's history.
type GrantEvent struct {
	GrantID GrantID
	At      time.Time
	State   GrantState
	Note    string
}

// GrantChange is one grant's write in [Store.UpdateGrants].
type GrantChange struct {
	Grant Grant       // written if the stored grant still has Grant.Version
	Note  string      // as UpdateGrant's note
	Audit *AuditEntry // appended to the audit log with the write, if not nil
}

// Store is the ledger of why: grants and their history. Implementations are
// safe for concurrent use, by several processes sharing one database. They
// keep times to at least the second, return them in UTC, stamp history with
// their own clock, and return grants exactly as stored.
type Store interface {
	// CreateGrant records a new grant at Version 1. Returns ECONFLICT if the
	// ID is taken.
	CreateGrant(ctx context.Context, g Grant, note string) (Grant, error)
	// Grant returns one grant. Returns ENOTFOUND.
	Grant(ctx context.Context, id GrantID) (Grant, error)
	// Grants lists grants matching f, newest first.
	Grants(ctx context.Context, f GrantFilter) ([]Grant, error)
	// UpdateGrant writes g if the stored grant still has g.Version, and
	// returns it with the version advanced. A change of state, or a non-empty
	// note, appends to the grant's history. Returns ENOTFOUND, or ECONFLICT
	// when g is stale.
	UpdateGrant(ctx context.Context, g Grant, note string) (Grant, error)
	// UpdateGrants applies changes in one transaction (one commit for a
	// batch): each grant is written as UpdateGrant writes it (version
	// check, history, outbox events), and each change's Audit entry, if
	// any, is appended to the audit log in the order of changes, linked and
	// signed as AppendAudit does (one head move for the batch).
	//
	// It returns the changes as written, one per change and in order, with
	// Grant's version advanced and Audit linked. A stale or missing grant
	// does not abort the others: its change (history, events and audit
	// entry included) is skipped, its entry in the result is the zero
	// GrantChange, and err joins one ECONFLICT or ENOTFOUND naming each
	// skipped grant while the rest commit. Any other failure writes nothing
	// and returns a nil slice. So: nil slice means nothing was written;
	// a non-nil slice with an error means only the zero entries were not.
	UpdateGrants(ctx context.Context, changes []GrantChange, sign func(msg string) string) ([]GrantChange, error)
	// History returns a grant's events, oldest first.
	History(ctx context.Context, id GrantID) ([]GrantEvent, error)

	// CreateRequest records a new request at Version 1. Returns ECONFLICT if
	// the ID is taken.
	CreateRequest(ctx context.Context, r Request) (Request, error)
	// Request returns one request with its reviews. Returns ENOTFOUND.
	Request(ctx context.Context, id RequestID) (Request, error)
	// Requests lists requests matching f, newest first (by CreatedAt, then ID).
	Requests(ctx context.Context, f RequestFilter) ([]Request, error)
	// UpdateRequest writes r, reviews included, if the stored request still
	// has r.Version, and returns it with the version advanced. Returns
	// ENOTFOUND, or ECONFLICT when r is stale.
	UpdateRequest(ctx context.Context, r Request) (Request, error)

	// AppendAudit adds e to the end of the audit log in one transaction:
	// it sets Seq (one more than the last), PrevHash (the last entry's
	// Hash), Hash (e.ComputeHash) and, if sign is not nil, Signature =
	// sign(Hash), as [LinkAudit] does, and moves the log's head to it,
	// signed with sign if it is not nil, as [NewAuditHead] does.
	AppendAudit(ctx context.Context, e AuditEntry, sign func(msg string) string) (AuditEntry, error)
	// AuditEntries lists entries matching f in the order they were appended
	// (Seq order, unless the database was edited), exactly as stored.
	AuditEntries(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	// AuditHead returns the head the log was last moved to, signature
	// included: the zero AuditHead for a new log. It is kept apart from the
	// entries, so that cutting entries off the end shows.
	AuditHead(ctx context.Context) (AuditHead, error)

	// Due returns up to limit IDs of grants whose DueAt is at or before now.
	Due(ctx context.Context, now time.Time, limit int) ([]GrantID, error)
	// NextDue returns the earliest DueAt of any grant; ok is false if none.
	NextDue(ctx context.Context) (at time.Time, ok bool, err error)
	// Changed returns a channel closed after the next change made through
	// this Store value. Changes by other processes are not seen; readers
	// that care (the revoker) also re-read on a timer.
	Changed() <-chan struct{}

	// UseOnce records key until the time until and reports whether it was
	// fresh: false if key is recorded already and not yet expired. Of racing
	// calls with one key, from any number of processes sharing the store,
	// exactly one is fresh. A key expires once until has passed by the
	// store's clock; expired keys are pruned, so using one again is fresh.
	// It records single-use things, such as the signatures of AWS identity
	// proofs (awsauth), so that each is accepted once. Returns EINVALID for
	// an empty key.
	UseOnce(ctx context.Context, key string, until time.Time) (fresh bool, err error)

	// Outbox holds the notification events. Every change above that is
	// notifiable writes its events in its own transaction, so no caller can
	// forget one and no crash can separate them: CreateRequest writes
	// request.created (and breakglass.used for a break-glass request);
	// UpdateRequest, on a change of state, request.approved, .denied,
	// .withdrawn, .timed_out or .failed; UpdateGrant, on a change of state,
	// grant.opened (and a grant.ending due [EndingNotice] before expiry),
	// grant.revoke_failed, or grant.ended (dropping a grant.ending not yet
	// delivered). Grant events carry the rule and requester of the request
	// that opened the grant, if one did.
	Outbox

	Close() error
}

// MessageRef is where a chat sink posted the message about a request, so
// that later events about the request edit that message instead of
// posting another: Slack's channel ID and message timestamp, say.
type MessageRef struct {
	RequestID RequestID
	Route     Route  // the route as the policy names it, e.g. {slack, #ops}
	Channel   string // the destination's own ID for the place, e.g. C0123456789
	MessageID string // the destination's ID for the message, e.g. Slack's ts
	Stage     int    // the EventKind.Stage of the event the message shows
}

// MessageRefs remembers each request's message per route. A store that
// serves a chat sink implements it; the outbox delivers at least once, so
// a sink checks for a ref before it posts.
type MessageRefs interface {
	// SaveMessageRef records ref, replacing any for its request and route.
	SaveMessageRef(ctx context.Context, ref MessageRef) error
	// MessageRef returns the ref for a request and route. Returns
	// ENOTFOUND.
	MessageRef(ctx context.Context, id RequestID, route Route) (MessageRef, error)
}

// SessionStore records the Session Manager sessions latch starts for its
// grants. A store that serves Session Manager access implements it. The
// cloud keeps its own record (each session's reason names its grant and
// expiry), so losing this one never leaves a session running.
type SessionStore interface {
	// AddSession records a session started for a grant. Returns ECONFLICT
	// if its ID is recorded already, ENOTFOUND if the grant is unknown.
	AddSession(ctx context.Context, s SSMSession) error
	// GrantSessions returns a grant's sessions, oldest first.
	GrantSessions(ctx context.Context, id GrantID) ([]SSMSession, error)
	// EndSession records that a session ended at at. Ending one that has
	// ended keeps the first end. Returns ENOTFOUND for an unknown session.
	EndSession(ctx context.Context, id SSMSessionID, at time.Time) error
}
