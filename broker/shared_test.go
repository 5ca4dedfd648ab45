package broker_test

import (
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

// Grants for the same opening share one rule, whose expiry tag is the
// latest among them; ending one never cuts another.
func TestSharedRule(t *testing.T) {
	type step struct {
		do     string        // "grant NAME DURATION", "advance D", "expire NAME", "revoke NAME"
		expiry time.Duration // the rule's expiry tag after the step, from start; 0 = no rule
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"later grant extends the rule", []step{
			{do: "grant a 30m", expiry: 30 * time.Minute},
			{do: "grant b 60m", expiry: 60 * time.Minute},
			{do: "advance 30m", expiry: 60 * time.Minute},
			{do: "expire a", expiry: 60 * time.Minute}, // a ends, b keeps the rule
			{do: "advance 30m", expiry: 60 * time.Minute},
			{do: "expire b", expiry: 0},
		}},
		{"shorter grant does not shorten the rule", []step{
			{do: "grant a 60m", expiry: 60 * time.Minute},
			{do: "grant b 30m", expiry: 60 * time.Minute},
			{do: "advance 30m", expiry: 60 * time.Minute},
			{do: "expire b", expiry: 60 * time.Minute},
			{do: "advance 30m", expiry: 60 * time.Minute},
			{do: "expire a", expiry: 0},
		}},
		{"ending the longest early hands the rule down", []step{
			{do: "grant a 60m", expiry: 60 * time.Minute},
			{do: "grant b 30m", expiry: 60 * time.Minute},
			{do: "revoke a", expiry: 30 * time.Minute}, // b still has access, a's extra time is gone
			{do: "revoke b", expiry: 0},
		}},
		{"a new grant after the rule closed opens a new one", []step{
			{do: "grant a 10m", expiry: 10 * time.Minute},
			{do: "revoke a", expiry: 0},
			{do: "grant b 20m", expiry: 20 * time.Minute},
			{do: "revoke b", expiry: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, awstest.New(t), broker.Options{})
			grants := map[string]latch.Grant{}
			ruleIDs := map[latch.RuleID]bool{}
			for _, s := range tt.steps {
				var verb, name, arg string
				parse(s.do, &verb, &name, &arg)
				switch verb {
				case "grant":
					d, _ := time.ParseDuration(arg)
					grants[name] = f.grant(t, "203.0.113.7", d)
					ruleIDs[grants[name].RuleID] = true
				case "advance":
					d, _ := time.ParseDuration(name)
					f.clock.Advance(d)
				case "expire":
					if err := f.b.Expire(t.Context(), grants[name].ID); err != nil {
						t.Fatalf("%s: %v", s.do, err)
					}
				case "revoke":
					if _, err := f.b.Revoke(t.Context(), grants[name].ID, "alice"); err != nil {
						t.Fatalf("%s: %v", s.do, err)
					}
				}
				rules := f.ruleTags(t)
				if s.expiry == 0 {
					if len(rules) != 0 {
						t.Fatalf("after %q: %d rules, want none", s.do, len(rules))
					}
					continue
				}
				if len(rules) != 1 {
					t.Fatalf("after %q: %d rules, want exactly 1", s.do, len(rules))
				}
				for _, tags := range rules {
					if want := latch.FormatExpiry(start.Add(s.expiry)); tags[latch.TagExpiresAt] != want {
						t.Fatalf("after %q: rule expires %s, want %s", s.do, tags[latch.TagExpiresAt], want)
					}
				}
			}
			if tt.name != "a new grant after the rule closed opens a new one" && len(ruleIDs) != 1 {
				t.Errorf("grants used %d rules, want 1 shared", len(ruleIDs))
			}
		})
	}
}

func parse(s string, fields ...*string) {
	parts := strings.Fields(s)
	for i := range fields {
		if i < len(parts) {
			*fields[i] = parts[i]
		}
	}
}

// A rule left by a grant the store no longer knows (a lost database) is
// adopted, and keeps the later of its own expiry and the new grant's.
func TestAdoptsRuleFromLostStore(t *testing.T) {
	env := awstest.New(t)
	f := newFixture(t, env, broker.Options{})
	lost := latch.Grant{ID: latch.NewGrantID(), Requester: "bob", ExpiresAt: start.Add(90 * time.Minute)}
	o := latch.Opening{Region: awstest.Region, GroupID: f.group, Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22}, Source: f.request("203.0.113.7", time.Minute).Source}
	rule, created, err := env.Firewall(t).Authorize(t.Context(), o, latch.RuleTags(lost))
	if err != nil || !created {
		t.Fatal(created, err)
	}
	g := f.grant(t, "203.0.113.7", 30*time.Minute)
	if g.RuleID != rule.ID {
		t.Fatalf("grant opened %s, want the existing %s", g.RuleID, rule.ID)
	}
	if tags := f.ruleTags(t)[rule.ID]; tags[latch.TagGrantID] != string(lost.ID) || tags[latch.TagExpiresAt] != "2026-11-23T11:30:00Z" {
		t.Errorf("tags = %v, want the lost grant's later expiry kept", tags)
	}
}

// An identical rule latch did not make is not taken over.
func TestRefusesUntaggedIdenticalRule(t *testing.T) {
	env := awstest.New(t)
	f := newFixture(t, env, broker.Options{})
	o := latch.Opening{Region: awstest.Region, GroupID: f.group, Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22}, Source: f.request("203.0.113.7", time.Minute).Source}
	if _, _, err := env.Firewall(t).Authorize(t.Context(), o, map[string]string{"owner": "terraform"}); err != nil {
		t.Fatal(err)
	}
	g, err := f.b.Grant(t.Context(), f.request("203.0.113.7", time.Minute))
	if latch.ErrorCode(err) != latch.ECONFLICT {
		t.Fatalf("Grant() = %v, want ECONFLICT", err)
	}
	if f.state(t, g.ID).State != latch.StateFailed {
		t.Error("grant not recorded as failed")
	}
	for _, tags := range f.ruleTags(t) {
		if tags[latch.TagExpiresAt] != "" {
			t.Errorf("the untagged rule was tagged: %v", tags)
		}
	}
}

// Revoking one of two grants on a shared rule says so: the rule was
// handed to the other grant, which holds it until its own expiry; its tags
// and description name that grant. Ending the last one revokes it.
func TestRevokeSharedRuleSaysWhoKeepsIt(t *testing.T) {
	env := awstest.New(t)
	f := newFixture(t, env, broker.Options{})
	a := f.grant(t, "203.0.113.7", 60*time.Minute)
	b := f.grant(t, "203.0.113.7", 30*time.Minute)
	e, err := f.b.Revoke(t.Context(), a.ID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if e.Grant.State != latch.StateRevoked || e.KeptFor == nil || e.KeptFor.ID != b.ID || !e.KeptFor.ExpiresAt.Equal(b.ExpiresAt) {
		t.Fatalf("Revoke(a) = %s, kept for %+v; want revoked, kept for %s until %s", e.Grant.State, e.KeptFor, b.ID, b.ExpiresAt)
	}
	rules := env.Ingress(t, f.group)
	if len(rules) != 1 || awstest.Tags(rules[0])[latch.TagGrantID] != string(b.ID) ||
		!strings.Contains(*rules[0].Description, string(b.ID)) {
		t.Fatalf("rules after Revoke(a): %+v", rules)
	}
	if e, err = f.b.Revoke(t.Context(), b.ID, "alice"); err != nil || e.KeptFor != nil {
		t.Fatalf("Revoke(b) = kept for %+v, %v; want the rule revoked", e.KeptFor, err)
	}
	if n := len(env.Ingress(t, f.group)); n != 0 {
		t.Errorf("%d rules after the last grant ended", n)
	}
}

// mutatingCalls counts the simulator's calls of each EC2 action that
// changes something, or (for DescribeSecurityGroupRules) that reads rules.
func mutatingCalls(sim *ec2sim.Server) map[string]int {
	out := map[string]int{}
	for _, a := range []string{"AuthorizeSecurityGroupIngress", "CreateTags", "DeleteTags", "RevokeSecurityGroupIngress",
		"ModifySecurityGroupRules", "DescribeSecurityGroupRules"} {
		out[a] = sim.Calls(a)
	}
	return out
}

// since returns the calls made after before, leaving out actions not called.
func since(before, now map[string]int) map[string]int {
	out := map[string]int{}
	for a, n := range now {
		if d := n - before[a]; d != 0 {
			out[a] = d
		}
	}
	return out
}

// A grant joining a rule the store knows makes no duplicate Authorize: a
// sharer whose expiry is not later calls nothing in AWS; a later one makes
// one Tag (CreateTags, and the description follows); a rule deleted
// behind latch's back is authorized again by the next sharer that tags it.
func TestSharedRuleCalls(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{})
	sim := env.RequireSim(t, "counts calls")
	f := newFixture(t, env, broker.Options{MaxDuration: 4 * time.Hour})
	const S = 5
	before := mutatingCalls(sim)
	first := f.grant(t, "203.0.113.7", 60*time.Minute)
	if got := since(before, mutatingCalls(sim)); !maps.Equal(got, map[string]int{"AuthorizeSecurityGroupIngress": 1}) {
		t.Fatalf("first grant called %v, want one authorize", got)
	}

	before = mutatingCalls(sim)
	for i := range S - 1 {
		d := 60*time.Minute - time.Duration(i)*10*time.Minute // 60m (as long), 50m, 40m, 30m
		if g := f.grant(t, "203.0.113.7", d); g.RuleID != first.RuleID {
			t.Fatalf("sharer %d opened %s, want %s", i, g.RuleID, first.RuleID)
		}
	}
	if got := since(before, mutatingCalls(sim)); len(got) != 0 {
		t.Errorf("%d sharers whose expiry is not later called %v, want nothing", S-1, got)
	}

	before = mutatingCalls(sim)
	later := f.grant(t, "203.0.113.7", 90*time.Minute)
	got := since(before, mutatingCalls(sim))
	t.Logf("a later sharer called %v", got)
	if got["CreateTags"] != 1 || got["AuthorizeSecurityGroupIngress"] != 0 || got["DeleteTags"] != 0 {
		t.Errorf("a later sharer called %v, want one CreateTags and no authorize", got)
	}
	if later.RuleID != first.RuleID || f.ruleTags(t)[first.RuleID][latch.TagExpiresAt] != latch.FormatExpiry(start.Add(90*time.Minute)) {
		t.Fatalf("after the later sharer: rule %s tags %v, want %s tagged to expire at +90m", later.RuleID, f.ruleTags(t), first.RuleID)
	}

	// Someone deletes the rule in the console.
	if err := env.Firewall(t).Revoke(t.Context(), f.group, first.RuleID); err != nil {
		t.Fatal(err)
	}
	before = mutatingCalls(sim)
	again := f.grant(t, "203.0.113.7", 120*time.Minute)
	got = since(before, mutatingCalls(sim))
	t.Logf("the sharer after the rule was deleted called %v", got)
	if got["AuthorizeSecurityGroupIngress"] != 1 {
		t.Errorf("the sharer after the rule was deleted called %v, want it authorized again", got)
	}
	rules := f.ruleTags(t)
	if again.RuleID == first.RuleID || len(rules) != 1 || rules[again.RuleID][latch.TagExpiresAt] != latch.FormatExpiry(start.Add(120*time.Minute)) {
		t.Fatalf("after re-authorizing: grant on %s, rules %v; want one new rule to +120m", again.RuleID, rules)
	}
	// The next sharer joins the new rule, not the deleted one.
	if g := f.grant(t, "203.0.113.7", 10*time.Minute); g.RuleID != again.RuleID {
		t.Errorf("next sharer joined %s, want the new rule %s", g.RuleID, again.RuleID)
	}
}

// Sharers arriving at once still cost one Authorize: the opening's lock
// makes each later one see the rule the first recorded.
func TestSharedRuleCallsConcurrent(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{})
	sim := env.RequireSim(t, "counts calls")
	f := newFixture(t, env, broker.Options{})
	const S = 10
	before := mutatingCalls(sim)
	var wg sync.WaitGroup
	rules := make([]latch.RuleID, S)
	for i := range S {
		wg.Go(func() {
			g, err := f.b.Grant(t.Context(), f.request("203.0.113.7", 30*time.Minute))
			if err != nil {
				t.Error(err)
			}
			rules[i] = g.RuleID
		})
	}
	wg.Wait()
	if got := since(before, mutatingCalls(sim)); !maps.Equal(got, map[string]int{"AuthorizeSecurityGroupIngress": 1}) {
		t.Errorf("%d concurrent sharers called %v, want one authorize", S, got)
	}
	for _, r := range rules {
		if r != rules[0] {
			t.Fatalf("sharers hold rules %v, want one", rules)
		}
	}
}
