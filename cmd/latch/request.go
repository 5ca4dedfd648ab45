package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
)

type requestOptions struct {
	dur, reason, ip        string
	ports                  portFlags
	wait, breakGlass, json bool
}

func (a *app) requestCommand() *cobra.Command {
	var o requestOptions
	cmd := &cobra.Command{
		Use:   "request TARGET --reason TEXT",
		Short: "Ask the latch server for access to an instance or security group",
		Long: `Ask $LATCH_SERVER for access to TARGET (an instance ID, or a managed
security group ID) from the address the server sees you at. The server's
policy decides: access may open at once, or wait for approval.

With --wait, latch shows progress until the request is approved (and prints
the grant), denied or timed out. The duration starts when access starts.`,
		Example: `  latch request i-0a0b0c0d0e0f00001 --port 22 --for 30m --reason "deploy 1.4" --wait
  latch request i-0a0b0c0d0e0f00003 --break-glass --reason "INC-7: database down"
  latch request sg-0123456789abcdef0 --ip 198.51.100.20 --reason "from the bastion"   # where the policy's networks allow it`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return a.request(cmd.Context(), args[0], o) },
	}
	f := cmd.Flags()
	o.ports.register(cmd)
	f.StringVar(&o.dur, "for", "", "how long, e.g. 30m (default: the policy's)")
	f.StringVar(&o.reason, "reason", "", "why you need access")
	f.StringVar(&o.ip, "ip", "", "an address other than the one the server sees you at, where the policy's networks allow it (auto: the one it sees)")
	deprecatedAlias(cmd, "source", "ip")
	// Not from LATCH_IP, which people set for 'latch grant --ip': a request
	// asks for the address the server sees unless told otherwise here.
	commandLineOnly(cmd, "ip")
	f.BoolVar(&o.wait, "wait", false, "wait for the decision, showing progress")
	f.BoolVar(&o.breakGlass, "break-glass", false, "skip approval in an emergency, where the policy allows it (flagged everywhere)")
	f.BoolVar(&o.json, "json", false, "print JSON")
	a.addFlags(cmd, serverFlags, awsFlags)
	return cmd
}

// checkAsk checks what a request asks for before the server sees it: the
// reason (if any; the policy may require one), the duration (if any; the
// policy has a default) and the ports.
func checkAsk(reason, dur string, ports portFlags) (latch.Protocol, latch.PortRange, error) {
	if reason != "" {
		if err := latch.CheckReason("reason", reason); err != nil {
			return "", latch.PortRange{}, err
		}
	}
	if dur != "" {
		if _, err := positiveDuration("for", dur); err != nil {
			return "", latch.PortRange{}, err
		}
	}
	return ports.parse()
}

func (a *app) request(ctx context.Context, target string, o requestOptions) error {
	c, r, err := a.sendRequest(ctx, latchhttp.RequestBody{Target: target, Duration: o.dur, Reason: o.reason, BreakGlass: o.breakGlass}, o.ports, o.ip)
	if err != nil {
		return err
	}
	if r.State == latch.RequestPending && o.wait {
		if r, err = a.waitForDecision(ctx, c, r, false); err != nil {
			return err
		}
	}
	return a.showRequest(ctx, c, r, o.json, "")
}

// sendRequest checks what body asks for (with the ports and --ip given as
// flags) before the server sees it, and sends it: the one way `latch
// request` and a server-mode `latch grant` ask.
func (a *app) sendRequest(ctx context.Context, body latchhttp.RequestBody, ports portFlags, ip string) (*latchhttp.Client, latchhttp.RequestJSON, error) {
	proto, pr, err := checkAsk(body.Reason, body.Duration, ports)
	if err != nil {
		return nil, latchhttp.RequestJSON{}, err
	}
	if body.Source, err = serverSource(ip); err != nil {
		return nil, latchhttp.RequestJSON{}, err
	}
	c, err := a.client(ctx)
	if err != nil {
		return nil, latchhttp.RequestJSON{}, err
	}
	body.Protocol, body.Port = string(proto), pr.String()
	r, err := c.CreateRequest(ctx, body)
	return c, r, err
}

// serverSource is the source a request asks the server for, from --ip:
// "" (the address the server sees) for none or auto, else one address.
func serverSource(ip string) (string, error) {
	if ip == "" || ip == "auto" {
		return "", nil
	}
	p, err := latch.ParseSource(ip)
	if err != nil {
		return "", err
	}
	return p.String(), nil
}

// grantViaServer is `latch grant` with a server configured: a request
// through the server's policy, with grant's flags. Without --detach it
// waits for a decision, then holds the grant as a direct one is held:
// Ctrl-C or the terminal closing ends it.
func (a *app) grantViaServer(ctx context.Context, cmd *cobra.Command, o *grantOptions) error {
	if v, ok := a.onCommandLine(cmd, "max-duration"); ok {
		return latch.Invalidf("max-duration", "--max-duration %s applies to direct grants; with server %s its policy caps durations: drop it, or add --direct", v, a.server)
	}
	if err := a.recipeEnv(o); err != nil {
		return err
	}
	target := o.sg
	switch {
	case o.sg != "" && o.instance != "":
		return latch.Invalidf("instance", "give --sg or --instance, not both")
	case o.sg == "" && o.instance == "":
		return latch.Invalidf("sg", "a target is required: --sg sg-… (or SECURITY_GROUP_ID), or --instance i-…")
	case o.sg != "":
		if _, err := latch.ParseGroupID(o.sg); err != nil {
			return err
		}
	case strings.HasPrefix(o.instance, "sg-"):
		return latch.Invalidf("instance", "%q is a security group; give it with --sg", o.instance)
	default:
		target = o.instance
	}
	if o.reason == "" {
		return latch.Invalidf("reason", "a reason is required: --reason TEXT (at most 256 characters)")
	}
	c, r, err := a.sendRequest(ctx, latchhttp.RequestBody{Target: target, Duration: o.dur, Reason: o.reason}, o.ports, o.ip)
	if err != nil {
		return err
	}
	if r.State == latch.RequestPending && !o.detach {
		if r, err = a.waitForDecision(ctx, c, r, true); err != nil {
			return err
		}
	}
	if err := a.showRequest(ctx, c, r, o.json, eventRequest); err != nil || r.State != latch.RequestActive || r.GrantID == "" {
		return err
	}
	if o.detach {
		if !o.json {
			fmt.Fprintf(a.stdout, "\nDetached. Server %s revokes it at expiry; 'latch revoke %s' ends it now.\n", esc(a.server), r.GrantID)
		}
		return nil
	}
	g, err := c.Grant(ctx, r.GrantID)
	if err != nil {
		return err
	}
	src, _ := latch.ParseSource(g.Source)
	interrupted := a.countdown(ctx, latch.Grant{ID: g.ID, ExpiresAt: g.ExpiresAt, Protocol: g.Protocol, Ports: g.Ports(), Source: src})
	if !interrupted {
		return nil // the server's revoker ends it at expiry
	}
	out, err := c.Revoke(context.WithoutCancel(ctx), g.ID)
	if err != nil {
		return fmt.Errorf("%w\nServer %s still revokes it at expiry; 'latch revoke %s' ends it now", err, a.server, g.ID)
	}
	return a.showRevoked(out, o.json, eventEnded)
}

// waitForDecision polls until r is no longer pending, showing progress.
// Interrupted, it leaves a plain request pending, saying how to end it;
// but a request made for a command that would hold its grant (grant, ssh)
// is withdrawn, since nobody would hold access it opened later.
func (a *app) waitForDecision(ctx context.Context, c *latchhttp.Client, r latchhttp.RequestJSON, holding bool) (latchhttp.RequestJSON, error) {
	fmt.Fprintf(a.stderr, "Request %s needs %d approval(s) from %s.\n", esc(r.ID), r.ApprovalsNeeded, approversText(r))
	tty := isTerminal(a.stderr)
	stopped := func() (latchhttp.RequestJSON, error) {
		if holding {
			if _, err := c.Withdraw(context.WithoutCancel(ctx), r.ID); err != nil {
				fmt.Fprintf(a.stderr, "\nStopped waiting, but withdrawing request %s failed (%s): 'latch withdraw %s' ends it.\n",
					r.ID, esc(latch.ErrorMessage(err)), r.ID)
				return r, exitStatus(exitInterrupted)
			}
			fmt.Fprintf(a.stderr, "\nStopped waiting. Withdrew request %s: nobody would hold the access it opened.\n", r.ID)
			return r, exitStatus(exitInterrupted)
		}
		fmt.Fprintf(a.stderr, "\nStopped waiting. Request %s is still pending: 'latch withdraw %s' withdraws it, "+
			"'latch request --wait' again waits anew, 'latch ls' shows it.\n", r.ID, r.ID)
		return r, exitStatus(exitInterrupted)
	}
	for r.State == latch.RequestPending {
		left := r.PendingUntil.Sub(a.clock.Now()).Round(time.Second)
		line := fmt.Sprintf("waiting for approval: %d of %d; times out in %s", approvals(r), r.ApprovalsNeeded, max(left, 0))
		if tty {
			fmt.Fprintf(a.stderr, "\r\033[K%s", line)
		} else {
			fmt.Fprintln(a.stderr, line)
		}
		select {
		case <-ctx.Done():
			return stopped()
		case <-a.clock.Alarm(a.clock.Now().Add(2 * time.Second)):
		}
		next, err := c.Request(ctx, r.ID)
		if err != nil && ctx.Err() != nil {
			return stopped()
		} else if err != nil {
			return r, err
		}
		r = next
	}
	if tty {
		fmt.Fprint(a.stderr, "\r\033[K")
	}
	return r, nil
}

// exitInterrupted is the status of a command stopped by Ctrl-C, as shells
// report it (128 + SIGINT).
const exitInterrupted = 130

// approversText says who may approve r, e.g. "sre or alice@example.com".
func approversText(r latchhttp.RequestJSON) string {
	all := slices.Concat(r.Approvers.Groups, r.Approvers.Users, r.Approvers.AWSPrincipals)
	if len(all) == 0 {
		all = r.ApproverGroups // an older server
	}
	return escJoin(all, " or ")
}

func approvals(r latchhttp.RequestJSON) int {
	n := 0
	for _, rv := range r.Reviews {
		if rv.Approve {
			n++
		}
	}
	return n
}

// showRequest prints a request, and its grant once access has started. A
// request that ended without access is an error: exit 1.
// With asJSON, event names the line as one of a stream ("" for none).
func (a *app) showRequest(ctx context.Context, c *latchhttp.Client, r latchhttp.RequestJSON, asJSON bool, event string) error {
	var grant *latchhttp.GrantJSON
	if r.GrantID != "" {
		// Reviewers see the request, not the requester's grant.
		g, err := c.Grant(ctx, r.GrantID)
		switch {
		case err == nil:
			grant = &g
		case latch.ErrorCode(err) != latch.EFORBIDDEN:
			return err
		}
	}
	if asJSON {
		if err := writeJSON(a.stdout, struct {
			Event   string                `json:"event,omitempty"`
			Request latchhttp.RequestJSON `json:"request"`
			Grant   *latchhttp.GrantJSON  `json:"grant,omitempty"`
		}{event, r, grant}); err != nil {
			return err
		}
	} else {
		printRequest(a.stdout, r, grant, a.clock.Now())
	}
	switch r.State {
	case latch.RequestDenied, latch.RequestTimedOut, latch.RequestWithdrawn, latch.RequestFailed:
		return fmt.Errorf("request %s was %s", r.ID, r.State)
	}
	return nil
}

func printRequest(w io.Writer, r latchhttp.RequestJSON, g *latchhttp.GrantJSON, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "request\t%s\n", esc(r.ID))
	state := esc(r.State)
	if r.BreakGlass {
		state += " (BREAK-GLASS)"
	}
	fmt.Fprintf(tw, "state\t%s\n", state)
	target := esc(r.GroupID)
	if r.InstanceID != "" {
		target = fmt.Sprintf("%s (group %s)", esc(r.InstanceID), esc(r.GroupID))
	}
	fmt.Fprintf(tw, "target\t%s in %s\n", target, esc(r.Region))
	fmt.Fprintf(tw, "opens\t%s from %s for %s\n", opens(r.Protocol, r.Ports()), esc(r.Source), r.Duration())
	fmt.Fprintf(tw, "rule\t%s\n", esc(r.Rule))
	for _, rv := range r.Reviews {
		verdict := "approved"
		if !rv.Approve {
			verdict = "denied"
		}
		fmt.Fprintf(tw, "review\t%s by %s at %s %s\n", verdict, esc(rv.By.Display), latch.FormatExpiry(rv.At), esc(rv.Reason))
	}
	if r.State == latch.RequestPending {
		fmt.Fprintf(tw, "waiting\t%d of %d approvals from %s; times out %s\n", approvals(r), r.ApprovalsNeeded,
			approversText(r), relative(r.PendingUntil, now))
	}
	if r.Note != "" {
		fmt.Fprintf(tw, "note\t%s\n", esc(r.Note))
	}
	if g == nil && r.GrantID != "" {
		fmt.Fprintf(tw, "grant\t%s\n", esc(r.GrantID))
	}
	if g != nil {
		fmt.Fprintf(tw, "grant\t%s, %s, rule %s, expires %s (%s)\n", esc(g.ID), esc(g.State), esc(g.RuleID), latch.FormatExpiry(g.ExpiresAt), relative(g.ExpiresAt, now))
	}
	tw.Flush()
}

func (a *app) reviewCommand(approve bool) *cobra.Command {
	var reason string
	var asJSON bool
	use, short := "approve REQUEST_ID", "Approve someone's request (never your own)"
	example := `  latch approve r-5f1c2a9e8d7b6a43
  latch approve r-5f1c2a9e8d7b6a43 --reason "matches INC-42" --json`
	if !approve {
		use, short = "deny REQUEST_ID --reason TEXT", "Deny someone's request, saying why"
		example = `  latch deny r-5f1c2a9e8d7b6a43 --reason "use the staging host"`
	}
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := latch.ParseRequestID(args[0])
			if err != nil {
				return err
			}
			if !approve && reason == "" {
				return latch.Invalidf("reason", "a denial needs a reason: --reason TEXT")
			}
			if reason != "" {
				if err := latch.CheckReason("reason", reason); err != nil {
					return err
				}
			}
			c, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			r, err := c.Review(cmd.Context(), id, approve, reason)
			if err != nil {
				return err
			}
			return a.showRequest(cmd.Context(), c, r, asJSON, "")
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required to deny)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	a.addFlags(cmd, serverFlags, awsFlags)
	return cmd
}

func (a *app) withdrawCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "withdraw REQUEST_ID",
		Short: "Withdraw your own pending request",
		Long: `Withdraw a request of yours that is still waiting for approval. It can no
longer be approved; to ask again, make a new request. Only pending requests
can be withdrawn; access already open ends with 'latch revoke GRANT_ID'.`,
		Example: `  latch withdraw r-5f1c2a9e8d7b6a43
  latch withdraw r-5f1c2a9e8d7b6a43 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := latch.ParseRequestID(args[0])
			if err != nil {
				return err
			}
			c, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			r, err := c.Withdraw(cmd.Context(), id)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, struct {
					Request latchhttp.RequestJSON `json:"request"`
				}{r})
			}
			printRequest(a.stdout, r, nil, a.clock.Now())
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	a.addFlags(cmd, serverFlags, awsFlags)
	return cmd
}

func (a *app) whoamiCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show who the latch server thinks you are, and your address",
		Example: `  latch whoami --server https://latch.example.com
  LATCH_SERVER=https://latch.example.com latch whoami --auth aws --json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(cmd.Context())
			if err != nil {
				return err
			}
			who, err := c.WhoAmI(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, who)
			}
			fmt.Fprintf(a.stdout, "%s (%s %s", esc(who.Display), esc(who.Kind), esc(who.Subject))
			if len(who.Groups) > 0 {
				fmt.Fprintf(a.stdout, "; groups %s", escJoin(who.Groups, ", "))
			}
			if who.Admin {
				fmt.Fprint(a.stdout, "; admin")
			}
			fmt.Fprintf(a.stdout, ") from %s\n", who.Address)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	a.addFlags(cmd, serverFlags, awsFlags)
	return cmd
}
