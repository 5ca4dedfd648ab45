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
		var stays bool
		if note, stays, err = b.handOver(ctx, fw, g, *keeper); err != nil {
			return failed(err)
		}
		if !stays {
			kept = nil // gone already: nothing stays open
		}
	default:
		b.checkpoint("before-revoke")
		if err := fw.Revoke(ctx, g.GroupID, g.RuleID); err != nil {
			return failed(err)
		}
		b.checkpoint("after-revoke")
		b.unbackstop(ctx, g.Region, g.RuleID)
	}
	written, err := b.store.UpdateGrants(ctx, []latch.GrantChange{b.endChange(g, by, note, now)}, b.opts.Sign)
	if err != nil {
		return Ended{Grant: g}, fmt.Errorf("record %s: %w", note, err)
	}
	b.recordEnded(ctx, written[0], now)
	return Ended{Grant: written[0].Grant, KeptFor: kept}, nil
}

// endChange is the write that records an ending grant's end, as state
// g.EndAs, with its audit entry: one transaction, after the effect.
func (b *Broker) endChange(g latch.Grant, by, note string, now time.Time) latch.GrantChange {
	g.State, g.EndedAt, g.LastError, g.NextAttempt = g.EndAs, now, "", time.Time{}
	e := b.endedAudit(g, by, note)
	return latch.GrantChange{Grant: g, Note: note, Audit: &e}
}

// recordEnded tells the evidence log, the audit log's head line and the
// metrics about a grant's end that c recorded.
func (b *Broker) recordEnded(ctx context.Context, c latch.GrantChange, now time.Time) {
	g := c.Grant
	b.evidence(ctx, string(g.State), g, "outcome", c.Note, "attempts", g.Attempts+1)
	if c.Audit != nil {
		LogAuditHead(ctx, b.log, *c.Audit, b.opts.Sign)
	}
	b.opts.Observer.GrantEnded(g.State, endLag(g, now))
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
	keepers, err := b.keepers(ctx, []latch.Grant{g}, now)
	if k, ok := keepers[g.RuleID]; ok {
		return &k, nil
	}
	return nil, err
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

// revokeFailed records a failed attempt and when to try again, with its
// audit entry in the same transaction.
func (b *Broker) revokeFailed(ctx context.Context, g latch.Grant, now time.Time, cause error) (latch.Grant, error) {
	c := b.failedChange(ctx, g, now, cause)
	if written, err := b.store.UpdateGrants(ctx, []latch.GrantChange{c}, b.opts.Sign); err != nil {
		b.log.ErrorContext(ctx, "record failed revoke", "grant_id", g.ID, "err", err)
		g = c.Grant
	} else {
		g = written[0].Grant
		LogAuditHead(ctx, b.log, *written[0].Audit, b.opts.Sign)
	}
	return g, failedErr(g, cause)
}

// failedChange logs a failed attempt to revoke g and returns the write that
// records it and when to try again. It never gives up: after FailAfter
// attempts the grant is revoke-failed, which is louder, not final.
func (b *Broker) failedChange(ctx context.Context, g latch.Grant, now time.Time, cause error) latch.GrantChange {
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
	b.opts.Observer.RevokeFailed()
	e := grantAudit(latch.AuditRevokeFailed, Actor, g, map[string]string{"attempts": fmt.Sprint(g.Attempts), "error": g.LastError})
	e.At = b.clock.Now().UTC()
	return latch.GrantChange{Grant: g, Note: note + ": " + g.LastError, Audit: &e}
}

// failedErr is the error a failed revoke of g returns.
func failedErr(g latch.Grant, cause error) error {
	if g.Access == latch.AccessSSM {
		return fmt.Errorf("terminate the sessions of %s: %w", g.ID, cause)
	}
	return fmt.Errorf("revoke %s in %s: %w", g.RuleID, g.GroupID, cause)
}

// ended records a grant's end in the audit log and the metrics.
func (b *Broker) ended(ctx context.Context, g latch.Grant, by, note string, now time.Time) {
	b.audit(ctx, b.endedAudit(g, by, note))
	b.opts.Observer.GrantEnded(g.State, endLag(g, now))
}

// endedAudit is the audit entry for g's end, as g.State, by by ("" for
// latch itself).
func (b *Broker) endedAudit(g latch.Grant, by, note string) latch.AuditEntry {
	action, actor := latch.AuditRevoked, by
	if g.State == latch.StateExpired {
		action, actor = latch.AuditExpired, Actor
	}
	if actor == "" {
		actor = Actor
	}
	e := grantAudit(action, actor, g, map[string]string{"outcome": note})
	e.At = b.clock.Now().UTC()
	return e
}

// endLag is expiry to revocation for an expired grant, and 0 otherwise.
func endLag(g latch.Grant, now time.Time) time.Duration {
	if g.State != latch.StateExpired {
		return 0
	}
	return max(now.Sub(g.ExpiresAt), 0)
}
