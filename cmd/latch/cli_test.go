package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// ttyBuffer is stderr as a terminal: isTerminal believes it.
type ttyBuffer struct{ bytes.Buffer }

func (*ttyBuffer) IsTerminal() bool { return true }

// latchOnTerminal runs latch with stderr a terminal and the log format
// left to latch (auto), as a person at a shell runs it.
func (w *world) latchOnTerminal(t *testing.T, args ...string) result {
	t.Helper()
	return w.latchOnTerminalCtx(t.Context(), t, args...)
}

func (w *world) latchOnTerminalCtx(ctx context.Context, t *testing.T, args ...string) result {
	t.Helper()
	var stdout bytes.Buffer
	var stderr ttyBuffer
	getenv := func(k string) string {
		if k == "LATCH_LOG_FORMAT" {
			return ""
		}
		return w.vars[k]
	}
	code := run(ctx, args, getenv, strings.NewReader(""), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

func TestSuccessIsQuietOnATerminal(t *testing.T) {
	w := newWorld(t)
	grant := []string{"grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "30m", "--reason", "deploy", "--detach"}

	// The first use of the database (migrations) and a grant: nothing on
	// stderr, the human block on stdout.
	r := w.latchOnTerminal(t, grant...)
	if r.code != 0 {
		t.Fatalf("grant exit %d: %s", r.code, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("a successful grant on a terminal wrote to stderr:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "g-") {
		t.Errorf("stdout does not show the grant:\n%s", r.stdout)
	}

	// Asking for logs brings the evidence back, on a terminal too.
	for _, flags := range [][]string{{"--log-format", "json"}, {"--log-level", "info"}} {
		r := w.latchOnTerminal(t, append(flags, grant...)...)
		if r.code != 0 || !strings.Contains(r.stderr, "granted") || !strings.Contains(r.stderr, "grant_id") {
			t.Errorf("%v: exit %d, no granted evidence line on stderr:\n%s", flags, r.code, r.stderr)
		}
	}

	// Off a terminal (auto means JSON) the evidence stays, migrations too.
	w2 := newWorld(t)
	w2.vars["LATCH_LOG_FORMAT"] = "auto"
	r = w2.latch(t, "grant", "--sg", string(w2.group), "--ip", "203.0.113.7", "--for", "30m", "--reason", "deploy", "--detach")
	if r.code != 0 || !strings.Contains(r.stderr, `"msg":"granted"`) {
		t.Errorf("off a terminal: exit %d, no JSON granted line:\n%s", r.code, r.stderr)
	}
}

func TestWarningsStillShowOnATerminal(t *testing.T) {
	w := newWorld(t)
	if r := w.latchOnTerminal(t, "ls"); r.code != 0 || r.stderr != "" {
		t.Fatalf("first ls: exit %d, stderr %q", r.code, r.stderr)
	}
	if err := os.Chmod(w.vars["LATCH_DB"], 0o644); err != nil {
		t.Fatal(err)
	}
	if r := w.latchOnTerminal(t, "ls"); r.code != 0 || !strings.Contains(r.stderr, "open to other users") {
		t.Errorf("a database open to others: exit %d, stderr lacks the warning: %q", r.code, r.stderr)
	}
}

func TestServicesLogOnATerminal(t *testing.T) {
	w := newWorld(t)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	r := w.latchOnTerminalCtx(ctx, t, "run")
	if !strings.Contains(r.stderr, "revoker started") {
		t.Errorf("latch run on a terminal: exit %d, stderr lacks its start line:\n%s", r.code, r.stderr)
	}
}

func TestUnknownSubcommandSuggests(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		args          []string
		typo, suggest string
	}{
		{[]string{"lst"}, `"lst"`, `"ls"`},
		{[]string{"audit", "verfy"}, `"verfy"`, `"verify"`},
		{[]string{"audit", "verfy", "--public-key", "x.pem"}, `"verfy"`, `"verify"`},
		{[]string{"policy", "chek", "policy.yaml"}, `"chek"`, `"check"`},
		{[]string{"ssh-ca", "pubky"}, `"pubky"`, `"pubkey"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := w.latch(t, tt.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stdout %q", r.code, exitUsage, r.stdout)
			}
			if !strings.Contains(r.stderr, "unknown command "+tt.typo) || !strings.Contains(r.stderr, "did you mean "+tt.suggest) {
				t.Errorf("stderr %q does not name %s and suggest %s", r.stderr, tt.typo, tt.suggest)
			}
		})
	}
	// Nothing close: no suggestion, still exit 2.
	if r := w.latch(t, "audit", "frobnicate"); r.code != exitUsage || strings.Contains(r.stderr, "did you mean") {
		t.Errorf("audit frobnicate: exit %d, stderr %q", r.code, r.stderr)
	}
	// A bare group shows its help, as a bare latch does.
	for _, group := range []string{"audit", "policy", "ssh-ca"} {
		if r := w.latch(t, group); r.code != 0 || !strings.Contains(r.stdout, "Available Commands") {
			t.Errorf("bare %s: exit %d, stdout %q", group, r.code, r.stdout)
		}
	}
}

func TestHelpHasExamples(t *testing.T) {
	w := newWorld(t)
	for _, cmd := range []string{"doctor", "approve", "deny", "whoami"} {
		r := w.latch(t, cmd, "--help")
		if r.code != 0 || !strings.Contains(r.stdout, "Examples:\n  latch "+cmd) {
			t.Errorf("latch %s --help: exit %d, no example:\n%s", cmd, r.code, r.stdout)
		}
	}
}
