package broker

import (
	"context"
	"log/slog"
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

// Backstop is a second revocation path that needs no latch process: a
// schedule in AWS that revokes a rule at its expiry.
type Backstop interface {
	// Ensure makes rule's schedule revoke it at at, creating or moving it.
	Ensure(ctx context.Context, region string, group latch.GroupID, rule latch.RuleID, at time.Time) error
	// Cancel deletes rule's schedule; one already gone is not an error.
	Cancel(ctx context.Context, region string, rule latch.RuleID) error
}

// SessionBackstop is a Backstop that also ends Session Manager sessions:
// a schedule in AWS that terminates a session at its grant's expiry. The
// broker asks Options.Backstop for it by type assertion.
type SessionBackstop interface {
	// EnsureSession makes session id's schedule terminate it at at.
	EnsureSession(ctx context.Context, region string, id latch.SSMSessionID, at time.Time) error
	// CancelSession deletes session id's schedule; one already gone is
	// not an error.
	CancelSession(ctx context.Context, region string, id latch.SSMSessionID) error
}

// backstopSession schedules session id's termination at at. A failure is
// logged at ERROR and does not fail the session: the revoker and the
// sweeps still end it.
func (b *Broker) backstopSession(ctx context.Context, region string, id latch.SSMSessionID, at time.Time) {
	sb, ok := b.opts.Backstop.(SessionBackstop)
	if !ok {
		return
	}
	if err := sb.EnsureSession(ctx, region, id, at); err != nil {
		b.log.ErrorContext(ctx, "backstop schedule not set; the revoker and sweeps still end the session", "session_id", id, "err", err)
	}
}

// unbackstopSession deletes session id's schedule once latch has
// terminated the session.
func (b *Broker) unbackstopSession(ctx context.Context, region string, id latch.SSMSessionID) {
	sb, ok := b.opts.Backstop.(SessionBackstop)
	if !ok {
		return
	}
	if err := sb.CancelSession(ctx, region, id); err != nil {
		b.log.WarnContext(ctx, "delete backstop schedule; it will find the session ended, which is harmless", "session_id", id, "err", err)
	}
}

// backstop moves rule's schedule to at. A failure is logged at ERROR and
// does not fail the grant: the revoker and the sweep still revoke it.
func (b *Broker) backstop(ctx context.Context, region string, group latch.GroupID, rule latch.RuleID, at time.Time) {
	if b.opts.Backstop == nil || rule == "" {
		return
	}
	if err := b.opts.Backstop.Ensure(ctx, region, group, rule, at); err != nil {
		b.log.ErrorContext(ctx, "backstop schedule not set; the revoker and sweeps still revoke", "rule_id", rule, "err", err)
	}
}

// unbackstop deletes rule's schedule once latch has revoked the rule.
func (b *Broker) unbackstop(ctx context.Context, region string, rule latch.RuleID) {
	if b.opts.Backstop == nil || rule == "" {
		return
	}
	if err := b.opts.Backstop.Cancel(ctx, region, rule); err != nil {
		b.log.WarnContext(ctx, "delete backstop schedule; it will find the rule gone, which is harmless", "rule_id", rule, "err", err)
	}
}

// Actor is how the audit log names latch itself (the revoker, sweeps).
const Actor = "latch"

// audit appends e to the audit log. A failure is logged at ERROR and does
// not stop the operation: evidence must never block a revocation.
func (b *Broker) audit(ctx context.Context, e latch.AuditEntry) {
	appendAudit(ctx, b.store, b.opts.Sign, b.log, b.clock, e)
}

func appendAudit(ctx context.Context, store latch.Store, sign func(string) string, log *slog.Logger, clock latch.Clock, e latch.AuditEntry) {
	if e.At.IsZero() {
		e.At = clock.Now().UTC()
	}
	appended, err := store.AppendAudit(context.WithoutCancel(ctx), e, sign)
	if err != nil {
		log.ErrorContext(ctx, "append to the audit log", "action", e.Action, "grant_id", e.GrantID, "request_id", e.RequestID, "err", err)
		return
	}
	LogAuditHead(ctx, log, appended, sign)
}

// MsgAuditAppended is the message of the log line written after each
// append, which carries the log's new head under "audit_head".
const MsgAuditAppended = "audit entry appended"

// LogAuditHead writes the line that says e was appended, with the head it
// moved the log to, signed as the store signed it (ed25519 signatures are
// deterministic, so signing again gives the same one): {"msg":"audit entry
// appended", …, "audit_head":{"seq":…,"hash":…,"signature":…}}. Kept in a
// log store, the last such line is a head whoever can write the database
// cannot move back, for 'latch audit verify --head'.
func LogAuditHead(ctx context.Context, log *slog.Logger, e latch.AuditEntry, sign func(string) string) {
	log.InfoContext(ctx, MsgAuditAppended, "action", e.Action, "grant_id", e.GrantID, "request_id", e.RequestID,
		"audit_head", latch.NewAuditHead(e.Seq, e.Hash, sign))
}

// grantAudit is the audit entry for something that happened to g.
func grantAudit(action latch.AuditAction, actor string, g latch.Grant, extra map[string]string) latch.AuditEntry {
	d := map[string]string{
		"region": g.Region, "rule_id": string(g.RuleID), "source": g.Source.String(),
		"protocol": string(g.Protocol), "ports": g.Ports.String(), "requester": g.Requester,
		"expires_at": latch.FormatExpiry(g.ExpiresAt),
	}
	target := string(g.GroupID)
	if g.Access == latch.AccessSSM {
		target = string(g.Target)
		d["access"], d["document"], d["instance_id"] = string(latch.AccessSSM), string(g.Document), string(g.Target)
		delete(d, "rule_id")
		delete(d, "source")
	}
	for k, v := range extra {
		d[k] = v
	}
	return latch.AuditEntry{Actor: actor, Action: action, Target: target, GrantID: g.ID, Details: d}
}
