package broker

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/policy"
)

// This file holds what the portal and the API show beyond requests and
// grants themselves: each method authorizes its caller first, so that a
// page never decides who may see what.

// Askable returns the rules who may ask under, in file order: the targets,
// ports and durations they may request, whatever the target. Anyone may
// ask about themselves, and only about themselves.
func (a *Access) Askable(ctx context.Context, who latch.Identity) []policy.Rule {
	return a.policy.Policy().RulesFor(who)
}

// Preview is what a request would meet, recorded nowhere.
type Preview struct {
	Target   latch.Target
	Source   netip.Prefix
	Decision policy.Decision
}

// Preview decides in by policy exactly as Request would, for who alone,
// and records nothing: which rule decides, and what approval it needs or
// why it is denied. Errors are those of finding the target.
func (a *Access) Preview(ctx context.Context, who latch.Identity, in RequestInput) (Preview, error) {
	x, err := a.decide(ctx, who, in)
	if err != nil {
		return Preview{}, err
	}
	return Preview{Target: x.target, Source: x.source, Decision: x.d}, nil
}

// GrantTimeline is a grant with what led to it and what became of it.
type GrantTimeline struct {
	Grant latch.Grant
	// Request is the request that opened the grant, with its reviews; nil
	// for a grant opened directly (latch open, with AWS credentials).
	Request *latch.Request
	History []latch.GrantEvent // oldest first
}

// GrantTimeline returns a grant's timeline to those GetGrant shows the
// grant to: its requester and admins.
func (a *Access) GrantTimeline(ctx context.Context, who latch.Identity, id latch.GrantID) (GrantTimeline, error) {
	g, err := a.GetGrant(ctx, who, id)
	if err != nil {
		return GrantTimeline{}, err
	}
	t := GrantTimeline{Grant: g}
	rs, err := a.store.Requests(ctx, latch.RequestFilter{GrantID: id, Limit: 1})
	if err != nil {
		return GrantTimeline{}, fmt.Errorf("read grant %s's request: %w", id, err)
	}
	if len(rs) == 1 {
		r, err := a.store.Request(ctx, rs[0].ID) // with its reviews
		if err != nil {
			return GrantTimeline{}, fmt.Errorf("read request %s: %w", rs[0].ID, err)
		}
		t.Request = &r
	}
	if t.History, err = a.store.History(ctx, id); err != nil {
		return GrantTimeline{}, fmt.Errorf("read grant %s's history: %w", id, err)
	}
	return t, nil
}

// AuditQuery selects a page of the audit log. Zero fields match all.
type AuditQuery struct {
	Actor  string            // exactly
	Action latch.AuditAction // exactly
	// Target matches an entry's target, grant ID or request ID, exactly.
	Target       string
	Since, Until time.Time // at or after Since, before Until
	Before       int64     // only entries with a lower Seq: the next page
	Limit        int       // at most this many; 0 means 50
}

// AuditPage is a page of the audit log, newest first.
type AuditPage struct {
	Entries []latch.AuditEntry
	Next    int64 // the Before of the next (older) page; 0 when this is the last
}

// AuditLog returns a page of the audit log to admins; anyone else gets
// EFORBIDDEN and nothing.
func (a *Access) AuditLog(ctx context.Context, who latch.Identity, q AuditQuery) (AuditPage, error) {
	if !a.IsAdmin(who) {
		return AuditPage{}, latch.Errorf(latch.EFORBIDDEN, "only admins may read the audit log")
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	es, err := a.store.AuditEntries(ctx, latch.AuditFilter{Since: q.Since, Actor: q.Actor})
	if err != nil {
		return AuditPage{}, fmt.Errorf("read the audit log: %w", err)
	}
	var p AuditPage
	for i := len(es) - 1; i >= 0; i-- {
		e := es[i]
		switch {
		case q.Before > 0 && e.Seq >= q.Before,
			q.Action != "" && e.Action != q.Action,
			q.Target != "" && e.Target != q.Target && string(e.GrantID) != q.Target && string(e.RequestID) != q.Target,
			!q.Until.IsZero() && !e.At.Before(q.Until):
			continue
		}
		if len(p.Entries) == q.Limit {
			p.Next = p.Entries[len(p.Entries)-1].Seq
			break
		}
		p.Entries = append(p.Entries, e)
	}
	return p, nil
}

// AuditCheck is the audit log's verification, as latch audit verify does
// it (without a head kept elsewhere).
type AuditCheck struct {
	Entries  int
	Head     latch.AuditHead
	Signed   bool // signatures were checked with AccessOptions.AuditPublicKey
	Problems []latch.AuditProblem
}

// VerifyAudit checks the whole audit chain for admins; anyone else gets
// EFORBIDDEN and nothing.
func (a *Access) VerifyAudit(ctx context.Context, who latch.Identity) (AuditCheck, error) {
	if !a.IsAdmin(who) {
		return AuditCheck{}, latch.Errorf(latch.EFORBIDDEN, "only admins may verify the audit log")
	}
	es, head, err := latch.ReadAudit(ctx, a.store)
	if err != nil {
		return AuditCheck{}, err
	}
	return AuditCheck{Entries: len(es), Head: head, Signed: a.opts.AuditPublicKey != nil,
		Problems: latch.VerifyAudit(es, head, a.opts.AuditPublicKey)}, nil
}

// PolicyStatus is where the policy in force came from and how its last
// reload went.
type PolicyStatus struct {
	Path     string
	LoadedAt time.Time
	SHA256   string // of the file as loaded, hex
	Rules    int
	// LastError is the last reload's failure, when the last reload failed
	// (the policy before it stays in force); "" otherwise.
	LastError   string
	LastErrorAt time.Time
}

// PolicyReporter reports the policy's status: the server's holder of the
// policy, which reloads it on SIGHUP.
type PolicyReporter interface {
	PolicyStatus() PolicyStatus
}

// PolicyStatus returns the policy's status to admins, ok false when it is
// not known here; anyone else gets EFORBIDDEN and nothing.
func (a *Access) PolicyStatus(ctx context.Context, who latch.Identity) (_ PolicyStatus, ok bool, _ error) {
	if !a.IsAdmin(who) {
		return PolicyStatus{}, false, latch.Errorf(latch.EFORBIDDEN, "only admins may see the policy's status")
	}
	if a.opts.Policies == nil {
		return PolicyStatus{}, false, nil
	}
	return a.opts.Policies.PolicyStatus(), true, nil
}

// Changed returns a channel closed after the next change made through this
// server's store. It says only that something changed, nothing of what:
// watchers re-read through the methods above, which authorize them.
func (a *Access) Changed() <-chan struct{} { return a.store.Changed() }
