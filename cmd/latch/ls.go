package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
)

func (a *app) lsCommand() *cobra.Command {
	var all, asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List grants: open ones, or all with --all",
		Long: `List grants from the grant database, newest first.

Without --all, only grants that may still have a rule in AWS are listed:
requested, active, revoking and revoke-failed. A revoke-failed grant is one
whose revoke keeps failing; latch keeps retrying it, and it stays listed
here until its rule is gone.`,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.ls(cmd.Context(), all, asJSON, limit) },
	}
	cmd.Flags().BoolVar(&all, "all", false, "include ended grants")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most this many (0: no limit)")
	return cmd
}

func (a *app) ls(ctx context.Context, all, asJSON bool, limit int) error {
	if limit < 0 {
		return latch.Invalidf("limit", "%d is negative; want 0 (no limit) or more", limit)
	}
	store, err := a.store(ctx)
	if err != nil {
		return err
	}
	f := latch.GrantFilter{Limit: limit}
	if !all {
		f.States = []latch.GrantState{latch.StateRequested, latch.StateActive, latch.StateRevoking, latch.StateRevokeFailed}
	}
	grants, err := store.Grants(ctx, f)
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]grantJSON, 0, len(grants))
		for _, g := range grants {
			out = append(out, toJSON(g))
		}
		return writeJSON(a.stdout, out)
	}
	if len(grants) == 0 {
		if all {
			fmt.Fprintln(a.stdout, "No grants.")
		} else {
			fmt.Fprintln(a.stdout, "No open grants. (--all lists ended ones too.)")
		}
		return nil
	}
	now := a.clock.Now()
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT\tSTATE\tGROUP\tRULE\tOPENS\tEXPIRES\tREQUESTER")
	for _, g := range grants {
		rule := string(g.RuleID)
		if rule == "" {
			rule = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s from %s\t%s\t%s\n", g.ID, g.State, g.GroupID, rule,
			g.Protocol, g.Ports, g.Source, relative(g.ExpiresAt, now), g.Requester)
	}
	tw.Flush()
	for _, g := range grants {
		if g.State == latch.StateRevokeFailed {
			fmt.Fprintf(a.stdout, "\n%s: revoke has failed %d times and is still being retried; last error: %s\n", g.ID, g.Attempts, g.LastError)
		}
	}
	return nil
}
