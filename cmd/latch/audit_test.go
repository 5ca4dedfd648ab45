package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
)

// The audit log tells a grant's story, verifies, and shows tampering done
// directly to the database file, naming the entry.
func TestAuditTrailAndTampering(t *testing.T) {
	w := newWorld(t)
	key := filepath.Join(w.dir, "audit.pem")
	if r := w.latch(t, "audit", "keygen", "--out", key); r.code != 0 {
		t.Fatalf("keygen: %d %s", r.code, r.stderr)
	}
	w.vars["LATCH_AUDIT_KEY"] = key
	gr := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "audit me", "--detach", "--json")
	g := grantOut(t, gr.stdout)
	if r := w.latch(t, "revoke", string(g.ID)); r.code != 0 {
		t.Fatalf("revoke: %s", r.stderr)
	}
	entries := decodeLines[latchhttp.AuditEntryJSON](t, w.latch(t, "audit", "ls", "--grant", string(g.ID), "--json").stdout)
	if len(entries) != 2 || entries[0].Action != latch.AuditGranted || entries[1].Action != latch.AuditRevoked ||
		entries[0].Actor != testCallerARN || entries[0].Details["reason"] != "audit me" || entries[1].Signature == "" {
		t.Fatalf("audit entries = %+v", entries)
	}
	if r := w.latch(t, "audit", "verify", "--public-key", key+".pub"); r.code != 0 || !strings.Contains(r.stdout, "ok: 2 entries") {
		t.Fatalf("verify clean log: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	var lines int
	for l := range strings.SplitSeq(strings.TrimSpace(w.latch(t, "audit", "export").stdout), "\n") {
		if strings.Contains(l, `"hash"`) {
			lines++
		}
	}
	if lines != 2 {
		t.Errorf("export wrote %d JSON lines, want 2", lines)
	}

	other := filepath.Join(w.dir, "other.pem")
	w.latch(t, "audit", "keygen", "--out", other)
	if r := w.latch(t, "audit", "verify", "--public-key", other+".pub"); r.code != exitRuntime || !strings.Contains(r.stdout, "bad-signature") {
		t.Fatalf("verify with another key: exit %d %s", r.code, r.stdout)
	}

	db, err := sql.Open("sqlite", w.vars["LATCH_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE audit SET actor = 'mallory' WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	r := w.latch(t, "audit", "verify")
	if r.code != exitRuntime || !strings.Contains(r.stdout, "entry 1: changed") {
		t.Fatalf("verify after editing entry 1: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
}
