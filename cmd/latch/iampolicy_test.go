package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/iampolicy"
)

// runIAMPolicy runs `latch iam-policy args...` mounted under latch's real
// root command (globals, environment, error handling as run has them),
// adding the subcommand if the root does not register it yet.
func runIAMPolicy(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{getenv: func(k string) string { return env[k] }, stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	root := a.rootCommand()
	if c, _, err := root.Find([]string{"iam-policy"}); err != nil || c.Name() != "iam-policy" {
		sub := a.iamPolicyCommand()
		sub.Args = wrapArgs(sub.Args)
		root.AddCommand(sub)
	}
	root.SetArgs(append([]string{"iam-policy"}, args...))
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(context.Background())
	a.close()
	if err != nil {
		fmt.Fprintln(&errb, "latch:", latch.ErrorMessage(err))
		return exitCode(err), out.String(), errb.String()
	}
	return exitOK, out.String(), errb.String()
}

var iamAction = regexp.MustCompile(`^[a-z0-9-]+:[A-Z][A-Za-z0-9]+$`)

// TestIAMPolicyPrintsValidPolicies reads each printed document as plain
// JSON, as IAM would, and checks it independently of package iampolicy's
// own validation.
func TestIAMPolicyPrintsValidPolicies(t *testing.T) {
	builds := map[string]func(iampolicy.Options) iampolicy.Document{
		"server": iampolicy.Server, "lambda": iampolicy.Lambda, "scheduler": iampolicy.Scheduler, "sweeper": iampolicy.Sweeper,
		"session-role": iampolicy.SessionRole,
	}
	for name, build := range builds {
		code, stdout, stderr := runIAMPolicy(t, nil, "--for", name)
		if code != exitOK {
			t.Fatalf("--for %s: exit %d: %s", name, code, stderr)
		}
		var doc struct {
			Version   string
			Statement []map[string]any
		}
		dec := json.NewDecoder(strings.NewReader(stdout))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("--for %s: not a policy document: %v\n%s", name, err, stdout)
		}
		if doc.Version != "2012-10-17" || len(doc.Statement) == 0 {
			t.Errorf("--for %s: Version %q, %d statements", name, doc.Version, len(doc.Statement))
		}
		for i, s := range doc.Statement {
			for _, k := range []string{"Effect", "Action", "Resource"} {
				if s[k] == nil {
					t.Errorf("--for %s: statement %d has no %s", name, i, k)
				}
			}
			actions, _ := s["Action"].([]any)
			for _, a := range actions {
				if !iamAction.MatchString(fmt.Sprint(a)) {
					t.Errorf("--for %s: statement %d: action %v is not service:Action", name, i, a)
				}
			}
		}
		want, _ := json.MarshalIndent(build(iampolicy.Options{}), "", "  ")
		if stdout != string(want)+"\n" {
			t.Errorf("--for %s printed\n%s\nwant\n%s", name, stdout, want)
		}
	}
}

func TestIAMPolicyNarrowsToAccountAndRegion(t *testing.T) {
	code, stdout, stderr := runIAMPolicy(t, nil, "--for", "server", "--account", "123456789012", "--region", "eu-west-1",
		"--schedule-group", "latch-prod", "--scheduler-role-arn", "arn:aws:iam::123456789012:role/revoker")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		`"arn:aws:ec2:eu-west-1:123456789012:security-group/*"`,
		`"arn:aws:scheduler:eu-west-1:123456789012:schedule/latch-prod/*"`,
		`"arn:aws:iam::123456789012:role/revoker"`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %s:\n%s", want, stdout)
		}
	}
	// The environment sets flags as for every command.
	code, stdout, stderr = runIAMPolicy(t, map[string]string{"LATCH_ACCOUNT": "210987654321"}, "--for", "scheduler")
	if code != exitOK || !strings.Contains(stdout, ":210987654321:security-group/*") {
		t.Errorf("LATCH_ACCOUNT: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestIAMPolicyFollowsTheBackstopSettings: without its own flags, the
// policy names the backstop's role, group and queue, as configured.
func TestIAMPolicyFollowsTheBackstopSettings(t *testing.T) {
	env := map[string]string{
		"LATCH_BACKSTOP_ROLE_ARN": "arn:aws:iam::123456789012:role/from-backstop",
		"LATCH_BACKSTOP_GROUP":    "backstops",
		"LATCH_BACKSTOP_DLQ_ARN":  "arn:aws:sqs:eu-west-1:123456789012:backstop-dlq",
	}
	code, stdout, stderr := runIAMPolicy(t, env, "--for", "server")
	if code != exitOK || !strings.Contains(stdout, `"arn:aws:iam::123456789012:role/from-backstop"`) ||
		!strings.Contains(stdout, ":schedule/backstops/*") {
		t.Errorf("server: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runIAMPolicy(t, env, "--for", "scheduler")
	if code != exitOK || !strings.Contains(stdout, `"arn:aws:sqs:eu-west-1:123456789012:backstop-dlq"`) {
		t.Errorf("scheduler: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = runIAMPolicy(t, env, "--for", "server", "--scheduler-role-arn", "arn:aws:iam::123456789012:role/flag")
	if code != exitOK || !strings.Contains(stdout, "role/flag") || strings.Contains(stdout, "from-backstop") {
		t.Errorf("--scheduler-role-arn does not win over the backstop's: exit %d\n%s", code, stdout)
	}
}

func TestIAMPolicyRefusesBadInput(t *testing.T) {
	cases := []struct {
		args []string
		want []string // in stderr
	}{
		{nil, []string{"for: --for is required", "server, lambda, scheduler, sweeper, session-role, session-role-trust, scan or adopt"}},
		{[]string{"--for", "admin"}, []string{`for: "admin" is not one of latch's roles`, "server, lambda, scheduler, sweeper, session-role, session-role-trust, scan or adopt"}},
		{[]string{"--for", "server", "--account", "1234"}, []string{`account: "1234" is not valid`, "12-digit"}},
		{[]string{"--for", "server", "--region", "us-east-1,eu-west-1"}, []string{"region:", "like us-east-1"}},
		{[]string{"--for", "server", "--scheduler-role-arn", "latch-scheduler"}, []string{"scheduler-role-arn:"}},
		{[]string{"--for", "server", "--frobnicate"}, []string{"unknown flag: --frobnicate"}},
		{[]string{"--for", "session-role-trust"}, []string{"server-role-arn: --for session-role-trust needs --server-role-arn"}},
		{[]string{"--for", "session-role-trust", "--server-role-arn", "arn:aws:iam::*:role/latch"}, []string{"server-role-arn:"}},
		{[]string{"--for", "server", "--session-role-arn", "latch-session"}, []string{"session-role-arn:"}},
		{[]string{"--for", "server", "extra"}, []string{"unknown command"}},
	}
	for _, c := range cases {
		code, stdout, stderr := runIAMPolicy(t, nil, c.args...)
		if code != exitUsage || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q; want exit %d and nothing printed", c.args, code, stdout, exitUsage)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: stderr %q lacks %q", c.args, stderr, w)
			}
		}
	}
}

// TestIAMPolicyCommandAlone runs the subcommand on its own, as it is
// defined, without latch's root: its usage errors are still exit 2.
func TestIAMPolicyCommandAlone(t *testing.T) {
	for args, want := range map[string]int{"--for server": exitOK, "--for nobody": exitUsage, "--nope": exitUsage} {
		var out bytes.Buffer
		a := &app{getenv: func(string) string { return "" }, stdout: &out, stderr: &out}
		cmd := a.iamPolicyCommand()
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		cmd.SetArgs(strings.Fields(args))
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		err := cmd.Execute()
		if got := exitFor(err); got != want {
			t.Errorf("%s: exit %d (%v), want %d", args, got, err, want)
		}
	}
}

func exitFor(err error) int {
	if err == nil {
		return exitOK
	}
	return exitCode(err)
}

// TestIAMPolicySessionManager: the server's Session Manager statements are
// on by default and off with --ssm=false; the session role and its trust
// print as package iampolicy writes them.
func TestIAMPolicySessionManager(t *testing.T) {
	code, stdout, stderr := runIAMPolicy(t, nil, "--for", "server", "--account", "123456789012",
		"--session-role-arn", "arn:aws:iam::123456789012:role/sessions")
	if code != exitOK || !strings.Contains(stdout, `"arn:aws:iam::123456789012:role/sessions"`) ||
		!strings.Contains(stdout, `"ssm:TerminateSession"`) || strings.Contains(stdout, "ssm:StartSession") {
		t.Errorf("server: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runIAMPolicy(t, nil, "--for", "server", "--ssm=false")
	if code != exitOK || strings.Contains(stdout, "ssm:") || strings.Contains(stdout, "sts:") {
		t.Errorf("--ssm=false: exit %d\n%s%s", code, stdout, stderr)
	}
	server := "arn:aws:iam::123456789012:role/latch-server"
	code, stdout, stderr = runIAMPolicy(t, nil, "--for", "session-role-trust", "--server-role-arn", server)
	want, _ := json.MarshalIndent(iampolicy.SessionRoleTrust(server), "", "  ")
	if code != exitOK || stdout != string(want)+"\n" {
		t.Errorf("session-role-trust: exit %d\n%s%s\nwant\n%s", code, stdout, stderr, want)
	}
}
