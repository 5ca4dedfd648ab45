package main

import (
	"strings"
	"testing"

	"github.com/latchdev/latch/internal/pgtest"
)

// LATCH_DB may name a PostgreSQL database: latch records its grants
// there, and doctor names it without its password.
func TestDBPostgres(t *testing.T) {
	w := newWorld(t)
	w.vars["LATCH_DB"] = pgtest.Start(t)
	r := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "30m", "--reason", "deploy", "--detach")
	if r.code != 0 {
		t.Fatalf("grant exit %d: %s", r.code, r.stderr)
	}
	r = w.latch(t, "ls")
	if r.code != 0 || !strings.Contains(r.stdout, "active") || !strings.Contains(r.stdout, "postgres://postgres@127.0.0.1") {
		t.Fatalf("ls exit %d, does not list the grant:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
