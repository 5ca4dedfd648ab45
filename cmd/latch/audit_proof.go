package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/reconcile"
)

// proofSide is a reconcile.ProofSide as --json prints it.
type proofSide struct {
	Status  string    `json:"status"` // found, pending, missing, not-yet, kept
	EventID string    `json:"event_id,omitempty"`
	Event   string    `json:"event,omitempty"`
	At      time.Time `json:"at,omitzero"`
	Actor   string    `json:"actor,omitempty"`
	What    string    `json:"what,omitempty"`
	Note    string    `json:"note,omitempty"`
}

func (a *app) auditProofCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "proof GRANT_ID",
		Short: "Show CloudTrail's record of a grant's rule being opened and closed",
		Long: `Look up, in CloudTrail, the AuthorizeSecurityGroupIngress call that created
the grant's rule and the RevokeSecurityGroupIngress call that removed it,
and print both: who, when, what, and the event IDs.

CloudTrail delivers management events about 5 minutes after the call (not
guaranteed). An event not yet delivered is reported as pending, with when
it is expected; only after 15 minutes is it missing (exit 1).`,
		Example: `  latch audit proof g-3f9a0c1d2e4b5a69
  latch audit proof g-3f9a0c1d2e4b5a69 --json --region eu-west-1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return a.auditProof(cmd.Context(), args[0], asJSON) },
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	a.addFlags(cmd, awsFlags, dbFlags)
	return cmd
}

func (a *app) auditProof(ctx context.Context, arg string, asJSON bool) error {
	id, err := latch.ParseGrantID(arg)
	if err != nil {
		return err
	}
	store, err := a.store(ctx)
	if err != nil {
		return err
	}
	g, err := store.Grant(ctx, id)
	if err != nil {
		return err
	}
	cfg, err := a.awsConfig(ctx, g.Region)
	if err != nil {
		return err
	}
	p, err := reconcile.Prove(ctx, trailEvents{latchaws.NewTrail(cfg)}, store, g, a.clock.Now())
	if err != nil {
		return err
	}
	opened, closed := proofSideJSON(p.Opened), proofSideJSON(p.Closed)
	if asJSON {
		if err := writeJSON(a.stdout, struct {
			Grant  any       `json:"grant"`
			Opened proofSide `json:"opened"`
			Closed proofSide `json:"closed"`
		}{latchhttp.ToGrantJSON(g), opened, closed}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "grant %s: %s from %s on %s (rule %s), for %s\n", esc(g.ID), opens(g.Protocol, g.Ports), g.Source, esc(g.GroupID), esc(g.RuleID), esc(g.Requester))
		printSide(a, "opened", opened)
		printSide(a, "closed", closed)
	}
	if p.Missing() {
		return fmt.Errorf("CloudTrail has no record of part of grant %s", g.ID)
	}
	return nil
}

func printSide(a *app, label string, s proofSide) {
	switch s.Status {
	case reconcile.ProofFound:
		fmt.Fprintf(a.stdout, "  %-7s %s  %s by %s\n          event %s: %s\n", label, latch.FormatExpiry(s.At), esc(s.Event), esc(s.Actor), esc(s.EventID), esc(s.What))
	default:
		fmt.Fprintf(a.stdout, "  %-7s %s: %s\n", label, s.Status, esc(s.Note))
	}
}

func proofSideJSON(s reconcile.ProofSide) proofSide {
	return proofSide{Status: s.Status, EventID: s.EventID, Event: s.Event, At: s.At, Actor: s.Actor, What: s.What, Note: s.Note}
}
