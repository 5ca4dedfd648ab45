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
	ports := make([]string, len(r.Ports))
	for i, s := range r.Ports {
		ports[i] = s.Describe()
		for _, e := range earlier {
			if e.covers(s.Protocol, s.Ports) {
				ports[i] += fmt.Sprintf(" (decided first by rule %q)", e.Name)
				break
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "allows %s for %s by default, at most %s; ", strings.Join(ports, ", "), formatDuration(r.DefaultDuration), formatDuration(r.MaxDuration))
	if r.Approvals == 0 {
		b.WriteString("auto-approved")
	} else {
		fmt.Fprintf(&b, "needs %s within %s", approvalText(r), formatDuration(r.PendingTimeout))
		if r.BreakGlass {
			b.WriteString("; break-glass allowed with a reason")
		}
	}
	if len(r.Networks) > 0 {
		fmt.Fprintf(&b, "; only from %s", joinPrefixes(r.Networks))
		if r.AllowPrefix {
			b.WriteString(" (prefixes allowed)")
		}
	}
	if r.ReasonRequired {
		b.WriteString("; reason required")
	}
	if r.MaxActive > 0 {
		fmt.Fprintf(&b, "; at most %d active grants per requester", r.MaxActive)
	}
	return b.String()
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
