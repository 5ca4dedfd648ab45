package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/sqlite"
)

// signedWorld is a world whose commands sign the audit log, with a grant
// opened and revoked: two signed entries. It returns the public key's path.
func signedWorld(t *testing.T) (*world, string) {
	t.Helper()
	w := newWorld(t)
	key := filepath.Join(w.dir, "audit.pem")
	if r := w.latch(t, "audit", "keygen", "--out", key); r.code != 0 {
		t.Fatalf("keygen: %d %s", r.code, r.stderr)
	}
	w.vars["LATCH_AUDIT_KEY"] = key
	g := grantOut(t, w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "audit me", "--detach", "--json").stdout)
	if r := w.latch(t, "revoke", string(g.ID)); r.code != 0 {
		t.Fatalf("revoke: %s", r.stderr)
	}
	return w, key + ".pub"
}

// The attack: with the file and the sqlite3 shell, delete the last entry
// and move the head back onto the one before. Every remaining entry is
// intact and signed; only the head's signature can tell.
func TestAuditVerifyCatchesARewoundHead(t *testing.T) {
	w, pub := signedWorld(t)
	if r := w.latch(t, "audit", "verify", "--public-key", pub); r.code != 0 {
		t.Fatalf("verify the untouched log: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	db := rawDB(t, w.vars["LATCH_DB"])
	exec1(t, db, `DELETE FROM audit WHERE seq = 2`)
	exec1(t, db, `UPDATE audit_head SET seq = 1, hash = (SELECT hash FROM audit WHERE seq = 1)`)
	r := w.latch(t, "audit", "verify", "--public-key", pub)
	if r.code != exitRuntime || strings.Contains(r.stdout, "every signature valid") || !strings.Contains(r.stdout, "head") {
		t.Fatalf("verify after cutting entry 2 and rewinding the head: exit %d, want %d and the head named:\n%s%s", r.code, exitRuntime, r.stdout, r.stderr)
	}
}

// latchIn runs latch with stdin as standard input.
func (w *world) latchIn(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string { return w.vars[k] }
	code := run(t.Context(), args, getenv, strings.NewReader(stdin), &stdout, &stderr)
	if wantsJSON(args, getenv) {
		checkJSONStyle(t, args, stdout.String())
	}
	return result{code, stdout.String(), stderr.String()}
}

// headLines returns the log lines with an audit head in logs.
func headLines(logs ...string) string {
	var b strings.Builder
	for _, l := range logs {
		for line := range strings.SplitSeq(l, "\n") {
			if strings.Contains(line, `"audit_head"`) {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

// The limit of a signed head, and what a head kept elsewhere adds: the
// attacker keeps a copy of the head after entry 1, and after entry 2 is
// appended deletes it and puts the old head back. Every signature in the
// file is valid; only the head latch logged shows the cut.
func TestAuditVerifyAgainstAKeptHead(t *testing.T) {
	w := newWorld(t)
	key := filepath.Join(w.dir, "audit.pem")
	if r := w.latch(t, "audit", "keygen", "--out", key); r.code != 0 {
		t.Fatalf("keygen: %d %s", r.code, r.stderr)
	}
	w.vars["LATCH_AUDIT_KEY"] = key
	pub := key + ".pub"
	gr := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "audit me", "--detach", "--json")
	g := grantOut(t, gr.stdout)
	db := rawDB(t, w.vars["LATCH_DB"])
	var oldSeq int64
	var oldHash, oldSig string
	if err := db.QueryRowContext(t.Context(), `SELECT seq, hash, signature FROM audit_head`).Scan(&oldSeq, &oldHash, &oldSig); err != nil {
		t.Fatal(err)
	}
	rv := w.latch(t, "revoke", string(g.ID))
	if rv.code != 0 {
		t.Fatalf("revoke: %s", rv.stderr)
	}
	kept := headLines(gr.stderr, rv.stderr)
	if n := strings.Count(kept, "\n"); n != 2 || !strings.Contains(kept, `"msg":"audit entry appended"`) {
		t.Fatalf("grant and revoke logged %d audit heads, want 2:\n%s%s", n, gr.stderr, rv.stderr)
	}
	keptFile := filepath.Join(w.dir, "heads.json")
	if err := os.WriteFile(keptFile, []byte(kept), 0o600); err != nil {
		t.Fatal(err)
	}

	if r := w.latch(t, "audit", "verify", "--public-key", pub, "--head", keptFile); r.code != 0 || !strings.Contains(r.stdout, "reaches the head kept elsewhere (entry 2)") {
		t.Fatalf("verify the untouched log against its logged heads: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	// One line on standard input, as a syslog line, the way grep finds it.
	last := strings.Split(strings.TrimSpace(kept), "\n")[1]
	if r := w.latchIn(t, "Nov 23 10:00:00 host latch[42]: "+last+"\n", "audit", "verify", "--public-key", pub, "--head", "-"); r.code != 0 {
		t.Fatalf("verify --head - with a syslog line: exit %d %s %s", r.code, r.stdout, r.stderr)
	}

	exec1(t, db, `DELETE FROM audit WHERE seq = 2`)
	exec1(t, db, `UPDATE audit_head SET seq = ?, hash = ?, signature = ?`, oldSeq, oldHash, oldSig)
	if r := w.latch(t, "audit", "verify", "--public-key", pub); r.code != 0 {
		t.Fatalf("verify without --head after putting back an old signed head: exit %d %s; the file alone cannot show this", r.code, r.stdout)
	}
	r := w.latch(t, "audit", "verify", "--public-key", pub, "--head", keptFile)
	if r.code != exitRuntime || !strings.Contains(r.stdout, "entry 2: truncated: the log's head is entry 1, but the head kept elsewhere is entry 2") {
		t.Fatalf("verify --head after cutting entry 2 and putting back the old head: exit %d, want %d and the cut named:\n%s%s", r.code, exitRuntime, r.stdout, r.stderr)
	}
}

// Without a key, whoever can write the file can rewrite entries and every
// hash after them; a kept head shows where the log diverged.
func TestAuditVerifyAgainstAKeptHeadShowsARewrite(t *testing.T) {
	w := newWorld(t)
	gr := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "audit me", "--detach", "--json")
	g := grantOut(t, gr.stdout)
	rv := w.latch(t, "revoke", string(g.ID))
	kept := headLines(gr.stderr, rv.stderr)

	store, err := sqlite.Open(t.Context(), w.vars["LATCH_DB"], sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	es, err := store.AuditEntries(t.Context(), latch.AuditFilter{})
	if err != nil || len(es) != 2 {
		t.Fatalf("AuditEntries = %d, %v", len(es), err)
	}
	db := rawDB(t, w.vars["LATCH_DB"])
	e1 := es[0]
	e1.Actor = "mallory"
	e1.Hash = e1.ComputeHash()
	e2 := es[1]
	e2.PrevHash = e1.Hash
	e2.Hash = e2.ComputeHash()
	exec1(t, db, `UPDATE audit SET actor = ?, hash = ? WHERE seq = 1`, e1.Actor, e1.Hash)
	exec1(t, db, `UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = 2`, e2.PrevHash, e2.Hash)
	exec1(t, db, `UPDATE audit_head SET hash = ?`, e2.Hash)
	if r := w.latch(t, "audit", "verify"); r.code != 0 {
		t.Fatalf("verify of a rewritten unsigned log: exit %d %s; a hash chain alone cannot show a rewrite", r.code, r.stdout)
	}
	r := w.latchIn(t, kept, "audit", "verify", "--head", "-")
	if r.code != exitRuntime || !strings.Contains(r.stdout, "entry 2: diverged") {
		t.Fatalf("verify --head of a rewritten log: exit %d, want %d and entry 2 diverged:\n%s%s", r.code, exitRuntime, r.stdout, r.stderr)
	}
}

// --head input that holds no head, or not a head, is refused, naming it.
func TestAuditVerifyHeadInput(t *testing.T) {
	w := newWorld(t)
	w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "audit me", "--detach")
	export := w.latch(t, "audit", "export").stdout
	h := `"hash":"` + strings.Repeat("ab", 32) + `"`
	for _, tt := range []struct{ in, says string }{
		{"", "holds no audit head"},
		{`{"time":"2026-11-23T10:00:00Z","msg":"granted"}` + "\n", "holds no audit head"},
		{export, "line 1 of standard input: this is an audit entry"},
		{`{"seq":1,"hash":"xyz"}`, `line 1 of standard input: the head's hash "xyz" is not 64 lowercase hex digits`},
		{`{"seq":0,` + h + `}`, "the head's seq is 0"},
		{`{"seq":3,` + h + "}\n" + `{"seq":3,"hash":"` + strings.Repeat("cd", 32) + `"}`, "two heads for entry 3"},
	} {
		if r := w.latchIn(t, tt.in, "audit", "verify", "--head", "-"); r.code != exitUsage || !strings.Contains(r.stderr, "head: ") || !strings.Contains(r.stderr, tt.says) {
			t.Errorf("--head with %q: exit %d %q; want %d saying %q", tt.in, r.code, r.stderr, exitUsage, tt.says)
		}
	}
	// A head past the log: the log is shorter than the head kept elsewhere.
	if r := w.latchIn(t, `{"seq":9,`+h+`}`, "audit", "verify", "--head", "-", "--json"); r.code != exitRuntime || !strings.Contains(r.stdout, `"kind":"truncated"`) ||
		!strings.Contains(r.stdout, `"kept_head_seq":9`) {
		t.Errorf("--head past the log's end: exit %d %s", r.code, r.stdout)
	}
}
