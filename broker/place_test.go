package broker_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

// fullRecorder is an Observer that records GroupFull calls.
type fullRecorder struct {
	mu    sync.Mutex
	calls []string // "full>placed"
}

func (*fullRecorder) GrantOpened()                                     {}
func (*fullRecorder) GrantEnded(latch.GrantState, time.Duration)       {}
func (*fullRecorder) RevokeFailed()                                    {}
func (*fullRecorder) SweepDone(string, time.Duration, int, int, error) {}
func (r *fullRecorder) GroupFull(_ string, full, placed latch.GroupID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, string(full)+">"+string(placed))
}

// placeFixture is a broker on a simulator whose groups hold 3 inbound
// rules per address family, with a managed group f.group already full
// of latch's grants.
func placeFixture(t *testing.T) (*fixture, *fullRecorder) {
	t.Helper()
	rec := &fullRecorder{}
	f := newFixture(t, awstest.NewSim(t, ec2sim.Options{RuleLimit: 3}), broker.Options{Observer: rec})
	for _, src := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		f.grant(t, src, time.Hour)
	}
	return f, rec
}

// groupsOf returns each group's rule count.
func rulesIn(t *testing.T, f *fixture, groups ...latch.GroupID) []int {
	t.Helper()
	var n []int
	for _, g := range groups {
		n = append(n, len(f.env.Ingress(t, g)))
	}
	return n
}

func history(t *testing.T, f *fixture, id latch.GrantID) string {
	t.Helper()
	evs, err := f.store.History(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, e := range evs {
		notes = append(notes, string(e.State)+": "+e.Note)
	}
	return strings.Join(notes, "\n")
}

// When an instance's first managed group is full, the grant opens in the
// next, says so in its history, and is counted.
func TestFullGroupOpensInNext(t *testing.T) {
	f, rec := placeFixture(t)
	next := f.env.ManagedGroup(t)
	in := latch.InstanceID(f.env.Instance(t, nil, f.group, next, f.env.Group(t, nil)))
	before := callCounts(f.env.Sim)
	g, err := f.b.GrantOnInstance(t.Context(), f.request("203.0.113.7", time.Hour), in, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := since(before, callCounts(f.env.Sim))
	t.Logf("a grant placed in the next group called %v", calls)
	if calls["AuthorizeSecurityGroupIngress"] != 2 || calls["CreateTags"] != 0 {
		t.Errorf("placed grant called %v; want one refused authorize and one that opened", calls)
	}
	if g.State != latch.StateActive || g.GroupID != next || f.state(t, g.ID).GroupID != next {
		t.Fatalf("grant = %s in %s, want active in %s", g.State, g.GroupID, next)
	}
	if n := rulesIn(t, f, f.group, next); n[0] != 3 || n[1] != 1 {
		t.Fatalf("rules = %v, want 3 in the full group and 1 in the next", n)
	}
	h := history(t, f, g.ID)
	want := string(f.group) + " is full (3 rules); opened in " + string(next) + "; rule " + string(g.RuleID)
	if !strings.Contains(h, "requested: "+string(f.group)+" is full (3 rules); opening in "+string(next)) || !strings.Contains(h, "active: "+want) {
		t.Errorf("history:\n%s\nwant the move recorded before opening, and %q", h, want)
	}
	if len(rec.calls) != 1 || rec.calls[0] != string(f.group)+">"+string(next) {
		t.Errorf("GroupFull calls = %v", rec.calls)
	}
	// A sharer of that opening joins the rule in the next group.
	if s, err := f.b.GrantOnInstance(t.Context(), f.request("203.0.113.7", 30*time.Minute), in, nil); err != nil || s.RuleID != g.RuleID {
		t.Errorf("sharer = %s, %v; want the rule %s", s.RuleID, err, g.RuleID)
	}
}

// The 61st grant (here the 4th) on an instance with one managed group
// fails, naming the group, the quota and what to do, and leaves nothing
// half-done: the grant failed, no rule added anywhere.
func TestFullOnlyGroupFailsClearly(t *testing.T) {
	f, rec := placeFixture(t)
	unmanaged := f.env.Group(t, nil)
	in := latch.InstanceID(f.env.Instance(t, nil, f.group, unmanaged))
	g, err := f.b.GrantOnInstance(t.Context(), f.request("203.0.113.7", time.Hour), in, nil)
	want := "security group " + string(f.group) + " is full (3 rules); EC2's quota of inbound rules per security group and address family (L-0EA8095F) is 60 by default; it is the only security group of instance " +
		string(in) + " tagged latch:managed=true: attach another security group tagged latch:managed=true to the instance (latch opens the next when one is full), end other grants, or raise the quota"
	if latch.ErrorCode(err) != latch.ECONFLICT || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("GrantOnInstance = %v\nwant ECONFLICT ending %q", err, want)
	}
	t.Logf("error: %v", err)
	if s := f.state(t, g.ID); s.State != latch.StateFailed || s.RuleID != "" || s.GroupID != f.group {
		t.Errorf("grant = %s rule %q in %s, want failed, no rule, in %s", s.State, s.RuleID, s.GroupID, f.group)
	}
	if n := rulesIn(t, f, f.group, unmanaged); n[0] != 3 || n[1] != 0 {
		t.Errorf("rules = %v, want 3 and none in the unmanaged group", n)
	}
	if len(rec.calls) != 1 || rec.calls[0] != string(f.group)+">" {
		t.Errorf("GroupFull calls = %v", rec.calls)
	}
}

// A group the instance carries but whose latch:managed tag was removed is
// never opened, even when it is the only one with room.
func TestFullGroupSkipsUnmanaged(t *testing.T) {
	f, _ := placeFixture(t)
	was := f.env.ManagedGroup(t)
	last := f.env.ManagedGroup(t)
	in := latch.InstanceID(f.env.Instance(t, nil, f.group, was, last))
	if _, err := f.env.EC2.DeleteTags(t.Context(), &ec2.DeleteTagsInput{Resources: []string{string(was)},
		Tags: []types.Tag{{Key: aws.String(latch.TagManaged)}}}); err != nil {
		t.Fatal(err)
	}
	g, err := f.b.GrantOnInstance(t.Context(), f.request("203.0.113.7", time.Hour), in, nil)
	if err != nil || g.GroupID != last {
		t.Fatalf("grant in %s, %v; want %s, skipping %s", g.GroupID, err, last, was)
	}
	// Now remove the tag of the last one too: nothing is left.
	if _, err := f.env.EC2.DeleteTags(t.Context(), &ec2.DeleteTagsInput{Resources: []string{string(last)},
		Tags: []types.Tag{{Key: aws.String(latch.TagManaged)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.b.GrantOnInstance(t.Context(), f.request("203.0.113.8", time.Hour), in, nil); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Fatalf("grant with no managed group left = %v, want ECONFLICT", err)
	}
	if n := rulesIn(t, f, f.group, was, last); n[0] != 3 || n[1] != 0 || n[2] != 1 {
		t.Errorf("rules = %v, want 3, none in the unmanaged group, 1", n)
	}
}

// When every managed group of the instance is full, the error names each.
func TestAllGroupsFull(t *testing.T) {
	f, _ := placeFixture(t)
	second := f.env.ManagedGroup(t)
	in := latch.InstanceID(f.env.Instance(t, nil, f.group, second))
	for _, src := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		if _, err := f.b.GrantOnInstance(t.Context(), f.request(src, time.Hour), in, nil); err != nil {
			t.Fatal(err)
		}
	}
	g, err := f.b.GrantOnInstance(t.Context(), f.request("203.0.113.7", time.Hour), in, nil)
	want := "every security group of instance " + string(in) + " tagged latch:managed=true is full: " + string(f.group) + " is full (3 rules), " + string(second) + " is full (3 rules); EC2's quota"
	if latch.ErrorCode(err) != latch.ECONFLICT || !strings.Contains(err.Error(), want) {
		t.Fatalf("GrantOnInstance = %v\nwant ECONFLICT with %q", err, want)
	}
	t.Logf("error: %v", err)
	if s := f.state(t, g.ID); s.State != latch.StateFailed || s.RuleID != "" {
		t.Errorf("grant = %s rule %q, want failed with no rule", s.State, s.RuleID)
	}
	if n := rulesIn(t, f, f.group, second); n[0] != 3 || n[1] != 3 {
		t.Errorf("rules = %v, want both at 3", n)
	}
}

// A grant asked for a group, not an instance, never opens elsewhere.
func TestFullGroupTargetStays(t *testing.T) {
	f, _ := placeFixture(t)
	f.env.Instance(t, nil, f.group, f.env.ManagedGroup(t))
	_, err := f.b.Grant(t.Context(), f.request("203.0.113.7", time.Hour))
	if latch.ErrorCode(err) != latch.ECONFLICT || !strings.Contains(err.Error(), "ask for the instance instead of the group") {
		t.Fatalf("Grant = %v, want ECONFLICT suggesting an instance", err)
	}
	t.Logf("error: %v", err)
}

// staleInventory answers Instance from a snapshot (a cache, or EC2's
// eventual consistency) and Group afresh.
type staleInventory struct {
	*latchaws.Inventory
	snapshot latch.Instance
}

func (s staleInventory) Instance(context.Context, latch.InstanceID) (latch.Instance, error) {
	return s.snapshot, nil
}

// Even when the instance's read still shows a group as managed, the
// group's own read decides: a group whose tag is gone is never opened.
func TestFullGroupSkipsUnmanagedOnStaleInstance(t *testing.T) {
	f, _ := placeFixture(t)
	was := f.env.ManagedGroup(t)
	in := latch.InstanceID(f.env.Instance(t, nil, f.group, was))
	inv := latchaws.NewInventory(f.env.Config(), nil)
	snap, err := inv.Instance(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.env.EC2.DeleteTags(t.Context(), &ec2.DeleteTagsInput{Resources: []string{string(was)},
		Tags: []types.Tag{{Key: aws.String(latch.TagManaged)}}}); err != nil {
		t.Fatal(err)
	}
	b := broker.New(f.store, []latch.Firewall{f.env.Firewall(t)}, map[string]broker.GroupLookup{awstest.Region: staleInventory{inv, snap}},
		broker.Options{Clock: f.clock})
	if _, err := b.GrantOnInstance(t.Context(), f.request("203.0.113.7", time.Hour), in, nil); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Fatalf("GrantOnInstance = %v, want ECONFLICT", err)
	}
	if n := rulesIn(t, f, was); n[0] != 0 {
		t.Errorf("%d rules in the group whose managed tag was removed", n[0])
	}
}

func callCounts(sim *ec2sim.Server) map[string]int {
	out := mutatingCalls(sim)
	for _, a := range []string{"DescribeInstances", "DescribeSecurityGroups"} {
		out[a] = sim.Calls(a)
	}
	return out
}
