package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
)

func (a *app) sweepCommand() *cobra.Command {
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "sweep",
		Short: "Revoke every expired latch rule in AWS, once (no database needed)",
		Long: `List every rule tagged latch:expires-at in each --region and revoke those
whose expiry has passed, whoever made them and whether or not any grant
database knows them. It reads AWS alone, so it works after a lost database
or from another machine. A rule whose expiry tag is unreadable counts as
expired.`,
		Example: `  latch sweep --dry-run
  latch sweep --region us-east-1,eu-west-1 --json`,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.sweep(cmd.Context(), dryRun, asJSON) },
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report expired rules without revoking them")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

type sweptJSON struct {
	Region    string        `json:"region"`
	RuleID    latch.RuleID  `json:"rule_id"`
	GroupID   latch.GroupID `json:"group_id"`
	Source    string        `json:"source"`
	Ports     string        `json:"ports"`
	GrantID   string        `json:"grant_id,omitempty"`
	ExpiresAt string        `json:"expires_at"`
	Revoked   bool          `json:"revoked"`
	Error     string        `json:"error,omitempty"`
}

func (a *app) sweep(ctx context.Context, dryRun, asJSON bool) error {
	fws, err := a.firewalls(ctx, a.regions)
	if err != nil {
		return err
	}
	now := a.clock.Now()
	reports, sweepErr := broker.Sweep(ctx, fws, now, dryRun, a.log.With("component", "sweep"))
	out := []sweptJSON{}
	for _, rep := range reports {
		for _, s := range rep.Swept {
			o := s.Rule.Opening
			out = append(out, sweptJSON{Region: rep.Region, RuleID: s.Rule.ID, GroupID: o.GroupID, Source: o.Source.String(),
				Ports: string(o.Protocol) + " " + o.Ports.String(), GrantID: s.Rule.Tags[latch.TagGrantID],
				ExpiresAt: s.Rule.Tags[latch.TagExpiresAt], Revoked: s.Revoked, Error: errString(s.Err)})
		}
	}
	if asJSON {
		if err := writeJSON(a.stdout, out); err != nil {
			return err
		}
	} else {
		a.printSweep(reports, out, dryRun)
	}
	return sweepErr
}

func (a *app) printSweep(reports []broker.SweepReport, swept []sweptJSON, dryRun bool) {
	for _, rep := range reports {
		fmt.Fprintf(a.stdout, "%s: %d latch rule(s) found\n", rep.Region, rep.Rules)
	}
	verb := "revoked"
	if dryRun {
		verb = "would revoke"
	}
	for _, s := range swept {
		status := verb
		if s.Error != "" {
			status = "FAILED: " + esc(s.Error)
		}
		// Tag values are anyone's with ec2:CreateTags on the group.
		fmt.Fprintf(a.stdout, "  %s %s in %s (%s from %s, grant %s, expired %s)\n", status, esc(s.RuleID), esc(s.GroupID), esc(s.Ports), esc(s.Source), esc(s.GrantID), esc(s.ExpiresAt))
	}
	if len(swept) == 0 {
		fmt.Fprintln(a.stdout, "Nothing expired.")
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
