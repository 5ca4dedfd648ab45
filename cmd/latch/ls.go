package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
)

func (a *app) lsCommand() *cobra.Command {
	var all, asJSON, direct bool
	var limit int
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List grants: open ones, or all with --all",
		Long: `List grants, newest first.

With a server configured (--server or LATCH_SERVER), it lists your grants
and the requests you can see on that server; --all lists everyone's grants
(admins). --direct lists the local grant database instead, as without a
server: grants made with 'latch grant --direct'.

From the database, without --all, only grants that may still have a rule in
AWS are listed: requested, active, revoking and revoke-failed. A
revoke-failed grant is one whose revoke keeps failing; latch keeps retrying
it, and it stays listed here until its rule is gone.

latch says first where it looked ("From server URL" or "Direct,
database PATH"). In --json, one object with "mode", "server" or "database",
"grants" and, from a server, "pending_requests" (docs/JSON.md).`,
		Example: `  latch ls                          # open grants (with a server: yours, and requests waiting for you)
  latch ls --all --json             # every grant, for scripts
  latch ls --direct                 # the local database, even with LATCH_SERVER set
  latch ls --all --limit 20`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			server, err := a.useServer(cmd, direct)
			if err != nil {
				return err
			}
			return a.ls(cmd.Context(), server, all, asJSON, limit)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "include ended grants (with a server: everyone's, for admins)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&limit, "limit", 0, "show at most this many (0: no limit)")
	cmd.Flags().BoolVar(&direct, "direct", false, "list the local grant database, even with a server configured")
	a.addFlags(cmd, serverFlags, awsFlags, dbFlags)
	return cmd
}

func (a *app) ls(ctx context.Context, server, all, asJSON bool, limit int) error {
	if limit < 0 {
		return latch.Invalidf("limit", "%d is negative; want 0 (no limit) or more", limit)
	}
	if server {
		return a.lsServer(ctx, all, asJSON)
	}
	mode := a.directMode()
	if !asJSON {
		a.sayMode(mode)
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
		out := make([]latchhttp.GrantJSON, 0, len(grants))
		for _, g := range grants {
			out = append(out, latchhttp.ToGrantJSON(g))
		}
		return writeJSON(a.stdout, lsJSON{modeJSON: mode, Grants: out})
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s from %s\t%s\t%s\n", esc(g.ID), esc(g.State), esc(g.GroupID), dash(esc(g.RuleID)),
			opens(g.Protocol, g.Ports), g.Source, ends(g.State, g.ExpiresAt, g.EndedAt, now), esc(g.Requester))
	}
	tw.Flush()
	for _, g := range grants {
		if g.State == latch.StateRevokeFailed {
			fmt.Fprintf(a.stdout, "\n%s: revoke has failed %d times and is still being retried; last error: %s\n", esc(g.ID), g.Attempts, esc(g.LastError))
		}
	}
	return nil
}

// lsJSON is ls --json, in either mode: where latch looked, the grants, and
// from a server the pending requests the caller may see.
type lsJSON struct {
	modeJSON
	Grants   []latchhttp.GrantJSON    `json:"grants"`
	Requests *[]latchhttp.RequestJSON `json:"pending_requests,omitempty"` // server mode only
}

// lsServer lists grants and open requests from the server.
func (a *app) lsServer(ctx context.Context, all, asJSON bool) error {
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	if !asJSON {
		a.sayMode(a.serverMode())
	}
	grants, err := c.Grants(ctx, all, !all)
	if err != nil {
		return err
	}
	requests, err := c.Requests(ctx, string(latch.RequestPending), false)
	if err != nil {
		return err
	}
	if asJSON {
		if grants == nil {
			grants = []latchhttp.GrantJSON{}
		}
		if requests == nil {
			requests = []latchhttp.RequestJSON{}
		}
		return writeJSON(a.stdout, lsJSON{a.serverMode(), grants, &requests})
	}
	now := a.clock.Now()
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT\tSTATE\tGROUP\tOPENS\tEXPIRES\tREQUESTER")
	for _, g := range grants {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s from %s\t%s\t%s\n", esc(g.ID), esc(g.State), esc(g.GroupID), opens(g.Protocol, g.Ports()), esc(g.Source),
			ends(g.State, g.ExpiresAt, endedAt(g), now), esc(g.Requester.Display))
	}
	tw.Flush()
	if len(requests) > 0 {
		fmt.Fprintln(a.stdout)
		tw = tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PENDING REQUEST\tREQUESTER\tTARGET\tOPENS\tAPPROVALS\tTIMES OUT")
		for _, r := range requests {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s for %s\t%d of %d\t%s\n", esc(r.ID), esc(r.Requester.Display), esc(targetOf(r)),
				opens(r.Protocol, r.Ports()), r.Duration(), approvals(r), r.ApprovalsNeeded, relative(r.PendingUntil, now))
		}
		tw.Flush()
	}
	return nil
}

func endedAt(g latchhttp.GrantJSON) time.Time {
	if g.EndedAt == nil {
		return time.Time{}
	}
	return *g.EndedAt
}

func targetOf(r latchhttp.RequestJSON) string {
	if r.InstanceID != "" {
		return string(r.InstanceID)
	}
	return string(r.GroupID)
}
