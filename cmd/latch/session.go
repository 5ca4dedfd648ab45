package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/sshclient"
	"github.com/latchdev/latch/ssmclient"
)

type sessionOptions struct {
	document, port, localPort, dur, reason, plugin string
	breakGlass                                     bool
}

func (a *app) sessionCommand() *cobra.Command {
	var o sessionOptions
	cmd := &cobra.Command{
		Use:   "session TARGET",
		Short: "Start a Session Manager session (a shell or a forwarded port) with no inbound port opened",
		Long: `Reach TARGET (an instance ID or Name tag) through AWS Systems Manager
Session Manager, with no security-group rule at all:

  1. ask $LATCH_SERVER for Session Manager access, waiting with progress
     for approval; the policy rule's ssm section says which documents and
     ports it allows;
  2. the server starts the session under a role session named for you,
     so the session ID, DescribeSessions and CloudTrail name you;
  3. run AWS's session-manager-plugin with it, as 'aws ssm start-session'
     does: a shell, or a local port forwarded to a port on the instance;
  4. end access when the plugin exits. At the grant's expiry the server
     terminates the session, even if this command is gone.

You need no AWS permission of your own: only the server may start
sessions. The plugin must be installed (or given with --plugin). For SSH
over Session Manager, use 'latch ssh TARGET --via ssm'.`,
		Example: `  latch session web-1 --reason "check disk"
  latch session db-1 --document port-forward --port 5432 --local-port 15432 --for 30m --reason INC-7
  latch session i-0a0b0c0d0e0f00001 --plugin ~/bin/session-manager-plugin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return a.session(cmd.Context(), args[0], o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.document, "document", "shell", "what the session is: shell, or port-forward (to --port on the instance)")
	f.StringVar(&o.port, "port", "", "port-forward: the port on the instance, 1-65535")
	f.StringVar(&o.localPort, "local-port", "", "port-forward: the local port to listen on (default: one the plugin chooses and prints)")
	f.StringVar(&o.dur, "for", "", "how long, e.g. 30m (default: the policy's)")
	f.StringVar(&o.reason, "reason", "", "why you need access")
	f.BoolVar(&o.breakGlass, "break-glass", false, "skip approval in an emergency, where the policy allows it (flagged everywhere)")
	f.StringVar(&o.plugin, "plugin", "", "the session-manager-plugin to run (default: the one on your PATH)")
	a.addFlags(cmd, serverFlags)
	return cmd
}

// sessionPlan is a checked `latch session` invocation.
type sessionPlan struct {
	doc             latch.SSMDocument
	port, localPort int
	plugin          string
}

func (o sessionOptions) plan() (sessionPlan, error) {
	var p sessionPlan
	var err error
	if p.doc, err = latch.ParseSSMDocument(o.document); err != nil {
		return p, err
	}
	if p.doc == latch.DocSSH {
		return p, latch.Invalidf("document", "for SSH over Session Manager use 'latch ssh TARGET --via ssm', which brings the certificate too")
	}
	switch {
	case p.doc == latch.DocPortForward && o.port == "":
		return p, latch.Invalidf("port", "--document port-forward needs --port, the port on the instance (1-65535)")
	case p.doc == latch.DocShell && o.port != "":
		return p, latch.Invalidf("port", "--port is for --document port-forward; a shell takes none")
	case p.doc == latch.DocShell && o.localPort != "":
		return p, latch.Invalidf("local-port", "--local-port is for --document port-forward; a shell takes none")
	}
	if o.port != "" {
		if p.port, err = sshPort(o.port); err != nil {
			return p, err
		}
	}
	if o.localPort != "" {
		if p.localPort, err = strconv.Atoi(o.localPort); err != nil || p.localPort < 1 || p.localPort > 65535 {
			return p, latch.Invalidf("local-port", "--local-port %q is not a port; want one number, 1-65535", o.localPort)
		}
	}
	if o.dur != "" {
		if _, err := positiveDuration("for", o.dur); err != nil {
			return p, err
		}
	}
	if o.reason != "" {
		if err := latch.CheckReason("reason", o.reason); err != nil {
			return p, err
		}
	}
	p.plugin, err = ssmclient.FindPlugin(o.plugin)
	return p, err
}

func (a *app) session(ctx context.Context, target string, o sessionOptions) error {
	// The session holds access open: closing the terminal ends it.
	ctx, stop := whileHolding(ctx)
	defer stop()
	p, err := o.plan()
	if err != nil {
		return err
	}
	body := latchhttp.RequestBody{Target: target, Document: string(p.doc), Duration: o.dur, Reason: o.reason, BreakGlass: o.breakGlass}
	if p.doc.TakesPort() {
		body.Port = strconv.Itoa(p.port)
	}
	c, s, err := a.askSession(ctx, body)
	if s.end != nil {
		defer a.endHeld(ctx, s.grant, s.end)
	}
	if err == nil {
		err = s.start(ctx, c, p.localPort)
	}
	if err != nil {
		return err
	}
	argv, env, err := s.session.Command(p.plugin)
	if err != nil {
		return err
	}
	what := "a shell"
	if p.doc == latch.DocPortForward {
		what = fmt.Sprintf("port %d forwarded", p.port)
	}
	fmt.Fprintf(a.stderr, "latch: session %s on %s (%s) until %s (grant %s).\n", s.session.SessionID, target, what, latch.FormatExpiry(s.until), s.grant)
	code, err := sshclient.Session{Argv: argv, Env: ssmclient.Environ(env), Until: s.until, Clock: a.clock,
		Stdin: a.stdin, Stdout: a.stdout, Stderr: a.stderr, Log: a.log}.Run(ctx)
	if err != nil || code == 0 {
		return err
	}
	return exitStatus(code)
}

// heldSession is Session Manager access the command holds.
type heldSession struct {
	grant   latch.GrantID
	until   time.Time
	session ssmclient.Session
	end     func(ctx context.Context) error // ends the grant; nil until there is one
}

// askSession asks the server for Session Manager access with body and
// waits for approval.
func (a *app) askSession(ctx context.Context, body latchhttp.RequestBody) (*latchhttp.Client, heldSession, error) {
	var s heldSession
	c, err := a.client(ctx)
	if err != nil {
		return nil, s, err
	}
	r, err := c.CreateRequest(ctx, body)
	if err != nil {
		return c, s, err
	}
	if r.State == latch.RequestPending {
		if r, err = a.waitForDecision(ctx, c, r, true); err != nil {
			return c, s, err
		}
	}
	if r.State != latch.RequestActive {
		return c, s, fmt.Errorf("request %s was %s %s", r.ID, r.State, r.Note)
	}
	s.grant = r.GrantID
	s.end = func(ctx context.Context) error { _, err := c.Revoke(ctx, r.GrantID); return err }
	g, err := c.Grant(ctx, r.GrantID)
	if err != nil {
		return c, s, err
	}
	s.until = g.ExpiresAt
	return c, s, nil
}

// start starts the held grant's session.
func (s *heldSession) start(ctx context.Context, c *latchhttp.Client, localPort int) error {
	h, err := c.StartSession(ctx, s.grant, latchhttp.SessionBody{LocalPort: localPort})
	if err != nil {
		return err
	}
	s.session = ssmclient.Session{SessionID: h.SessionID, TokenValue: h.TokenValue, StreamURL: h.StreamURL, Region: h.Region,
		Target: h.InstanceID, DocumentName: h.DocumentName, Parameters: h.Parameters}
	return nil
}

// endHeld ends access the command held, and says how that went.
func (a *app) endHeld(ctx context.Context, id latch.GrantID, end func(context.Context) error) {
	switch err := end(context.WithoutCancel(ctx)); {
	case err == nil:
		fmt.Fprintf(a.stderr, "latch: revoked %s.\n", id)
	case latch.ErrorCode(err) == latch.ECONFLICT:
		fmt.Fprintf(a.stderr, "latch: %s had already ended.\n", id)
	default:
		fmt.Fprintf(a.stderr, "latch: revoke %s: %s\n'latch run' or a sweep ends it at expiry.\n", id, latch.ErrorMessage(err))
	}
}
