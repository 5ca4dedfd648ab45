package reconcile_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/mock"
	"github.com/latchdev/latch/reconcile"
	"github.com/latchdev/latch/sqlite"
)

var start = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

const group latch.GroupID = "sg-0000000000000000a"

// cloud is one region's groups, rules and CloudTrail.
type cloud struct {
	rules   []latch.Rule
	events  []reconcile.Event
	revoked []latch.RuleID
}

func (c *cloud) ManagedGroups(context.Context) ([]latch.Group, error) {
	return []latch.Group{{ID: group, Tags: map[string]string{latch.TagManaged: "true"}}}, nil
}

func (c *cloud) GroupRules(_ context.Context, g latch.GroupID) ([]latch.Rule, error) {
	return c.rules, nil
}

func (c *cloud) Revoke(_ context.Context, _ latch.GroupID, id latch.RuleID) error {
	c.revoked = append(c.revoked, id)
	return nil
}

func (c *cloud) Events(_ context.Context, name string, _, _ time.Time) ([]reconcile.Event, error) {
	var out []reconcile.Event
	for _, e := range c.events {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out, nil
}

// store holds grants, their history and the audit log.
type store struct {
	grants  []latch.Grant
	history map[latch.GrantID][]latch.GrantEvent
	audit   []latch.AuditEntry
}

func (s *store) Grants(context.Context, latch.GrantFilter) ([]latch.Grant, error) {
	return s.grants, nil
}

func (s *store) History(_ context.Context, id latch.GrantID) ([]latch.GrantEvent, error) {
	return s.history[id], nil
}

func (s *store) AppendAudit(_ context.Context, e latch.AuditEntry, _ func(string) string) (latch.AuditEntry, error) {
	s.audit = append(s.audit, e)
	return e, nil
}

func opening(src string) latch.Opening {
	return latch.Opening{GroupID: group, Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22}, Source: netip.MustParsePrefix(src)}
}

func kinds(fs []reconcile.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Kind)
	}
	return out
}

func TestRun(t *testing.T) {
	const latchARN, clickops = "arn:aws:iam::123456789012:role/latch", "arn:aws:iam::123456789012:user/clickops"
	ended := start.Add(-30 * time.Minute)
	newWorld := func() (*cloud, *store) {
		c := &cloud{
			rules: []latch.Rule{
				{ID: "sgr-latch", Opening: opening("203.0.113.7/32"), Tags: map[string]string{latch.TagExpiresAt: "2026-11-23T10:10:00Z"}},
				{ID: "sgr-rogue", Opening: opening("198.51.100.0/24")},
			},
			events: []reconcile.Event{
				{ID: "e1", Name: "AuthorizeSecurityGroupIngress", Actor: latchARN, GroupID: string(group), RuleIDs: []string{"sgr-latch"},
					Tags: map[string]string{latch.TagExpiresAt: "2026-11-23T10:10:00Z"}},
				{ID: "e2", Name: "AuthorizeSecurityGroupIngress", Actor: clickops, GroupID: string(group), RuleIDs: []string{"sgr-rogue"}},
				{ID: "e3", Name: "AuthorizeSecurityGroupIngress", Actor: clickops, GroupID: string(group), ErrorCode: "Client.InvalidPermission.Duplicate"},
				{ID: "e4", Name: "CreateTags", Actor: clickops, Resources: []string{"sgr-latch"}, Tags: map[string]string{latch.TagExpiresAt: "2027-01-01T00:00:00Z"}},
			},
		}
		s := &store{
			grants: []latch.Grant{
				{ID: "g-1", GroupID: group, RuleID: "sgr-latch", State: latch.StateActive},
				{ID: "g-2", GroupID: group, RuleID: "sgr-gone", State: latch.StateExpired, EndedAt: ended},
				{ID: "g-3", GroupID: group, RuleID: "sgr-latch", State: latch.StateRevoked, EndedAt: ended},
				{ID: "g-4", GroupID: group, RuleID: "sgr-fresh", State: latch.StateExpired, EndedAt: start.Add(-time.Minute)},
			},
			history: map[latch.GrantID][]latch.GrantEvent{"g-3": {{Note: broker.NoteKept + " g-1 until 10:10"}}},
		}
		return c, s
	}

	t.Run("Report", func(t *testing.T) {
		c, s := newWorld()
		r := reconcile.Reconciler{Groups: c, Rules: c, Trail: c, Store: s, Clock: mock.NewClock(start)}
		found, err := r.Run(t.Context(), start.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		// g-3's rule was handed on to g-1, g-4 ended too recently for
		// CloudTrail to have delivered: neither is reported.
		want := []string{reconcile.OutOfBandRule, reconcile.OutOfBandChange, reconcile.Retagged, reconcile.UnrevokedGrant}
		if got := kinds(found); !slices.Equal(got, want) {
			t.Fatalf("kinds = %v, want %v\n%+v", got, want, found)
		}
		if f := found[0]; f.Rule != "sgr-rogue" || f.Group != group || f.Reverted {
			t.Errorf("out-of-band rule = %+v", f)
		}
		if f := found[1]; f.Actor != clickops || f.EventID != "e2" || f.Rule != "sgr-rogue" {
			t.Errorf("out-of-band change = %+v", f)
		}
		if f := found[3]; f.Grant != "g-2" || f.Rule != "sgr-gone" {
			t.Errorf("unrevoked grant = %+v", f)
		}
		if len(c.revoked) != 0 || len(s.audit) != 0 {
			t.Errorf("without Revert: revoked %v, audit %v", c.revoked, s.audit)
		}
	})

	// Each out-of-band rule is notified once, however many runs find it:
	// the outbox refuses the second event, whose ID is the rule's.
	t.Run("Notify", func(t *testing.T) {
		c, s := newWorld()
		db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latch.db"), sqlite.Options{Now: func() time.Time { return start }})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		r := reconcile.Reconciler{Groups: c, Rules: c, Trail: c, Store: s, Clock: mock.NewClock(start), Notify: db.EnqueueEvent}
		for range 2 {
			if _, err := r.Run(t.Context(), start.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		items, err := db.ClaimEvents(t.Context(), "test", start, time.Minute, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != 1 {
			t.Fatalf("outbox holds %d events after two runs, want one: %+v", len(items), items)
		}
		e := items[0].Event
		if e.Kind != latch.EventRuleOutOfBand || e.RuleID != "sgr-rogue" || e.GroupID != group || e.Source != "198.51.100.0/24" || e.FromPort != 22 {
			t.Errorf("event = %+v, want sgr-rogue's opening", e)
		}
	})

	t.Run("Revert", func(t *testing.T) {
		c, s := newWorld()
		r := reconcile.Reconciler{Groups: c, Rules: c, Trail: c, Store: s, Clock: mock.NewClock(start), Revert: true, Actor: "alice"}
		found, err := r.Run(t.Context(), start.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if !found[0].Reverted || !slices.Equal(c.revoked, []latch.RuleID{"sgr-rogue"}) {
			t.Fatalf("revert: %+v, revoked %v", found[0], c.revoked)
		}
		if len(s.audit) != 1 || s.audit[0].Action != latch.AuditReverted || s.audit[0].Actor != "alice" ||
			s.audit[0].Details["rule_id"] != "sgr-rogue" || !s.audit[0].At.Equal(start) {
			t.Errorf("audit = %+v", s.audit)
		}
	})
}
