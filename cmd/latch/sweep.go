package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

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
expired.

With a grant database (--db or LATCH_DB, or the default one if it exists)
it also records what it did there, as 'latch run' does: grants on revoked
rules are expired, with history and audit entries, and grants already due
whose rules are gone are expired too. Without one it needs and makes none.

It also terminates every active Session Manager session latch started
(those of the session role: --ssm-session-role, else one named
latch-session) whose grant has expired: DescribeSessions lists them, and
each session's reason names its grant and expiry, so this too needs no
database.`,
		Example: `  latch sweep --dry-run
  latch sweep --region us-east-1,eu-west-1 --json
  latch sweep --db ~/.local/state/latch/latch.db`,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.sweep(cmd.Context(), dryRun, asJSON) },
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report expired rules without revoking them")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	a.addFlags(cmd, append([]flagGroup{dbFlags}, brokerFlags...)...)
	return cmd
}

// sweepJSON is sweep --json: the rules swept, and how many more grants
// past their expiry the database recorded as expired.
type sweepJSON struct {
	DryRun  bool        `json:"dry_run"`
	Swept   []sweptJSON `json:"swept"`
	Expired int         `json:"recorded_expired"`
	// Sessions are the overdue Session Manager sessions found; absent
	// when there are none.
	Sessions []sessionSweptJSON `json:"sessions,omitempty"`
}

// sessionSweptJSON is one overdue Session Manager session.
type sessionSweptJSON struct {
	Region     string             `json:"region"`
	SessionID  latch.SSMSessionID `json:"session_id"`
	InstanceID latch.InstanceID   `json:"instance_id"`
	GrantID    latch.GrantID      `json:"grant_id,omitempty"`
	Owner      string             `json:"owner"`
	ExpiresAt  string             `json:"expires_at,omitempty"` // "" when its reason named none
	Terminated bool               `json:"terminated"`
	Error      string             `json:"error,omitempty"`
}

type sweptJSON struct {
	Region    string         `json:"region"`
	RuleID    latch.RuleID   `json:"rule_id"`
	GroupID   latch.GroupID  `json:"group_id"`
	Source    string         `json:"source"`
	Protocol  latch.Protocol `json:"protocol"`
	FromPort  int            `json:"from_port"`
	ToPort    int            `json:"to_port"`
	GrantID   string         `json:"grant_id,omitempty"`
	ExpiresAt string         `json:"expires_at"`
	Revoked   bool           `json:"revoked"`
	// KeptFor is set when the database knows a live grant on the rule: its
	// tags were stale, so they were mended and the rule stays open.
	KeptFor *ruleKeptJSON `json:"rule_stays_open,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// sweepStore is the grant database a sweep records in: the one named by
// --db (or LATCH_DB), else the default one if it exists; nil if none.
func (a *app) sweepStore(ctx context.Context) (latch.Store, error) {
	if a.dbPath == "" {
		if _, err := os.Stat(a.defaultDBPath()); err != nil {
			return nil, nil
		}
	}
	s, err := a.store(ctx)
	if err != nil {
		return nil, err // not a nil *sqlite.Store in a non-nil interface
	}
	return s, nil
}

func (a *app) sweep(ctx context.Context, dryRun, asJSON bool) error {
	fws, err := a.firewalls(ctx, a.regions)
	if err != nil {
		return err
	}
	var reports []broker.SweepReport
	var sweepErr error
	expired := 0
	var store latch.Store
	var storeErr error
	if !dryRun {
		if store, storeErr = a.sweepStore(ctx); storeErr != nil {
			// Revocation never waits on the database: sweep from AWS alone.
			a.log.Error("sweeping without the grant database", "err", storeErr)
		}
	}
	recorded := false
	if store != nil {
		// With the database, the daemon's own pass: it records what ends
		// and mends a live grant's stale tags.
		b, err := a.broker(ctx, store, a.regions, 0)
		if err != nil {
			a.log.Error("sweeping without the grant database", "err", err)
			storeErr = err
		} else {
			reports, expired, sweepErr = b.SweepOnce(ctx)
			recorded = sweepErr == nil
		}
	}
	if !recorded {
		// Then, whatever the database did, a pass by the rules' tags alone:
		// revocation never waits on the database (one that opens but cannot
		// be read, or a broker that cannot be built, must not keep an
		// expired rule open).
		tagReports, tagErr := broker.Sweep(ctx, fws, a.clock.Now(), dryRun, a.log.With("component", "sweep"))
		reports = mergeSweeps(reports, tagReports)
		if tagErr != nil {
			// What is still wrong once the tags were swept; the database
			// pass most likely failed of the same cause.
			sweepErr = tagErr
		}
	}
	sessions, sessErr := a.sweepSessions(ctx, store, dryRun)
	out := []sweptJSON{}
	for _, rep := range reports {
		for _, s := range rep.Swept {
			o := s.Rule.Opening
			j := sweptJSON{Region: rep.Region, RuleID: s.Rule.ID, GroupID: o.GroupID, Source: o.Source.String(),
				Protocol: o.Protocol, FromPort: o.Ports.From, ToPort: o.Ports.To, GrantID: s.Rule.Tags[latch.TagGrantID],
				ExpiresAt: s.Rule.Tags[latch.TagExpiresAt], Revoked: s.Revoked, Error: errString(s.Err)}
			if k := s.KeptFor; k != nil {
				j.KeptFor = &ruleKeptJSON{RuleID: s.Rule.ID, GrantID: k.ID, Until: k.ExpiresAt.UTC()}
			}
			out = append(out, j)
		}
	}
	if asJSON {
		if err := writeJSON(a.stdout, sweepJSON{DryRun: dryRun, Swept: out, Expired: expired, Sessions: sessions}); err != nil {
			return err
		}
	} else {
		a.printSweep(reports, out, dryRun, expired)
		a.printSessionSweep(sessions, dryRun)
		if len(out) == 0 && expired == 0 && len(sessions) == 0 {
			fmt.Fprintln(a.stdout, "Nothing expired.")
		}
	}
	return errors.Join(sweepErr, storeErr, sessErr)
}

// sweepSessions ends latch's overdue Session Manager sessions: through
// the broker with a database (recording what ends), else from AWS alone.
// It runs whether or not --ssm-session-role is set (see
// sessionManagers); an account where sessions cannot be listed is said
// once in the log and has none.
func (a *app) sweepSessions(ctx context.Context, store latch.Store, dryRun bool) ([]sessionSweptJSON, error) {
	var reports []broker.SessionSweepReport
	var err error
	if store != nil && !dryRun {
		b, berr := a.broker(ctx, store, a.regions, 0)
		if berr != nil {
			return nil, berr
		}
		reports, err = b.SweepSessions(ctx)
	} else {
		sms, serr := a.sessionManagers(ctx, a.regions)
		if serr != nil {
			return nil, serr
		}
		reports, err = broker.SweepSessions(ctx, sms, a.clock.Now(), dryRun, nil, a.log.With("component", "sweep"))
	}
	out := []sessionSweptJSON{}
	for _, rep := range reports {
		for _, s := range rep.Swept {
			j := sessionSweptJSON{Region: rep.Region, SessionID: s.Session.ID, InstanceID: s.Session.Target, GrantID: s.Session.GrantID,
				Owner: s.Session.Owner, Terminated: s.Terminated, Error: errString(s.Err)}
			if !s.Session.Expires.IsZero() {
				j.ExpiresAt = latch.FormatExpiry(s.Session.Expires)
			}
			out = append(out, j)
		}
	}
	return out, err
}

func (a *app) printSessionSweep(sessions []sessionSweptJSON, dryRun bool) {
	verb := "terminated"
	if dryRun {
		verb = "would terminate"
	}
	for _, s := range sessions {
		status := verb
		if s.Error != "" {
			status = "FAILED: " + esc(s.Error)
		}
		expired := s.ExpiresAt
		if expired == "" {
			expired = "unknown: its reason names no expiry"
		}
		// Reasons and owners come from AWS, where others may write them.
		fmt.Fprintf(a.stdout, "  %s Session Manager session %s on %s (grant %s, expired %s)\n", status, esc(string(s.SessionID)), esc(string(s.InstanceID)), esc(string(s.GrantID)), esc(expired))
	}
}

// mergeSweeps adds to first the rules the second pass revoked, region by
// region, so a rule is reported once.
func mergeSweeps(first, second []broker.SweepReport) []broker.SweepReport {
	if len(first) == 0 {
		return second
	}
	for _, rep := range second {
		i := slices.IndexFunc(first, func(f broker.SweepReport) bool { return f.Region == rep.Region })
		if i < 0 {
			first = append(first, rep)
			continue
		}
		for _, s := range rep.Swept {
			if s.Revoked && !slices.ContainsFunc(first[i].Swept, func(f broker.Swept) bool { return f.Rule.ID == s.Rule.ID && f.Revoked }) {
				first[i].Swept = append(first[i].Swept, s)
			}
		}
	}
	return first
}

func (a *app) printSweep(reports []broker.SweepReport, swept []sweptJSON, dryRun bool, expired int) {
	for _, rep := range reports {
		fmt.Fprintf(a.stdout, "%s: %d latch rule(s) found\n", rep.Region, rep.Rules)
	}
	verb := "revoked"
	if dryRun {
		verb = "would revoke"
	}
	for _, s := range swept {
		status := verb
		switch {
		case s.Error != "":
			status = "FAILED: " + esc(s.Error)
		case s.KeptFor != nil:
			status = fmt.Sprintf("kept open for grant %s until %s (its tags were stale):", s.KeptFor.GrantID, latch.FormatExpiry(s.KeptFor.Until))
		}
		// Tag values are anyone's with ec2:CreateTags on the group.
		fmt.Fprintf(a.stdout, "  %s %s in %s (%s from %s, grant %s, expired %s)\n", status, esc(s.RuleID), esc(s.GroupID), opens(s.Protocol, latch.PortRange{From: s.FromPort, To: s.ToPort}), esc(s.Source), esc(s.GrantID), esc(s.ExpiresAt))
	}
	if expired > 0 {
		fmt.Fprintf(a.stdout, "%d more grant(s) past their expiry recorded as expired.\n", expired)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
