package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/broker"
)

// finding is one thing reconcile found that latch did not do, or did not
// finish.
type finding struct {
	Kind     string    `json:"kind"` // out-of-band-rule, out-of-band-change, retagged, unrevoked-grant
	Group    string    `json:"group_id,omitempty"`
	Rule     string    `json:"rule_id,omitempty"`
	Grant    string    `json:"grant_id,omitempty"`
	Actor    string    `json:"actor,omitempty"`
	EventID  string    `json:"event_id,omitempty"`
	At       time.Time `json:"at,omitzero"`
	Message  string    `json:"message"`
	Reverted bool      `json:"reverted,omitempty"`
}

func (a *app) auditReconcileCommand() *cobra.Command {
	var since string
	var revert, asJSON bool
	cmd := &cobra.Command{
		Use:   "reconcile [--since 24h] [--revert]",
		Short: "Find ingress changes on latch-managed groups that latch did not make",
		Long: `Compare AWS and CloudTrail with latch's records, for every security group
tagged latch:managed=true in each --region:

  out-of-band-rule     an ingress rule in a managed group without latch's tags
  out-of-band-change   an ingress call on a managed group not made by latch
  retagged             latch's tags on a rule changed by someone else
  unrevoked-grant      a grant that ended with no RevokeSecurityGroupIngress
                       in CloudTrail (once CloudTrail has had time to deliver)

--revert revokes the out-of-band rules found, and records it in the audit
log. Exits 1 when anything is found, so it can run from cron.`,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.reconcile(cmd.Context(), since, revert, asJSON) },
	}
	cmd.Flags().StringVar(&since, "since", "24h", "how far back to read CloudTrail: a duration or an RFC 3339 time")
	cmd.Flags().BoolVar(&revert, "revert", false, "revoke the out-of-band rules found")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) reconcile(ctx context.Context, sinceFlag string, revert, asJSON bool) error {
	now := a.clock.Now()
	since, err := parseSince(sinceFlag, now)
	if err != nil {
		return err
	}
	sign, err := a.auditSigner() // a bad key is refused before anything is reverted
	if err != nil {
		return err
	}
	store, err := a.store(ctx)
	if err != nil {
		return err
	}
	var found []finding
	for _, region := range a.regions {
		cfg, err := a.awsConfig(ctx, region)
		if err != nil {
			return err
		}
		r := reconciler{app: a, store: store, sign: sign, inv: latchaws.NewInventory(cfg, nil), fw: latchaws.NewFirewall(cfg, nil),
			trail: latchaws.NewTrail(cfg), since: since, now: now, revert: revert}
		fs, err := r.run(ctx)
		if err != nil {
			return fmt.Errorf("reconcile %s: %w", region, err)
		}
		found = append(found, fs...)
	}
	if asJSON {
		if err := writeJSON(a.stdout, found); err != nil {
			return err
		}
	} else {
		for _, f := range found {
			fmt.Fprintf(a.stdout, "%-18s %s", f.Kind, esc(f.Message))
			if f.Reverted {
				fmt.Fprint(a.stdout, " (reverted)")
			}
			fmt.Fprintln(a.stdout)
		}
		if len(found) == 0 {
			fmt.Fprintf(a.stdout, "Nothing found since %s: every ingress change on managed groups was latch's.\n", latch.FormatExpiry(since))
		}
	}
	if len(found) > 0 {
		return fmt.Errorf("%d finding(s)", len(found))
	}
	return nil
}

type reconciler struct {
	app     *app
	store   latch.Store
	inv     *latchaws.Inventory
	fw      *latchaws.Firewall
	trail   *latchaws.Trail
	since   time.Time
	now     time.Time
	revert  bool
	sign    func(string) string
	managed map[string]bool
	ours    map[string]bool // rule IDs latch made
	latchBy map[string]bool // the principals that made them
}

func (r *reconciler) run(ctx context.Context) ([]finding, error) {
	groups, err := r.inv.ManagedGroups(ctx)
	if err != nil {
		return nil, err
	}
	r.managed, r.ours, r.latchBy = map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, g := range groups {
		r.managed[string(g.ID)] = true
	}
	grants, err := r.store.Grants(ctx, latch.GrantFilter{})
	if err != nil {
		return nil, err
	}
	for _, g := range grants {
		if g.RuleID != "" {
			r.ours[string(g.RuleID)] = true
		}
	}
	events := map[string][]latchaws.TrailEvent{}
	for _, name := range []string{"AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress", "CreateTags", "DeleteTags"} {
		if events[name], err = r.trail.Events(ctx, name, r.since, r.now); err != nil {
			return nil, err
		}
	}
	for _, e := range events["AuthorizeSecurityGroupIngress"] {
		if e.ErrorCode == "" && e.Tags[latch.TagExpiresAt] != "" {
			r.latchBy[e.Actor] = true
			for _, id := range e.RuleIDs {
				r.ours[id] = true
			}
		}
	}
	found, err := r.currentRules(ctx, groups)
	if err != nil {
		return nil, err
	}
	found = append(found, r.changes(events)...)
	return append(found, r.unrevoked(grants, events["RevokeSecurityGroupIngress"])...), nil
}

// currentRules reports, and with --revert revokes, rules in managed groups
// that carry no latch expiry.
func (r *reconciler) currentRules(ctx context.Context, groups []latch.Group) ([]finding, error) {
	var found []finding
	for _, g := range groups {
		rules, err := r.fw.GroupRules(ctx, g.ID)
		if err != nil {
			return nil, err
		}
		for _, rule := range rules {
			if _, tagged, _ := rule.ExpiresAt(); tagged {
				continue
			}
			f := finding{Kind: "out-of-band-rule", Group: string(g.ID), Rule: string(rule.ID), Message: fmt.Sprintf(
				"%s in %s opens %s %s from %s and has no %s tag: latch did not make it", rule.ID, g.ID,
				rule.Opening.Protocol, rule.Opening.Ports, rule.Opening.Source, latch.TagExpiresAt)}
			if r.revert {
				if err := r.fw.Revoke(ctx, g.ID, rule.ID); err != nil {
					return nil, fmt.Errorf("revert %s: %w", rule.ID, err)
				}
				f.Reverted = true
				r.app.recordRevert(ctx, r.store, r.sign, g.ID, rule)
			}
			found = append(found, f)
		}
	}
	return found, nil
}

// changes reports ingress and tag calls on managed groups or latch rules
// by principals that are not latch.
func (r *reconciler) changes(events map[string][]latchaws.TrailEvent) []finding {
	var found []finding
	for _, name := range []string{"AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress"} {
		for _, e := range events[name] {
			if e.ErrorCode != "" || !r.managed[e.GroupID] || r.latchBy[e.Actor] || (name == "AuthorizeSecurityGroupIngress" && e.Tags[latch.TagExpiresAt] != "") {
				continue
			}
			found = append(found, finding{Kind: "out-of-band-change", Group: e.GroupID, Rule: joinOr(e.RuleIDs), Actor: e.Actor, EventID: e.ID, At: e.Time,
				Message: fmt.Sprintf("%s on %s by %s at %s (event %s): %s from %s", e.Name, e.GroupID, e.Actor, latch.FormatExpiry(e.Time), e.ID, joinOr(e.Ports), joinOr(e.CIDRs))})
		}
	}
	for _, name := range []string{"CreateTags", "DeleteTags"} {
		for _, e := range events[name] {
			if e.ErrorCode != "" || r.latchBy[e.Actor] || !slices.ContainsFunc(e.Resources, func(id string) bool { return r.ours[id] }) {
				continue
			}
			found = append(found, finding{Kind: "retagged", Rule: joinOr(e.Resources), Actor: e.Actor, EventID: e.ID, At: e.Time,
				Message: fmt.Sprintf("%s on latch rule %s by %s at %s (event %s): %v", e.Name, joinOr(e.Resources), e.Actor, latch.FormatExpiry(e.Time), e.ID, e.Tags)})
		}
	}
	return found
}

// unrevoked reports grants that ended in the window, long enough ago for
// CloudTrail to have delivered, with no revoke of their rule.
func (r *reconciler) unrevoked(grants []latch.Grant, revokes []latchaws.TrailEvent) []finding {
	revoked := map[string]bool{}
	for _, e := range revokes {
		if e.ErrorCode == "" {
			for _, id := range e.RuleIDs {
				revoked[id] = true
			}
		}
	}
	var found []finding
	for _, g := range grants {
		if g.RuleID == "" || g.State.Open() || g.EndedAt.Before(r.since) || r.now.Before(g.EndedAt.Add(deliveryBound)) || revoked[string(g.RuleID)] {
			continue
		}
		if kept, _ := r.keptForAnother(g); kept {
			continue
		}
		found = append(found, finding{Kind: "unrevoked-grant", Group: string(g.GroupID), Rule: string(g.RuleID), Grant: string(g.ID),
			Message: fmt.Sprintf("grant %s ended (%s) at %s but CloudTrail shows no RevokeSecurityGroupIngress of %s", g.ID, g.State, latch.FormatExpiry(g.EndedAt), g.RuleID)})
	}
	return found
}

// keptForAnother: a shared rule handed on to another grant is revoked when
// that one ends, not this one.
func (r *reconciler) keptForAnother(g latch.Grant) (bool, error) {
	hist, err := r.store.History(context.Background(), g.ID)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(hist, func(e latch.GrantEvent) bool { return strings.HasPrefix(e.Note, broker.NoteKept) }), nil
}

// recordRevert notes a reverted out-of-band rule in the audit log.
func (a *app) recordRevert(ctx context.Context, store latch.Store, sign func(string) string, group latch.GroupID, rule latch.Rule) {
	e, err := store.AppendAudit(ctx, latch.AuditEntry{At: a.clock.Now().UTC(), Actor: a.localUser(), Action: latch.AuditReverted, Target: string(group),
		Details: map[string]string{"rule_id": string(rule.ID), "source": rule.Opening.Source.String(),
			"protocol": string(rule.Opening.Protocol), "ports": rule.Opening.Ports.String(), "by": broker.Actor}}, sign)
	if err != nil {
		a.log.Error("append to the audit log", "action", latch.AuditReverted, "err", err)
		return
	}
	broker.LogAuditHead(ctx, a.log, e, sign)
}
