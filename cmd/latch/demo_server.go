package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/ec2sim"
	latchhttp "github.com/latchdev/latch/http"
)

// demoPerson is one of the demo server's AWS identities, known to the
// simulator's STS.
type demoPerson struct {
	name, key, secret string
}

func (p demoPerson) arn() string {
	return "arn:aws:iam::" + ec2sim.DefaultAccountID + ":user/" + p.name
}

var (
	demoServerIdentity = demoPerson{"demo-server", "demo-server", "demo-server-secret"}
	demoRequester      = demoPerson{"demo-requester", "demo-requester", "demo-requester-secret"}
	demoApprover       = demoPerson{"demo-approver", "demo-approver", "demo-approver-secret"}
)

// demoPolicy lets demo-requester ask for SSH to the dev web servers, with
// one approval from demo-approver.
func demoPolicy() string {
	return fmt.Sprintf(`version: 1
rules:
  - name: demo-ssh
    targets: {tags: {env: dev}}
    who: {aws_principals: [%q]}
    ports: [tcp/22]
    duration: {default: 10m, max: 1h}
    approval: {approvals: 1, from: {aws_principals: [%q]}}
`, demoRequester.arn(), demoApprover.arn())
}

// The commands the demo prints, and runs itself without --keep.
const (
	demoRequestArgs = "request " + ec2sim.DemoWeb1 + " --port 22 --for 10m --reason INC-1"
	demoPlaceholder = "REQUEST_ID"
	demoGrantHolder = "GRANT_ID"
)

// demoEnv is what a person sets to use the demo server as p.
func demoEnv(p demoPerson, simURL, serverURL string) [][2]string {
	return [][2]string{
		{"AWS_ACCESS_KEY_ID", p.key},
		{"AWS_SECRET_ACCESS_KEY", p.secret},
		{"AWS_REGION", ec2sim.DemoRegion},
		{"AWS_ENDPOINT_URL", simURL},
		{"LATCH_SERVER", serverURL},
		{"LATCH_AUTH", "aws"},
	}
}

func exportLine(env [][2]string) string {
	var b strings.Builder
	b.WriteString("export")
	for _, kv := range env {
		fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
	}
	return b.String()
}

// demoServer runs the simulator and a latch server in this process, then
// either walks through a request, approval and revoke as the two demo
// people, or (--keep) prints how to do so by hand and serves until ctx ends.
func (a *app) demoServer(ctx context.Context, o demoOptions) error {
	t := newTimeline(a.stdout, a.clock)
	sim, simURL, group, stopSim, err := startDemoSim()
	if err != nil {
		return err
	}
	defer stopSim()
	for _, p := range []demoPerson{demoServerIdentity, demoRequester, demoApprover} {
		if err := sim.AddIdentity(ec2sim.Identity{AccessKeyID: p.key, SecretAccessKey: p.secret, ARN: p.arn()}); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "latch-demo-server-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	policyFile := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(demoPolicy()), 0o600); err != nil {
		return err
	}

	// The server is the real 'latch server', with the environment an
	// operator would give it: its own AWS credentials, and STS at the
	// simulator, trusted for proofs.
	serverEnv := map[string]string{
		"AWS_ACCESS_KEY_ID": demoServerIdentity.key, "AWS_SECRET_ACCESS_KEY": demoServerIdentity.secret,
		"AWS_REGION": ec2sim.DemoRegion, "AWS_ENDPOINT_URL": simURL, "HOME": dir,
		"LATCH_DB": filepath.Join(dir, "latch.db"), "LATCH_LOG_FORMAT": "json",
	}
	var serverLog io.Writer = &storyLines{to: t}
	if o.keep {
		serverEnv["LATCH_LOG_FORMAT"] = "text"
		serverLog = a.stderr
	}
	serverArgs := []string{"server", "--policy", policyFile, "--listen", "127.0.0.1:0",
		"--aws-auth", "--aws-account", ec2sim.DefaultAccountID, "--aws-sts-host", simURL, "--sweep-interval", "5s"}
	serverCtx, stopServer := context.WithCancel(ctx)
	defer stopServer()
	urlOut, urlIn := io.Pipe()
	served := make(chan int, 1)
	go func() {
		code := run(serverCtx, serverArgs, func(k string) string { return serverEnv[k] }, strings.NewReader(""), urlIn, serverLog)
		urlIn.CloseWithError(fmt.Errorf("latch server exited with status %d", code))
		served <- code
	}()
	defer func() { stopServer(); <-served }()
	lines := bufio.NewReader(urlOut)
	serverURL, err := lines.ReadString('\n')
	if err != nil {
		return fmt.Errorf("demo: start the server: %w", err)
	}
	go io.Copy(io.Discard, lines) //nolint:errcheck // the server prints nothing more
	serverURL = strings.TrimSpace(serverURL)
	t.say("EC2 simulator (and STS) at %s; demo fleet, managed group %s", simURL, group)
	t.say("latch server at %s: AWS IAM auth for account %s, policy demo-ssh (tcp/22 to env=dev, one approval)", serverURL, ec2sim.DefaultAccountID)

	if o.keep {
		a.printDemoServerHelp(simURL, serverURL)
		<-ctx.Done()
		return nil
	}
	if err := a.demoServerScript(ctx, t, sim, simURL, serverURL); err != nil {
		return err
	}
	t.say("Done: the request needed demo-approver, the rule opened on approval and closed on revoke.")
	fmt.Fprintln(a.stdout, "\nTry it by hand, as two people: latch demo --server --keep")
	return nil
}

func (a *app) printDemoServerHelp(simURL, serverURL string) {
	w := a.stdout
	fmt.Fprintf(w, "\nStill running (Ctrl-C stops both). With latch on your PATH (go install ./cmd/latch), paste as each person.\n")
	fmt.Fprintf(w, "\nAs the requester (%s), in one terminal:\n", demoRequester.arn())
	fmt.Fprintf(w, "  %s\n", exportLine(demoEnv(demoRequester, simURL, serverURL)))
	fmt.Fprintf(w, "  latch whoami\n")
	fmt.Fprintf(w, "  latch doctor\n")
	fmt.Fprintf(w, "  latch %s --wait    # waits for the approver\n", demoRequestArgs)
	fmt.Fprintf(w, "  latch ls\n")
	fmt.Fprintf(w, "  latch revoke %s    # the grant the approved request opened, as latch ls shows it\n", demoGrantHolder)
	fmt.Fprintf(w, "\nAs the approver (%s), in another terminal:\n", demoApprover.arn())
	fmt.Fprintf(w, "  %s\n", exportLine(demoEnv(demoApprover, simURL, serverURL)))
	fmt.Fprintf(w, "  latch ls    # the request waiting for you\n")
	fmt.Fprintf(w, "  latch approve %s    # the ID the requester's 'latch request' printed\n", demoPlaceholder)
}

// demoServerScript is the story: demo-requester asks, demo-approver
// approves, the rule opens, demo-requester revokes it.
func (a *app) demoServerScript(ctx context.Context, t *timeline, sim *ec2sim.Server, simURL, serverURL string) error {
	as := func(p demoPerson, cmdline string) (string, error) {
		t.say("%s$ latch %s", p.name, cmdline)
		env := map[string]string{"HOME": os.TempDir()}
		for _, kv := range demoEnv(p, simURL, serverURL) {
			env[kv[0]] = kv[1]
		}
		var stdout, stderr bytes.Buffer
		code := run(ctx, strings.Fields(cmdline), func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
		if code != 0 {
			return "", fmt.Errorf("demo: 'latch %s' as %s: exit %d: %s", cmdline, p.name, code, strings.TrimSpace(stderr.String()))
		}
		return stdout.String(), nil
	}
	type shown struct {
		Request latchhttp.RequestJSON `json:"request"`
		Grant   *latchhttp.GrantJSON  `json:"grant"`
	}
	parse := func(out string) (shown, error) {
		var s shown
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			return s, fmt.Errorf("demo: read the request: %w", err)
		}
		return s, nil
	}
	open := func() []ec2sim.Rule { return sim.Rules(ec2sim.DemoRegion, ec2sim.DemoWebLatchGroup) }

	out, err := as(demoRequester, demoRequestArgs+" --json")
	if err != nil {
		return err
	}
	req, err := parse(out)
	if err != nil {
		return err
	}
	if req.Request.State != latch.RequestPending {
		return fmt.Errorf("demo: request %s is %s, want pending", req.Request.ID, req.Request.State)
	}
	t.say("request %s is pending: it needs %d approval from %s; %d latch rule(s) open", req.Request.ID,
		req.Request.ApprovalsNeeded, approversText(req.Request), len(open()))

	out, err = as(demoApprover, "approve "+string(req.Request.ID)+" --json")
	if err != nil {
		return err
	}
	if req, err = parse(out); err != nil {
		return err
	}
	if req.Request.State != latch.RequestActive || req.Request.GrantID == "" || len(req.Request.Reviews) != 1 {
		return fmt.Errorf("demo: after approval, request %s is %s with %d review(s)", req.Request.ID, req.Request.State, len(req.Request.Reviews))
	}
	rules := open()
	if len(rules) != 1 {
		return fmt.Errorf("demo: %d latch rules open after approval, want 1", len(rules))
	}
	grant := req.Request.GrantID
	t.say("approved by %s: grant %s opened rule %s, tcp 22 from %s until %s", req.Request.Reviews[0].By.Display, grant,
		rules[0].ID, rules[0].CIDR, rules[0].Tags[latch.TagExpiresAt])

	if _, err := as(demoRequester, "revoke "+string(grant)); err != nil {
		return err
	}
	if n := len(open()); n != 0 {
		return fmt.Errorf("demo: %d latch rule(s) still open after revoke", n)
	}
	t.say("revoked: grant %s is over and EC2 lists no latch rule in %s", grant, ec2sim.DemoWebLatchGroup)
	return nil
}

// storyLines passes on the server's JSON log lines that tell the demo's
// story (requests, reviews and the evidence of each rule), a line at a time.
type storyLines struct {
	to      io.Writer
	partial []byte
}

func (w *storyLines) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := w.partial[:i+1]
		var rec struct {
			Msg string `json:"msg"`
		}
		_ = json.Unmarshal(line, &rec)
		switch rec.Msg {
		case "requested", "reviewed", "granted", "revoked", "expired":
			if _, err := w.to.Write(line); err != nil {
				return 0, err
			}
		}
		w.partial = w.partial[i+1:]
	}
}
