package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/reconcile"
)

// finding is a reconcile.Finding as --json prints it.
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
		Example: `  latch audit reconcile
  latch audit reconcile --since 2h --region us-east-1,eu-west-1 --json
  latch audit reconcile --revert --audit-key /etc/latch/audit.pem   # revoke what latch did not open`,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.reconcile(cmd.Context(), since, revert, asJSON) },
	}
	cmd.Flags().StringVar(&since, "since", "24h", "how far back to read CloudTrail: a duration or an RFC 3339 time")
	cmd.Flags().BoolVar(&revert, "revert", false, "revoke the out-of-band rules found")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	a.addFlags(cmd, awsFlags, dbFlags, auditKeyFlags)
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
	actor := ""
	if revert {
		actor = a.directActor(ctx, a.regions[0])
	}
	for _, region := range a.regions {
		cfg, err := a.awsConfig(ctx, region)
		if err != nil {
			return err
		}
		r := reconcile.Reconciler{Groups: latchaws.NewInventory(cfg, nil), Rules: latchaws.NewFirewall(cfg, nil),
			Trail: trailEvents{latchaws.NewTrail(cfg)}, Store: store, Clock: a.clock,
			Revert: revert, Actor: actor, Sign: sign, Log: a.log, Notify: store.EnqueueEvent}
		fs, err := r.Run(ctx, since)
		if err != nil {
			return fmt.Errorf("reconcile %s: %w", region, err)
		}
		for _, f := range fs {
			found = append(found, finding{Kind: f.Kind, Group: string(f.Group), Rule: f.Rule, Grant: string(f.Grant), Actor: f.Actor,
				EventID: f.EventID, At: f.At, Message: f.Message, Reverted: f.Reverted})
		}
	}
	if asJSON {
		if found == nil {
			found = []finding{}
		}
		if err := writeJSON(a.stdout, struct {
			Findings []finding `json:"findings"`
		}{found}); err != nil {
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

// trailEvents reads CloudTrail for the reconciler.
type trailEvents struct{ t *latchaws.Trail }

func (t trailEvents) Events(ctx context.Context, name string, start, end time.Time) ([]reconcile.Event, error) {
	evs, err := t.t.Events(ctx, name, start, end)
	out := make([]reconcile.Event, 0, len(evs))
	for _, e := range evs {
		out = append(out, reconcile.Event{ID: e.ID, Name: e.Name, Time: e.Time, Actor: e.Actor, ErrorCode: e.ErrorCode,
			GroupID: e.GroupID, RuleIDs: e.RuleIDs, CIDRs: e.CIDRs, Ports: e.Ports, Resources: e.Resources, Tags: e.Tags,
			SourceIdentity: e.SourceIdentity, SessionID: e.SessionID, Target: e.Target, Document: e.Document, Reason: e.Reason})
	}
	return out, err
}
