package main

import (
	"database/sql"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/sqlite"
)

// Values stored before reasons were checked (or written by hand) print on
// their row, escaped: a newline cannot forge a row, and an escape sequence
// never reaches the terminal.
func TestHumanOutputEscapesStoredValues(t *testing.T) {
	w := newWorld(t)
	if r := w.latch(t, "audit", "ls"); r.code != 0 { // creates the database
		t.Fatalf("audit ls: %d %s", r.code, r.stderr)
	}
	const forged = "mallory\n7  2026-11-23T10:00:00Z  alice  approved"
	db := rawDB(t, w.vars["LATCH_DB"])
	exec1(t, db, `INSERT INTO audit (seq, at, actor, action, target, grant_id, request_id, details, prev_hash, hash, signature)
		VALUES (1, 0, ?, 'requested', 'sg-1', '', '', ?, '', 'x', '')`, forged, `{"reason":"\u001b[2Jgone"}`)

	out := w.latch(t, "audit", "ls").stdout
	checkEscaped(t, "audit ls", out, 2, `mallory\n7`, `\x1b[2Jgone`)

	store, err := sqlite.Open(t.Context(), w.vars["LATCH_DB"], sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	g := latch.Grant{ID: "g-0123456789abcdef", State: latch.StateRevokeFailed, Region: "us-east-1", GroupID: w.group,
		Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22}, Source: netip.MustParsePrefix("203.0.113.7/32"),
		RuleID: "sgr-0123456789abcdef0", Requester: forged, Reason: "r", CreatedAt: start, ExpiresAt: start.Add(time.Hour),
		Attempts: 2, LastError: "denied\n\x1b[31mall clear"}
	if _, err := store.CreateGrant(t.Context(), g, ""); err != nil {
		t.Fatal(err)
	}
	// Where ls looked, a header, the grant's row, a blank line, and the
	// revoke-failed line.
	checkEscaped(t, "ls", w.latch(t, "ls").stdout, 5, `mallory\n7`, `denied\n\x1b[31mall clear`)
}

// checkEscaped fails t unless out has lines lines, no control character
// but the newlines ending them, and each of the escaped strings.
func checkEscaped(t *testing.T, what, out string, lines int, escaped ...string) {
	t.Helper()
	if n := strings.Count(out, "\n"); n != lines {
		t.Errorf("%s printed %d lines, want %d:\n%s", what, n, lines, out)
	}
	if i := strings.IndexFunc(strings.ReplaceAll(out, "\n", ""), isControl); i >= 0 {
		t.Errorf("%s printed a raw control character:\n%q", what, out)
	}
	for _, e := range escaped {
		if !strings.Contains(out, e) {
			t.Errorf("%s does not show %s:\n%s", what, e, out)
		}
	}
}

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func exec1(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }

func TestEsc(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "",
		"alice@example.com":        "alice@example.com",
		"INC-7: database down (é)": "INC-7: database down (é)",
		"Zoë 🔑":                    "Zoë 🔑",
		"a\nb":                     `"a\nb"`,
		"\x1b[31mred":              `"\x1b[31mred"`,
		"tab\there":                `"tab\there"`,
		"del\x7f":                  `"del\x7f"`,
		"c1\u009b2J":               `"c1\u009b2J"`,
		"line\u2028sep":            `"line\u2028sep"`,
		"bidi \u202eevil":          `"bidi \u202eevil"`,
		"bad \xff":                 `"bad \xff"`,
		`"a\nb"`:                   `"\"a\\nb\""`, // a literal quoted value cannot pass for an escaped one
		`say "hi"`:                 `say "hi"`,
	} {
		if got := esc(in); got != want {
			t.Errorf("esc(%q) = %s, want %s", in, got, want)
		}
	}
}
