// Package reconcile compares what the cloud and CloudTrail say happened to
// latch-managed security groups with latch's own records, and reports what
// latch did not do, or did not finish: ingress rules without latch's tags,
// ingress calls by other principals, latch's tags changed by someone else,
// and grants that ended with no revoke in CloudTrail. Prove is the same
// comparison for one grant: CloudTrail's record of its rule being opened
// and closed.
//
// It is pure over small interfaces (the groups, their rules, CloudTrail's
// events, the store and a clock); the AWS adapters and the output formats
// live with the caller.
package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
)

// CloudTrail "typically delivers logs within an average of about 5
// minutes"; it is not guaranteed. Until DeliveryBound has passed since a
// call, its event missing from CloudTrail is pending, not missing.
const DeliveryBound = 15 * time.Minute

// The kinds of Finding.
const (
	OutOfBandRule   = "out-of-band-rule"   // an ingress rule in a managed group without latch's tags
	OutOfBandChange = "out-of-band-change" // an ingress call on a managed group not made by latch
	Retagged        = "retagged"           // latch's tags on a rule changed by someone else
	UnrevokedGrant  = "unrevoked-grant"    // a grant that ended with no revoke of its rule in CloudTrail
)

// Finding is one thing the reconciler found that latch did not do, or did
// not finish.
type Finding struct {
	Kind     string // OutOfBandRule, OutOfBandChange, Retagged or UnrevokedGrant
	Group    latch.GroupID
	Rule     string // a rule ID, or several joined with ", "
	Grant    latch.GrantID
	Actor    string // the principal that made the call
	EventID  string // CloudTrail's
	At       time.Time
	Message  string // one line, for people
	Reverted bool   // the rule was revoked (Reconciler.Revert)
}

// Event is one EC2 ingress or tagging call, or one Session Manager
// StartSession or TerminateSession call, as CloudTrail recorded it.
type Event struct {
	ID             string
	Name           string // AuthorizeSecurityGroupIngress, RevokeSecurityGroupIngress, CreateTags, DeleteTags, StartSession, TerminateSession
	Time           time.Time
	Actor          string // the caller's ARN
	SourceIdentity string // the source identity of the caller's role session, if it had one
	ErrorCode      string // set when the call failed
	GroupID        string
	RuleIDs        []string          // rules created (authorize) or named (revoke, tags)
	CIDRs          []string          // sources in the call's permissions
	Ports          []string          // "tcp 22", "tcp 8000-8080", …
	Resources      []string          // CreateTags/DeleteTags: the resources tagged
	Tags           map[string]string // tags set or removed

	// Session Manager calls.
	SessionID string // StartSession's response, TerminateSession's request
	Target    string // StartSession: the instance
	Document  string // StartSession: the document's AWS name, when the call named one
	Reason    string // StartSession: the reason it was given
}

// Trail reads CloudTrail in one region.
type Trail interface {
	// Events returns every successful or failed call named name between
	// start and end.
	Events(ctx context.Context, name string, start, end time.Time) ([]Event, error)
}

// Groups lists the security groups tagged latch:managed=true in one region.
type Groups interface {
	ManagedGroups(ctx context.Context) ([]latch.Group, error)
}

// Rules reads and revokes the ingress rules of a group.
type Rules interface {
	GroupRules(ctx context.Context, group latch.GroupID) ([]latch.Rule, error)
	Revoke(ctx context.Context, group latch.GroupID, rule latch.RuleID) error
}

// Store is the part of latch.Store the reconciler reads and writes.
type Store interface {
	Grants(ctx context.Context, f latch.GrantFilter) ([]latch.Grant, error)
	History(ctx context.Context, id latch.GrantID) ([]latch.GrantEvent, error)
	AppendAudit(ctx context.Context, e latch.AuditEntry, sign func(msg string) string) (latch.AuditEntry, error)
}

var _ Store = latch.Store(nil)

// Reconciler reconciles one region. Every field but Log, Sign, Actor and
// Revert is required.
type Reconciler struct {
	Groups Groups
	Rules  Rules
	Trail  Trail
	Store  Store
	Clock  latch.Clock
	// Revert revokes the out-of-band rules found and records each in the
	// audit log, as Actor, signed with Sign.
	Revert bool
	Actor  string
	Sign   func(msg string) string
	Log    *slog.Logger // where a failure to append to the audit log goes; nil discards
	// Notify, if set, enqueues a rule.out_of_band event for each
	// out-of-band rule found (the store's EnqueueEvent): once per rule,
	// however many runs find it, since the event's ID is the rule's.
	Notify func(ctx context.Context, e latch.Event) error
}

// run is the state of one Run.
type run struct {
	*Reconciler
	since, now time.Time
	managed    map[string]bool
	ours       map[string]bool // rule IDs latch made
	latchBy    map[string]bool // the principals that made them
}

// Run reports what happened since since that latch did not do or did not
// finish, and with Revert revokes the out-of-band rules it finds.
func (r *Reconciler) Run(ctx context.Context, since time.Time) ([]Finding, error) {
	x := &run{Reconciler: r, since: since, now: r.Clock.Now(),
		managed: map[string]bool{}, ours: map[string]bool{}, latchBy: map[string]bool{}}
	groups, err := r.Groups.ManagedGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list managed groups: %w", err)
	}
	for _, g := range groups {
		x.managed[string(g.ID)] = true
	}
	grants, err := r.Store.Grants(ctx, latch.GrantFilter{})
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", err)
	}
	for _, g := range grants {
		if g.RuleID != "" {
			x.ours[string(g.RuleID)] = true
		}
	}
	events := map[string][]Event{}
	for _, name := range []string{"AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress", "CreateTags", "DeleteTags"} {
		if events[name], err = r.Trail.Events(ctx, name, since, x.now); err != nil {
			return nil, fmt.Errorf("read CloudTrail %s events: %w", name, err)
		}
	}
	for _, e := range events["AuthorizeSecurityGroupIngress"] {
		if e.ErrorCode == "" && e.Tags[latch.TagExpiresAt] != "" {
			x.latchBy[e.Actor] = true
			for _, id := range e.RuleIDs {
				x.ours[id] = true
			}
		}
	}
	found, err := x.currentRules(ctx, groups)
	if err != nil {
		return nil, err
	}
	found = append(found, x.changes(events)...)
	return append(found, x.unrevoked(ctx, grants, events["RevokeSecurityGroupIngress"])...), nil
}

// currentRules reports, and with Revert revokes, rules in managed groups
// that carry no latch expiry.
func (x *run) currentRules(ctx context.Context, groups []latch.Group) ([]Finding, error) {
	var found []Finding
	for _, g := range groups {
		rules, err := x.Rules.GroupRules(ctx, g.ID)
		if err != nil {
			return nil, fmt.Errorf("rules of %s: %w", g.ID, err)
		}
		for _, rule := range rules {
			if _, tagged, _ := rule.ExpiresAt(); tagged {
				continue
			}
			f := Finding{Kind: OutOfBandRule, Group: g.ID, Rule: string(rule.ID), Message: fmt.Sprintf(
				"%s in %s opens %s %s from %s and has no %s tag: latch did not make it", rule.ID, g.ID,
				rule.Opening.Protocol, rule.Opening.Ports, rule.Opening.Source, latch.TagExpiresAt)}
			x.notify(ctx, rule)
			if x.Revert {
				if err := x.Rules.Revoke(ctx, g.ID, rule.ID); err != nil {
					return nil, fmt.Errorf("revert %s: %w", rule.ID, err)
				}
				f.Reverted = true
				x.recordRevert(ctx, g.ID, rule)
			}
			found = append(found, f)
		}
	}
	return found, nil
}

// notify enqueues the out-of-band rule's event. A failure is logged, not
// returned: the finding is reported either way, and the next run tries
// again.
func (x *run) notify(ctx context.Context, rule latch.Rule) {
	if x.Notify == nil {
		return
	}
	o := rule.Opening
	e := latch.Event{ID: latch.EventIDFor(latch.EventRuleOutOfBand, string(rule.ID)), Kind: latch.EventRuleOutOfBand, At: x.now,
		Region: o.Region, GroupID: o.GroupID, RuleID: string(rule.ID), Protocol: o.Protocol, FromPort: o.Ports.From, ToPort: o.Ports.To}
	if o.Source.IsValid() {
		e.Source = o.Source.String()
	}
	if err := x.Notify(ctx, e); err != nil && latch.ErrorCode(err) != latch.ECONFLICT {
		x.logger().Error("enqueue out-of-band rule event", "rule_id", rule.ID, "err", err)
	}
}

// changes reports ingress and tag calls on managed groups or latch rules
// by principals that are not latch.
func (x *run) changes(events map[string][]Event) []Finding {
	var found []Finding
	for _, name := range []string{"AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress"} {
		for _, e := range events[name] {
			if e.ErrorCode != "" || !x.managed[e.GroupID] || x.latchBy[e.Actor] || (name == "AuthorizeSecurityGroupIngress" && e.Tags[latch.TagExpiresAt] != "") {
				continue
			}
			found = append(found, Finding{Kind: OutOfBandChange, Group: latch.GroupID(e.GroupID), Rule: joinOr(e.RuleIDs), Actor: e.Actor, EventID: e.ID, At: e.Time,
				Message: fmt.Sprintf("%s on %s by %s at %s (event %s): %s from %s", e.Name, e.GroupID, e.Actor, latch.FormatExpiry(e.Time), e.ID, joinOr(e.Ports), joinOr(e.CIDRs))})
		}
	}
	for _, name := range []string{"CreateTags", "DeleteTags"} {
		for _, e := range events[name] {
			if e.ErrorCode != "" || x.latchBy[e.Actor] || !slices.ContainsFunc(e.Resources, func(id string) bool { return x.ours[id] }) {
				continue
			}
			found = append(found, Finding{Kind: Retagged, Rule: joinOr(e.Resources), Actor: e.Actor, EventID: e.ID, At: e.Time,
				Message: fmt.Sprintf("%s on latch rule %s by %s at %s (event %s): %v", e.Name, joinOr(e.Resources), e.Actor, latch.FormatExpiry(e.Time), e.ID, e.Tags)})
		}
	}
	return found
}

// unrevoked reports grants that ended in the window, long enough ago for
// CloudTrail to have delivered, with no revoke of their rule.
func (x *run) unrevoked(ctx context.Context, grants []latch.Grant, revokes []Event) []Finding {
	revoked := map[string]bool{}
	for _, e := range revokes {
		if e.ErrorCode == "" {
			for _, id := range e.RuleIDs {
				revoked[id] = true
			}
		}
	}
	var found []Finding
	for _, g := range grants {
		if g.RuleID == "" || g.State.Open() || g.EndedAt.Before(x.since) || x.now.Before(g.EndedAt.Add(DeliveryBound)) || revoked[string(g.RuleID)] {
			continue
		}
		if kept, _ := x.keptForAnother(ctx, g); kept {
			continue
		}
		found = append(found, Finding{Kind: UnrevokedGrant, Group: g.GroupID, Rule: string(g.RuleID), Grant: g.ID,
			Message: fmt.Sprintf("grant %s ended (%s) at %s but CloudTrail shows no RevokeSecurityGroupIngress of %s", g.ID, g.State, latch.FormatExpiry(g.EndedAt), g.RuleID)})
	}
	return found
}

// keptForAnother: a shared rule handed on to another grant is revoked when
// that one ends, not this one.
func (x *run) keptForAnother(ctx context.Context, g latch.Grant) (bool, error) {
	note, err := keptNote(ctx, x.Store, g.ID)
	return note != "", err
}

// recordRevert notes a reverted out-of-band rule in the audit log. A
// failure is logged, not returned: the rule is already gone.
func (x *run) recordRevert(ctx context.Context, group latch.GroupID, rule latch.Rule) {
	log := x.logger()
	e, err := x.Store.AppendAudit(ctx, latch.AuditEntry{At: x.Clock.Now().UTC(), Actor: x.Actor, Action: latch.AuditReverted, Target: string(group),
		Details: map[string]string{"rule_id": string(rule.ID), "source": rule.Opening.Source.String(),
			"protocol": string(rule.Opening.Protocol), "ports": rule.Opening.Ports.String(), "by": broker.Actor}}, x.Sign)
	if err != nil {
		log.Error("append to the audit log", "action", latch.AuditReverted, "err", err)
		return
	}
	broker.LogAuditHead(ctx, log, e, x.Sign)
}

func (x *run) logger() *slog.Logger {
	if x.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return x.Log
}

func joinOr(ss []string) string {
	if len(ss) == 0 {
		return "-"
	}
	return strings.Join(ss, ", ")
}
