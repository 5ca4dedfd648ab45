package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

// Query is a request for access, as the policy sees it.
//
// A query with a Document is for Session Manager access, which opens no
// port: Protocol is tcp, Ports is the one port on the instance for
// port-forward and ssh and zero for shell, Source is not used (a rule's
// networks and allow_prefix do not apply), and Target must name an
// instance. Only rules with an ssm section that allows the document and
// port decide it; a query without a Document never matches a rule by its
// ssm section.
type Query struct {
	Who        latch.Identity
	Target     latch.Target // InstanceID is empty when a group was named directly
	Protocol   latch.Protocol
	Ports      latch.PortRange
	Document   latch.SSMDocument // non-empty for Session Manager access
	Duration   time.Duration     // 0 means the deciding rule's default
	Source     netip.Prefix      // the requester's address (/32 or /128), or a wider prefix they ask for; with a Document, the address the request came from, checked against networks (zero skips that, as explain does)
	BreakGlass bool              // skip approval, where the rule allows it
	Reason     string

	// Active returns how many active grants the requester holds under a
	// rule, for max_active. nil means none.
	Active func(rule string) int
}

// Outcome is what a policy decides.
type Outcome string

// The outcomes.
const (
	Allowed       Outcome = "allowed"
	NeedsApproval Outcome = "needs-approval"
	Denied        Outcome = "denied"
)

// Decision is a policy's answer to a Query.
type Decision struct {
	Outcome         Outcome
	Rule            string         // the rule that decided; "" when none applied
	Why             string         // a sentence for people: why allowed, what is missing, or why denied
	Duration        time.Duration  // the duration granted, default applied; 0 when denied before it was known
	ApprovalsNeeded int            // for NeedsApproval
	Approvers       latch.Selector // for NeedsApproval: who may approve
	PendingTimeout  time.Duration  // for NeedsApproval: how long the request may wait
	BreakGlass      bool           // allowed only because break-glass was asked for
	Wide            bool           // the source is wider than one address, which the rule allows
}

// Decide returns the policy's decision on q. The first rule, in file order,
// whose targets, who and ports (for a Session Manager query, its ssm
// section) all match q decides; later rules are not consulted, even when
// that rule denies. Decide is pure and deterministic.
func (p *Policy) Decide(q Query) Decision {
	if why := q.problem(); why != "" {
		return Decision{Outcome: Denied, Why: why}
	}
	q.Source = unmap(q.Source)
	for i := range p.rules {
		r := &p.rules[i]
		if r.Targets.match(q.Target) && p.matches(r.Who, q.Who) && r.allows(q) {
			return r.decide(q)
		}
	}
	if q.Document != "" {
		return Decision{Outcome: Denied, Why: fmt.Sprintf("no policy rule lets %s start %s on %s",
			q.Who, describeSession(q.Document, q.Ports.From), describeTarget(q.Target))}
	}
	return Decision{Outcome: Denied, Why: fmt.Sprintf("no policy rule lets %s open %s on %s",
		q.Who, describePorts(q.Protocol, q.Ports), describeTarget(q.Target))}
}

// AllowsSession reports whether the rule named rule, as the policy now
// stands, still gives who a session with doc (to port) on target: its
// targets and who match and its ssm section allows the session. A grant
// checks it before each session it starts, so that a policy change takes
// effect on the next session, not at the grant's expiry.
func (p *Policy) AllowsSession(rule string, who latch.Identity, target latch.Target, doc latch.SSMDocument, port int) bool {
	for i := range p.rules {
		r := &p.rules[i]
		if r.Name == rule {
			return r.Targets.match(target) && p.matches(r.Who, who) && r.SSM.Allows(doc, port)
		}
	}
	return false
}

// CoversTarget reports whether rule, as the policy now stands, names
// target among its targets. A grant for an instance whose first managed
// group is full may open in another of its groups only if the rule that
// decided the request covers the instance through that group too: a rule
// that names groups gives those groups, and no others.
func (p *Policy) CoversTarget(rule string, target latch.Target) bool {
	for i := range p.rules {
		if r := &p.rules[i]; r.Name == rule {
			return r.Targets.match(target)
		}
	}
	return false
}

// allows reports whether r's ports (or, for a Session Manager query, its
// ssm section) hold what q asks for. Neither stands in for the other.
func (r *Rule) allows(q Query) bool {
	if q.Document != "" {
		return r.SSM.Allows(q.Document, q.Ports.From)
	}
	return r.covers(q.Protocol, q.Ports)
}

// describeSession names a session for people: "a shell session", "a
// port-forward session to port 5432".
func describeSession(doc latch.SSMDocument, port int) string {
	if doc.TakesPort() {
		return fmt.Sprintf("%s %s session to port %d", article(string(doc)), doc, port)
	}
	return fmt.Sprintf("%s %s session", article(string(doc)), doc)
}

// article is "an" before a vowel sound latch's document names start with.
func article(word string) string {
	if strings.HasPrefix(word, "ssh") || strings.ContainsAny(word[:1], "aeiou") {
		return "an"
	}
	return "a"
}

// problem says what makes q impossible to decide, or "".
func (q Query) problem() string {
	if q.Who.Subject == "" {
		return "the request has no identity"
	}
	if q.Document != "" {
		return q.sessionProblem()
	}
	proto, err := latch.ParseProtocol(string(q.Protocol))
	if err != nil || proto != q.Protocol {
		return fmt.Sprintf("protocol %q is not allowed; want tcp, udp, icmp or icmpv6", q.Protocol)
	}
	if r, err := latch.ParsePorts(q.Protocol, q.Ports.String()); err != nil || r != q.Ports {
		return fmt.Sprintf("ports %s are not a valid %s range", q.Ports, q.Protocol)
	}
	if !q.Source.IsValid() {
		return "the request has no source address"
	}
	if q.Source.Bits() == 0 {
		return fmt.Sprintf("source %s is the whole internet, which latch never opens to", q.Source)
	}
	if err := latch.CheckFamily(q.Protocol, unmap(q.Source)); err != nil {
		return message(err)
	}
	if q.Duration < 0 {
		return fmt.Sprintf("duration %s is negative", q.Duration)
	}
	return ""
}

// sessionProblem is problem for a Session Manager query.
func (q Query) sessionProblem() string {
	doc, err := latch.ParseSSMDocument(string(q.Document))
	if err != nil || doc != q.Document {
		return fmt.Sprintf("document %q is not a Session Manager document latch starts; want shell, port-forward or ssh", q.Document)
	}
	if q.Protocol != latch.TCP {
		return fmt.Sprintf("%s sessions carry tcp, not %q", doc, q.Protocol)
	}
	switch {
	case doc.TakesPort() && (q.Ports.From != q.Ports.To || q.Ports.From < 1 || q.Ports.From > 65535):
		return fmt.Sprintf("%s sessions reach one port on the instance; %s is not a port", doc, q.Ports)
	case !doc.TakesPort() && q.Ports != (latch.PortRange{}):
		return fmt.Sprintf("%s sessions reach no port; the request names %s", doc, q.Ports)
	}
	if q.Target.InstanceID == "" {
		return fmt.Sprintf("Session Manager sessions start on an instance, and %s names none", describeTarget(q.Target))
	}
	if q.Duration < 0 {
		return fmt.Sprintf("duration %s is negative", q.Duration)
	}
	return ""
}

// unmap turns an IPv4-mapped IPv6 prefix into the IPv4 prefix it means, so
// it is compared with IPv4 networks.
func unmap(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// decide applies r, the first rule to apply, to q.
func (r *Rule) decide(q Query) Decision {
	d := Decision{Outcome: Denied, Rule: r.Name}
	deny := func(format string, args ...any) Decision {
		d.Why = fmt.Sprintf("rule %q: ", r.Name) + fmt.Sprintf(format, args...)
		return d
	}
	dur := q.Duration
	if dur == 0 {
		dur = r.DefaultDuration
	}
	if dur > r.MaxDuration {
		return deny("allows at most %s; %s was asked for", formatDuration(r.MaxDuration), formatDuration(dur))
	}
	d.Duration = dur
	if r.ReasonRequired && strings.TrimSpace(q.Reason) == "" {
		return deny("a reason is required; say why you need access")
	}
	session := q.Document != ""
	// A session opens nothing to an address, but the rule's networks
	// still say where requests may come from: for a session, the address
	// the request came from (none when only explaining).
	checkNetworks := len(r.Networks) > 0 && (!session || q.Source.IsValid())
	if checkNetworks && !slices.ContainsFunc(r.Networks, func(n netip.Prefix) bool { return inside(q.Source, n) }) {
		return deny("requests must come from %s; %s is outside", joinPrefixes(r.Networks), q.Source)
	}
	if !session && q.Source.Bits() < q.Source.Addr().BitLen() {
		if !r.AllowPrefix {
			return deny("opens to one address only (/%d); %s is a network", q.Source.Addr().BitLen(), q.Source)
		}
		d.Wide = true
	}
	if r.MaxActive > 0 && q.Active != nil {
		if n := q.Active(r.Name); n >= r.MaxActive {
			return deny("allows %d active grants per requester and %s has %d; end one first", r.MaxActive, q.Who, n)
		}
	}
	what := fmt.Sprintf("%s on %s for %s", describePorts(q.Protocol, q.Ports), describeTarget(q.Target), formatDuration(dur))
	if session {
		what = fmt.Sprintf("%s on %s for %s", describeSession(q.Document, q.Ports.From), describeTarget(q.Target), formatDuration(dur))
	}
	switch {
	case r.Approvals == 0:
		d.Outcome = Allowed
		d.Why = fmt.Sprintf("rule %q allows %s without approval", r.Name, what)
		if q.BreakGlass {
			d.Why += " (break-glass was not needed)"
		}
	case q.BreakGlass && !r.BreakGlass:
		return deny("does not allow break-glass; ask without it and get %s", approvalText(r))
	case q.BreakGlass && strings.TrimSpace(q.Reason) == "":
		return deny("break-glass needs a reason, which is recorded and flagged")
	case q.BreakGlass:
		d.Outcome, d.BreakGlass = Allowed, true
		d.Why = fmt.Sprintf("rule %q allows %s by break-glass, skipping %s; this is flagged for review", r.Name, what, approvalText(r))
	default:
		d.Outcome = NeedsApproval
		d.ApprovalsNeeded = r.Approvals
		d.Approvers = r.Approvers.Clone()
		d.PendingTimeout = r.PendingTimeout
		d.Why = fmt.Sprintf("rule %q allows %s once it has %s within %s", r.Name, what, approvalText(r), formatDuration(r.PendingTimeout))
	}
	return d
}

// inside reports whether every address of src is in network n.
func inside(src, n netip.Prefix) bool {
	return n.Bits() <= src.Bits() && n.Contains(src.Addr())
}

// approvalText says what approval a rule needs, e.g. "2 approvals from sre or security".
func approvalText(r *Rule) string {
	if r.Approvals == 0 {
		return "no approval"
	}
	noun := "approvals"
	if r.Approvals == 1 {
		noun = "approval"
	}
	return fmt.Sprintf("%d %s from %s", r.Approvals, noun, r.Approvers.Or())
}

// match reports whether any selector of t matches target.
func (t Targets) match(target latch.Target) bool {
	if target.InstanceID != "" && slices.Contains(t.Instances, target.InstanceID) {
		return true
	}
	if target.GroupID != "" && slices.Contains(t.Groups, target.GroupID) {
		return true
	}
	if len(t.Tags) == 0 {
		return false
	}
	for k, v := range t.Tags {
		if got, ok := target.Tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// matches reports whether w names id, with the people id is linked to.
func (p *Policy) matches(w Who, id latch.Identity) bool {
	name, _ := p.Person(id)
	return w.Match(id, name)
}

// covers reports whether one of r's port specs holds the whole of ports.
func (r *Rule) covers(proto latch.Protocol, ports latch.PortRange) bool {
	return slices.ContainsFunc(r.Ports, func(s PortSpec) bool { return s.covers(proto, ports) })
}

// covers reports whether s holds the whole of ports. For icmp and icmpv6,
// -1 (all) covers any type or code, and nothing but -1 covers -1.
func (s PortSpec) covers(proto latch.Protocol, ports latch.PortRange) bool {
	if s.Protocol != proto {
		return false
	}
	if proto.IsICMP() {
		all := func(want, got int) bool { return want == -1 || want == got }
		return all(s.Ports.From, ports.From) && (s.Ports.From == -1 || all(s.Ports.To, ports.To))
	}
	return s.Ports.From <= ports.From && ports.To <= s.Ports.To
}

// describeTarget names a target for people: the instance, or the group.
func describeTarget(t latch.Target) string {
	var s string
	switch {
	case t.InstanceID != "" && t.GroupID != "":
		s = fmt.Sprintf("%s (%s)", t.InstanceID, t.GroupID)
	case t.InstanceID != "":
		s = string(t.InstanceID)
	case t.GroupID != "":
		s = string(t.GroupID)
	default:
		s = "an unnamed target"
	}
	if t.Region != "" {
		s += " in " + t.Region
	}
	return s
}

// joinPrefixes lists prefixes for people.
func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " or ")
}
