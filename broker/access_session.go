package broker

import (
	"context"
	"fmt"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/policy"
)

// ExplainSession is Explain for a Session Manager session with doc (to
// port on the instance, for documents that reach one): the target must
// be an instance, and needs no managed security group.
func (a *Access) ExplainSession(ctx context.Context, who latch.Identity, as *latch.Identity, region, target string, doc latch.SSMDocument, port int) ([]policy.Explanation, error) {
	subject, err := a.explainSubject(who, as)
	if err != nil {
		return nil, err
	}
	t, err := a.sessionTarget(ctx, region, target)
	if err != nil {
		return nil, err
	}
	return a.policy.Policy().ExplainSession(subject, t, doc, port), nil
}

// sessionTarget resolves an instance for Session Manager access: by ID or
// Name tag, in a served region, with no managed group needed.
func (a *Access) sessionTarget(ctx context.Context, region, target string) (latch.Target, error) {
	region, inv, err := a.inventory(region)
	if err != nil {
		return latch.Target{}, err
	}
	return SessionTarget(ctx, inv, region, target)
}

// SessionTarget resolves an instance ID or Name tag to the Target of a
// Session Manager request: the instance, with no security group.
func SessionTarget(ctx context.Context, inv latch.Inventory, region, target string) (latch.Target, error) {
	in, err := FindInstance(ctx, inv, target)
	if err != nil {
		return latch.Target{}, err
	}
	return latch.Target{Region: region, InstanceID: in.ID, Tags: in.Tags}, nil
}

// decideSession is decide for Session Manager access: the target is an
// instance (tagged latch:managed=true, with its agent online), and there
// is no source address to check.
func (a *Access) decideSession(ctx context.Context, who latch.Identity, in RequestInput) (decided, error) {
	if in.Asked.IsValid() {
		return decided{}, latch.Invalidf("source", "Session Manager access opens no port to an address; give no source")
	}
	target, err := a.sessionTarget(ctx, in.Region, in.Target)
	if err != nil {
		return decided{}, err
	}
	d, err := a.decideQuery(ctx, a.policy.Policy(), policy.Query{
		Who: who, Target: target, Protocol: in.Protocol, Ports: in.Ports, Document: in.Document, Duration: in.Duration,
		Source: in.Observed, BreakGlass: in.BreakGlass, Reason: in.Reason,
	})
	if err != nil {
		return decided{}, err
	}
	if d.Outcome != policy.Denied {
		// Refused here too (Broker.Grant checks again when it opens), so
		// that a request that could never start a session is not
		// recorded, and waits for no approval.
		if err := a.b.CheckSessionTarget(ctx, target.Region, target.InstanceID); err != nil {
			return decided{}, err
		}
	}
	return decided{target: target, d: d}, nil
}

// StartSession starts a Session Manager session for grant id. Only the
// grant's requester may, not even an admin (a session is personal, and
// AWS records it under the requester's name), while the grant is active
// and the rule that opened it still allows its document and port.
func (a *Access) StartSession(ctx context.Context, who latch.Identity, id latch.GrantID, localPort int) (latch.SessionHandle, error) {
	g, err := a.store.Grant(ctx, id)
	if err != nil {
		return latch.SessionHandle{}, err
	}
	if !a.ownsGrant(who, g) {
		return latch.SessionHandle{}, latch.Errorf(latch.EFORBIDDEN, "only the requester of grant %s may start a session with it", id)
	}
	if g.Access != latch.AccessSSM {
		return latch.SessionHandle{}, latch.Errorf(latch.ECONFLICT, "grant %s opens a security-group rule, not Session Manager sessions; ask with latch session or latch ssh --via ssm", id)
	}
	rs, err := a.store.Requests(ctx, latch.RequestFilter{GrantID: id, Limit: 1})
	if err != nil {
		return latch.SessionHandle{}, err
	}
	if len(rs) == 0 {
		return latch.SessionHandle{}, latch.Errorf(latch.EFORBIDDEN, "grant %s was not opened by a request, so no rule gives it sessions", id)
	}
	// Each session is new access: the policy as it stands now must still
	// give it, to this person, on this instance as its tags now read.
	r := rs[0]
	p := a.policy.Policy()
	if _, ok := p.Rule(r.Rule); !ok {
		return latch.SessionHandle{}, latch.Errorf(latch.EFORBIDDEN, "rule %q, which opened grant %s, is no longer in the policy", r.Rule, id)
	}
	target, err := a.sessionTarget(ctx, g.Region, string(g.Target))
	if err != nil {
		return latch.SessionHandle{}, err
	}
	if !p.AllowsSession(r.Rule, r.Requester, target, g.Document, g.Ports.From) {
		return latch.SessionHandle{}, latch.Errorf(latch.EFORBIDDEN, "rule %q no longer gives %s %s sessions%s on %s", r.Rule, r.Requester, g.Document, portText(g), g.Target)
	}
	h, err := a.b.StartSession(ctx, id, localPort)
	if err != nil {
		return h, err
	}
	a.log.InfoContext(ctx, "session started", "grant_id", id, "session_id", h.SessionID, "requester", who.String(), "document", g.Document)
	return h, nil
}

func portText(g latch.Grant) string {
	if !g.Document.TakesPort() {
		return ""
	}
	return fmt.Sprintf(" to port %d", g.Ports.From)
}
