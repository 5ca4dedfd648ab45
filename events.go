package latch

import (
	"net/netip"
	"time"
)

// What a change causes: the events a store writes in the transaction of a
// request's or a grant's change. Every store builds them here, so that
// their outboxes cannot drift apart.

// RequestEvents are the events r's change from state was causes at now;
// was is "" for a new request.
func RequestEvents(was RequestState, r Request, now time.Time) []Event {
	if was == r.State {
		return nil
	}
	e := Event{
		At: now, RequestID: r.ID, GrantID: r.GrantID, Rule: r.Rule, Requester: r.Requester.String(),
		Region: r.Target.Region, InstanceID: r.Target.InstanceID, GroupID: r.Target.GroupID,
		Protocol: r.Protocol, FromPort: r.Ports.From, ToPort: r.Ports.To, Source: eventSource(r.Source),
		Duration: int64(r.Duration / time.Second), Reason: r.Reason, BreakGlass: r.BreakGlass, State: string(r.State),
		Access: eventAccess(r.Access), Document: r.Document,
	}
	if n := len(r.Reviews); n > 0 {
		e.Reviewer, e.ReviewReason = r.Reviews[n-1].By.String(), r.Reviews[n-1].Reason
	}
	kinds := map[RequestState]EventKind{
		RequestApproved: EventRequestApproved, RequestDenied: EventRequestDenied,
		RequestWithdrawn: EventRequestWithdrawn, RequestTimedOut: EventRequestTimedOut,
		RequestFailed: EventRequestFailed,
	}
	var out []Event
	switch {
	case was == "":
		out = append(out, e.withKind(EventRequestCreated))
		if r.BreakGlass {
			out = append(out, e.withKind(EventBreakGlassUsed))
		}
	case kinds[r.State] != "":
		if r.State == RequestFailed {
			e.Error = r.Note
		}
		out = append(out, e.withKind(kinds[r.State]))
	}
	return out
}

// GrantChangeEvent is the event g's change from state was causes at now, if
// any, before the store adds the request that opened g (FromRequest). A
// grant.ended also makes a pending grant.ending untrue: the store drops it.
func GrantChangeEvent(was GrantState, g Grant, now time.Time) (Event, bool) {
	if was == g.State {
		return Event{}, false
	}
	var kind EventKind
	switch g.State {
	case StateActive:
		kind = EventGrantOpened
	case StateRevokeFailed:
		kind = EventGrantRevokeFail
	case StateRevoked, StateExpired:
		kind = EventGrantEnded
	default:
		return Event{}, false
	}
	e := Event{
		Kind: kind, At: now, GrantID: g.ID, Requester: g.Requester, Region: g.Region, GroupID: g.GroupID,
		Protocol: g.Protocol, FromPort: g.Ports.From, ToPort: g.Ports.To, Source: eventSource(g.Source),
		Reason: g.Reason, State: string(g.State), ExpiresAt: g.ExpiresAt, Error: g.LastError,
		Access: eventAccess(g.Access), Document: g.Document, InstanceID: g.Target,
	}
	if !g.CreatedAt.IsZero() && g.ExpiresAt.After(g.CreatedAt) {
		e.Duration = int64(g.ExpiresAt.Sub(g.CreatedAt) / time.Second)
	}
	return e, true
}

// FromRequest adds to a grant's event what the request that opened the
// grant says: the rule, which routes the event, the instance, the
// duration asked for and break-glass.
func (e *Event) FromRequest(id RequestID, rule string, instance InstanceID, d time.Duration, breakGlass bool) {
	e.RequestID, e.Rule, e.InstanceID = id, rule, instance
	e.Duration, e.BreakGlass = int64(d/time.Second), breakGlass
}

// Ending is the grant.ending a grant.opened event e schedules
// [EndingNotice] before expiry; ok is false when that time has passed at
// now, or e is not a grant.opened.
func (e Event) Ending(now time.Time) (Event, bool) {
	due := e.ExpiresAt.Add(-EndingNotice)
	if e.Kind != EventGrantOpened || !due.After(now) {
		return Event{}, false
	}
	ending := e
	ending.ID, ending.Kind, ending.At = "", EventGrantEnding, due
	return ending, true
}

func (e Event) withKind(k EventKind) Event {
	e.Kind = k
	return e
}

// eventAccess is an event's access: ssm, or "" for a rule.
func eventAccess(a Access) Access {
	if a == AccessSSM {
		return a
	}
	return ""
}

// eventSource is an event's source: "" when there is none.
func eventSource(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}
