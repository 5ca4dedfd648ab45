package broker_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/latchdev/latch"
	at "github.com/latchdev/latch/internal/accesstest"
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
	fw := f.Env.Firewall(t)
	for i := range 60 {
		o := latch.Opening{Region: "us-east-1", GroupID: a, Protocol: latch.TCP, Ports: latch.PortRange{From: 443, To: 443},
			Source: netip.MustParsePrefix(fmt.Sprintf("192.0.2.%d/32", i+1))}
		if _, _, err := fw.Authorize(t.Context(), o, map[string]string{"owner": "app"}); err != nil {
			t.Fatal(err)
		}
	}
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
