package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	latchhttp "github.com/latchdev/latch/http"
)

func (a *app) revokeCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "revoke GRANT_ID",
		Short: "End a grant now and revoke its rule",
		Long: `End a grant early. Its rule is revoked at once, unless another live grant
for the same address and ports shares it, in which case the rule stays for
that grant only.

With --server (or LATCH_SERVER), the server ends it (your grant, or any
grant if you are an admin).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return a.revoke(cmd.Context(), args[0], asJSON) },
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the ended grant as JSON")
	return cmd
}

func (a *app) revoke(ctx context.Context, arg string, asJSON bool) error {
	id, err := latch.ParseGrantID(arg)
	if err != nil {
		return err
	}
	if a.server != "" {
		c, err := a.client(ctx)
		if err != nil {
			return err
		}
		g, err := c.Revoke(ctx, id)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(a.stdout, g)
		}
		fmt.Fprintf(a.stdout, "Revoked %s (%s).\n", g.ID, g.State)
		return nil
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
	e, err := b.Revoke(ctx, id, a.localUser())
	if err != nil {
		return err
	}
	if !asJSON && e.KeptFor == nil {
		fmt.Fprintf(a.stdout, "Revoked %s.\n", e.Grant.ID)
	}
	return a.showEnded(asJSON, e)
}

// showEnded prints a grant latch has just ended, and, when its rule was
// shared, that the rule stays open: for which grant, until when.
func (a *app) showEnded(asJSON bool, e broker.Ended) error {
	g, k := e.Grant, e.KeptFor
	if asJSON {
		j := revokedJSON{GrantJSON: latchhttp.ToGrantJSON(g)}
		if k != nil {
			j.RuleStaysOpen = &ruleKeptJSON{RuleID: g.RuleID, GrantID: k.ID, Until: k.ExpiresAt.UTC()}
		}
		return writeJSON(a.stdout, j)
	}
	if k != nil {
		fmt.Fprintf(a.stdout, "Ended %s, but its rule %s stays open for grant %s until %s (%s): they share it.\n",
			esc(g.ID), esc(g.RuleID), esc(k.ID), latch.FormatExpiry(k.ExpiresAt), relative(k.ExpiresAt, a.clock.Now()))
	}
	printGrant(a.stdout, g, a.clock.Now())
	return nil
}

// revokedJSON is a revoked grant as `latch revoke --json` prints it.
type revokedJSON struct {
	latchhttp.GrantJSON
	// RuleStaysOpen is set when the grant's rule was shared: it was not
	// revoked, and stays open for another grant.
	RuleStaysOpen *ruleKeptJSON `json:"rule_stays_open,omitempty"`
}

type ruleKeptJSON struct {
	RuleID  latch.RuleID  `json:"rule_id"`
	GrantID latch.GrantID `json:"grant_id"`
	Until   time.Time     `json:"until"`
}
