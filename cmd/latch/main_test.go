package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/ec2sim"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/internal/awstest"
)

var start = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// world is the environment one test runs latch in: an EC2 endpoint, a
// managed group, a database path and a clock file.
type world struct {
	env   *awstest.Env
	group latch.GroupID
	dir   string
	vars  map[string]string
	// grantVars, if set, override vars for `latch grant`.
	grantVars map[string]string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return worldOn(t, awstest.New(t), t.TempDir())
}

// worldOn is a world on env, keeping its files in dir.
func worldOn(t *testing.T, env *awstest.Env, dir string) *world {
	t.Helper()
	w := worldOnUnregistered(t, env, dir)
	// STS names the test's key, so direct grants have a caller to record:
	// the simulator is told; an external endpoint must know it already.
	env.Identity(t, "AKIDLATCHTEST", "secret", testCallerARN)
	return w
}

// worldOnUnregistered is worldOn without telling the simulator's STS
// about the world's key.
func worldOnUnregistered(t *testing.T, env *awstest.Env, dir string) *world {
	t.Helper()
	w := &world{env: env, group: env.ManagedGroup(t), dir: dir, vars: map[string]string{
		"AWS_ACCESS_KEY_ID":     "AKIDLATCHTEST",
		"AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_ENDPOINT_URL":      env.URL,
		"AWS_REGION":            awstest.Region,
		"HOME":                  dir,
		"LATCH_DB":              filepath.Join(dir, "latch.db"),
		"LATCH_LOG_FORMAT":      "json",
		"LATCH_TEST_CLOCK_FILE": filepath.Join(dir, "clock"),
		"USER":                  "tester",
	}}
	w.setClock(t, start)
	return w
}

// testCallerARN is who STS says the world's credentials belong to.
const testCallerARN = "arn:aws:iam::" + ec2sim.DefaultAccountID + ":user/AKIDLATCHTEST"

func (w *world) setClock(t *testing.T, at time.Time) {
	t.Helper()
	// Write then rename, so a reader never sees half a time.
	tmp := filepath.Join(w.dir, "clock.tmp")
	if err := os.WriteFile(tmp, []byte(at.Format(time.RFC3339Nano)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(w.dir, "clock")); err != nil {
		t.Fatal(err)
	}
}

type result struct {
	code           int
	stdout, stderr string
}

// latch runs the real program in-process.
func (w *world) latch(t *testing.T, args ...string) result {
	t.Helper()
	return w.latchCtx(t.Context(), t, args...)
}

func (w *world) latchCtx(ctx context.Context, t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string { return w.vars[k] }
	if len(args) > 0 && args[0] == "grant" && w.grantVars != nil {
		getenv = func(k string) string {
			if v, ok := w.grantVars[k]; ok {
				return v
			}
			return w.vars[k]
		}
	}
	code := run(ctx, args, getenv, strings.NewReader(""), &stdout, &stderr)
	if wantsJSON(args, getenv) {
		checkJSONStyle(t, args, stdout.String())
	}
	return result{code, stdout.String(), stderr.String()}
}

func (w *world) rules(t *testing.T) map[latch.RuleID]map[string]string {
	t.Helper()
	out := map[latch.RuleID]map[string]string{}
	for _, r := range w.env.Ingress(t, w.group) {
		out[latch.RuleID(*r.SecurityGroupRuleId)] = awstest.Tags(r)
	}
	return out
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, s)
	}
	return v
}

func TestBadInputExitsTwoAndChangesNothing(t *testing.T) {
	w := newWorld(t)
	sg := string(w.group)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"whole internet", []string{"grant", "--sg", sg, "--ip", "0.0.0.0/0", "--for", "5m", "--reason", "x"}, "whole internet"},
		{"IPv6 whole internet", []string{"grant", "--sg", sg, "--ip", "::/0", "--for", "5m", "--reason", "x"}, "whole internet"},
		{"subnet", []string{"grant", "--sg", sg, "--ip", "10.1.0.0/16", "--for", "5m", "--reason", "x"}, "single address"},
		{"too long", []string{"grant", "--sg", sg, "--ip", "203.0.113.7", "--for", "2h", "--reason", "x"}, "at most 1h0m0s"},
		{"zero duration", []string{"grant", "--sg", sg, "--ip", "203.0.113.7", "--for", "0s", "--reason", "x"}, "more than 0"},
		{"bad duration", []string{"grant", "--sg", sg, "--ip", "203.0.113.7", "--for", "soon", "--reason", "x"}, `for: "soon" is not a duration`},
		{"zero maximum", []string{"grant", "--sg", sg, "--ip", "203.0.113.7", "--for", "5m", "--reason", "x", "--max-duration", "0"}, `max-duration: "0" is not a positive whole number of seconds; want e.g. 1h`},
		{"no reason", []string{"grant", "--sg", sg, "--ip", "203.0.113.7", "--for", "5m"}, "reason: a reason is required"},
		{"bad group", []string{"grant", "--sg", "sg-xyz", "--ip", "203.0.113.7", "--for", "5m", "--reason", "x"}, `sg: "sg-xyz" is not a security group ID`},
		{"no group", []string{"grant", "--ip", "203.0.113.7", "--for", "5m", "--reason", "x"}, "sg: a security group is required"},
		{"bad port", []string{"grant", "--sg", sg, "--ip", "203.0.113.7", "--port", "70000", "--for", "5m", "--reason", "x"}, `port: "70000"`},
		{"all protocols", []string{"grant", "--sg", sg, "--ip", "203.0.113.7", "--protocol", "-1", "--for", "5m", "--reason", "x"}, "protocol"},
		{"unknown flag", []string{"grant", "--bogus"}, "unknown flag: --bogus"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"revoke bad id", []string{"revoke", "sgr-123"}, `grant: "sgr-123" is not a grant ID`},
		{"revoke no id", []string{"revoke"}, "accepts 1 arg"},
		{"bad region", []string{"--region", "mars", "sweep"}, `region: "mars"`},
		{"bad log level", []string{"--log-level", "loud", "ls"}, "--log-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.latch(t, tt.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr %q does not say %q", r.stderr, tt.want)
			}
		})
	}
	if _, err := os.Stat(w.vars["LATCH_DB"]); !os.IsNotExist(err) {
		t.Errorf("bad input created the database (%v)", err)
	}
	if n := len(w.rules(t)); n != 0 {
		t.Errorf("bad input opened %d rules", n)
	}
}

func TestBadEnvironmentValueNamesTheVariable(t *testing.T) {
	w := newWorld(t)
	w.vars["LATCH_DETACH"] = "maybe"
	r := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "x")
	if r.code != exitUsage || !strings.Contains(r.stderr, `LATCH_DETACH="maybe"`) {
		t.Fatalf("exit %d, stderr %q; want 2 naming LATCH_DETACH", r.code, r.stderr)
	}
}

func TestDetachedGrantListRevoke(t *testing.T) {
	w := newWorld(t)
	r := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "30m", "--reason", "deploy", "--detach", "--json")
	if r.code != 0 {
		t.Fatalf("grant exit %d: %s", r.code, r.stderr)
	}
	g := grantOut(t, r.stdout)
	if g.State != latch.StateActive || g.RuleID == "" || !g.ExpiresAt.Equal(start.Add(30*time.Minute)) || g.Requester.Display == "" {
		t.Fatalf("grant = %+v", g)
	}
	tags := w.rules(t)[g.RuleID]
	if tags[latch.TagGrantID] != string(g.ID) || tags[latch.TagExpiresAt] != "2026-11-23T10:30:00Z" {
		t.Fatalf("rule %s tags = %v", g.RuleID, tags)
	}
	if !strings.Contains(r.stderr, `"msg":"granted"`) {
		t.Errorf("no evidence line on stderr: %s", r.stderr)
	}

	ls := lsOut(t, w.latch(t, "ls", "--json").stdout)
	if len(ls) != 1 || ls[0].ID != g.ID {
		t.Fatalf("ls = %+v, want the grant", ls)
	}
	if out := w.latch(t, "ls").stdout; !strings.Contains(out, string(g.ID)) || !strings.Contains(out, "in 30m0s") {
		t.Errorf("ls table:\n%s", out)
	}

	if r := w.latch(t, "revoke", string(g.ID)); r.code != 0 || !strings.Contains(r.stdout, "Revoked "+string(g.ID)) {
		t.Fatalf("revoke exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if n := len(w.rules(t)); n != 0 {
		t.Fatalf("%d rules after revoke", n)
	}
	if out := w.latch(t, "ls").stdout; !strings.Contains(out, "No open grants") {
		t.Errorf("ls after revoke:\n%s", out)
	}
	all := lsOut(t, w.latch(t, "ls", "--all", "--json").stdout)
	if len(all) != 1 || all[0].State != latch.StateRevoked || all[0].EndedAt == nil {
		t.Errorf("ls --all = %+v, want the revoked grant", all)
	}
	if r := w.latch(t, "revoke", string(g.ID)); r.code != exitRuntime || !strings.Contains(r.stderr, "already ended") {
		t.Errorf("second revoke: exit %d %s", r.code, r.stderr)
	}
}

func TestRecipeEnvironmentCarriesOver(t *testing.T) {
	w := newWorld(t)
	w.vars["SECURITY_GROUP_ID"] = string(w.group)
	w.vars["ALLOWED_IP"] = "198.51.100.4"
	w.vars["DURATION"] = "600"
	w.vars["LATCH_REASON"] = "recipe"
	w.vars["LATCH_DETACH"] = "true"
	w.vars["LATCH_JSON"] = "true"
	r := w.latch(t, "grant")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	g := grantOut(t, r.stdout)
	if g.Source != "198.51.100.4/32" || !g.ExpiresAt.Equal(start.Add(10*time.Minute)) || g.Reason != "recipe" {
		t.Fatalf("grant = %+v, want 198.51.100.4 for 600s", g)
	}
	w.vars["DURATION"] = "ten minutes"
	if r := w.latch(t, "grant"); r.code != exitUsage || !strings.Contains(r.stderr, "DURATION") {
		t.Errorf("bad DURATION: exit %d %s", r.code, r.stderr)
	}
}

func TestListShowsRevokeFailed(t *testing.T) {
	w := newWorld(t)
	sim := w.env.RequireSim(t, "injects server errors into RevokeSecurityGroupIngress")
	g := grantOut(t, w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "x", "--detach", "--json").stdout)
	sim.SetFaults(ec2sim.Faults{ServerErrorRate: 1, Actions: []string{"RevokeSecurityGroupIngress"}})
	w.vars["AWS_MAX_ATTEMPTS"] = "1"
	for range 5 {
		if r := w.latch(t, "revoke", string(g.ID)); r.code != exitRuntime {
			t.Fatalf("revoke against failing EC2: exit %d", r.code)
		}
		w.setClock(t, start.Add(time.Hour)) // past any retry time
	}
	out := w.latch(t, "ls").stdout
	if !strings.Contains(out, "revoke-failed") || !strings.Contains(out, "still being retried") || !strings.Contains(out, "InternalError") {
		t.Fatalf("ls does not show the revoke-failed grant and its error:\n%s", out)
	}
}

func TestBareBootstrapIsLambdaUnderTheLambdaRuntime(t *testing.T) {
	env := map[string]string{"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}
	if got := lambdaArgs(nil, func(k string) string { return env[k] }); len(got) != 1 || got[0] != "lambda" {
		t.Errorf("under the runtime, no arguments = %v, want [lambda]", got)
	}
	if got := lambdaArgs(nil, func(string) string { return "" }); len(got) != 0 {
		t.Errorf("outside the runtime, no arguments = %v, want none (help)", got)
	}
	if got := lambdaArgs([]string{"ls"}, func(k string) string { return env[k] }); got[0] != "ls" {
		t.Errorf("explicit arguments were replaced: %v", got)
	}
}

// grantOut is the grant a grant --json printed first: its "opened" event.
func grantOut(t *testing.T, s string) latchhttp.GrantJSON {
	t.Helper()
	first, _, _ := strings.Cut(s, "\n")
	e := decode[grantEventJSON](t, first)
	if e.Event != eventOpened {
		t.Fatalf("first line's event = %q, want %q:\n%s", e.Event, eventOpened, s)
	}
	return e.Grant
}

// lsOut is the grants ls --json printed.
func lsOut(t *testing.T, s string) []latchhttp.GrantJSON {
	t.Helper()
	return decode[lsJSON](t, s).Grants
}

// decodeLines decodes output of one JSON object a line.
func decodeLines[T any](t *testing.T, s string) []T {
	t.Helper()
	var out []T
	for line := range strings.Lines(s) {
		out = append(out, decode[T](t, line))
	}
	return out
}
