package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/latchdev/latch"
)

// grantStepTimeout bounds opening a rule once it has been recorded.
const grantStepTimeout = 2 * time.Minute

// Grant opens a rule for req and returns the active grant. Bad input returns
// EINVALID, and a group not tagged latch:managed=true EFORBIDDEN (ENOTFOUND
// if it does not exist); both record nothing and call no AWS action that
// changes anything. If AWS refuses, the grant is recorded as failed and the
// error returned.
//
// Every way in (the CLI's direct grant and ssh, the Lambda handler, the
// server's approved requests) comes through here, so this is where the
// managed check lives.
func (b *Broker) Grant(ctx context.Context, req latch.GrantRequest) (latch.Grant, error) {
	g, _, err := b.grant(ctx, req, "", nil)
	return g, err
}

// GrantOnInstance is Grant for access to instance through req.GroupID, one
// of its managed groups. When that group has no room for another inbound
// rule (EC2's quota per group and address family), the grant opens in the
// next of the instance's groups ([latch.Instance.ManagedGroups], read
// afresh) that is still tagged latch:managed=true, and its history says
// so: "sg-A is full (60 rules); opening in sg-B". When every one is full
// it fails as Grant does, naming the groups, the quota and what to do.
// allow, if not nil, must accept a group before the grant moves to it
// (the policy rule that decided the request must cover the instance
// through it); a group it refuses is passed over and named in the error.
func (b *Broker) GrantOnInstance(ctx context.Context, req latch.GrantRequest, instance latch.InstanceID, allow func(latch.GroupID) error) (latch.Grant, error) {
	g, _, err := b.grant(ctx, req, instance, allow)
	return g, err
}

// grant is Grant, or GrantOnInstance when instance is set. placement says
// why the grant opened in another group than req's, as its history does:
// "sg-A is full (60 rules); opened in sg-B"; it is "" when it opened in
// req's group.
func (b *Broker) grant(ctx context.Context, req latch.GrantRequest, instance latch.InstanceID, allow func(latch.GroupID) error) (_ latch.Grant, placement string, _ error) {
	if err := req.Validate(b.opts.MaxDuration); err != nil {
		return latch.Grant{}, "", err
	}
	if req.Access == latch.AccessSSM {
		g, err := b.grantSSM(ctx, req)
		return g, "", err
	}
	fw, err := b.firewall(req.Region)
	if err != nil {
		return latch.Grant{}, "", err
	}
	if err := b.checkManaged(ctx, req.Region, req.GroupID); err != nil {
		return latch.Grant{}, "", err
	}
	now := b.now()
	g, err := b.store.CreateGrant(ctx, latch.Grant{
		ID: latch.NewGrantID(), State: latch.StateRequested,
		Region: req.Region, GroupID: req.GroupID, Protocol: req.Protocol, Ports: req.Ports, Source: req.Source,
		Requester: req.Requester, Owner: req.Owner, Reason: req.Reason, RequestID: req.RequestID, CreatedAt: now, ExpiresAt: now.Add(req.Duration),
	}, "requested: "+req.Reason)
	if err != nil {
		return latch.Grant{}, "", fmt.Errorf("record grant: %w", err)
	}

	// From here the step runs to its end even if the caller gives up (a
	// Ctrl-C): stopping between authorize and the store write would leave a
	// rule the store does not know, when the caller could just revoke it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grantStepTimeout)
	defer cancel()
	p, err := b.place(ctx, fw, &g, instance, allow)
	defer p.unlock()
	if err != nil {
		g.State, g.EndedAt, g.LastError = latch.StateFailed, now, errString(err)
		if _, uerr := b.store.UpdateGrant(ctx, g, "authorize failed"); uerr != nil {
			b.log.ErrorContext(ctx, "record failed grant", "grant_id", g.ID, "err", uerr)
		}
		b.log.WarnContext(ctx, "grant failed", "grant_id", g.ID, "group_id", g.GroupID, "err", err)
		b.audit(ctx, grantAudit(latch.AuditGrantFailed, g.Requester, g, map[string]string{"reason": g.Reason, "error": g.LastError}))
		b.opts.Observer.GrantEnded(latch.StateFailed, 0)
		return g, "", fmt.Errorf("open %s to %s on %s: %w", g.GroupID, g.Source, g.Ports, err)
	}
	b.checkpoint("after-authorize")
	g.State, g.RuleID = latch.StateActive, p.rule.ID
	note := "rule " + string(p.rule.ID)
	if p.note != "" {
		note = p.note + "; " + note
	}
	g, err = b.store.UpdateGrant(ctx, g, note)
	if err != nil {
		// The rule is tagged with its expiry, so a sweep will revoke it even
		// though the store does not know it is active.
		return g, "", fmt.Errorf("record rule %s: %w", p.rule.ID, err)
	}
	if p.moved {
		b.backstop(ctx, g.Region, g.GroupID, g.RuleID, p.until)
	}
	b.evidence(ctx, "granted", g, "reason", g.Reason)
	b.audit(ctx, grantAudit(latch.AuditGranted, g.Requester, g, map[string]string{"reason": g.Reason}))
	b.opts.Observer.GrantOpened()
	return g, p.note, nil
}

// checkManaged looks group up and refuses it unless it is tagged
// latch:managed=true. It reads the group afresh for every grant, so a tag
// removed after a request was made (or approved) still stops the grant.
func (b *Broker) checkManaged(ctx context.Context, region string, group latch.GroupID) error {
	groups, ok := b.groups[region]
	if !ok {
		return latch.Errorf(latch.EINTERNAL, "no security group lookup for region %s; latch opens only groups it can see are tagged %s=true", region, latch.TagManaged)
	}
	g, err := groups.Group(ctx, group)
	if err != nil {
		return err
	}
	return checkManaged(g)
}

// checkManaged is the one refusal of a group latch may not open, whichever
// path found it.
func checkManaged(g latch.Group) error {
	if !g.Managed() {
		return latch.Errorf(latch.EFORBIDDEN, "security group %s is not tagged %s=true; latch never opens it", g.ID, latch.TagManaged)
	}
	return nil
}

// open opens g's rule. A grant joining a rule the store knows (another
// active grant for the same opening holds it) learns it from the store and
// makes no duplicate Authorize: if the rule's expiry tag already lasts at
// least as long, it calls nothing in AWS; if not, it makes one Tag call. A
// rule the store does not know is authorized, or, when an identical one is
// already there, adopted if latch made it. Either way the tags end up
// carrying the latest expiry of the grants sharing the rule. It returns
// the rule and the expiry it now carries; moved is false when neither
// changed.
func (b *Broker) open(ctx context.Context, fw latch.Firewall, g latch.Grant) (rule latch.Rule, until time.Time, moved bool, err error) {
	owner, known, err := b.sharers(ctx, g)
	if err != nil {
		return latch.Rule{}, time.Time{}, false, err
	}
	tags := latch.RuleTags(owner)
	if known.id != "" {
		if !owner.ExpiresAt.After(known.until) {
			return latch.Rule{ID: known.id, Opening: g.Opening()}, known.until, false, nil
		}
		switch err := fw.Tag(ctx, known.id, tags); {
		case err == nil:
			return latch.Rule{ID: known.id, Opening: g.Opening()}, owner.ExpiresAt, true, nil
		case latch.ErrorCode(err) != latch.ENOTFOUND:
			return latch.Rule{}, time.Time{}, false, err
		}
		// Deleted behind latch's back: open it again.
		b.log.WarnContext(ctx, "shared rule is gone from AWS; authorizing it again", "rule_id", known.id, "grant_id", g.ID, "group_id", g.GroupID)
	}
	for range 3 {
		rule, created, err := fw.Authorize(ctx, g.Opening(), tags)
		if err != nil || created {
			return rule, owner.ExpiresAt, true, err
		}
		at, tagged, err := rule.ExpiresAt()
		if !tagged {
			return latch.Rule{}, time.Time{}, false, latch.Errorf(latch.ECONFLICT,
				"an identical rule %s that latch did not make is already in %s; latch will not take it over (remove it, or leave access to it)", rule.ID, g.GroupID)
		}
		if err == nil && !at.Before(owner.ExpiresAt) {
			return rule, at, true, nil // it already lasts at least as long
		}
		err = fw.Tag(ctx, rule.ID, tags)
		if latch.ErrorCode(err) == latch.ENOTFOUND {
			continue // revoked between authorize and tag: open it again
		}
		return rule, owner.ExpiresAt, true, err
	}
	return latch.Rule{}, time.Time{}, false, latch.Errorf(latch.EUNAVAILABLE, "the rule for %s kept disappearing while it was being opened", g.GroupID)
}

// knownRule is a rule the store knows live grants hold, and the latest of
// their expiries, which its tags carry.
type knownRule struct {
	id    latch.RuleID
	until time.Time
}

// sharers returns whichever of g and the other open grants for the same
// opening expires last (the grant the rule's tags should describe), and
// the rule that active grants for it hold, if any. Only grants not yet
// past their expiry count as holding it: an expired one's rule may be
// revoked at any moment. If they hold several (one deleted behind latch's
// back and opened again), the one lasting longest is the rule.
func (b *Broker) sharers(ctx context.Context, g latch.Grant) (latch.Grant, knownRule, error) {
	o := g.Opening()
	others, err := b.store.Grants(ctx, latch.GrantFilter{Opening: &o, States: []latch.GrantState{latch.StateRequested, latch.StateActive}})
	if err != nil {
		return latch.Grant{}, knownRule{}, fmt.Errorf("list grants sharing the rule: %w", err)
	}
	latest, now := g, b.now()
	var known knownRule // the latest-expiring holder's rule; of several as late, the greatest ID
	for _, o := range others {
		if o.ExpiresAt.After(latest.ExpiresAt) {
			latest = o
		}
		if o.State != latch.StateActive || o.RuleID == "" || !o.ExpiresAt.After(now) {
			continue
		}
		if o.ExpiresAt.After(known.until) || (o.ExpiresAt.Equal(known.until) && o.RuleID > known.id) {
			known = knownRule{o.RuleID, o.ExpiresAt}
		}
	}
	return latest, known, nil
}

// latestSharer returns whichever of g and the other open grants for the
// same opening expires last: the grant the rule's tags should describe.
func (b *Broker) latestSharer(ctx context.Context, g latch.Grant) (latch.Grant, error) {
	latest, _, err := b.sharers(ctx, g)
	return latest, err
}
