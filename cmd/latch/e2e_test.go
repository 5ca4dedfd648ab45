package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/ec2sim"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/internal/oidctest"
	"github.com/latchdev/latch/oidc"
)

const oidcPolicy = `
version: 1
rules:
  - name: prod-db
    targets: {tags: {env: prod}}
    who: {groups: [dev]}
    ports: [tcp/5432]
    duration: {default: 15m, max: 1h}
    approval: {approvals: 1, from: [sre]}
    networks: [198.51.100.0/24]
  - name: prod-ssh
    targets: {tags: {env: prod}}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: {approvals: 1, from: [sre]}
`

var (
	opAlice = oidctest.User{Username: "alice", Password: "a-pw", Email: "alice@example.com", EmailVerified: true, Groups: []string{"dev"}}
	opBob   = oidctest.User{Username: "bob", Password: "b-pw", Email: "bob@example.com", EmailVerified: true, Groups: []string{"sre"}}
)

// loginAs logs u in through the provider (PKCE, driven like a browser) and
// points the client commands at u's token.
func loginAs(t *testing.T, w *serverWorld, op *oidctest.OP, u oidctest.User) {
	t.Helper()
	loginWithScopes(t, w, op, u, "config-"+u.Username, nil)
}

// loginWithScopes is loginAs asking for scopes (nil for latch's default),
// with the token kept in the config directory named dir.
func loginWithScopes(t *testing.T, w *serverWorld, op *oidctest.OP, u oidctest.User, dir string, scopes []string) {
	t.Helper()
	dir = filepath.Join(w.dir, dir)
	w.vars["XDG_CONFIG_HOME"] = dir
	w.vars["LATCH_AUTH"] = "oidc"
	if _, err := oidc.LoadToken(filepath.Join(dir, "latch", "token.json")); err == nil {
		return
	}
	cfg := oidc.LoginConfig{Issuer: op.Issuer(), ClientID: "latch-cli", Method: oidc.MethodPKCE, Open: op.Browser(u), Scopes: scopes}
	tok, err := oidc.Login(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cached, err := oidc.NewCachedToken(cfg, tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := oidc.SaveToken(filepath.Join(dir, "latch", "token.json"), cached); err != nil {
		t.Fatal(err)
	}
}

// End to end: a real server process, a real OpenID provider and the
// simulator. Request → refused self-approval → approval by a second
// identity → rule present → expiry → rule gone; the policy's maximum
// duration and networks enforced; a grant ended early revoked at once.
func TestServerEndToEndWithOIDC(t *testing.T) {
	op := oidctest.New(t, "latch-cli", opAlice, opBob)
	w := startServer(t, oidcPolicy, "--oidc-issuer", op.Issuer(), "--oidc-audience", "latch-cli")
	rules := func() []ec2sim.Rule { return w.env.Rules(t, w.fleet.DBGroup) }

	loginAs(t, w, op, opAlice)
	if r := w.latch(t, "whoami"); r.code != 0 || !strings.Contains(r.stdout, "alice@example.com (oidc u-alice; groups dev)") {
		t.Fatalf("whoami: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	r := w.latch(t, "request", w.fleet.DB1, "--port", "22", "--for", "30m", "--reason", "migrate", "--json")
	req := decode[requestOut](t, r.stdout).Request
	if r.code != 0 || req.State != latch.RequestPending || len(rules()) != 0 {
		t.Fatalf("request: exit %d, %s, %d rules\n%s", r.code, req.State, len(rules()), r.stderr)
	}
	if r := w.latch(t, "approve", string(req.ID)); r.code != exitRuntime || !strings.Contains(r.stderr, "your own request") {
		t.Fatalf("self-approval: exit %d %s", r.code, r.stderr)
	}
	if r := w.latch(t, "request", w.fleet.DB1, "--port", "22", "--for", "2h", "--reason", "x"); r.code != exitRuntime || !strings.Contains(r.stderr, "1h") {
		t.Fatalf("over the maximum duration: exit %d %s", r.code, r.stderr)
	}
	if r := w.latch(t, "request", w.fleet.DB1, "--port", "5432", "--reason", "x"); r.code != exitRuntime || !strings.Contains(r.stderr, "198.51.100.0/24") {
		t.Fatalf("outside the allowed networks: exit %d %s", r.code, r.stderr)
	}

	loginAs(t, w, op, opBob)
	r = w.latch(t, "approve", string(req.ID), "--json")
	if r.code != 0 {
		t.Fatalf("approval by bob: exit %d %s\nserver: %s", r.code, r.stderr, w.server.output())
	}
	out := decode[requestOut](t, r.stdout)
	if out.Request.State != latch.RequestActive || out.Request.GrantID == "" || out.Grant != nil {
		t.Fatalf("approval by bob = %+v, grant %+v; want active, the grant not shown to the approver", out.Request, out.Grant)
	}
	loginAs(t, w, op, opAlice)
	r = w.latch(t, "ls", "--json")
	mine := decode[struct{ Grants []latchhttp.GrantJSON }](t, r.stdout)
	if len(mine.Grants) != 1 || mine.Grants[0].ID != out.Request.GrantID {
		t.Fatalf("alice's ls = %+v, want her grant", mine)
	}
	out.Grant = &mine.Grants[0]
	if got := rules(); len(got) != 1 || got[0].CIDR != "127.0.0.1/32" || got[0].Tags[latch.TagRequester] != "alice@example.com" {
		t.Fatalf("rules after approval = %+v", got)
	}
	if !out.Grant.ExpiresAt.Equal(start.Add(30 * time.Minute)) {
		t.Errorf("grant expires %v, want 30m after approval", out.Grant.ExpiresAt)
	}
	w.setClock(t, start.Add(30*time.Minute+time.Minute))
	w.waitForRules(t, 0)

	// A grant ended early is revoked at once, with --wait showing progress.
	loginAs(t, w, op, opAlice)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan result, 1)
	go func() {
		var stdout strings.Builder
		code := run(ctx, []string{"request", w.fleet.DB1, "--port", "22", "--reason", "again", "--wait", "--json"},
			w.getenvSnapshot(), strings.NewReader(""), &stdout, pw)
		pw.Close()
		done <- result{code: code, stdout: stdout.String()}
	}()
	id := waitForRequestID(t, pr)
	loginAs(t, w, op, opBob)
	if r := w.latch(t, "approve", id); r.code != 0 {
		t.Fatalf("approve %s: exit %d %s", id, r.code, r.stderr)
	}
	w.setClock(t, start.Add(31*time.Minute+5*time.Second)) // the next poll
	res := <-done
	out = decode[requestOut](t, res.stdout)
	if res.code != 0 || out.Request.State != latch.RequestActive || out.Grant == nil {
		t.Fatalf("request --wait: exit %d %+v", res.code, out)
	}
	loginAs(t, w, op, opAlice)
	if r := w.latch(t, "revoke", string(out.Grant.ID)); r.code != 0 || len(rules()) != 0 {
		t.Fatalf("ending early: exit %d %s, %d rules left", r.code, r.stderr, len(rules()))
	}
}

// getenvSnapshot freezes the world's variables for a command running in
// the background while the test changes them.
func (w *world) getenvSnapshot() func(string) string {
	vars := map[string]string{}
	for k, v := range w.vars {
		vars[k] = v
	}
	return func(k string) string { return vars[k] }
}

// waitForRequestID reads --wait's progress until it names the request.
func waitForRequestID(t *testing.T, r io.Reader) string {
	t.Helper()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, r)
	}()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("request --wait ended without naming its request")
			}
			if rest, found := strings.CutPrefix(l, "Request "); found {
				id, _, _ := strings.Cut(rest, " ")
				go func() {
					for range lines {
					}
				}()
				return id
			}
		case <-deadline:
			t.Fatal("request --wait printed no request ID")
		}
	}
}

// latch login by the device flow: the code is shown, approved in the
// provider's page, and the token is kept with mode 0600 and used.
func TestLoginDeviceFlow(t *testing.T) {
	op := oidctest.New(t, "latch-cli", opAlice)
	w := startServer(t, oidcPolicy, "--oidc-issuer", op.Issuer(), "--oidc-audience", "latch-cli")
	w.vars["XDG_CONFIG_HOME"] = filepath.Join(w.dir, "cfg")
	w.vars["LATCH_OIDC_ISSUER"], w.vars["LATCH_OIDC_CLIENT_ID"] = op.Issuer(), "latch-cli"
	pr, pw := io.Pipe()
	done := make(chan result, 1)
	go func() {
		var stdout strings.Builder
		code := run(t.Context(), []string{"login"}, w.getenvSnapshot(), strings.NewReader(""), &stdout, pw)
		pw.Close()
		done <- result{code: code, stdout: stdout.String()}
	}()
	code := ""
	sc := bufio.NewScanner(pr)
	for code == "" && sc.Scan() {
		if _, rest, ok := strings.Cut(sc.Text(), "enter the code "); ok {
			code = strings.TrimSpace(rest)
		}
	}
	go io.Copy(io.Discard, pr)
	if err := op.ApproveDevice(opAlice, code, true); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.code != 0 || !strings.Contains(res.stdout, "Logged in") {
		t.Fatalf("login: exit %d %s", res.code, res.stdout)
	}
	st, err := os.Stat(filepath.Join(w.dir, "cfg", "latch", "token.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, mode %v; want 0600", err, st.Mode().Perm())
	}
	w.vars["LATCH_AUTH"] = "auto" // a cached login means oidc
	if r := w.latch(t, "whoami"); r.code != 0 || !strings.Contains(r.stdout, "alice@example.com") {
		t.Fatalf("whoami after login: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	delete(w.vars, "LATCH_SERVER")
	entries := decodeLines[latchhttp.AuditEntryJSON](t, w.latch(t, "audit", "ls", "--who", "alice@example.com", "--json").stdout)
	if len(entries) != 1 || entries[0].Action != "login" || entries[0].Target != "127.0.0.1" {
		t.Errorf("audit after login = %+v, want one login from 127.0.0.1", entries)
	}
}

// One person is one identity: alice, an SRE too, logs in a second time
// with only the "openid groups" scopes (as she could by editing the login
// URL), so her second token has no email. She is still herself, and
// cannot approve her own request with it.
func TestServerOneUserTwoLoginsIsOnePerson(t *testing.T) {
	aliceSRE := opAlice
	aliceSRE.Groups = []string{"dev", "sre"}
	op := oidctest.New(t, "latch-cli", aliceSRE)
	w := startServer(t, oidcPolicy, "--oidc-issuer", op.Issuer(), "--oidc-audience", "latch-cli")
	loginAs(t, w, op, aliceSRE)
	r := w.latch(t, "request", w.fleet.DB1, "--port", "22", "--reason", "migrate", "--json")
	req := decode[requestOut](t, r.stdout).Request
	if r.code != 0 || req.State != latch.RequestPending {
		t.Fatalf("request: exit %d %s %s", r.code, req.State, r.stderr)
	}

	loginWithScopes(t, w, op, aliceSRE, "config-alice-narrow", []string{"openid", "groups"})
	if r := w.latch(t, "whoami"); r.code != 0 || !strings.Contains(r.stdout, "u-alice") || strings.Contains(r.stdout, "alice@example.com") {
		t.Fatalf("whoami with the narrow login: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := w.latch(t, "approve", string(req.ID)); r.code != exitRuntime || !strings.Contains(r.stderr, "your own request") {
		t.Fatalf("self-approval with a second login: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
}

// Ctrl-C on request --wait leaves the request pending and says how to
// withdraw it; latch withdraw does, once.
func TestServerWithdrawAndInterruptedWait(t *testing.T) {
	op := oidctest.New(t, "latch-cli", opAlice, opBob)
	w := startServer(t, oidcPolicy, "--oidc-issuer", op.Issuer(), "--oidc-audience", "latch-cli")
	loginAs(t, w, op, opAlice)

	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	var stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		var stdout strings.Builder
		code := run(ctx, []string{"request", w.fleet.DB1, "--port", "22", "--reason", "wait", "--wait"},
			w.getenvSnapshot(), strings.NewReader(""), &stdout, io.MultiWriter(pw, &stderr))
		pw.Close()
		done <- code
	}()
	id := waitForRequestID(t, pr)
	cancel() // as Ctrl-C does
	if code := <-done; code != exitInterrupted || !strings.Contains(stderr.String(), "still pending") ||
		!strings.Contains(stderr.String(), "latch withdraw "+id) || strings.Contains(stderr.String(), "context canceled") {
		t.Fatalf("interrupted wait: exit %d\n%s", code, stderr.String())
	}

	loginAs(t, w, op, opBob)
	if r := w.latch(t, "withdraw", id); r.code != exitRuntime || !strings.Contains(r.stderr, "only its requester") {
		t.Fatalf("withdraw by bob: exit %d %s", r.code, r.stderr)
	}
	loginAs(t, w, op, opAlice)
	r := w.latch(t, "withdraw", id, "--json")
	if out := decode[requestOut](t, r.stdout); r.code != 0 || out.Request.State != latch.RequestWithdrawn {
		t.Fatalf("withdraw: exit %d %+v %s", r.code, out.Request, r.stderr)
	}
	if r := w.latch(t, "withdraw", id); r.code != exitRuntime || !strings.Contains(r.stderr, "only pending requests") {
		t.Fatalf("withdraw again: exit %d %s", r.code, r.stderr)
	}
	if r := w.latch(t, "withdraw", "r-nope"); r.code != exitUsage || !strings.Contains(r.stderr, "request") {
		t.Fatalf("withdraw of a malformed ID: exit %d %s", r.code, r.stderr)
	}
}
