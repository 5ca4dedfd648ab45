package broker_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	at "github.com/latchdev/latch/internal/accesstest"
	"github.com/latchdev/latch/policy"
)

// A request for an instance whose first managed group is full opens in its
// next one, and the request (as the API returns it) says so.
func TestRequestOpensInNextGroupAndSaysSo(t *testing.T) {
	f := at.New(t)
	a, b := f.Env.ManagedGroup(t), f.Env.ManagedGroup(t)
	if b < a {
		a, b = b, a
	}
	in := f.Env.Instance(t, map[string]string{"env": "dev", "Name": "multi"}, b, a)
	fillGroup(t, f, a)
	r, err := f.Access.Request(t.Context(), at.Alice, ask(in, 22, home))
	if err != nil {
		t.Fatal(err)
	}
	want := string(a) + " is full (60 rules); opened in " + string(b)
	if r.State != latch.RequestActive || r.Target.GroupID != a || r.Note != want {
		t.Fatalf("request = %s on %s, note %q; want active on %s, note %q", r.State, r.Target.GroupID, r.Note, a, want)
	}
	g, err := f.Store.Grant(t.Context(), r.GrantID)
	if err != nil || g.GroupID != b || len(f.Rules(b)) != 1 || len(f.Rules(a)) != 60 {
		t.Fatalf("grant in %s (%v), rules %d and %d; want one rule in %s", g.GroupID, err, len(f.Rules(a)), len(f.Rules(b)), b)
	}
}

// A rule that names groups gives those groups only: when the instance's
// first managed group, the one the rule names, is full, the grant does not
// move to another of its groups that the rule does not name (which may
// reach other instances too). It fails, saying why, and opens nothing.
func TestPlacementStaysInsideTheRulesGroups(t *testing.T) {
	f := at.New(t)
	a, b := f.Env.ManagedGroup(t), f.Env.ManagedGroup(t)
	if b < a {
		a, b = b, a
	}
	p, err := policy.Parse("groups.yaml", []byte(fmt.Sprintf(`
version: 1
rules:
  - name: group-a-only
    targets: {groups: [%s]}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: auto
`, a)))
	if err != nil {
		t.Fatal(err)
	}
	f.Policy.Set(p)
	in := f.Env.Instance(t, map[string]string{"Name": "multi"}, b, a)
	fillGroup(t, f, a)
	r, err := f.Access.Request(t.Context(), at.Alice, ask(in, 22, home))
	if err == nil || r.State != latch.RequestFailed {
		t.Fatalf("request = %s, %v; want it failed", r.State, err)
	}
	if msg := latch.ErrorMessage(err); !strings.Contains(msg, string(b)+` is not for this request (rule "group-a-only" does not cover`) {
		t.Errorf("refusal %q does not say why %s was passed over", msg, b)
	}
	if n := len(f.Rules(b)); n != 0 {
		t.Errorf("%d rules opened in %s, which the rule does not name", n, b)
	}
}

// fillGroup fills group with EC2's default quota of 60 inbound rules that
// are not latch's.
func fillGroup(t *testing.T, f *at.Fixture, group latch.GroupID) {
	t.Helper()
	fw := f.Env.Firewall(t)
	for i := range 60 {
		o := latch.Opening{Region: "us-east-1", GroupID: group, Protocol: latch.TCP, Ports: latch.PortRange{From: 443, To: 443},
			Source: netip.MustParsePrefix(fmt.Sprintf("192.0.2.%d/32", i+1))}
		if _, _, err := fw.Authorize(t.Context(), o, map[string]string{"owner": "app"}); err != nil {
			t.Fatal(err)
		}
	}
}
