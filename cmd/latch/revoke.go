package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	latchhttp "github.com/latchdev/latch/http"
)

func (a *app) revokeCommand() *cobra.Command {
	var asJSON, direct bool
	cmd := &cobra.Command{
		Use:   "revoke GRANT_ID",
		Short: "End a grant now and revoke its rule",
		Long: `End a grant early. Its rule is revoked at once, unless another live grant
for the same address and ports shares it, in which case the rule stays open
for that grant only, and latch says until when (and for which grant, when
that grant is yours or you are an admin).

With a server configured (--server or LATCH_SERVER), the server ends it
(your grant, or any grant if you are an admin); --direct ends a grant made
with 'latch grant --direct', from the local database, with your own AWS
credentials. latch says first which it used; --json has it as "mode".`,
		Example: `  latch revoke g-3f9a0c1d2e4b5a69
  latch revoke g-3f9a0c1d2e4b5a69 --json
  LATCH_SERVER=https://latch.example.com:8443 latch revoke --direct g-3f9a0c1d2e4b5a69   # a grant made with --direct`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server, err := a.useServer(cmd, direct)
			if err != nil {
				return err
			}
			return a.revoke(cmd.Context(), args[0], server, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the ended grant as JSON")
	cmd.Flags().BoolVar(&direct, "direct", false, "end a direct grant from the local database, even with a server configured")
	a.addFlags(cmd, append([]flagGroup{serverFlags, dbFlags}, brokerFlags...)...)
	return cmd
}

func (a *app) revoke(ctx context.Context, arg string, server, asJSON bool) error {
	id, err := latch.ParseGrantID(arg)
	if err != nil {
		return err
	}
	if server {
		return a.revokeServer(ctx, id, asJSON)
	}
	if !asJSON {
		a.sayMode(a.directMode())
	}
	store, err := a.store(ctx)
	if err != nil {
		return err
	}
	g, err := store.Grant(ctx, id)
	if err != nil {
		return err
	}
	b, err := a.broker(ctx, store, []string{g.Region}, 0)
	if err != nil {
		return err
	}
	e, err := b.Revoke(ctx, id, a.directActor(ctx, g.Region))
	if err != nil {
		return err
	}
	if !asJSON && e.KeptFor == nil {
		fmt.Fprintf(a.stdout, "Revoked %s.\n", e.Grant.ID)
	}
	return a.showEnded(asJSON, e, a.directMode(), "")
}

// revokeServer asks the server to end grant id. A grant the server does
// not know may be a direct one: then it says so, and how to end it.
func (a *app) revokeServer(ctx context.Context, id latch.GrantID, asJSON bool) error {
	if !asJSON {
		a.sayMode(a.serverMode())
	}
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	out, err := c.Revoke(ctx, id)
	if code := latch.ErrorCode(err); code == latch.ENOTFOUND || code == latch.EFORBIDDEN {
		return a.notOnServer(ctx, id, err)
	} else if err != nil {
		return err
	}
	return a.showRevoked(out, asJSON, "")
}

// showRevoked prints what the server said of a grant it ended.
func (a *app) showRevoked(out latchhttp.RevokedJSON, asJSON bool, event string) error {
	if asJSON {
		return a.writeRevoked(out, a.serverMode(), event)
	}
	if out.RuleStaysOpen == nil {
		fmt.Fprintf(a.stdout, "Revoked %s (%s).\n", esc(out.ID), esc(out.State))
		return nil
	}
	a.sayRuleKept(out)
	return nil
}

// writeRevoked prints an ended grant as JSON, with where latch looked.
// With an event, it is a line of a stream instead: {"event", "grant",
// "rule_stays_open"}, as grant and request print them.
func (a *app) writeRevoked(j latchhttp.RevokedJSON, m modeJSON, event string) error {
	if event != "" {
		return writeJSON(a.stdout, grantEventJSON{event, j.GrantJSON, j.RuleStaysOpen})
	}
	return writeJSON(a.stdout, struct {
		latchhttp.RevokedJSON
		modeJSON
	}{j, m})
}

// sayRuleKept says that an ended grant's rule stays open for another
// grant, and until when; the other grant is named when j names it.
func (a *app) sayRuleKept(j latchhttp.RevokedJSON) {
	k := j.RuleStaysOpen
	forWhom := "another grant"
	if k.GrantID != "" {
		forWhom = "grant " + esc(k.GrantID)
	}
	fmt.Fprintf(a.stdout, "Ended %s, but its rule %s stays open for %s until %s (%s): they share it.\n",
		esc(j.ID), esc(k.RuleID), forWhom, latch.FormatExpiry(k.Until), relative(k.Until, a.clock.Now()))
}

// notOnServer explains a grant the server would not end: if the local
// database has it, it is a direct grant, ended with --direct. The local
// database is only read, and only if it exists.
func (a *app) notOnServer(ctx context.Context, id latch.GrantID, serverErr error) error {
	path := a.directDB()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return a.notOnServerHint(id, serverErr)
	}
	store, err := a.store(ctx)
	if err != nil {
		return a.notOnServerHint(id, serverErr)
	}
	if _, err := store.Grant(ctx, id); err != nil {
		return a.notOnServerHint(id, serverErr)
	}
	return latch.Errorf(latch.ENOTFOUND, "grant %s is not on server %s: it is a direct grant in database %s; end it with 'latch revoke --direct %s'",
		id, a.server, path, id)
}

func (a *app) notOnServerHint(id latch.GrantID, serverErr error) error {
	return latch.Errorf(latch.ErrorCode(serverErr), "server %s: %s (a grant made with 'latch grant --direct' is ended with 'latch revoke --direct %s')",
		a.server, latch.ErrorMessage(serverErr), id)
}

// showEnded prints a grant latch has just ended, and, when its rule was
// shared, that the rule stays open: for which grant, until when. m says
// where, for JSON; the zero modeJSON adds nothing.
func (a *app) showEnded(asJSON bool, e broker.Ended, m modeJSON, event string) error {
	j := latchhttp.RevokedJSON{GrantJSON: latchhttp.ToGrantJSON(e.Grant)}
	if k := e.KeptFor; k != nil {
		j.RuleStaysOpen = &latchhttp.RuleKeptJSON{RuleID: e.Grant.RuleID, GrantID: k.ID, Until: k.ExpiresAt.UTC()}
	}
	if asJSON {
		return a.writeRevoked(j, m, event)
	}
	if j.RuleStaysOpen != nil {
		a.sayRuleKept(j)
	}
	printGrant(a.stdout, e.Grant, a.clock.Now())
	return nil
}

// ruleKeptJSON is a rule that stays open for another grant, as revoke and
// sweep print it: one shape with the server's.
type ruleKeptJSON = latchhttp.RuleKeptJSON
