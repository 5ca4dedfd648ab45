package latch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// EventID identifies a notification event: "e-" and 16 lowercase hex
// digits. It is the idempotency key receivers see: every delivery attempt
// of one event, to every route, carries the same ID.
type EventID string

// NewEventID returns a random event ID.
func NewEventID() EventID { return EventID(randomID("e-")) }

// EventIDFor returns the event ID named by what happened, for an event
// that may be found more than once (the same out-of-band rule on every
// reconcile): enqueued again, it conflicts instead of notifying twice.
func EventIDFor(kind EventKind, subject string) EventID {
	sum := sha256.Sum256([]byte(string(kind) + "\x00" + subject))
	return EventID("e-" + hex.EncodeToString(sum[:8]))
}

var eventIDPattern = regexp.MustCompile(`^e-[0-9a-f]{16}$`)

// ParseEventID checks that s is a well-formed event ID.
func ParseEventID(s string) (EventID, error) {
	if !eventIDPattern.MatchString(s) {
		return "", Invalidf("event", "%q is not an event ID; want e- followed by 16 lowercase hex digits", s)
	}
	return EventID(s), nil
}

// EventKind says what happened. The values are part of the webhook contract
// (docs/WEBHOOKS.md): they are added to, never renamed.
type EventKind string

// The event kinds, and the store transition that writes each (see [Store]).
const (
	EventRequestCreated   EventKind = "request.created"     // CreateRequest
	EventRequestApproved  EventKind = "request.approved"    // UpdateRequest: pending → approved
	EventRequestDenied    EventKind = "request.denied"      // UpdateRequest: pending → denied
	EventRequestWithdrawn EventKind = "request.withdrawn"   // UpdateRequest: pending → withdrawn
	EventRequestTimedOut  EventKind = "request.timed_out"   // UpdateRequest: pending → timed-out
	EventRequestFailed    EventKind = "request.failed"      // UpdateRequest: approved → failed
	EventBreakGlassUsed   EventKind = "breakglass.used"     // CreateRequest of a break-glass request
	EventGrantOpened      EventKind = "grant.opened"        // UpdateGrant: → active
	EventGrantEnding      EventKind = "grant.ending"        // scheduled when a grant opens, due EndingNotice before expiry
	EventGrantEnded       EventKind = "grant.ended"         // UpdateGrant: → revoked or expired
	EventGrantRevokeFail  EventKind = "grant.revoke_failed" // UpdateGrant: → revoke-failed
	EventRuleOutOfBand    EventKind = "rule.out_of_band"    // EnqueueEvent, by whoever reconciles
)

// EventKinds lists every kind, in the order a grant's life meets them.
var EventKinds = []EventKind{
	EventRequestCreated, EventBreakGlassUsed, EventRequestApproved, EventRequestDenied, EventRequestWithdrawn,
	EventRequestTimedOut, EventRequestFailed, EventGrantOpened, EventGrantEnding, EventGrantEnded,
	EventGrantRevokeFail, EventRuleOutOfBand,
}

// Stage is how far in a request's life an event of kind k comes: later
// events have higher stages, and kinds outside that life 0. Events may be
// delivered out of order (retries, parallel delivery, replicas), so a
// message shown for a request is edited only by an event of a stage at
// least its own: it never goes back to an older state.
func (k EventKind) Stage() int {
	switch k {
	case EventRequestCreated, EventBreakGlassUsed:
		return 1
	case EventRequestApproved, EventRequestDenied, EventRequestWithdrawn, EventRequestTimedOut, EventRequestFailed:
		return 2
	case EventGrantOpened:
		return 3
	case EventGrantRevokeFail:
		return 4
	case EventGrantEnded:
		return 5
	}
	return 0
}

// EndingNotice is how long before a grant's expiry its grant.ending event
// falls due.
const EndingNotice = 5 * time.Minute

// Event is one notifiable thing that happened, with a snapshot of what a
// message about it needs, taken when it happened: a sink never reads the
// store, and a message says what was true then. Its JSON is the body
// webhooks receive (docs/WEBHOOKS.md), following docs/JSON.md.
type Event struct {
	ID   EventID   `json:"id"`
	Kind EventKind `json:"kind"`
	// At is when it happened; for grant.ending, when it falls due.
	At time.Time `json:"at"`

	RequestID RequestID `json:"request_id,omitempty"`
	GrantID   GrantID   `json:"grant_id,omitempty"`
	Rule      string    `json:"rule,omitempty"` // the policy rule that decided the request: it chooses the routes

	Requester  string     `json:"requester,omitempty"` // display: verified email, else subject
	Region     string     `json:"region,omitempty"`
	InstanceID InstanceID `json:"instance_id,omitempty"`
	GroupID    GroupID    `json:"group_id,omitempty"`
	Protocol   Protocol   `json:"protocol,omitempty"`
	FromPort   int        `json:"from_port"`
	ToPort     int        `json:"to_port"`
	Source     string     `json:"source,omitempty"`
	Duration   int64      `json:"duration_seconds,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	BreakGlass bool       `json:"break_glass,omitempty"`
	State      string     `json:"state,omitempty"` // the request's or grant's state after the change

	Reviewer     string    `json:"reviewer,omitempty"` // who approved or denied
	ReviewReason string    `json:"review_reason,omitempty"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	Error        string    `json:"error,omitempty"` // why a revoke or an opening failed

	RuleID string `json:"rule_id,omitempty"` // rule.out_of_band: the AWS rule found

	// Access is ssm for Session Manager access, with its Document;
	// absent for a rule (network access).
	Access   Access      `json:"access,omitempty"`
	Document SSMDocument `json:"document,omitempty"`
}

// Target names what e is about for people: the instance, else the group.
func (e Event) Target() string {
	if e.InstanceID != "" {
		return string(e.InstanceID)
	}
	return string(e.GroupID)
}

// Message is a one-line summary of e for people, as chat and pager sinks
// show it.
func (e Event) Message() string {
	what := fmt.Sprintf("%s/%s on %s", e.Protocol, PortRange{From: e.FromPort, To: e.ToPort}, e.Target())
	from := "from " + e.Source
	if e.Access == AccessSSM {
		what = fmt.Sprintf("%s sessions on %s", e.Document, e.Target())
		if e.Document.TakesPort() {
			what = fmt.Sprintf("%s sessions to port %d on %s", e.Document, e.FromPort, e.Target())
		}
		from = "through Session Manager, no port opened,"
	}
	for_ := ""
	if e.Duration > 0 {
		for_ = " for " + (time.Duration(e.Duration) * time.Second).String()
	}
	switch e.Kind {
	case EventRequestCreated:
		return fmt.Sprintf("%s asks for %s%s (rule %s, request %s): %s", e.Requester, what, for_, e.Rule, e.RequestID, e.Reason)
	case EventBreakGlassUsed:
		return fmt.Sprintf("BREAK-GLASS: %s opened %s%s without approval (rule %s, request %s): %s", e.Requester, what, for_, e.Rule, e.RequestID, e.Reason)
	case EventRequestApproved:
		return fmt.Sprintf("%s approved %s's request %s for %s", e.Reviewer, e.Requester, e.RequestID, what)
	case EventRequestDenied:
		return fmt.Sprintf("%s denied %s's request %s for %s: %s", e.Reviewer, e.Requester, e.RequestID, what, e.ReviewReason)
	case EventRequestWithdrawn:
		return fmt.Sprintf("%s withdrew request %s for %s", e.Requester, e.RequestID, what)
	case EventRequestTimedOut:
		return fmt.Sprintf("%s's request %s for %s timed out waiting for approval", e.Requester, e.RequestID, what)
	case EventRequestFailed:
		return fmt.Sprintf("%s's request %s for %s was approved but could not open: %s", e.Requester, e.RequestID, what, e.Error)
	case EventGrantOpened:
		return fmt.Sprintf("%s has %s %s until %s (grant %s)", e.Requester, what, from, FormatExpiry(e.ExpiresAt), e.GrantID)
	case EventGrantEnding:
		return fmt.Sprintf("%s's grant %s for %s ends at %s", e.Requester, e.GrantID, what, FormatExpiry(e.ExpiresAt))
	case EventGrantEnded:
		return fmt.Sprintf("%s's grant %s for %s has ended (%s)", e.Requester, e.GrantID, what, e.State)
	case EventGrantRevokeFail:
		return fmt.Sprintf("revoking %s's grant %s for %s keeps failing, still retrying: %s", e.Requester, e.GrantID, what, e.Error)
	case EventRuleOutOfBand:
		return fmt.Sprintf("rule %s opens %s from %s, and latch did not open it", e.RuleID, what, e.Source)
	}
	return fmt.Sprintf("%s: %s", e.Kind, what)
}

// Route is one place an event goes: a sink kind and its name for the place,
// such as {slack, #ops} or {webhook, pagerduty}. A policy rule lists its
// routes.
type Route struct {
	Sink string // "slack", "webhook"
	To   string // a channel, a webhook's configured name
}

func (r Route) String() string { return r.Sink + ":" + r.To }

// The sink kinds a policy may name.
const (
	SinkSlack   = "slack"
	SinkWebhook = "webhook"
)

// Sink delivers events to one kind of destination. Deliver must be safe to
// call again for an event it has delivered (the outbox delivers at least
// once): receivers deduplicate by Event.ID. An error means try again later,
// unless it is EINVALID, which means retrying cannot help (an unknown
// route): the event is given up at once.
type Sink interface {
	Deliver(ctx context.Context, to Route, e Event) error
}

// RetryAfterError is a sink's error when its destination said when to try
// again (HTTP 429 or 503 with Retry-After): the next attempt waits at
// least After, whatever the backoff says.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// EventState is where an event is in the outbox.
type EventState string

// The outbox states.
const (
	EventPending   EventState = "pending"   // to deliver, now or at its next attempt
	EventDelivered EventState = "delivered" // every route took it
	EventDead      EventState = "dead"      // given up after too many failed attempts
	EventDropped   EventState = "dropped"   // no longer true (a grant ended before its ending notice)
)

// OutboxItem is an event as the outbox holds it.
type OutboxItem struct {
	Event     Event
	State     EventState
	DueAt     time.Time // when it may next be attempted
	Attempts  int       // failed attempts so far
	Delivered []Route   // routes that have taken it, skipped on a retry
	LastError string
}

// Settlement is the outcome of one attempt at an item, as the worker that
// claimed it reports it.
type Settlement struct {
	ID        EventID
	State     EventState // EventDelivered, EventDead, or EventPending to retry at RetryAt
	Delivered []Route    // routes that took it in this attempt, added to the item's
	RetryAt   time.Time  // when EventPending: the next attempt
	Error     string     // why the attempt failed, if it did
}

// Outbox is the durable queue of notification events. The store writes
// events itself, in the transaction of the change that causes them (see
// [Store]), so a crash can never keep one without the other. Workers claim
// due events with a lease, deliver them and settle them; a claimed event
// whose worker dies is claimed again once its lease runs out.
type Outbox interface {
	// EnqueueEvent records e, pending and due at e.At, for events with no
	// state change in the store behind them (a rule reconcile found).
	// Returns ECONFLICT if e.ID is taken.
	EnqueueEvent(ctx context.Context, e Event) error
	// ClaimEvents leases to owner, until now+lease, up to limit pending
	// events due at now whose lease (if any) has run out, earliest due
	// first. Of racing claims, from any number of processes, each event
	// goes to one.
	ClaimEvents(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]OutboxItem, error)
	// SettleEvent records the outcome of owner's attempt and releases its
	// lease. Returns ECONFLICT if owner no longer holds the lease (it ran
	// out and another worker claimed the event), and ENOTFOUND.
	SettleEvent(ctx context.Context, owner string, s Settlement) error
	// SettleEvents settles a batch in one transaction. An event owner no
	// longer holds (ECONFLICT) or that is gone (ENOTFOUND) is skipped and
	// its error returned, joined with the others'; the rest are settled.
	SettleEvents(ctx context.Context, owner string, s []Settlement) error
	// NextEvent returns when the earliest pending event is due, or its
	// lease runs out if later; ok is false if none is pending.
	NextEvent(ctx context.Context) (at time.Time, ok bool, err error)
	// OutboxEvent returns one event as the outbox holds it. Returns
	// ENOTFOUND.
	OutboxEvent(ctx context.Context, id EventID) (OutboxItem, error)
	// PruneEvents deletes the events settled (delivered, dead or dropped)
	// before before, and returns how many. Pending events are never
	// pruned. The audit log, not the outbox, is the record of what
	// happened.
	PruneEvents(ctx context.Context, before time.Time) (int, error)
}
