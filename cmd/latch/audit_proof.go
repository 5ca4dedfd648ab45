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
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/reconcile"
)

// CloudTrail "typically delivers logs within an average of about 5
// minutes"; it is not guaranteed. Until deliveryBound has passed, a
// missing event is pending, not missing.
const (
	typicalDelivery = 5 * time.Minute
	deliveryBound   = reconcile.DeliveryBound
)

// proofSide is one half of a grant's proof: the call that opened its rule,
// or the one that closed it.
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
	if g.RuleID == "" {
		return latch.Errorf(latch.ECONFLICT, "grant %s never opened a rule (%s); there is nothing in CloudTrail to prove", g.ID, g.State)
	}
	cfg, err := a.awsConfig(ctx, g.Region)
	if err != nil {
		return err
	}
	trail := latchaws.NewTrail(cfg)
	now := a.clock.Now()
	opened, err := a.proofOpened(ctx, trail, g, now)
	if err != nil {
		return err
	}
	closed, err := a.proofClosed(ctx, trail, store, g, now)
	if err != nil {
		return err
	}
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
	if opened.Status == "missing" || closed.Status == "missing" {
		return fmt.Errorf("CloudTrail has no record of part of grant %s", g.ID)
	}
	return nil
}

func printSide(a *app, label string, s proofSide) {
	switch s.Status {
	case "found":
		fmt.Fprintf(a.stdout, "  %-7s %s  %s by %s\n          event %s: %s\n", label, latch.FormatExpiry(s.At), esc(s.Event), esc(s.Actor), esc(s.EventID), esc(s.What))
	default:
		fmt.Fprintf(a.stdout, "  %-7s %s: %s\n", label, s.Status, esc(s.Note))
	}
}

// proofOpened finds the call that created the grant's rule.
func (a *app) proofOpened(ctx context.Context, t *latchaws.Trail, g latch.Grant, now time.Time) (proofSide, error) {
	evs, err := t.Events(ctx, "AuthorizeSecurityGroupIngress", g.CreatedAt.Add(-time.Hour), g.CreatedAt.Add(time.Hour))
	if err != nil {
		return proofSide{}, err
	}
	for _, e := range evs {
		if e.ErrorCode == "" && slices.Contains(e.RuleIDs, string(g.RuleID)) {
			return found(e), nil
		}
	}
	return absent(g.CreatedAt, now, "AuthorizeSecurityGroupIngress", g.RuleID), nil
}

// proofClosed finds the call that removed the grant's rule, if it ended.
func (a *app) proofClosed(ctx context.Context, t *latchaws.Trail, store latch.Store, g latch.Grant, now time.Time) (proofSide, error) {
	if g.State.Open() {
		return proofSide{Status: "not-yet", Note: fmt.Sprintf("the grant is %s; it expires %s", g.State, latch.FormatExpiry(g.ExpiresAt))}, nil
	}
	evs, err := t.Events(ctx, "RevokeSecurityGroupIngress", g.CreatedAt, g.EndedAt.Add(time.Hour))
	if err != nil {
		return proofSide{}, err
	}
	for _, e := range evs {
		if e.ErrorCode == "" && slices.Contains(e.RuleIDs, string(g.RuleID)) {
			return found(e), nil
		}
	}
	if hist, err := store.History(ctx, g.ID); err == nil {
		for _, h := range hist {
			if strings.HasPrefix(h.Note, broker.NoteKept) {
				return proofSide{Status: "kept", Note: "the rule was shared and handed on: " + h.Note + "; that grant's proof shows its revocation"}, nil
			}
		}
	}
	return absent(g.EndedAt, now, "RevokeSecurityGroupIngress", g.RuleID), nil
}

func found(e latchaws.TrailEvent) proofSide {
	what := fmt.Sprintf("%s in %s", joinOr(e.RuleIDs), e.GroupID)
	if len(e.Ports) > 0 {
		what += fmt.Sprintf(", %s from %s", joinOr(e.Ports), joinOr(e.CIDRs))
	}
	return proofSide{Status: "found", EventID: e.ID, Event: e.Name, At: e.Time, Actor: e.Actor, What: what}
}

// absent is pending while CloudTrail may still deliver, missing after.
func absent(at, now time.Time, event string, rule latch.RuleID) proofSide {
	if now.Before(at.Add(deliveryBound)) {
		return proofSide{Status: "pending", Note: fmt.Sprintf("%s for %s made at %s is not delivered yet; CloudTrail takes about %s, expected by %s",
			event, rule, latch.FormatExpiry(at), typicalDelivery, latch.FormatExpiry(at.Add(deliveryBound)))}
	}
	return proofSide{Status: "missing", Note: fmt.Sprintf("no successful %s for %s around %s, though CloudTrail should have delivered it by %s",
		event, rule, latch.FormatExpiry(at), latch.FormatExpiry(at.Add(deliveryBound)))}
}

func joinOr(ss []string) string {
	if len(ss) == 0 {
		return "-"
	}
	return strings.Join(ss, ", ")
}
