package latch

import (
	"net/netip"
	"regexp"
	"slices"
	"time"
)

// RequestID identifies a request: "r-" and 16 lowercase hex digits.
type RequestID string

var requestIDPattern = regexp.MustCompile(`^r-[0-9a-f]{16}$`)

// NewRequestID returns a random request ID.
func NewRequestID() RequestID { return RequestID(randomID("r-")) }

// ParseRequestID checks that s is a well-formed request ID.
func ParseRequestID(s string) (RequestID, error) {
	if !requestIDPattern.MatchString(s) {
		return "", Invalidf("request", "%q is not a request ID; want r- followed by 16 lowercase hex digits", s)
	}
	return RequestID(s), nil
}

// InstanceID is an EC2 instance ID (i-…).
type InstanceID string

var instanceIDPattern = regexp.MustCompile(`^i-([0-9a-f]{8}|[0-9a-f]{17})$`)

// ParseInstanceID checks that s is a well-formed instance ID.
func ParseInstanceID(s string) (InstanceID, error) {
	if !instanceIDPattern.MatchString(s) {
		return "", Invalidf("target", "%q is not an instance ID; want i- followed by 8 or 17 lowercase hex digits", s)
	}
	return InstanceID(s), nil
}

// Target is what access is to: an instance, resolved to the one managed
// security group latch opens, or a managed group named directly.
type Target struct {
	Region     string
	InstanceID InstanceID // empty when the group was named directly
	GroupID    GroupID
	Tags       map[string]string // the instance's tags, or the group's
}

// RequestState is where a request is in its life.
//
//	pending ─▶ approved ─▶ active ─▶ ended (its grant's revoked | expired)
//	   │           │
//	   ▼           ▼
//	denied | withdrawn | timed-out      failed (the grant could not open)
type RequestState string

// The request states.
const (
	RequestPending   RequestState = "pending"
	RequestApproved  RequestState = "approved" // enough approvals; the grant is being opened
	RequestActive    RequestState = "active"   // its grant exists; see the grant for whether it is still open
	RequestDenied    RequestState = "denied"
	RequestWithdrawn RequestState = "withdrawn"
	RequestTimedOut  RequestState = "timed-out"
	RequestFailed    RequestState = "failed"
)

var requestMoves = map[RequestState][]RequestState{
	RequestPending:  {RequestApproved, RequestDenied, RequestWithdrawn, RequestTimedOut},
	RequestApproved: {RequestActive, RequestFailed},
}

// CanMove reports whether a request may go from s to to. Denied, withdrawn
// and timed-out requests are final: extending access is a new request.
func (s RequestState) CanMove(to RequestState) bool { return slices.Contains(requestMoves[s], to) }

// Review is one approval or denial.
type Review struct {
	By      Identity
	Approve bool
	Reason  string
	At      time.Time
}

// Request is a person's ask for access, and the decisions on it.
type Request struct {
	ID        RequestID
	State     RequestState
	Requester Identity
	Target    Target
	Protocol  Protocol
	Ports     PortRange
	Source    netip.Prefix  // invalid (zero) for Session Manager access, which opens no port
	Duration  time.Duration // counted from when access starts, not from the ask
	// Access is how the grant reaches the target; "" means AccessNetwork.
	// For AccessSSM, Document is the session document and Ports the port
	// on the instance (tcp; zero for a shell).
	Access     Access
	Document   SSMDocument
	Reason     string
	BreakGlass bool   // opened at once without approval; flagged everywhere
	Rule       string // the policy rule that decided it

	ApprovalsNeeded int      // 0 for auto-approved and break-glass requests
	Approvers       Selector // who may review, besides admins never
	Reviews         []Review

	CreatedAt    time.Time
	PendingUntil time.Time // when a pending request times out
	DecidedAt    time.Time // zero while pending
	GrantID      GrantID   // set once access starts
	Note         string    // why it failed, if it did

	Version int
}

// Approvals counts the approving reviews.
func (r Request) Approvals() int {
	n := 0
	for _, rv := range r.Reviews {
		if rv.Approve {
			n++
		}
	}
	return n
}

// Review records by's verdict on r at now; people links identities to
// persons. It refuses, first, a reviewer who may be the requester (the
// same person, or one latch cannot tell apart: see [Distinct]), then a
// reviewer the request's approvers do not name, a second review by the
// same person (or one latch cannot tell from an earlier reviewer), and any
// request no longer pending (or past its pending time). One denial denies;
// the last approval needed approves.
func (r *Request) Review(by Identity, approve bool, reason string, now time.Time, people People) error {
	person, _ := people.Person(by)
	switch {
	case !Distinct(people, by, r.Requester):
		return NotDistinctError(people, by, r.Requester)
	case !r.Approvers.Match(by, person):
		return Errorf(EFORBIDDEN, "%s may not review this request; its approvers are %s", by, r.Approvers.Or())
	case slices.ContainsFunc(r.Reviews, func(rv Review) bool { return !Distinct(people, rv.By, by) }):
		return Errorf(ECONFLICT, "%s has already reviewed request %s, or latch cannot tell them from someone who has", by, r.ID)
	case r.State != RequestPending:
		return Errorf(ECONFLICT, "request %s is %s, not pending", r.ID, r.State)
	case !now.Before(r.PendingUntil):
		return Errorf(ECONFLICT, "request %s timed out at %s", r.ID, FormatExpiry(r.PendingUntil))
	case !approve && reason == "":
		return Invalidf("reason", "a denial needs a reason")
	}
	if reason != "" {
		if err := CheckReason("reason", reason); err != nil {
			return err
		}
	}
	r.Reviews = append(r.Reviews, Review{By: by, Approve: approve, Reason: reason, At: now})
	switch {
	case !approve:
		r.State, r.DecidedAt = RequestDenied, now
	case r.Approvals() >= r.ApprovalsNeeded:
		r.State, r.DecidedAt = RequestApproved, now
	}
	return nil
}

// ExtendsReviews returns EINVALID unless updated begins with stored:
// reviews are append-only, and a store refuses an update that removes
// or changes one. Both are as a store reads them back.
func ExtendsReviews(updated, stored []Review) error {
	if len(updated) < len(stored) {
		return Invalidf("reviews", "the update has %d reviews but %d are stored; reviews cannot be removed",
			len(updated), len(stored))
	}
	for i, st := range stored {
		if !sameReview(updated[i], st) {
			return Invalidf("reviews", "the update changes review %d (by %s); reviews cannot be changed, only added",
				i+1, st.By)
		}
	}
	return nil
}

// sameReview reports whether a and b are equal.
func sameReview(a, b Review) bool {
	return a.By.Kind == b.By.Kind && a.By.Subject == b.By.Subject && a.By.Issuer == b.By.Issuer &&
		a.By.Email == b.By.Email && a.By.Name == b.By.Name && slices.Equal(a.By.Groups, b.By.Groups) &&
		a.Approve == b.Approve && a.Reason == b.Reason && a.At.Equal(b.At)
}
