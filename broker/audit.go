package broker

import (
	"context"
	"time"

	"github.com/latchdev/latch"
)

// Observer is told what the broker does, for metrics. Every method must be
// cheap and must not fail.
type Observer interface {
	GrantOpened()
	// GrantEnded reports a grant's end: outcome is StateExpired,
	// StateRevoked or StateFailed; lag is expiry to revocation for expired
	// grants.
	GrantEnded(outcome latch.GrantState, lag time.Duration)
	RevokeFailed()
	SweepDone(region string, d time.Duration, rulesFound, revoked int, err error)
}

type nopObserver struct{}

func (nopObserver) GrantOpened()                                     {}
func (nopObserver) GrantEnded(latch.GrantState, time.Duration)       {}
func (nopObserver) RevokeFailed()                                    {}
func (nopObserver) SweepDone(string, time.Duration, int, int, error) {}

// Actor is how the audit log names latch itself (the revoker, sweeps).
const Actor = "latch"

// audit appends e to the audit log. A failure is logged at ERROR and does
// not stop the operation: evidence must never block a revocation.
func (b *Broker) audit(ctx context.Context, e latch.AuditEntry) {
	appendAudit(ctx, b.store, b.opts.Sign, b.log, b.clock, e)
}

func appendAudit(ctx context.Context, store latch.Store, sign func(string) string, log interface {
	ErrorContext(context.Context, string, ...any)
}, clock latch.Clock, e latch.AuditEntry) {
	if e.At.IsZero() {
		e.At = clock.Now().UTC()
	}
	if _, err := store.AppendAudit(context.WithoutCancel(ctx), e, sign); err != nil {
		log.ErrorContext(ctx, "append to the audit log", "action", e.Action, "grant_id", e.GrantID, "request_id", e.RequestID, "err", err)
	}
}

// grantAudit is the audit entry for something that happened to g.
func grantAudit(action latch.AuditAction, actor string, g latch.Grant, extra map[string]string) latch.AuditEntry {
	d := map[string]string{
		"region": g.Region, "rule_id": string(g.RuleID), "source": g.Source.String(),
		"protocol": string(g.Protocol), "ports": g.Ports.String(), "requester": g.Requester,
		"expires_at": latch.FormatExpiry(g.ExpiresAt),
	}
	for k, v := range extra {
		d[k] = v
	}
	return latch.AuditEntry{Actor: actor, Action: action, Target: string(g.GroupID), GrantID: g.ID, Details: d}
}
