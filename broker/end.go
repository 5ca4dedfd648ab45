package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/latchdev/latch"
)

// Ended is what ending a grant did.
type Ended struct {
	Grant latch.Grant
	// KeptFor is set when the grant's rule was shared: the rule was not
	// revoked but handed to this other live grant, and stays open until
	// KeptFor.ExpiresAt. nil when the rule was revoked, or there was none.
	KeptFor *latch.Grant
}

// Revoke ends a grant early, at once, on behalf of by. Returns ENOTFOUND for
// an unknown grant and ECONFLICT for one that has already ended. If AWS
// refuses, the grant stays ending and is retried by the revoker.
func (b *Broker) Revoke(ctx context.Context, id latch.GrantID, by string) (Ended, error) {
	return b.end(ctx, id, latch.StateRevoked, by)
}

// Expire ends a grant that is due: an active grant past its expiry, or an
// ending grant whose next attempt has come. Anything else is left alone, so
// calling it twice, or early, is harmless.
func (b *Broker) Expire(ctx context.Context, id latch.GrantID) error {
	_, err := b.end(ctx, id, latch.StateExpired, "")
	if latch.ErrorCode(err) == latch.ECONFLICT {
		return nil
	}
	return err
}

func (b *Broker) end(ctx context.Context, id latch.GrantID, as latch.GrantState, by string) (Ended, error) {
	g, err := b.store.Grant(ctx, id)
	if err != nil {
		return Ended{Grant: g}, err
	}
	unlock := b.lock(g.Opening())
	defer unlock()
	if g, err = b.store.Grant(ctx, id); err != nil { // it may have moved while we waited
		return Ended{Grant: g}, err
	}
	now := b.now()
	switch {
	case !g.State.Open():
		return Ended{Grant: g}, latch.Errorf(latch.ECONFLICT, "grant %s has already ended (%s)", g.ID, g.State)
	case as == latch.StateExpired && !b.due(g, now):
		return Ended{Grant: g}, nil // not due yet, or requested (a sweep settles those)
	case !g.State.Ending():
		g.State, g.EndAs, g.NextAttempt = latch.StateRevoking, as, now
		note := "expired"
		if as == latch.StateRevoked {
			note = "revoked by " + by
		}
		if g, err = b.store.UpdateGrant(ctx, g, note); err != nil {
			return Ended{Grant: g}, fmt.Errorf("record revoking: %w", err)
		}
	}
	return b.close(ctx, g, by, now)
}

func (b *Broker) due(g latch.Grant, now time.Time) bool {
	at, ok := g.DueAt()
	return ok && !at.After(now)
}

// close revokes an ending grant's rule, unless another live grant still
// shares it, and records the outcome.
func (b *Broker) close(ctx context.Context, g latch.Grant, by string, now time.Time) (Ended, error) {
	if g.Access == latch.AccessSSM {
		return b.closeSSM(ctx, g, by, now)
	}
	failed := func(err error) (Ended, error) {
		g, err := b.revokeFailed(ctx, g, now, err)
		return Ended{Grant: g}, err
	}
	fw, err := b.firewall(g.Region)
	if err != nil {
		return failed(err)
	}
	if g.RuleID == "" {
		if g.RuleID, err = b.findRule(ctx, fw, g.Opening()); err != nil {
			return failed(err)
		}
	}
	keeper, err := b.keeper(ctx, g, now)
	if err != nil {
		return failed(err)
	}
	note, kept := "rule revoked", keeper
	switch {
	case g.RuleID == "":
		note = "no rule was ever opened"
	case keeper != nil:
		switch err := fw.Tag(ctx, g.RuleID, latch.RuleTags(*keeper)); {
		case latch.ErrorCode(err) == latch.ENOTFOUND:
			kept = nil // gone already: nothing stays open
		case err != nil:
			return failed(fmt.Errorf("hand rule %s to grant %s: %w", g.RuleID, keeper.ID, err))
		}
		note = fmt.Sprintf("%s %s until %s", NoteKept, keeper.ID, latch.FormatExpiry(keeper.ExpiresAt))
		b.backstop(ctx, g.Region, g.GroupID, g.RuleID, keeper.ExpiresAt)
	default:
		b.checkpoint("before-revoke")
		if err := fw.Revoke(ctx, g.GroupID, g.RuleID); err != nil {
			return failed(err)
		}
		b.checkpoint("after-revoke")
		b.unbackstop(ctx, g.Region, g.RuleID)
	}
	g.State, g.EndedAt, g.LastError, g.NextAttempt = g.EndAs, now, "", time.Time{}
	g, err = b.store.UpdateGrant(ctx, g, note)
	if err != nil {
		return Ended{Grant: g}, fmt.Errorf("record %s: %w", note, err)
	}
	b.evidence(ctx, string(g.State), g, "outcome", note, "attempts", g.Attempts+1)
	b.ended(ctx, g, by, note, now)
	return Ended{Grant: g, KeptFor: kept}, nil
}

// NoteKept begins the history note of a grant that ended while another
// grant still held its shared rule: the rule was handed on, not revoked.
const NoteKept = "rule kept for grant"

// keeper returns the latest-expiring other live grant on g's rule, or nil if
// the rule is g's alone.
func (b *Broker) keeper(ctx context.Context, g latch.Grant, now time.Time) (*latch.Grant, error) {
	if g.RuleID == "" {
		return nil, nil
	}
	others, err := b.store.Grants(ctx, latch.GrantFilter{RuleID: g.RuleID, States: []latch.GrantState{latch.StateActive}})
	if err != nil {
		return nil, fmt.Errorf("list grants sharing rule %s: %w", g.RuleID, err)
	}
	var keeper *latch.Grant
	for i, o := range others {
		if o.ID != g.ID && o.ExpiresAt.After(now) && (keeper == nil || o.ExpiresAt.After(keeper.ExpiresAt)) {
			keeper = &others[i]
		}
	}
	return keeper, nil
}

// findRule looks in AWS for the rule of an opening whose grant never
// recorded it. It returns "" if there is none.
func (b *Broker) findRule(ctx context.Context, fw latch.Firewall, o latch.Opening) (latch.RuleID, error) {
	rules, err := fw.Rules(ctx)
	if err != nil {
		return "", fmt.Errorf("list rules: %w", err)
	}
	for _, r := range rules {
		if r.Opening == o {
			return r.ID, nil
		}
	}
	return "", nil
}

// revokeFailed records a failed attempt and when to try again. It never
// gives up: after FailAfter attempts the grant is revoke-failed, which is
// louder, not final.
func (b *Broker) revokeFailed(ctx context.Context, g latch.Grant, now time.Time, cause error) (latch.Grant, error) {
	g.Attempts++
	// Whole seconds, rounded up, like every time the broker compares with.
	g.NextAttempt = now.Add(b.backoff(g.Attempts) + time.Second - 1).Truncate(time.Second)
	g.LastError = errString(cause)
	level, note := "WARN", "revoke failed, will retry"
	if g.Attempts >= b.opts.FailAfter {
		g.State, level, note = latch.StateRevokeFailed, "ERROR", "revoke keeps failing, still retrying"
	}
	attrs := []any{"grant_id", g.ID, "group_id", g.GroupID, "rule_id", g.RuleID, "attempts", g.Attempts,
		"next_attempt", latch.FormatExpiry(g.NextAttempt), "err", cause}
	if level == "ERROR" {
		b.log.ErrorContext(ctx, note, attrs...)
	} else {
		b.log.WarnContext(ctx, note, attrs...)
	}
	b.audit(ctx, grantAudit(latch.AuditRevokeFailed, Actor, g, map[string]string{"attempts": fmt.Sprint(g.Attempts), "error": g.LastError}))
	b.opts.Observer.RevokeFailed()
	if ug, err := b.store.UpdateGrant(ctx, g, note+": "+g.LastError); err != nil {
		b.log.ErrorContext(ctx, "record failed revoke", "grant_id", g.ID, "err", err)
	} else {
		g = ug
	}
	if g.Access == latch.AccessSSM {
		return g, fmt.Errorf("terminate the sessions of %s: %w", g.ID, cause)
	}
	return g, fmt.Errorf("revoke %s in %s: %w", g.RuleID, g.GroupID, cause)
}

// ended records a grant's end in the audit log and the metrics.
func (b *Broker) ended(ctx context.Context, g latch.Grant, by, note string, now time.Time) {
	action, actor, lag := latch.AuditRevoked, by, time.Duration(0)
	if g.State == latch.StateExpired {
		action, actor, lag = latch.AuditExpired, Actor, max(now.Sub(g.ExpiresAt), 0)
	}
	if actor == "" {
		actor = Actor
	}
	b.audit(ctx, grantAudit(action, actor, g, map[string]string{"outcome": note}))
	b.opts.Observer.GrantEnded(g.State, lag)
}
