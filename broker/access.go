package broker

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/policy"
)

// PolicySource returns the policy in force. The server swaps it on SIGHUP;
// each decision reads it once.
type PolicySource interface {
	Policy() *policy.Policy
}

// AccessOptions are the access service's settings.
type AccessOptions struct {
	Clock         latch.Clock  // nil means latch.SystemClock
	Logger        *slog.Logger // nil discards logs
	DefaultRegion string       // for requests that name none
	// AdminGroups and AdminUsers name the administrators, who may see and
	// end every grant and request and explain policy for anyone: members
	// of the groups, and the users as a policy's users entries name them
	// (subject, verified email, Identity Center user or linked person).
	AdminGroups, AdminUsers []string
	// OIDCIssuer is the issuer whose logins the server accepts, for the
	// OIDC identities a policy's people section links by subject alone.
	OIDCIssuer string
	// SSHCA signs certificates for rules with ssh method certificate; nil
	// means this server issues none.
	SSHCA latch.SSHCertifier
	// KeyPushers push keys with EC2 Instance Connect, by region, for rules
	// with ssh method instance-connect.
	KeyPushers map[string]latch.SSHKeyPusher
	// HostKeys read instances' SSH host keys, by region, so an SSH login
	// can pin them; a region without one gives none.
	HostKeys map[string]latch.HostKeySource
	// AuditPublicKey checks the audit log's signatures when admins verify
	// it; nil checks the chain alone.
	AuditPublicKey ed25519.PublicKey
	// Policies reports the policy's loads and reloads to admins; nil means
	// the status is not known here.
	Policies PolicyReporter
}

// Access is the request-and-approval service: it decides requests by
// policy, collects reviews and opens grants through the Broker. Every
// method takes the caller's identity and authorizes it first.
type Access struct {
	b      *Broker
	store  latch.Store
	policy PolicySource
	inv    map[string]latch.Inventory
	clock  latch.Clock
	log    *slog.Logger
	opts   AccessOptions
}

// NewAccess returns the access service. inventories maps region to
// inventory; the broker must have a firewall for each of those regions.
func NewAccess(b *Broker, store latch.Store, ps PolicySource, inventories map[string]latch.Inventory, opts AccessOptions) *Access {
	if opts.Clock == nil {
		opts.Clock = latch.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Access{b: b, store: store, policy: ps, inv: inventories, clock: opts.Clock, log: opts.Logger, opts: opts}
}

// IsAdmin reports whether who is an administrator: in an admin group, or
// an admin user. A group name is never compared with a user's name.
func (a *Access) IsAdmin(who latch.Identity) bool {
	person := a.personOf(who)
	return slices.ContainsFunc(a.opts.AdminGroups, who.InGroup) ||
		slices.ContainsFunc(a.opts.AdminUsers, func(u string) bool { return latch.UserIs(who, person, u) })
}

// people links identities to persons: the policy's people section.
func (a *Access) people() latch.People { return a.policy.Policy() }

func (a *Access) personOf(who latch.Identity) string {
	name, _ := a.people().Person(who)
	return name
}

// same is the one "same person" comparison: see latch.SamePerson.
func (a *Access) same(x, y latch.Identity) bool { return latch.SamePerson(a.people(), x, y) }

// ownerKeys are the identity keys whose grants and requests are who's:
// who's own, and those of every identity linked to their person.
func (a *Access) ownerKeys(who latch.Identity) []string {
	keys := []string{who.Key()}
	_, linked := a.people().Person(who)
	for _, l := range linked {
		if l.Kind == latch.KindOIDC && l.Issuer == "" {
			l.Issuer = a.opts.OIDCIssuer
		}
		if k := l.Key(); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// RequestInput is what a requester asks for.
type RequestInput struct {
	Target     string // an instance ID (i-…) or a managed security group ID (sg-…)
	Region     string // "" means the default region
	Protocol   latch.Protocol
	Ports      latch.PortRange
	Duration   time.Duration // 0 means the rule's default
	Reason     string
	Observed   netip.Prefix // the address the server saw the request come from
	Asked      netip.Prefix // an address the requester names instead; zero for none
	BreakGlass bool
	// Document, when set, asks for Session Manager access with it: no
	// port is opened, Ports is the port on the instance (tcp; zero for a
	// shell), and Asked must be zero.
	Document latch.SSMDocument
}

// resolve turns a target string into a Target in a served region.
func (a *Access) resolve(ctx context.Context, region, target string) (latch.Target, error) {
	region, inv, err := a.inventory(region)
	if err != nil {
		return latch.Target{}, err
	}
	return ResolveTarget(ctx, inv, region, target)
}

// inventory is region's inventory, "" meaning the default region.
func (a *Access) inventory(region string) (string, latch.Inventory, error) {
	if region == "" {
		region = a.opts.DefaultRegion
	}
	inv, ok := a.inv[region]
	if !ok {
		return region, nil, latch.Invalidf("region", "region %q is not served here", region)
	}
	return region, inv, nil
}

// ResolveTarget turns "i-…", "sg-…" or an instance's Name tag into a
// Target: an instance resolves to the first of its managed security groups
// (the grant may open in another when that one is full; see
// Broker.GrantOnInstance), and a group must itself be managed.
func ResolveTarget(ctx context.Context, inv latch.Inventory, region, target string) (latch.Target, error) {
	if strings.HasPrefix(target, "sg-") {
		id, err := latch.ParseGroupID(target)
		if err != nil {
			return latch.Target{}, latch.Invalidf("target", "%s", latch.ErrorMessage(err))
		}
		g, err := inv.Group(ctx, id)
		if err != nil {
			return latch.Target{}, err
		}
		// Broker.Grant checks again when it opens; refusing here too keeps
		// a request that could never open out of policy and the store.
		if err := checkManaged(g); err != nil {
			return latch.Target{}, err
		}
		return latch.Target{Region: region, GroupID: id, Tags: g.Tags}, nil
	}
	in, err := FindInstance(ctx, inv, target)
	if err != nil {
		return latch.Target{}, err
	}
	g, err := in.ManagedGroup()
	if err != nil {
		return latch.Target{}, err
	}
	return latch.Target{Region: region, InstanceID: in.ID, GroupID: g.ID, Tags: in.Tags}, nil
}

// FindInstance looks an instance up by ID (i-…) or by its Name tag, which
// must name exactly one instance.
func FindInstance(ctx context.Context, inv latch.Inventory, target string) (latch.Instance, error) {
	if strings.HasPrefix(target, "i-") {
		id, err := latch.ParseInstanceID(target)
		if err != nil {
			return latch.Instance{}, latch.Invalidf("target", "%s", latch.ErrorMessage(err))
		}
		return inv.Instance(ctx, id)
	}
	if target == "" || len(target) > 255 || strings.IndexFunc(target, unicode.IsControl) >= 0 {
		return latch.Instance{}, latch.Invalidf("target", "%q is not an instance ID (i-…), a security group ID (sg-…) or an instance Name tag", target)
	}
	found, err := inv.InstancesNamed(ctx, target)
	if err != nil {
		return latch.Instance{}, err
	}
	switch len(found) {
	case 0:
		return latch.Instance{}, latch.Errorf(latch.ENOTFOUND, "no instance is named %q (its Name tag); give an instance ID (i-…) or a group ID (sg-…) instead", target)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, in := range found {
		ids[i] = string(in.ID)
	}
	slices.Sort(ids)
	return latch.Instance{}, latch.Errorf(latch.ECONFLICT, "%d instances are named %q (%s); give the instance ID", len(found), target, strings.Join(ids, ", "))
}

// Request decides in by policy. Allowed requests (auto-approved, or
// break-glass) open their grant at once; others wait for reviews. A
// policy denial returns EFORBIDDEN saying why, and records nothing.
func (a *Access) Request(ctx context.Context, who latch.Identity, in RequestInput) (latch.Request, error) {
	x, err := a.decide(ctx, who, in)
	if err != nil {
		return latch.Request{}, err
	}
	d := x.d
	if d.Outcome == policy.Denied {
		a.log.InfoContext(ctx, "request denied by policy", "requester", who.String(), "target", in.Target, "rule", d.Rule, "why", d.Why)
		return latch.Request{}, latch.Errorf(latch.EFORBIDDEN, "%s", d.Why)
	}
	now := a.now()
	r := latch.Request{
		ID: latch.NewRequestID(), State: latch.RequestPending, Requester: who, Target: x.target,
		Protocol: in.Protocol, Ports: in.Ports, Source: x.source, Duration: d.Duration, Reason: in.Reason, Document: in.Document,
		BreakGlass: d.BreakGlass, Rule: d.Rule, ApprovalsNeeded: d.ApprovalsNeeded, Approvers: d.Approvers,
		CreatedAt: now, PendingUntil: now.Add(d.PendingTimeout),
	}
	if in.Document != "" {
		r.Access = latch.AccessSSM
	}
	if d.Outcome == policy.Allowed {
		r.State, r.DecidedAt, r.ApprovalsNeeded = latch.RequestApproved, now, 0
	}
	if r, err = a.store.CreateRequest(ctx, r); err != nil {
		return r, fmt.Errorf("record request: %w", err)
	}
	a.audit(ctx, requestAudit(latch.AuditRequested, who.String(), r, map[string]string{"reason": r.Reason, "state": string(r.State)}))
	a.log.InfoContext(ctx, "requested", "request_id", r.ID, "requester", who.String(), "requester_key", who.Key(), "target", in.Target, "group_id", x.target.GroupID,
		"rule", r.Rule, "state", r.State, "break_glass", r.BreakGlass)
	if r.State == latch.RequestApproved {
		return a.open(ctx, r, d.Wide)
	}
	return r, nil
}

// decided is a request's policy decision and what it was taken on.
type decided struct {
	target latch.Target
	source netip.Prefix
	d      policy.Decision
}

// decide is the one policy decision for a request, shared by Request and
// Preview so that a preview can never say other than the request would.
func (a *Access) decide(ctx context.Context, who latch.Identity, in RequestInput) (decided, error) {
	if in.Document != "" {
		return a.decideSession(ctx, who, in)
	}
	if !in.Observed.IsValid() {
		return decided{}, latch.Errorf(latch.EINTERNAL, "request without an observed source address")
	}
	target, err := a.resolve(ctx, in.Region, in.Target)
	if err != nil {
		return decided{}, err
	}
	source := in.Observed
	if in.Asked.IsValid() {
		source = in.Asked
	}
	p := a.policy.Policy()
	d, err := a.decideQuery(ctx, p, policy.Query{
		Who: who, Target: target, Protocol: in.Protocol, Ports: in.Ports, Duration: in.Duration,
		Source: source, BreakGlass: in.BreakGlass, Reason: in.Reason,
	})
	if err != nil {
		return decided{}, err
	}
	if d.Outcome == policy.Allowed || d.Outcome == policy.NeedsApproval {
		if err := a.checkAskedSource(p, d.Rule, in); err != nil {
			d.Outcome, d.Why = policy.Denied, latch.ErrorMessage(err)
		}
	}
	return decided{target: target, source: source, d: d}, nil
}

// decideQuery is p's decision on q, with q.Active counting the
// requester's active grants. It fails closed: an unknown count must not
// pass max_active.
func (a *Access) decideQuery(ctx context.Context, p *policy.Policy, q policy.Query) (policy.Decision, error) {
	var countErr error
	q.Active = func(rule string) int {
		n, err := a.activeUnder(ctx, q.Who, rule)
		countErr = err
		return n
	}
	d := p.Decide(q)
	if countErr != nil {
		return policy.Decision{}, latch.Errorf(latch.EUNAVAILABLE, "count active grants: %v", countErr)
	}
	return d, nil
}

// checkAskedSource lets a requester name an address other than their own
// only inside the deciding rule's networks.
func (a *Access) checkAskedSource(p *policy.Policy, rule string, in RequestInput) error {
	if !in.Asked.IsValid() || in.Asked == in.Observed {
		return nil
	}
	if r, ok := p.Rule(rule); ok && len(r.Networks) > 0 {
		return nil // Decide already checked the address is inside them
	}
	return latch.Invalidf("source", "you asked for %s but are connecting from %s; rule %q allows only your own address", in.Asked, in.Observed.Addr(), rule)
}

// activeUnder counts the requester's open grants opened under rule. It
// starts from their open grants, which are few, not from their history.
func (a *Access) activeUnder(ctx context.Context, who latch.Identity, rule string) (int, error) {
	gs, err := a.store.Grants(ctx, latch.GrantFilter{Owners: a.ownerKeys(who),
		States: []latch.GrantState{latch.StateRequested, latch.StateActive, latch.StateRevoking, latch.StateRevokeFailed}})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, g := range gs {
		rs, err := a.store.Requests(ctx, latch.RequestFilter{GrantID: g.ID, Limit: 1})
		if err != nil {
			return 0, err
		}
		if len(rs) == 1 && rs[0].Rule == rule && a.same(rs[0].Requester, who) {
			n++
		}
	}
	return n, nil
}

// open starts access for an approved request: the duration counts from now.
func (a *Access) open(ctx context.Context, r latch.Request, wide bool) (latch.Request, error) {
	req := latch.GrantRequest{
		Region: r.Target.Region, GroupID: r.Target.GroupID, Protocol: r.Protocol, Ports: r.Ports, Source: r.Source,
		Duration: r.Duration, Requester: r.Requester.String(), Owner: r.Requester.Key(), Reason: requestReason(r), Wide: wide,
		RequestID: r.ID,
	}
	if r.Access == latch.AccessSSM {
		req.Access, req.Target, req.Document = latch.AccessSSM, r.Target.InstanceID, r.Document
	}
	var g latch.Grant
	var placement string
	var err error
	if r.Access != latch.AccessSSM && r.Target.InstanceID != "" {
		// Access to an instance may open in another of its managed groups
		// when the first is full, if the rule that decided the request
		// covers the instance through that group too.
		g, placement, err = a.b.grant(ctx, req, r.Target.InstanceID, func(group latch.GroupID) error {
			t := r.Target
			t.GroupID = group
			if !a.policy.Policy().CoversTarget(r.Rule, t) {
				return latch.Errorf(latch.EFORBIDDEN, "rule %q does not cover %s through %s", r.Rule, r.Target.InstanceID, group)
			}
			return nil
		})
	} else {
		g, err = a.b.Grant(ctx, req)
	}
	if err != nil {
		r.State, r.Note = latch.RequestFailed, latch.ErrorMessage(err)
		if g.ID != "" {
			r.GrantID = g.ID
		}
		if ur, uerr := a.store.UpdateRequest(ctx, r); uerr == nil {
			r = ur
		}
		return r, err
	}
	r.State, r.GrantID = latch.RequestActive, g.ID
	if g.GroupID != r.Target.GroupID {
		r.Note = placement
	}
	return a.store.UpdateRequest(ctx, r)
}

func requestReason(r latch.Request) string {
	reason := r.Reason
	if reason == "" {
		reason = "request " + string(r.ID)
	}
	if r.BreakGlass {
		reason = "BREAK-GLASS: " + reason
	}
	if n := []rune(reason); len(n) > latch.MaxReasonLen {
		reason = string(n[:latch.MaxReasonLen])
	}
	return reason
}

func (a *Access) now() time.Time { return a.clock.Now().UTC().Truncate(time.Second) }

// Explain says, rule by rule, what as may do on target. Anyone may ask
// about themselves; only admins may ask about someone else, whose groups
// they then state.
func (a *Access) Explain(ctx context.Context, who latch.Identity, as *latch.Identity, region, target string) ([]policy.Explanation, error) {
	subject, err := a.explainSubject(who, as)
	if err != nil {
		return nil, err
	}
	t, err := a.resolve(ctx, region, target)
	if err != nil {
		return nil, err
	}
	return a.policy.Policy().Explain(subject, t), nil
}

// explainSubject is whom an explanation is about: who, or as, whom only
// admins may ask about.
func (a *Access) explainSubject(who latch.Identity, as *latch.Identity) (latch.Identity, error) {
	if as != nil && !a.same(*as, who) && !latch.UserIs(who, a.personOf(who), as.Subject) {
		if !a.IsAdmin(who) {
			return latch.Identity{}, latch.Errorf(latch.EFORBIDDEN, "only admins may explain policy for someone else")
		}
		return *as, nil
	}
	return who, nil
}

// audit appends to the audit log; see Broker.audit.
func (a *Access) audit(ctx context.Context, e latch.AuditEntry) {
	appendAudit(ctx, a.store, a.b.opts.Sign, a.log, a.clock, e)
}

// RecordLogin notes in the audit log that who logged in.
func (a *Access) RecordLogin(ctx context.Context, who latch.Identity, from string) {
	a.audit(ctx, latch.AuditEntry{Actor: who.String(), Action: latch.AuditLogin, Target: from,
		Details: map[string]string{"kind": string(who.Kind), "issuer": who.Issuer, "subject": who.Subject, "key": who.Key(),
			"groups": strings.Join(who.Groups, ",")}})
}

// RecordPolicyReload notes in the audit log that the policy changed.
func (a *Access) RecordPolicyReload(ctx context.Context, path string, rules int) {
	a.audit(ctx, latch.AuditEntry{Actor: Actor, Action: latch.AuditPolicyReloaded, Target: path,
		Details: map[string]string{"rules": fmt.Sprint(rules)}})
}

func requestAudit(action latch.AuditAction, actor string, r latch.Request, extra map[string]string) latch.AuditEntry {
	d := map[string]string{
		"requester": r.Requester.String(), "requester_key": r.Requester.Key(), "rule": r.Rule, "region": r.Target.Region, "instance_id": string(r.Target.InstanceID),
		"protocol": string(r.Protocol), "ports": r.Ports.String(), "source": r.Source.String(), "duration": r.Duration.String(),
	}
	if r.BreakGlass {
		d["break_glass"] = "true"
	}
	if r.Access == latch.AccessSSM {
		d["access"], d["document"] = string(latch.AccessSSM), string(r.Document)
		delete(d, "source")
	}
	for k, v := range extra {
		d[k] = v
	}
	target := string(r.Target.GroupID)
	if r.Access == latch.AccessSSM {
		target = string(r.Target.InstanceID)
	}
	return latch.AuditEntry{Actor: actor, Action: action, Target: target, RequestID: r.ID, GrantID: r.GrantID, Details: d}
}
