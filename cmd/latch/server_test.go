package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/internal/awstest"
)

const e2ePolicy = `
version: 1
rules:
  - name: dev-ssh-iam
    targets: {tags: {env: dev}}
    who: {aws_principals: ["arn:aws:sts::123456789012:assumed-role/dev/*"]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: auto
`

// serverWorld is a world with the demo fleet's shape, built through the
// SDK, and a running latch server process.
type serverWorld struct {
	*world
	fleet  awstest.Fleet
	url    string
	server *proc
}

// Two people's AWS identities, which every server world knows; the
// server's own credentials are the world's.
const (
	aliceARN   = "arn:aws:sts::123456789012:assumed-role/dev/alice"
	malloryARN = "arn:aws:sts::123456789012:assumed-role/contractor/mallory"
)

func startServer(t *testing.T, policyYAML string, extra ...string) *serverWorld {
	t.Helper()
	return startServerOn(t, awstest.New(t), policyYAML, extra...)
}

// startServerOn is startServer on env.
func startServerOn(t *testing.T, env *awstest.Env, policyYAML string, extra ...string) *serverWorld {
	t.Helper()
	w := worldOn(t, env, t.TempDir())
	w.env.Identity(t, "AKIDALICE", "alice-secret", aliceARN)
	w.env.Identity(t, "AKIDMALLORY", "mallory-secret", malloryARN)
	fleet := w.env.DemoFleet(t)
	pf := filepath.Join(w.dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(policyYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	sw := w.launchServer(t, extra...)
	sw.fleet = fleet
	w.vars["LATCH_SERVER"] = sw.url
	w.vars["LATCH_AUTH"] = "aws"
	return sw
}

// approvalPolicy lets IAM user alice (AKIDAL) ask for SSH to dev
// instances, with one approval from IAM user bob (AKIDBOBIAM).
const approvalPolicy = `
version: 1
rules:
  - name: dev-ssh-approved
    targets: {tags: {env: dev}}
    who: {aws_principals: ["arn:aws:iam::123456789012:user/alice"]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: {approvals: 1, from: {aws_principals: ["arn:aws:iam::123456789012:user/bob"]}}
`

// startApprovalServer is startServer with approvalPolicy and its two people.
func startApprovalServer(t *testing.T) *serverWorld {
	t.Helper()
	w := startServer(t, approvalPolicy)
	w.env.Identity(t, "AKIDBOBIAM", "bob-iam-secret", "arn:aws:iam::123456789012:user/bob")
	w.env.Identity(t, "AKIDAL", "al-secret", "arn:aws:iam::123456789012:user/alice")
	return w
}

// launchServer starts a latch server process in w, with the policy file
// startServer wrote: a second one shares w's database and simulator.
func (w *world) launchServer(t *testing.T, extra ...string) *serverWorld {
	t.Helper()
	pf := filepath.Join(w.dir, "policy.yaml")
	args := append([]string{"server", "--policy", pf, "--listen", "127.0.0.1:0", "--aws-auth", "--aws-account", "123456789012", "--aws-sts-host", w.env.URL, "--sweep-interval", "1m"}, extra...)
	cmd := exec.Command(latchBinary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range w.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, more: make(chan struct{}), done: make(chan struct{})}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.collect(stderr)
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.done; _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("server printed no URL: %v\n%s", err, p.output())
	}
	return &serverWorld{world: w, url: strings.TrimSpace(line), server: p}
}

// as makes the client commands act as the person with these AWS keys.
func (w *serverWorld) as(key, secret string) {
	w.vars["AWS_ACCESS_KEY_ID"], w.vars["AWS_SECRET_ACCESS_KEY"] = key, secret
}

type requestOut struct {
	Request latchhttp.RequestJSON `json:"request"`
	Grant   *latchhttp.GrantJSON  `json:"grant"`
}

// The AWS IAM identity path end to end: the CLI presigns
// sts:GetCallerIdentity with the SDK, the server process checks it against
// STS (the simulator) and decides by the ARN.
func TestServerWithAWSIdentities(t *testing.T) {
	w := startServer(t, e2ePolicy, "--metrics-listen", "127.0.0.1:0")
	metrics := metricsURL(t, w.server)
	w.as("AKIDALICE", "alice-secret")

	r := w.latch(t, "whoami", "--json")
	if r.code != 0 {
		t.Fatalf("whoami: exit %d: %s\nserver: %s", r.code, r.stderr, w.server.output())
	}
	who := decode[latchhttp.WhoAmIJSON](t, r.stdout)
	if r.code != 0 || who.Subject != "arn:aws:sts::123456789012:assumed-role/dev/alice" || who.Kind != latch.KindIAM || who.Address != "127.0.0.1" {
		t.Fatalf("whoami: exit %d %+v %s", r.code, who, r.stderr)
	}

	r = w.latch(t, "request", w.fleet.Web1, "--port", "22", "--for", "20m", "--reason", "deploy", "--json")
	out := decode[requestOut](t, r.stdout)
	if r.code != 0 || out.Request.State != latch.RequestActive || out.Grant == nil || out.Grant.State != latch.StateActive {
		t.Fatalf("request: exit %d %+v\n%s", r.code, out, r.stderr)
	}
	rules := w.env.Rules(t, w.fleet.WebGroup)
	if len(rules) != 1 || rules[0].CIDR != "127.0.0.1/32" || rules[0].Tags[latch.TagRequester] != who.Subject {
		t.Fatalf("rules = %+v, want one for the caller's address, tagged with their ARN", rules)
	}
	if !out.Grant.ExpiresAt.Equal(start.Add(20 * time.Minute)) {
		t.Errorf("grant expires %v, want 20m after start", out.Grant.ExpiresAt)
	}

	m := scrape(t, metrics)
	if m["latch_grants_opened_total"] != 1 || m["latch_grants_active"] != 1 ||
		m["latch_aws_calls_total,operation=AuthorizeSecurityGroupIngress,service=EC2"] != 1 {
		t.Errorf("server metrics after one grant: opened %v, active %v, authorize calls %v", m["latch_grants_opened_total"],
			m["latch_grants_active"], m["latch_aws_calls_total,operation=AuthorizeSecurityGroupIngress,service=EC2"])
	}
	if r := w.latch(t, "revoke", string(out.Grant.ID)); r.code != 0 {
		t.Fatalf("revoke: exit %d %s", r.code, r.stderr)
	}
	if m := scrape(t, metrics); m["latch_grants_ended_total,outcome=revoked"] != 1 || m["latch_grants_active"] != 0 {
		t.Errorf("server metrics after ending it: revoked %v, active %v", m["latch_grants_ended_total,outcome=revoked"], m["latch_grants_active"])
	}
	if n := len(w.env.Rules(t, w.fleet.WebGroup)); n != 0 {
		t.Fatalf("%d rules after ending the grant early", n)
	}

	w.as("AKIDMALLORY", "mallory-secret")
	if r := w.latch(t, "request", w.fleet.Web1, "--reason", "x"); r.code != exitRuntime || !strings.Contains(r.stderr, "mallory") {
		t.Errorf("a principal outside the policy: exit %d %s", r.code, r.stderr)
	}
	w.as("AKIDALICE", "wrong-secret")
	if r := w.latch(t, "whoami"); r.code != exitRuntime || !strings.Contains(strings.ToLower(r.stderr), "signature") {
		t.Errorf("a forged proof: exit %d %s", r.code, r.stderr)
	}
	w.vars["LATCH_SERVER_ID"] = "another-latch"
	w.as("AKIDALICE", "alice-secret")
	if r := w.latch(t, "whoami"); r.code != exitRuntime || !strings.Contains(r.stderr, "server") {
		t.Errorf("a proof for another server: exit %d %s", r.code, r.stderr)
	}
}
