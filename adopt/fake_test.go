package adopt_test

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/adopt"
	"github.com/latchdev/latch/mock"
	"github.com/latchdev/latch/sqlite"
)

var epoch = time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC)

const planID = "adopt-20261205-0000beef"

// fakeCloud is an AdoptCloud over an estate's groups and interfaces: it
// keeps what the calls change, records each call, fails the calls named in
// fail, and checks on its first call that the plan is in the audit log.
type fakeCloud struct {
	t      *testing.T
	log    adopt.AuditLog
	rules  map[latch.GroupID][]latch.IngressRule
	vpcOf  map[latch.GroupID]string
	tags   map[latch.GroupID]map[string]string
	ifaces map[latch.InstanceID][]latch.NetworkInterface
	calls  []string
	fail   map[string]bool // "RemoveRule sgr-x": that call fails
	seen   bool            // a call was made
	next   int
}

func newFake(t *testing.T, e latch.Estate, log adopt.AuditLog) *fakeCloud {
	f := &fakeCloud{t: t, log: log, rules: map[latch.GroupID][]latch.IngressRule{}, vpcOf: map[latch.GroupID]string{},
		tags: map[latch.GroupID]map[string]string{}, ifaces: map[latch.InstanceID][]latch.NetworkInterface{}, fail: map[string]bool{}}
	for _, g := range e.Groups {
		f.rules[g.ID] = slices.Clone(g.Ingress)
		f.vpcOf[g.ID] = g.VPC
		f.tags[g.ID] = maps.Clone(g.Tags)
	}
	for _, in := range e.Instances {
		var nis []latch.NetworkInterface
		for _, ni := range in.Interfaces {
			nis = append(nis, latch.NetworkInterface{ID: ni.ID, DeviceIndex: ni.DeviceIndex, Groups: slices.Clone(ni.Groups)})
		}
		f.ifaces[in.ID] = nis
	}
	return f
}

// call records name and checks, on the first call, that the plan was
// recorded before any change.
func (f *fakeCloud) call(ctx context.Context, name string) error {
	f.t.Helper()
	if !f.seen {
		f.seen = true
		es, err := f.log.AuditEntries(ctx, latch.AuditFilter{Target: planID})
		if err != nil {
			f.t.Fatal(err)
		}
		if len(es) == 0 || es[0].Action != latch.AuditAdoptPlanned {
			f.t.Errorf("the first cloud call (%s) came before the plan was recorded: entries %v", name, actions(es))
		}
	}
	f.calls = append(f.calls, name)
	if f.fail[name] {
		return fmt.Errorf("%s: UnauthorizedOperation: refused by the test", name)
	}
	return nil
}

func (f *fakeCloud) CreateGroup(ctx context.Context, vpc, name, description string, tags map[string]string) (latch.GroupID, error) {
	if err := f.call(ctx, "CreateGroup "+vpc); err != nil {
		return "", err
	}
	f.next++
	id := latch.GroupID(fmt.Sprintf("sg-new%d", f.next))
	f.rules[id], f.vpcOf[id], f.tags[id] = nil, vpc, maps.Clone(tags)
	return id, nil
}

func (f *fakeCloud) SetInstanceGroups(ctx context.Context, id latch.InstanceID, groups []latch.GroupID) error {
	if err := f.call(ctx, "SetInstanceGroups "+string(id)); err != nil {
		return err
	}
	if len(f.ifaces[id]) != 1 {
		return fmt.Errorf("%s has %d interfaces: ModifyInstanceAttribute sets one only", id, len(f.ifaces[id]))
	}
	f.ifaces[id][0].Groups = slices.Clone(groups)
	return nil
}

func (f *fakeCloud) SetInterfaceGroups(ctx context.Context, eni string, groups []latch.GroupID) error {
	if err := f.call(ctx, "SetInterfaceGroups "+eni); err != nil {
		return err
	}
	for _, nis := range f.ifaces {
		for i := range nis {
			if nis[i].ID == eni {
				nis[i].Groups = slices.Clone(groups)
				return nil
			}
		}
	}
	return fmt.Errorf("no interface %s", eni)
}

func (f *fakeCloud) RemoveRule(ctx context.Context, group latch.GroupID, id latch.RuleID) error {
	if err := f.call(ctx, "RemoveRule "+string(id)); err != nil {
		return err
	}
	f.rules[group] = slices.DeleteFunc(f.rules[group], func(r latch.IngressRule) bool { return r.ID == id })
	return nil
}

func (f *fakeCloud) RestoreRule(ctx context.Context, r latch.IngressRule) (latch.RuleID, error) {
	if err := f.call(ctx, "RestoreRule "+string(r.ID)); err != nil {
		return "", err
	}
	f.next++
	r.ID = latch.RuleID(fmt.Sprintf("sgr-new%d", f.next))
	f.rules[r.GroupID] = append(f.rules[r.GroupID], r)
	return r.ID, nil
}

func (f *fakeCloud) DeleteGroup(ctx context.Context, id latch.GroupID) error {
	if err := f.call(ctx, "DeleteGroup "+string(id)); err != nil {
		return err
	}
	for in, nis := range f.ifaces {
		for _, ni := range nis {
			if slices.Contains(ni.Groups, id) {
				return fmt.Errorf("DependencyViolation: %s is in use by %s", id, in)
			}
		}
	}
	delete(f.rules, id)
	delete(f.vpcOf, id)
	delete(f.tags, id)
	return nil
}

// mutating lists the calls made, for tests that check none or some were.
func (f *fakeCloud) mutating() []string { return slices.Clone(f.calls) }

// readingCloud is a fakeCloud that can read interfaces, so Undo checks drift.
type readingCloud struct{ *fakeCloud }

func (r readingCloud) InstanceInterfaces(ctx context.Context, ids []latch.InstanceID) (map[latch.InstanceID][]latch.NetworkInterface, error) {
	out := map[latch.InstanceID][]latch.NetworkInterface{}
	for _, id := range ids {
		if nis, ok := r.ifaces[id]; ok {
			out[id] = slices.Clone(nis)
		}
	}
	return out, nil
}

func openLog(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latch.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func actions(es []latch.AuditEntry) []string {
	var out []string
	for _, e := range es {
		s := string(e.Action)
		if k := e.Details["kind"]; k != "" {
			s += " " + k
		}
		out = append(out, s)
	}
	return out
}

func entries(t *testing.T, log adopt.AuditLog, id string) []latch.AuditEntry {
	t.Helper()
	es, err := log.AuditEntries(t.Context(), latch.AuditFilter{Target: id})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func rule(id, group, proto string, from, to int, src string) latch.IngressRule {
	r := latch.IngressRule{ID: latch.RuleID(id), GroupID: latch.GroupID(group), Protocol: proto, FromPort: from, ToPort: to}
	switch {
	case strings.HasPrefix(src, "sg-"):
		r.SourceGroup = latch.GroupID(src)
	case strings.HasPrefix(src, "pl-"):
		r.PrefixList = src
	default:
		r.CIDR = netip.MustParsePrefix(src)
	}
	return r
}

func iface(eni string, idx int, groups ...latch.GroupID) latch.NetworkInterface {
	return latch.NetworkInterface{ID: eni, DeviceIndex: idx, Groups: groups}
}

func instance(id, name string, groups ...latch.GroupID) latch.EstateInstance {
	return latch.EstateInstance{ID: latch.InstanceID(id), Name: name, State: "running", VPC: "vpc-1",
		Groups: groups, Interfaces: []latch.NetworkInterface{iface("eni-"+id[2:], 0, groups...)}}
}

// fleet is one VPC with the usual mistakes:
//   - sg-web: ssh from the world (standing, with a description and tags),
//     https from the world and ssh from the bastion group (neither standing);
//   - sg-db: ssh from the world, its only rule;
//   - sg-shared: RDP from ::/0 (standing), on i-web and on i-other;
//   - sg-m: latch:managed, with one of latch's rules only: reusable.
//
// i-web carries sg-web and sg-shared; i-db carries sg-db (no SSM);
// i-other carries sg-shared and is never a target.
func fleet() latch.Estate {
	ssh := rule("sgr-w22", "sg-web", "tcp", 22, 22, "0.0.0.0/0")
	ssh.Description, ssh.Tags = "ssh for the on-call", map[string]string{"team": "web", "ticket": "OPS-7"}
	grant := rule("sgr-m1", "sg-m", "tcp", 22, 22, "203.0.113.7/32")
	grant.Tags = map[string]string{latch.TagExpiresAt: "2026-12-05T03:00:00Z", latch.TagGrantID: "g-1"}
	return latch.Estate{
		Region: "eu-west-1",
		Groups: []latch.EstateGroup{
			{ID: "sg-web", Name: "web", VPC: "vpc-1", Ingress: []latch.IngressRule{
				ssh, rule("sgr-w443", "sg-web", "tcp", 443, 443, "0.0.0.0/0"), rule("sgr-wb", "sg-web", "tcp", 22, 22, "sg-bastion")}},
			{ID: "sg-db", Name: "db", VPC: "vpc-1", Ingress: []latch.IngressRule{rule("sgr-d22", "sg-db", "tcp", 22, 22, "0.0.0.0/0")}},
			{ID: "sg-shared", Name: "shared", VPC: "vpc-1", Ingress: []latch.IngressRule{rule("sgr-s3389", "sg-shared", "tcp", 3389, 3389, "::/0")}},
			{ID: "sg-m", Name: "latch-managed", VPC: "vpc-1", Tags: map[string]string{latch.TagManaged: "true"}, Ingress: []latch.IngressRule{grant}},
			{ID: "sg-bastion", Name: "bastion", VPC: "vpc-1"},
		},
		Instances: []latch.EstateInstance{
			instance("i-web", "web-1", "sg-web", "sg-shared"),
			instance("i-db", "db-1", "sg-db"),
			instance("i-other", "other", "sg-shared"),
		},
	}
}

// standing is what a scan of fleet finds: the world's rules on admin ports.
func standing(r latch.IngressRule) (string, bool) {
	switch r.ID {
	case "sgr-w22", "sgr-d22", "sgr-s3389":
		return "F-" + string(r.ID), true
	}
	return "", false
}

func input(e latch.Estate, targets ...latch.InstanceID) adopt.Input {
	return adopt.Input{Estate: e, Targets: targets, Standing: standing, Now: epoch, Actor: "alice@example.com",
		NewID: func() string { return planID }}
}

func mustPlan(t *testing.T, in adopt.Input) adopt.Plan {
	t.Helper()
	p, err := adopt.NewPlan(in)
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	return p
}

func clock() *mock.Clock { return mock.NewClock(epoch) }
