package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/latchdev/latch"
)

// Review records who's approval or denial of request id. The last approval
// needed opens the grant at once. Someone who may not review the request
// learns nothing of it, whatever its state, and nothing is written; a
// refused review returns no request. When the review was recorded but the
// grant failed to open, it returns the request (failed) and the error.
func (a *Access) Review(ctx context.Context, who latch.Identity, id latch.RequestID, approve bool, reason string) (latch.Request, error) {
	r, err := a.store.Request(ctx, id)
	if err != nil {
		return latch.Request{}, err
	}
	if !a.mayReview(who, r) {
		return latch.Request{}, latch.Errorf(latch.EFORBIDDEN, "you may not review request %s", id)
	}
	if err := a.timeOut(ctx, &r); err != nil {
		return latch.Request{}, err
	}
	if err := r.Review(who, approve, reason, a.now(), a.people()); err != nil {
		return latch.Request{}, err
	}
	if r, err = a.store.UpdateRequest(ctx, r); err != nil {
		return latch.Request{}, fmt.Errorf("record review: %w", err)
	}
	verdict, action := "denied", latch.AuditDenied
	if approve {
		verdict, action = "approved", latch.AuditApproved
	}
	a.audit(ctx, requestAudit(action, who.String(), r, map[string]string{"reason": reason, "state": string(r.State), "reviewer_key": who.Key()}))
	a.log.InfoContext(ctx, "reviewed", "request_id", r.ID, "reviewer", who.String(), "verdict", verdict, "reason", reason, "state", r.State)
	if r.State == latch.RequestApproved {
		return a.open(ctx, r, wideSource(r))
	}
	return r, nil
}

// mayReview reports whether who is among r's approvers, or is its
// requester (who is then told they cannot review their own request).
func (a *Access) mayReview(who latch.Identity, r latch.Request) bool {
	return a.same(who, r.Requester) || r.Approvers.Match(who, a.personOf(who))
}

func wideSource(r latch.Request) bool { return r.Source.Bits() != r.Source.Addr().BitLen() }

// Withdraw cancels a pending request. Only its requester may.
func (a *Access) Withdraw(ctx context.Context, who latch.Identity, id latch.RequestID) (latch.Request, error) {
	r, err := a.store.Request(ctx, id)
	if err != nil {
		return latch.Request{}, err
	}
	if !a.same(who, r.Requester) {
		return latch.Request{}, latch.Errorf(latch.EFORBIDDEN, "only its requester can withdraw request %s", r.ID)
	}
	if err := a.timeOut(ctx, &r); err != nil {
		return latch.Request{}, err
	}
	if !r.State.CanMove(latch.RequestWithdrawn) {
		return latch.Request{}, latch.Errorf(latch.ECONFLICT, "request %s is %s; only pending requests can be withdrawn", r.ID, r.State)
	}
	r.State, r.DecidedAt = latch.RequestWithdrawn, a.now()
	if r, err = a.store.UpdateRequest(ctx, r); err != nil {
		return latch.Request{}, err
	}
	a.audit(ctx, requestAudit(latch.AuditWithdrawn, who.String(), r, nil))
	return r, nil
}

// GetRequest returns a request to its requester, to anyone who may review
// it, and to admins. Returns ENOTFOUND, or EFORBIDDEN.
func (a *Access) GetRequest(ctx context.Context, who latch.Identity, id latch.RequestID) (latch.Request, error) {
	r, err := a.store.Request(ctx, id)
	if err != nil {
		return latch.Request{}, err
	}
	if !a.canSee(who, r) {
		return latch.Request{}, latch.Errorf(latch.EFORBIDDEN, "you may not see request %s", id)
	}
	if err := a.timeOut(ctx, &r); err != nil {
		return latch.Request{}, err
	}
	return r, nil
}

// DefaultPage is how many requests a list returns when it names no limit.
const DefaultPage = 100

// ListRequests lists, newest first, the requests who may see: their own,
// those they may review, or (for admins) all. The store applies who may
// see what, the states and the page, so a list costs what it returns,
// not the whole history. Filter fields: States, Requesters (only the
// caller's own when set: "mine"), Before and Limit (0 means DefaultPage).
func (a *Access) ListRequests(ctx context.Context, who latch.Identity, f latch.RequestFilter) ([]latch.Request, error) {
	q := latch.RequestFilter{States: f.States, Before: f.Before, Limit: f.Limit}
	if q.Limit <= 0 {
		q.Limit = DefaultPage
	}
	if len(f.Requesters) > 0 {
		q.Requesters = a.ownerKeys(who)
	}
	if !a.IsAdmin(who) {
		q.VisibleTo = a.viewer(who)
	}
	rs, err := a.store.Requests(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]latch.Request, 0, len(rs))
	for _, r := range rs {
		if !a.canSee(who, r) { // the store said so; this says it again, in one place with GetRequest
			continue
		}
		if err := a.timeOut(ctx, &r); err != nil {
			return nil, err
		}
		if len(f.States) > 0 && !slices.Contains(f.States, r.State) {
			continue // it just timed out
		}
		out = append(out, r)
	}
	return out, nil
}

// viewer is who as a store matches requests they may see.
func (a *Access) viewer(who latch.Identity) *latch.Viewer {
	v := &latch.Viewer{Keys: a.ownerKeys(who), Groups: who.Groups, Users: latch.UserNames(who, a.personOf(who))}
	if who.Kind == latch.KindIAM {
		v.Principal = func(pattern string) bool { return latch.Selector{AWSPrincipals: []string{pattern}}.Match(who, "") }
	}
	return v
}

func (a *Access) canSee(who latch.Identity, r latch.Request) bool {
	return a.mayReview(who, r) || a.IsAdmin(who)
}

// timeOut moves a pending request past its pending time to timed-out, so
// every reader sees the same state whether or not a sweep has run.
func (a *Access) timeOut(ctx context.Context, r *latch.Request) error {
	if r.State != latch.RequestPending || a.now().Before(r.PendingUntil) {
		return nil
	}
	r.State, r.DecidedAt = latch.RequestTimedOut, r.PendingUntil
	ur, err := a.store.UpdateRequest(ctx, *r)
	if latch.ErrorCode(err) == latch.ECONFLICT {
		if ur, err = a.store.Request(ctx, r.ID); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("record timeout of %s: %w", r.ID, err)
	} else {
		a.audit(ctx, requestAudit(latch.AuditTimedOut, Actor, ur, nil))
	}
	*r = ur
	return nil
}

// TimeOutPending times out every pending request past its pending time.
// The server runs it with each sweep.
func (a *Access) TimeOutPending(ctx context.Context) error {
	rs, err := a.store.Requests(ctx, latch.RequestFilter{States: []latch.RequestState{latch.RequestPending}})
	if err != nil {
		return err
	}
	var errs []error
	for i := range rs {
		errs = append(errs, a.timeOut(ctx, &rs[i]))
	}
	return errors.Join(errs...)
}

// GetGrant returns a grant to its requester and to admins.
func (a *Access) GetGrant(ctx context.Context, who latch.Identity, id latch.GrantID) (latch.Grant, error) {
	g, err := a.store.Grant(ctx, id)
	if err != nil {
		return g, err
	}
	if !a.ownsGrant(who, g) && !a.IsAdmin(who) {
		return latch.Grant{}, latch.Errorf(latch.EFORBIDDEN, "you may not see grant %s", id)
	}
	return g, nil
}

// ListGrants lists who's grants, or everyone's for admins asking for all.
func (a *Access) ListGrants(ctx context.Context, who latch.Identity, all bool, f latch.GrantFilter) ([]latch.Grant, error) {
	if all && !a.IsAdmin(who) {
		return nil, latch.Errorf(latch.EFORBIDDEN, "only admins may list everyone's grants")
	}
	if !all {
		f.Owners = a.ownerKeys(who)
	}
	gs, err := a.store.Grants(ctx, f)
	if err != nil {
		return nil, err
	}
	if all {
		return gs, nil
	}
	return slices.DeleteFunc(gs, func(g latch.Grant) bool { return !a.ownsGrant(who, g) }), nil
}

// RuleKept says that an ended grant's rule was shared, so it was not
// revoked: it stays open for another live grant until Until.
type RuleKept struct {
	RuleID latch.RuleID
	// GrantID is the grant the rule stays open for, or "" when the caller
	// may not see that grant (it is someone else's).
	GrantID latch.GrantID
	Until   time.Time
}

// EndGrant revokes a grant now ("I'm done"). Its requester and admins may.
// When the grant's rule stays open for another grant, kept says until when,
// and names that grant only if who may see it.
func (a *Access) EndGrant(ctx context.Context, who latch.Identity, id latch.GrantID) (_ latch.Grant, kept *RuleKept, _ error) {
	g, err := a.GetGrant(ctx, who, id)
	if err != nil {
		return g, nil, err
	}
	e, err := a.b.Revoke(ctx, id, who.String())
	if err != nil || e.KeptFor == nil {
		return e.Grant, nil, err
	}
	kept = &RuleKept{RuleID: e.Grant.RuleID, Until: e.KeptFor.ExpiresAt}
	if a.ownsGrant(who, *e.KeptFor) || a.IsAdmin(who) {
		kept.GrantID = e.KeptFor.ID
	}
	return e.Grant, kept, nil
}

// ownsGrant reports whether g is who's: its owner is who's key, or the key
// of an identity linked to who's person. A grant no identity asked for
// (one opened directly, with AWS credentials) is nobody's.
func (a *Access) ownsGrant(who latch.Identity, g latch.Grant) bool {
	return g.Owner != "" && slices.Contains(a.ownerKeys(who), g.Owner)
}
