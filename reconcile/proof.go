package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
)

// TypicalDelivery is how long CloudTrail usually takes to deliver an
// event: what people are told to expect, not a bound (DeliveryBound).
const TypicalDelivery = 5 * time.Minute

// The statuses of a ProofSide.
const (
	ProofFound   = "found"   // CloudTrail has the call
	ProofPending = "pending" // not delivered yet, and DeliveryBound has not passed
	ProofMissing = "missing" // not delivered, though DeliveryBound has passed
	ProofNotYet  = "not-yet" // the grant is still open: there is no close to prove
	ProofKept    = "kept"    // the rule was shared and handed on; the grant it went to proves the close
)

// Proof is CloudTrail's record of one grant's rule: the call that opened
// it and the one that closed it.
type Proof struct {
	Opened, Closed ProofSide
}

// Missing reports whether CloudTrail lacks a call it should have by now.
func (p Proof) Missing() bool {
	return p.Opened.Status == ProofMissing || p.Closed.Status == ProofMissing
}

// ProofSide is one half of a Proof. The event fields are set when Status
// is ProofFound; Note says why otherwise.
type ProofSide struct {
	Status  string
	EventID string // CloudTrail's
	Event   string // the call's name
	At      time.Time
	Actor   string // the caller's ARN
	// SourceIdentity is the source identity of the caller's role session:
	// for a Session Manager call, the requester's latch.RoleSessionName.
	SourceIdentity string
	What           string // rules, group, ports and sources (or the session, document and target), in one line
	Note           string
}

// History is the part of latch.Store Prove reads.
type History interface {
	History(ctx context.Context, id latch.GrantID) ([]latch.GrantEvent, error)
}

// Prove looks up, in trail, the AuthorizeSecurityGroupIngress that made
// g's rule and the RevokeSecurityGroupIngress that removed it, as of now.
// A call not found is pending until DeliveryBound after it, then missing.
// A grant that never opened a rule is ECONFLICT: there is nothing to prove.
func Prove(ctx context.Context, trail Trail, store History, g latch.Grant, now time.Time) (Proof, error) {
	if g.RuleID == "" {
		return Proof{}, latch.Errorf(latch.ECONFLICT, "grant %s never opened a rule (%s); there is nothing in CloudTrail to prove", g.ID, g.State)
	}
	opened, err := proveOpened(ctx, trail, g, now)
	if err != nil {
		return Proof{}, err
	}
	closed, err := proveClosed(ctx, trail, store, g, now)
	if err != nil {
		return Proof{}, err
	}
	return Proof{Opened: opened, Closed: closed}, nil
}

// proveOpened finds the call that created the grant's rule. The hour
// either side allows for the gap between the call and the store's clock.
func proveOpened(ctx context.Context, t Trail, g latch.Grant, now time.Time) (ProofSide, error) {
	evs, err := t.Events(ctx, "AuthorizeSecurityGroupIngress", g.CreatedAt.Add(-time.Hour), g.CreatedAt.Add(time.Hour))
	if err != nil {
		return ProofSide{}, fmt.Errorf("read CloudTrail: %w", err)
	}
	if e, ok := madeRule(evs, g.RuleID); ok {
		return found(e), nil
	}
	return absent(g.CreatedAt, now, "AuthorizeSecurityGroupIngress", g.RuleID), nil
}

// proveClosed finds the call that removed the grant's rule, if it ended.
func proveClosed(ctx context.Context, t Trail, store History, g latch.Grant, now time.Time) (ProofSide, error) {
	if g.State.Open() {
		return ProofSide{Status: ProofNotYet, Note: fmt.Sprintf("the grant is %s; it expires %s", g.State, latch.FormatExpiry(g.ExpiresAt))}, nil
	}
	evs, err := t.Events(ctx, "RevokeSecurityGroupIngress", g.CreatedAt, g.EndedAt.Add(time.Hour))
	if err != nil {
		return ProofSide{}, fmt.Errorf("read CloudTrail: %w", err)
	}
	if e, ok := madeRule(evs, g.RuleID); ok {
		return found(e), nil
	}
	note, err := keptNote(ctx, store, g.ID)
	if err != nil {
		return ProofSide{}, err
	}
	if note != "" {
		return ProofSide{Status: ProofKept, Note: "the rule was shared and handed on: " + note + "; that grant's proof shows its revocation"}, nil
	}
	return absent(g.EndedAt, now, "RevokeSecurityGroupIngress", g.RuleID), nil
}

// madeRule returns the successful call among evs that names rule.
func madeRule(evs []Event, rule latch.RuleID) (Event, bool) {
	for _, e := range evs {
		if e.ErrorCode == "" && slices.Contains(e.RuleIDs, string(rule)) {
			return e, true
		}
	}
	return Event{}, false
}

// keptNote returns the note of the grant's hand-over of its shared rule to
// another grant, or "" if it kept none.
func keptNote(ctx context.Context, store History, id latch.GrantID) (string, error) {
	hist, err := store.History(ctx, id)
	if err != nil {
		return "", fmt.Errorf("history of %s: %w", id, err)
	}
	for _, h := range hist {
		if strings.HasPrefix(h.Note, broker.NoteKept) {
			return h.Note, nil
		}
	}
	return "", nil
}

func found(e Event) ProofSide {
	what := fmt.Sprintf("%s in %s", joinOr(e.RuleIDs), e.GroupID)
	if len(e.Ports) > 0 {
		what += fmt.Sprintf(", %s from %s", joinOr(e.Ports), joinOr(e.CIDRs))
	}
	return ProofSide{Status: ProofFound, EventID: e.ID, Event: e.Name, At: e.Time, Actor: e.Actor, What: what}
}

// absent is pending while CloudTrail may still deliver, missing after.
func absent(at, now time.Time, event string, rule latch.RuleID) ProofSide {
	return absentCall(at, now, event, string(rule))
}

// absentCall is absent for a call on what.
func absentCall(at, now time.Time, event, what string) ProofSide {
	rule := what
	if now.Before(at.Add(DeliveryBound)) {
		return ProofSide{Status: ProofPending, Note: fmt.Sprintf("%s for %s made at %s is not delivered yet; CloudTrail takes about %s, expected by %s",
			event, rule, latch.FormatExpiry(at), TypicalDelivery, latch.FormatExpiry(at.Add(DeliveryBound)))}
	}
	return ProofSide{Status: ProofMissing, Note: fmt.Sprintf("no successful %s for %s around %s, though CloudTrail should have delivered it by %s",
		event, rule, latch.FormatExpiry(at), latch.FormatExpiry(at.Add(DeliveryBound)))}
}
