package policy_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/policy"
)

// FuzzParse checks that no input makes Parse (or RunTests) panic, and that
// a policy that parses decides the same way every time.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		decidePolicy,
		withRule("    networks: [198.51.100.0/24]", "    allow_prefix: true", "    max_active: 2"),
		withRule("    approval: {approvals: 2, from: [sre]}", "    break_glass: true", "    pending_timeout: 10m"),
		"version: 1\nrules:\n  - name: [\n",
		"version: 1\nrules: {a: b}\n",
		"version: 1\nrules:\n  - &a {name: x}\n  - *a\n",
		"version: 1\nrules:\n  - name: x\n    ports: [icmp/-1, udp/1-65535, tcp/-]\n",
		"\t\x00",
		"---\n---\n",
		"? [a]\n: b\n",
		failingTests,
	} {
		f.Add([]byte(s))
	}
	example, err := policy.Load("testdata/example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkParse(t, example, data) })
}

// checkParse is one run of FuzzParse.
func checkParse(t *testing.T, example *policy.Policy, data []byte) {
	_, _ = policy.RunTests(example, "fuzz_test.yaml", data)
	p, err := policy.Parse("fuzz.yaml", data)
	if err != nil {
		if latch.ErrorCode(err) != latch.EINVALID || !strings.HasPrefix(err.Error(), "fuzz.yaml") {
			t.Fatalf("Parse error %q has code %s, want EINVALID naming the file", err, latch.ErrorCode(err))
		}
		return
	}
	again, err := policy.Parse("fuzz.yaml", data)
	if err != nil || !reflect.DeepEqual(p.Rules(), again.Rules()) {
		t.Fatalf("parsing twice differs: %v", err)
	}
	rules := p.Rules()
	for _, q := range queriesFor(rules) {
		d := p.Decide(q)
		if d2 := p.Decide(q); !reflect.DeepEqual(d, d2) {
			t.Fatalf("Decide(%+v) = %+v, then %+v", q, d, d2)
		}
		if d2 := again.Decide(q); !reflect.DeepEqual(d, d2) {
			t.Fatalf("Decide(%+v) = %+v, but %+v from the same file parsed again", q, d, d2)
		}
		checkDecision(t, rules, q, d)
		if e1, e2 := p.Explain(q.Who, q.Target), p.Explain(q.Who, q.Target); !reflect.DeepEqual(e1, e2) || len(e1) != len(rules) {
			t.Fatalf("Explain is not deterministic")
		}
	}
}

// checkDecision checks what holds of every decision.
func checkDecision(t *testing.T, rules []policy.Rule, q policy.Query, d policy.Decision) {
	t.Helper()
	if d.Why == "" {
		t.Fatalf("Decide(%+v) has no Why", q)
	}
	if d.Outcome == policy.Denied {
		return
	}
	var rule *policy.Rule
	for i := range rules {
		if rules[i].Name == d.Rule {
			rule = &rules[i]
		}
	}
	switch {
	case rule == nil:
		t.Fatalf("%s by unknown rule %q", d.Outcome, d.Rule)
	case d.Duration <= 0 || d.Duration > rule.MaxDuration:
		t.Fatalf("%s for %s, want within (0, %s]", d.Outcome, d.Duration, rule.MaxDuration)
	case d.Outcome == policy.NeedsApproval && (d.ApprovalsNeeded < 1 || d.Approvers.Empty() || d.PendingTimeout <= 0):
		t.Fatalf("needs approval without approvers: %+v", d)
	case d.BreakGlass && (!q.BreakGlass || !rule.BreakGlass):
		t.Fatalf("break-glass decision nobody asked for: %+v", d)
	}
}

// queriesFor makes queries that some rule of rules is likely to apply to.
func queriesFor(rules []policy.Rule) []policy.Query {
	var qs []policy.Query
	for _, r := range rules {
		target := latch.Target{Region: "us-east-1", Tags: r.Targets.Tags}
		if len(r.Targets.Instances) > 0 {
			target.InstanceID = r.Targets.Instances[0]
		}
		if len(r.Targets.Groups) > 0 {
			target.GroupID = r.Targets.Groups[0]
		}
		who := latch.Identity{Kind: latch.KindOIDC, Subject: "someone@example.com"}
		switch {
		case len(r.Who.Users) > 0:
			who.Subject = r.Who.Users[0]
		case len(r.Who.Groups) > 0:
			who.Groups = r.Who.Groups[:1]
		case len(r.Who.AWSPrincipals) > 0:
			who = latch.Identity{Kind: latch.KindIAM, Subject: strings.NewReplacer("*", "x", "?", "y").Replace(r.Who.AWSPrincipals[0])}
		}
		src := netip.MustParsePrefix("203.0.113.1/32")
		if len(r.Networks) > 0 {
			src = r.Networks[0]
		}
		for _, s := range r.Ports {
			for _, bg := range []bool{false, true} {
				qs = append(qs,
					policy.Query{Who: who, Target: target, Protocol: s.Protocol, Ports: s.Ports, Source: src, BreakGlass: bg, Reason: "fuzz"},
					policy.Query{Who: who, Target: target, Protocol: s.Protocol, Ports: s.Ports, Source: src, BreakGlass: bg, Duration: r.MaxDuration,
						Active: func(string) int { return 1 }})
			}
		}
	}
	return qs
}
