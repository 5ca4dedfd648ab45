package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/latchdev/latch"
)

// Review records who's approval or denial of request id. The last approval
// needed opens the grant at once.
func (a *Access) Review(ctx context.Context, who latch.Identity, id latch.RequestID, approve bool, reason string) (latch.Request, error) {
	r, err := a.store.Request(ctx, id)
	if err != nil {
		return r, err
	}
	if err := a.timeOut(ctx, &r); err != nil {
		return r, err
	}
	if err := r.Review(who, approve, reason, a.now()); err != nil {
		return r, err
	}
	if r, err = a.store.UpdateRequest(ctx, r); err != nil {
		return r, fmt.Errorf("record review: %w", err)
	}
	verdict := "denied"
	if approve {
		verdict = "approved"
	}
	action := latch.AuditDenied
	if approve {
		action = latch.AuditApproved
	}
	a.audit(ctx, requestAudit(action, who.Subject, r, map[string]string{"reason": reason, "state": string(r.State)}))
	a.log.InfoContext(ctx, "reviewed", "request_id", r.ID, "reviewer", who.Subject, "verdict", verdict, "reason", reason, "state", r.State)
	if r.State == latch.RequestApproved {
		return a.open(ctx, r, wideSource(r))
	}
	return r, nil
}

func wideSource(r latch.Request) bool { return r.Source.Bits() != r.Source.Addr().BitLen() }

// Withdraw cancels a pending request. Only its requester may.
func (a *Access) Withdraw(ctx context.Context, who latch.Identity, id latch.RequestID) (latch.Request, error) {
	r, err := a.store.Request(ctx, id)
	if err != nil {
		return r, err
	}
	if !who.Same(r.Requester) {
		return r, latch.Errorf(latch.EFORBIDDEN, "only %s can withdraw request %s", r.Requester, r.ID)
	}
	if err := a.timeOut(ctx, &r); err != nil {
		return r, err
	}
	if !r.State.CanMove(latch.RequestWithdrawn) {
		return r, latch.Errorf(latch.ECONFLICT, "request %s is %s; only pending requests can be withdrawn", r.ID, r.State)
	}
	r.State, r.DecidedAt = latch.RequestWithdrawn, a.now()
	if r, err = a.store.UpdateRequest(ctx, r); err != nil {
		return r, err
	}
	a.audit(ctx, requestAudit(latch.AuditWithdrawn, who.Subject, r, nil))
	return r, nil
}

// GetRequest returns a request to its requester, to anyone who may review
// it, and to admins. Returns ENOTFOUND, or EFORBIDDEN.
func (a *Access) GetRequest(ctx context.Context, who latch.Identity, id latch.RequestID) (latch.Request, error) {
	r, err := a.store.Request(ctx, id)
	if err != nil {
		return r, err
	}
	if !a.canSee(who, r) {
		return latch.Request{}, latch.Errorf(latch.EFORBIDDEN, "you may not see request %s", id)
	}
	err = a.timeOut(ctx, &r)
	return r, err
}

// ListRequests lists the requests who may see: their own, those they may
// review, or (for admins) all. States filter as in latch.RequestFilter.
func (a *Access) ListRequests(ctx context.Context, who latch.Identity, f latch.RequestFilter) ([]latch.Request, error) {
	rs, err := a.store.Requests(ctx, latch.RequestFilter{States: f.States, Requester: f.Requester})
	if err != nil {
		return nil, err
	}
	out := make([]latch.Request, 0, len(rs))
	for _, r := range rs {
		if !a.canSee(who, r) {
			continue
		}
		if err := a.timeOut(ctx, &r); err != nil {
			return nil, err
		}
		if len(f.States) > 0 && !slices.Contains(f.States, r.State) {
			continue // it just timed out
		}
		out = append(out, r)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

func (a *Access) canSee(who latch.Identity, r latch.Request) bool {
	return who.Same(r.Requester) || a.IsAdmin(who) || slices.ContainsFunc(r.ApproverGroups, who.InGroup)
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
		f.Requester = who.Subject
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

// EndGrant revokes a grant now ("I'm done"). Its requester and admins may.
func (a *Access) EndGrant(ctx context.Context, who latch.Identity, id latch.GrantID) (latch.Grant, error) {
	g, err := a.GetGrant(ctx, who, id)
	if err != nil {
		return g, err
	}
	return a.b.Revoke(ctx, id, who.Subject)
}

// ownsGrant: grants record the requester's subject only, so a grant is
// who's when the subject matches. Subjects are unique per issuer; latch
// serves one issuer and one AWS organisation per server.
func (a *Access) ownsGrant(who latch.Identity, g latch.Grant) bool {
	return g.Requester == who.Subject
}
