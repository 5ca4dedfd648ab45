package main

import (
	"strings"
	"testing"
)

// A reason that would forge a row in a table, or reach a terminal raw, is
// refused at the CLI, and nothing is opened or recorded.
func TestGrantRefusesBadReasons(t *testing.T) {
	w := newWorld(t)
	for _, reason := range []string{"   ", "deploy\n42  2026-11-23T10:00:00Z  latch  revoked", "fix\r", "a\tb", "\x1b[2Jclear", "del\x7f", "c1\u0085"} {
		r := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", reason, "--detach")
		if r.code != exitUsage || !strings.Contains(r.stderr, "reason") {
			t.Errorf("grant --reason %q: exit %d %q; want %d naming the reason", reason, r.code, r.stderr, exitUsage)
		}
	}
	if out := w.latch(t, "ls", "--all").stdout; !strings.Contains(out, "No grants.") {
		t.Fatalf("bad reasons recorded grants:\n%s", out)
	}
	if rules := w.rules(t); len(rules) != 0 {
		t.Fatalf("bad reasons opened rules: %v", rules)
	}
}

// request, approve and deny check a reason before calling the server.
func TestRequestAndReviewRefuseBadReasons(t *testing.T) {
	w := newWorld(t)
	w.vars["LATCH_SERVER"] = "http://127.0.0.1:1" // never reached
	for _, args := range [][]string{
		{"request", "i-0a0b0c0d0e0f00001", "--reason", "deploy\nforged"},
		{"request", "i-0a0b0c0d0e0f00001", "--reason", "   "},
		{"approve", "r-0123456789abcdef", "--reason", "\x1b[2Jok"},
		{"deny", "r-0123456789abcdef", "--reason", " \t "},
	} {
		if r := w.latch(t, args...); r.code != exitUsage || !strings.HasPrefix(r.stderr, "latch: reason: ") {
			t.Errorf("%q: exit %d %q; want %d naming the reason", args, r.code, r.stderr, exitUsage)
		}
	}
}
