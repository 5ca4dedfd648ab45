package latch

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"regexp"
	"slices"
	"time"
)

// GrantID identifies a grant: "g-" and 16 lowercase hex digits.
type GrantID string

var grantIDPattern = regexp.MustCompile(`^g-[0-9a-f]{16}$`)

// NewGrantID returns a random grant ID.
func NewGrantID() GrantID { return GrantID(randomID("g-")) }

// randomID is prefix and 16 random lowercase hex digits.
func randomID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return prefix + hex.EncodeToString(b[:])
}

// ParseGrantID checks that s is a well-formed grant ID.
func ParseGrantID(s string) (GrantID, error) {
	if !grantIDPattern.MatchString(s) {
		return "", Invalidf("grant", "%q is not a grant ID; want g- followed by 16 lowercase hex digits", s)
	}
	return GrantID(s), nil
}

// GrantState is where a grant is in its life.
//
//	requested ─▶ active ─▶ revoking ─▶ revoked | expired
//	    │                     │  ▲
//	    ▼                     ▼  │
//	  failed             revoke-failed (retried forever)
type GrantState string

// The grant states.
const (
	StateRequested    GrantState = "requested"     // recorded; the rule may or may not exist yet
	StateActive       GrantState = "active"        // the rule exists and is recorded
	StateRevoking     GrantState = "revoking"      // ending; the rule may still exist
	StateRevokeFailed GrantState = "revoke-failed" // ending, and revoking has failed repeatedly; still retried
	StateRevoked      GrantState = "revoked"       // ended early, rule gone
	StateExpired      GrantState = "expired"       // ended at expiry, rule gone
	StateFailed       GrantState = "failed"        // never opened
)

var transitions = map[GrantState][]GrantState{
	StateRequested:    {StateActive, StateFailed, StateRevoking},
	StateActive:       {StateRevoking},
	StateRevoking:     {StateRevokeFailed, StateRevoked, StateExpired},
	StateRevokeFailed: {StateRevoked, StateExpired},
}

// CanMove reports whether a grant may go from one state to another. Ended
// grants never reopen.
func (s GrantState) CanMove(to GrantState) bool {
	return slices.Contains(transitions[s], to)
}

// Open reports whether a grant in this state may still have a rule in AWS.
func (s GrantState) Open() bool {
	switch s {
	case StateRequested, StateActive, StateRevoking, StateRevokeFailed:
		return true
	}
	return false
}

// Ending reports whether the grant is being revoked.
func (s GrantState) Ending() bool { return s == StateRevoking || s == StateRevokeFailed }

// Grant is one time-bound opening of one rule for one requester.
type Grant struct {
	ID       GrantID
	State    GrantState
	Region   string
	GroupID  GroupID
	Protocol Protocol
	Ports    PortRange
	Source   netip.Prefix
	RuleID   RuleID // empty until the rule is known
	// Access is how the grant reaches its target; "" means AccessNetwork.
	// An AccessSSM grant opens no rule: GroupID, RuleID and Source are
	// empty, Target is the instance, and Ports the port on it (zero for a
	// shell). Its sessions are the store's (see [SessionStore]).
	Access    Access
	Target    InstanceID
	Document  SSMDocument
	Requester string // who asked, for people and the rule's tag
	Owner     string // the requester's identity key ([Identity.Key]); "" for grants no identity asked for
	Reason    string
	// RequestID is the request that opened the grant, set when it is
	// created; "" for a direct grant. Its events carry the request's rule.
	RequestID RequestID
	CreatedAt time.Time
	ExpiresAt time.Time
	EndedAt   time.Time  // zero while open
	EndAs     GrantState // while ending: StateRevoked or StateExpired

	// Revoke attempts that failed, when to try next, and why the last failed.
	Attempts    int
	NextAttempt time.Time
	LastError   string

	// Version counts the grant's updates; stores refuse an update made from
	// a stale copy.
	Version int
}

// Opening is what a rule opens: the key under which grants share a rule.
type Opening struct {
	Region   string
	GroupID  GroupID
	Protocol Protocol
	Ports    PortRange
	Source   netip.Prefix
}

// Opening returns what g opens.
func (g Grant) Opening() Opening {
	return Opening{Region: g.Region, GroupID: g.GroupID, Protocol: g.Protocol, Ports: g.Ports, Source: g.Source}
}

// DueAt is when the revoker must next act on g: its expiry while active, its
// next attempt while ending. ok is false for grants the revoker leaves alone.
func (g Grant) DueAt() (at time.Time, ok bool) {
	switch {
	case g.State == StateActive:
		return g.ExpiresAt, true
	case g.State.Ending():
		return g.NextAttempt, true
	}
	return time.Time{}, false
}

// GrantRequest asks for a grant.
type GrantRequest struct {
	Region    string
	GroupID   GroupID
	Protocol  Protocol
	Ports     PortRange
	Source    netip.Prefix
	Duration  time.Duration
	Requester string // who asked, for people and the rule's tag
	Owner     string // the requester's identity key, when an identity asked
	Reason    string
	RequestID RequestID // the request being opened; "" for a direct grant
	// Wide lets Source be a prefix wider than one address, for a policy
	// rule that allows it (a corporate egress range). Never /0.
	Wide bool
	// Access AccessSSM asks for Session Manager access to Target with
	// Document (Ports the port on it, tcp; zero for a shell) instead of a
	// rule: GroupID and Source are then empty.
	Access   Access
	Target   InstanceID
	Document SSMDocument
}

// DefaultMaxDuration caps a grant's duration unless configured otherwise.
const DefaultMaxDuration = time.Hour

// MaxReasonLen is the longest reason accepted, in characters.
const MaxReasonLen = 256

// Validate checks r against latch's rules, with max as the longest duration
// allowed. It checks everything a caller can get wrong, so that nothing is
// recorded for a bad request.
func (r GrantRequest) Validate(max time.Duration) error {
	if _, err := ParseRegion(r.Region); err != nil {
		return err
	}
	if r.Access == AccessSSM {
		return r.validateSSM(max)
	}
	if r.Access != "" && r.Access != AccessNetwork {
		return Invalidf("access", "%q is not a kind of access; want network or ssm", r.Access)
	}
	if _, err := ParseGroupID(string(r.GroupID)); err != nil {
		return err
	}
	if _, err := ParseProtocol(string(r.Protocol)); err != nil {
		return err
	}
	if _, err := ParsePorts(r.Protocol, r.Ports.String()); err != nil {
		return err
	}
	if r.Wide {
		if _, err := ParseWideSource(r.Source.String()); err != nil {
			return err
		}
	} else if _, err := ParseSource(r.Source.String()); err != nil {
		return err
	}
	if err := CheckFamily(r.Protocol, r.Source); err != nil {
		return err
	}
	return r.validateCommon(max)
}

// validateSSM checks a request for Session Manager access.
func (r GrantRequest) validateSSM(max time.Duration) error {
	if _, err := ParseInstanceID(string(r.Target)); err != nil {
		return err
	}
	if _, err := ParseSSMDocument(string(r.Document)); err != nil {
		return err
	}
	if r.GroupID != "" || r.Source.IsValid() {
		return Invalidf("access", "Session Manager access opens no rule; give no security group or source")
	}
	switch {
	case r.Document.TakesPort() && (r.Protocol != TCP || r.Ports.From != r.Ports.To || r.Ports.From < 1 || r.Ports.From > 65535):
		return Invalidf("port", "a %s session reaches one tcp port on the instance, 1 to 65535; got %s %s", r.Document, r.Protocol, r.Ports)
	case !r.Document.TakesPort() && (r.Ports != PortRange{}):
		return Invalidf("port", "a %s session takes no port; got %s", r.Document, r.Ports)
	}
	return r.validateCommon(max)
}

func (r GrantRequest) validateCommon(max time.Duration) error {
	if r.Duration <= 0 || r.Duration > max {
		return Invalidf("for", "duration %s is not allowed; want more than 0 and at most %s", r.Duration, max)
	}
	if r.Duration%time.Second != 0 {
		return Invalidf("for", "duration %s has a fraction of a second; give whole seconds", r.Duration)
	}
	if r.Requester == "" {
		return Invalidf("requester", "a requester is required")
	}
	return CheckReason("reason", r.Reason)
}
