package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

// latch grant --instance opens in the instance's next managed group when
// the first is full, as the server does, and says where in its JSON; with
// every group full it fails, naming them, and opens nothing.
func TestGrantOnInstanceOpensInTheNextGroup(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{RuleLimit: 1})
	w := worldOn(t, env, t.TempDir())
	groups := []latch.GroupID{w.group, env.ManagedGroup(t)}
	slices.Sort(groups) // latch tries an instance's managed groups in ID order
	env.Instance(t, map[string]string{"Name": "web-9"}, groups...)
	var got []latch.GroupID
	for _, ip := range []string{"203.0.113.1", "203.0.113.2"} {
		r := w.latch(t, "grant", "--instance", "web-9", "--ip", ip, "--for", "5m", "--reason", "deploy", "--detach", "--json")
		if r.code != 0 {
			t.Fatalf("grant from %s: exit %d: %s", ip, r.code, r.stderr)
		}
		var g struct {
			Grant struct {
				GroupID latch.GroupID `json:"group_id"`
			} `json:"grant"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &g); err != nil {
			t.Fatalf("%v\n%s", err, r.stdout)
		}
		got = append(got, g.Grant.GroupID)
	}
	if !slices.Equal(got, groups) {
		t.Errorf("grants opened in %v; want the first group, then the next (%v)", got, groups)
	}
	r := w.latch(t, "grant", "--instance", "web-9", "--ip", "203.0.113.3", "--for", "5m", "--reason", "deploy", "--detach", "--json")
	if r.code != 1 || !strings.Contains(r.stderr, "every security group of instance") || !strings.Contains(r.stderr, string(groups[0])+" is full") || !strings.Contains(r.stderr, string(groups[1])+" is full") {
		t.Errorf("a grant with every group full: exit %d, %s; want exit 1 naming both groups", r.code, r.stderr)
	}
	for _, g := range groups {
		if n := len(env.Ingress(t, g)); n != 1 {
			t.Errorf("%s has %d rules; want 1", g, n)
		}
	}
}
