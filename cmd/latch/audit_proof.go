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
	// SourceIdentity is the source identity of the caller's role session:
	// for a Session Manager session, the requester's role session name.
	SourceIdentity string `json:"source_identity,omitempty"`
	What           string `json:"what,omitempty"`
	Note           string `json:"note,omitempty"`
}

// sessionProof is a reconcile.SessionProof as --json prints it.
type sessionProof struct {
	SessionID  string    `json:"session_id"`
	Recorded   bool      `json:"recorded"` // false: found in CloudTrail by its reason only
	Started    proofSide `json:"started"`
	Terminated proofSide `json:"terminated"`
}

func (a *app) auditProofCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "proof GRANT_ID",
		Short: "Show CloudTrail's record of a grant's rule being opened and closed, or its sessions started and terminated",
		Long: `Look up, in CloudTrail, the AuthorizeSecurityGroupIngress call that created
the grant's rule and the RevokeSecurityGroupIngress call that removed it,
and print both: who, when, what, and the event IDs.

For a Session Manager grant, which opens no rule, look up instead each
session's StartSession call (by the session ID latch recorded, or by its
reason naming the grant) and the TerminateSession call that ended it. Who
started a session is the session role, assumed as the requester: its ARN
and source identity name them. A grant with no session has nothing to
prove beyond the grant.

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
	if g.Access == latch.AccessSSM {
		return a.auditProofSessions(ctx, trailEvents{latchaws.NewTrail(cfg)}, store, g, asJSON)
	}
	p, err := reconcile.Prove(ctx, trailEvents{latchaws.NewTrail(cfg)}, store, g, a.clock.Now())
	if err != nil {
		return err
	}
	opened, closed := proofSideJSON(p.Opened), proofSideJSON(p.Closed)
	if asJSON {
		if err := writeJSON(a.stdout, struct {
			Grant  any        `json:"grant"`
			Opened *proofSide `json:"opened,omitempty"`
			Closed *proofSide `json:"closed,omitempty"`
		}{latchhttp.ToGrantJSON(g), &opened, &closed}); err != nil {
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

// auditProofSessions is audit proof for a Session Manager grant: its
// sessions' StartSession and TerminateSession calls. --json prints the
// grant and a sessions array, with no opened or closed: there is no rule.
func (a *app) auditProofSessions(ctx context.Context, trail reconcile.Trail, store reconcile.Sessions, g latch.Grant, asJSON bool) error {
	ps, err := reconcile.ProveSessions(ctx, trail, store, g, a.clock.Now())
	if err != nil {
		return err
	}
	out := make([]sessionProof, 0, len(ps))
	for _, p := range ps {
		out = append(out, sessionProof{SessionID: string(p.SessionID), Recorded: p.Recorded, Started: proofSideJSON(p.Started), Terminated: proofSideJSON(p.Terminated)})
	}
	if asJSON {
		if err := writeJSON(a.stdout, struct {
			Grant    any            `json:"grant"`
			Sessions []sessionProof `json:"sessions"`
		}{latchhttp.ToGrantJSON(g), out}); err != nil {
			return err
		}
	} else {
		what := string(g.Document)
		if g.Document.TakesPort() {
			what += fmt.Sprintf(" to port %d", g.Ports.From)
		}
		fmt.Fprintf(a.stdout, "grant %s: Session Manager (%s) on %s, for %s; it opens no rule\n", esc(g.ID), esc(what), esc(g.Target), esc(g.Requester))
		if len(out) == 0 {
			fmt.Fprintln(a.stdout, "  no session was started: nothing to prove beyond the grant")
		}
		for _, p := range out {
			note := ""
			if !p.Recorded {
				note = " (not in latch's database: found by its reason)"
			}
			fmt.Fprintf(a.stdout, "  session %s%s\n", esc(p.SessionID), note)
			printSide(a, "started", p.Started)
			printSide(a, "ended", p.Terminated)
		}
	}
	if ps.Missing() {
		return fmt.Errorf("CloudTrail has no record of part of grant %s's sessions", g.ID)
	}
	return nil
}

func printSide(a *app, label string, s proofSide) {
	switch s.Status {
	case reconcile.ProofFound:
		by := esc(s.Actor)
		if s.SourceIdentity != "" {
			by += " (source identity " + esc(s.SourceIdentity) + ")"
		}
		fmt.Fprintf(a.stdout, "  %-7s %s  %s by %s\n          event %s: %s\n", label, latch.FormatExpiry(s.At), esc(s.Event), by, esc(s.EventID), esc(s.What))
	default:
		fmt.Fprintf(a.stdout, "  %-7s %s: %s\n", label, s.Status, esc(s.Note))
	}
}

func proofSideJSON(s reconcile.ProofSide) proofSide {
	return proofSide{Status: s.Status, EventID: s.EventID, Event: s.Event, At: s.At, Actor: s.Actor, SourceIdentity: s.SourceIdentity, What: s.What, Note: s.Note}
}
