package reconcile

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/latchdev/latch"
)

// The Session Manager calls ProveSessions looks up.
const (
	EventStartSession     = "StartSession"
	EventTerminateSession = "TerminateSession"
)

// SessionProof is CloudTrail's record of one Session Manager session of a
// grant: the StartSession that began it and the TerminateSession that
// ended it.
type SessionProof struct {
	SessionID latch.SSMSessionID
	// Recorded reports whether the store recorded the session; false for
	// one found only by its reason naming the grant.
	Recorded            bool
	Started, Terminated ProofSide
}

// SessionProofs are a grant's sessions' proofs, oldest first.
type SessionProofs []SessionProof

// Missing reports whether CloudTrail lacks a call it should have by now.
func (ps SessionProofs) Missing() bool {
	for _, p := range ps {
		if p.Started.Status == ProofMissing || p.Terminated.Status == ProofMissing {
			return true
		}
	}
	return false
}

// Sessions is the part of latch.SessionStore ProveSessions reads.
type Sessions interface {
	GrantSessions(ctx context.Context, id latch.GrantID) ([]latch.SSMSession, error)
}

// ProveSessions looks up, in trail, the StartSession and TerminateSession
// calls of each Session Manager session of g, as of now: the sessions the
// store recorded, and any other session whose StartSession gave a reason
// naming g (latch.SessionReason), which a store that failed to record it
// would miss. A call not found is pending until DeliveryBound after it,
// then missing. A grant with no session has nothing to prove: the result
// is empty. A grant that is not for Session Manager is ECONFLICT.
func ProveSessions(ctx context.Context, trail Trail, store Sessions, g latch.Grant, now time.Time) (SessionProofs, error) {
	if g.Access != latch.AccessSSM {
		return nil, latch.Errorf(latch.ECONFLICT, "grant %s is not for Session Manager; it started no session", g.ID)
	}
	recorded, err := store.GrantSessions(ctx, g.ID)
	if err != nil {
		return nil, fmt.Errorf("sessions of %s: %w", g.ID, err)
	}
	// Sessions start while the grant is active: from its creation to its
	// end, or now while it is open. The hour either side allows for the gap
	// between the call and the store's clock.
	end := now
	if !g.State.Open() && !g.EndedAt.IsZero() {
		end = g.EndedAt
	}
	starts, err := trail.Events(ctx, EventStartSession, g.CreatedAt.Add(-time.Hour), end.Add(time.Hour))
	if err != nil {
		return nil, fmt.Errorf("read CloudTrail: %w", err)
	}
	sessions := slices.Clone(recorded)
	for _, e := range starts {
		if e.ErrorCode != "" || e.SessionID == "" {
			continue
		}
		if id, _, ok := latch.ParseSessionReason(e.Reason); !ok || id != g.ID {
			continue
		}
		if slices.ContainsFunc(sessions, func(s latch.SSMSession) bool { return string(s.ID) == e.SessionID }) {
			continue
		}
		sessions = append(sessions, latch.SSMSession{ID: latch.SSMSessionID(e.SessionID), GrantID: g.ID, Target: latch.InstanceID(e.Target),
			Reason: e.Reason, StartedAt: e.Time})
	}
	if len(sessions) == 0 {
		return SessionProofs{}, nil
	}
	slices.SortStableFunc(sessions, func(a, b latch.SSMSession) int { return a.StartedAt.Compare(b.StartedAt) })

	var terms []Event
	if !g.State.Open() {
		if terms, err = trail.Events(ctx, EventTerminateSession, sessions[0].StartedAt.Add(-time.Hour), lastEnd(sessions, g).Add(time.Hour)); err != nil {
			return nil, fmt.Errorf("read CloudTrail: %w", err)
		}
	}
	out := make(SessionProofs, 0, len(sessions))
	for _, s := range sessions {
		p := SessionProof{SessionID: s.ID, Recorded: slices.ContainsFunc(recorded, func(r latch.SSMSession) bool { return r.ID == s.ID })}
		if e, ok := sessionCall(starts, s.ID); ok {
			p.Started = foundSession(e)
		} else {
			p.Started = absentCall(s.StartedAt, now, EventStartSession, "session "+string(s.ID))
		}
		switch {
		case g.State.Open() && s.EndedAt.IsZero():
			p.Terminated = ProofSide{Status: ProofNotYet, Note: fmt.Sprintf("the grant is %s; latch terminates the session when it ends, by %s", g.State, latch.FormatExpiry(g.ExpiresAt))}
		default:
			if e, ok := sessionCall(terms, s.ID); ok {
				p.Terminated = foundSession(e)
			} else {
				p.Terminated = absentCall(sessionEnd(s, g), now, EventTerminateSession, "session "+string(s.ID))
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// sessionEnd is when latch ended s: when the store saw it end, or else
// when its grant ended.
func sessionEnd(s latch.SSMSession, g latch.Grant) time.Time {
	if !s.EndedAt.IsZero() {
		return s.EndedAt
	}
	return g.EndedAt
}

func lastEnd(ss []latch.SSMSession, g latch.Grant) time.Time {
	end := g.EndedAt
	for _, s := range ss {
		if at := sessionEnd(s, g); at.After(end) {
			end = at
		}
	}
	return end
}

// sessionCall returns the successful call among evs on session id.
func sessionCall(evs []Event, id latch.SSMSessionID) (Event, bool) {
	for _, e := range evs {
		if e.ErrorCode == "" && e.SessionID == string(id) {
			return e, true
		}
	}
	return Event{}, false
}

func foundSession(e Event) ProofSide {
	what := "session " + e.SessionID
	if e.Name == EventStartSession {
		doc := e.Document
		if doc == "" {
			doc = "the default shell document" // StartSession without a document runs SSM-SessionManagerRunShell
		}
		what += fmt.Sprintf(": %s on %s", doc, e.Target)
		if e.Reason != "" {
			what += fmt.Sprintf(", reason %q", e.Reason)
		}
	}
	return ProofSide{Status: ProofFound, EventID: e.ID, Event: e.Name, At: e.Time, Actor: e.Actor, SourceIdentity: e.SourceIdentity, What: what}
}
