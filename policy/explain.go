package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/latchdev/latch"
)

// Explanation says what one rule means for one caller and target.
type Explanation struct {
	Rule    Rule   // a copy of the rule
	Applies bool   // its targets match the target and its who matches the caller
	Why     string // for people: why it does not apply, or what it allows
}

// Explain lists every rule, in file order, with whether it applies to who
// asking for target and, if so, what it allows. Where an earlier applicable
// rule covers some of a rule's ports, Why says so: that earlier rule decides
// requests for those ports.
func (p *Policy) Explain(who latch.Identity, target latch.Target) []Explanation {
	out := make([]Explanation, 0, len(p.rules))
	var earlier []*Rule // applicable rules so far
	for i := range p.rules {
		r := &p.rules[i]
		e := Explanation{Rule: r.clone()}
		targetOK, whoOK := r.Targets.match(target), p.matches(r.Who, who)
		switch {
		case !targetOK && !whoOK:
			e.Why = fmt.Sprintf("does not apply: %s is not among its targets (%s), and %s is not among its callers (%s)",
				describeTarget(target), r.Targets, who, r.Who)
		case !targetOK:
			e.Why = fmt.Sprintf("does not apply: %s is not among its targets (%s)", describeTarget(target), r.Targets)
		case !whoOK:
			e.Why = fmt.Sprintf("does not apply: %s is not among its callers (%s)", who, r.Who)
		default:
			e.Applies = true
			e.Why = r.summary(earlier)
			earlier = append(earlier, r)
		}
		out = append(out, e)
	}
	return out
}

// ExplainSession is Explain for a Session Manager session with doc (and,
// for port-forward and ssh, port on the instance): a rule whose targets
// and who match but whose ssm section does not allow the session, or
// that has none, is skipped and Why says which. The first rule that
// applies decides; later ones say so. A rule's networks hold the address
// a session request comes from, which an explanation does not know, so
// they are not checked here; allow_prefix does not apply to sessions.
func (p *Policy) ExplainSession(who latch.Identity, target latch.Target, doc latch.SSMDocument, port int) []Explanation {
	out := make([]Explanation, 0, len(p.rules))
	q := Query{Who: who, Target: target, Protocol: latch.TCP, Document: doc}
	if doc.TakesPort() {
		q.Ports = latch.PortRange{From: port, To: port}
	}
	problem := q.sessionProblem()
	var decider string
	for i := range p.rules {
		r := &p.rules[i]
		e := Explanation{Rule: r.clone()}
		targetOK, whoOK := r.Targets.match(target), p.matches(r.Who, who)
		switch {
		case problem != "":
			e.Why = "does not apply: " + problem
		case !targetOK && !whoOK:
			e.Why = fmt.Sprintf("does not apply: %s is not among its targets (%s), and %s is not among its callers (%s)",
				describeTarget(target), r.Targets, who, r.Who)
		case !targetOK:
			e.Why = fmt.Sprintf("does not apply: %s is not among its targets (%s)", describeTarget(target), r.Targets)
		case !whoOK:
			e.Why = fmt.Sprintf("does not apply: %s is not among its callers (%s)", who, r.Who)
		case r.SSM == nil:
			e.Why = "skipped: it has no ssm section, so it gives no Session Manager sessions"
		case !slices.Contains(r.SSM.Documents, doc):
			e.Why = fmt.Sprintf("skipped: its ssm section does not allow %s sessions (it allows %s)", doc, joinStrings(r.SSM.Documents))
		case doc.TakesPort() && !r.SSM.allowsPort(port):
			e.Why = fmt.Sprintf("skipped: its ssm section does not allow %s sessions to port %d (it allows ports %s)", doc, port, joinRanges(r.SSM.Ports))
		default:
			e.Applies = true
			e.Why = r.sessionSummary(q)
			if decider != "" {
				e.Why = fmt.Sprintf("(decided first by rule %q) %s", decider, e.Why)
			} else {
				decider = r.Name
			}
		}
		out = append(out, e)
	}
	return out
}

// sessionSummary says what r allows for the session q asks for.
func (r *Rule) sessionSummary(q Query) string {
	var b strings.Builder
	fmt.Fprintf(&b, "allows %s for %s by default, at most %s; ", describeSession(q.Document, q.Ports.From), formatDuration(r.DefaultDuration), formatDuration(r.MaxDuration))
	r.writeConditions(&b)
	return b.String()
}

// RulesFor returns copies of the rules who is among the callers of, in
// file order: what they may ask for, whatever the target. The targets
// still decide which of them applies to a given instance (see Explain).
func (p *Policy) RulesFor(who latch.Identity) []Rule {
	var out []Rule
	for i := range p.rules {
		if p.matches(p.rules[i].Who, who) {
			out = append(out, p.rules[i].clone())
		}
	}
	return out
}

// Summary says, for people, what r allows: ports, durations, approval and
// conditions, as Explain does for an applicable rule.
func (r Rule) Summary() string { return r.summary(nil) }

// summary says what r allows, noting ports an earlier rule decides first.
func (r *Rule) summary(earlier []*Rule) string {
	what := make([]string, len(r.Ports))
	for i, s := range r.Ports {
		what[i] = s.Describe()
		for _, e := range earlier {
			if e.covers(s.Protocol, s.Ports) {
				what[i] += fmt.Sprintf(" (decided first by rule %q)", e.Name)
				break
			}
		}
	}
	if r.SSM != nil {
		what = append(what, r.SSM.describe())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "allows %s for %s by default, at most %s; ", strings.Join(what, ", "), formatDuration(r.DefaultDuration), formatDuration(r.MaxDuration))
	r.writeConditions(&b)
	return b.String()
}

// describe says which sessions the section allows, e.g. "Session Manager
// shell and ssh sessions (to port 22)".
func (s *SSM) describe() string {
	docs := joinStrings(s.Documents)
	if i := strings.LastIndex(docs, ", "); i >= 0 {
		docs = docs[:i] + " and " + docs[i+2:]
	}
	out := "Session Manager " + docs + " sessions"
	switch {
	case len(s.Ports) == 1 && s.Ports[0].From == s.Ports[0].To:
		out += fmt.Sprintf(" (to port %s)", s.Ports[0])
	case len(s.Ports) > 0:
		out += fmt.Sprintf(" (to ports %s)", joinRanges(s.Ports))
	}
	return out
}

// joinRanges lists port ranges for people.
func joinRanges(rs []latch.PortRange) string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return strings.Join(out, ", ")
}

// writeConditions writes what r needs beyond its ports: approval,
// networks, reason, max_active.
func (r *Rule) writeConditions(b *strings.Builder) {
	if r.Approvals == 0 {
		b.WriteString("auto-approved")
	} else {
		fmt.Fprintf(b, "needs %s within %s", approvalText(r), formatDuration(r.PendingTimeout))
		if r.BreakGlass {
			b.WriteString("; break-glass allowed with a reason")
		}
	}
	if len(r.Networks) > 0 {
		fmt.Fprintf(b, "; only from %s", joinPrefixes(r.Networks))
		if r.AllowPrefix {
			b.WriteString(" (prefixes allowed)")
		}
	}
	if r.ReasonRequired {
		b.WriteString("; reason required")
	}
	if r.MaxActive > 0 {
		fmt.Fprintf(b, "; at most %d active grants per requester", r.MaxActive)
	}
}

// String lists the selectors, e.g. "instances i-…; tags env=dev".
func (t Targets) String() string {
	var parts []string
	if len(t.Instances) > 0 {
		parts = append(parts, "instances "+joinStrings(t.Instances))
	}
	if len(t.Groups) > 0 {
		parts = append(parts, "groups "+joinStrings(t.Groups))
	}
	if len(t.Tags) > 0 {
		tags := make([]string, 0, len(t.Tags))
		for _, k := range slices.Sorted(maps.Keys(t.Tags)) {
			tags = append(tags, k+"="+t.Tags[k])
		}
		parts = append(parts, "tags "+strings.Join(tags, ","))
	}
	return strings.Join(parts, "; ")
}

func joinStrings[S ~string](ss []S) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, ", ")
}
