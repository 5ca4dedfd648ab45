package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
)

// A foreground grant treats a closed terminal (SIGHUP) and Ctrl-\ (SIGQUIT)
// as it treats Ctrl-C: it revokes before it exits. Sent to a real process.
func TestForegroundGrantRevokesOnHangupAndQuit(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			w := newWorld(t)
			p := w.start(t, "", "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "30m", "--reason", "signal test")
			p.waitLine(t, "Holding g-")
			if n := len(w.rules(t)); n != 1 {
				t.Fatalf("%d rules while the grant is held, want 1", n)
			}
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			<-p.done
			err := p.cmd.Wait()
			if err != nil {
				t.Errorf("latch grant after %s: %v\n%s", sig, err, p.output())
			}
			if n := len(w.rules(t)); n != 0 {
				t.Errorf("%d rules left open after %s, want 0\n%s", n, sig, p.output())
			}
			grants := lsOut(t, w.latch(t, "ls", "--all", "--json").stdout)
			if len(grants) != 1 || grants[0].State != latch.StateRevoked {
				t.Errorf("grants after %s = %+v, want one revoked", sig, grants)
			}
		})
	}
}

// `latch sweep` with a database records what it revoked as the daemon
// does: grants expired, with history and audit entries; `ls` then says when
// they ended, never a future expiry.
func TestSweepWithDatabaseRecordsExpiry(t *testing.T) {
	w := newWorld(t)
	var ids []latch.GrantID
	for _, ip := range []string{"203.0.113.7", "203.0.113.8"} {
		r := w.latch(t, "grant", "--sg", string(w.group), "--ip", ip, "--for", "5m", "--reason", "sweep test", "--detach", "--json")
		if r.code != 0 {
			t.Fatalf("grant: exit %d %s", r.code, r.stderr)
		}
		ids = append(ids, grantOut(t, r.stdout).ID)
	}
	w.setClock(t, start.Add(5*time.Minute+34*time.Second))
	if r := w.latch(t, "sweep", "--db", w.vars["LATCH_DB"]); r.code != 0 || !strings.Contains(r.stdout, "revoked") {
		t.Fatalf("sweep --db: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if n := len(w.rules(t)); n != 0 {
		t.Fatalf("%d rules after the sweep, want 0", n)
	}
	grants := lsOut(t, w.latch(t, "ls", "--all", "--json").stdout)
	for _, g := range grants {
		if g.State != latch.StateExpired || g.EndedAt == nil {
			t.Errorf("grant %s after sweep --db: %s, ended %v; want expired with an end", g.ID, g.State, g.EndedAt)
		}
	}
	expired := map[latch.GrantID]bool{}
	for _, e := range decodeLines[latchhttp.AuditEntryJSON](t, w.latch(t, "audit", "ls", "--json").stdout) {
		if e.Action == latch.AuditExpired {
			expired[e.GrantID] = true
		}
	}
	for _, id := range ids {
		if !expired[id] {
			t.Errorf("no expired audit entry for %s", id)
		}
	}
	w.setClock(t, start.Add(6*time.Minute))
	ls := w.latch(t, "ls", "--all").stdout
	if strings.Count(ls, "ended 26s ago") != 2 || strings.Contains(ls, "in ") {
		t.Errorf("ls --all should say each grant ended 26s ago and never 'in …':\n%s", ls)
	}
	if r := w.latch(t, "ls").stdout; !strings.Contains(r, "No open grants") {
		t.Errorf("ls after sweep --db still lists open grants:\n%s", r)
	}
}

// Without a database, sweep neither needs nor creates one.
func TestSweepWithoutDatabaseMakesNone(t *testing.T) {
	w := newWorld(t)
	if r := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "x", "--detach"); r.code != 0 {
		t.Fatalf("grant: exit %d %s", r.code, r.stderr)
	}
	w.setClock(t, start.Add(6*time.Minute))
	home := t.TempDir()
	db := w.vars["LATCH_DB"]
	delete(w.vars, "LATCH_DB")
	w.vars["HOME"] = home
	if r := w.latch(t, "sweep"); r.code != 0 {
		t.Fatalf("sweep: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	if n := len(w.rules(t)); n != 0 {
		t.Fatalf("%d rules after the sweep, want 0", n)
	}
	if _, err := os.Stat(filepath.Join(home, ".local", "state", "latch", "latch.db")); !os.IsNotExist(err) {
		t.Errorf("sweep without --db made a database (%v)", err)
	}
	// The grant's database was not given, so it does not know yet; the
	// daemon (or a sweep --db) settles it: the rule is gone, so it expires.
	w.vars["LATCH_DB"] = db
	if r := w.latch(t, "sweep"); r.code != 0 {
		t.Fatalf("sweep --db: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	grants := lsOut(t, w.latch(t, "ls", "--all", "--json").stdout)
	if len(grants) != 1 || grants[0].State != latch.StateExpired {
		t.Errorf("grants after a later sweep --db = %+v, want one expired", grants)
	}
}

// An ended grant's own output says when it ended, not when it would have
// expired.
func TestRevokedGrantShowsWhenItEnded(t *testing.T) {
	w := newWorld(t)
	r := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "2m", "--reason", "x", "--detach", "--json")
	id := grantOut(t, r.stdout).ID
	w.setClock(t, start.Add(13*time.Second))
	out := w.latch(t, "revoke", string(id)).stdout
	if strings.Contains(out, "(in ") || !strings.Contains(out, "ended") {
		t.Errorf("revoke output shows a future expiry or no end:\n%s", out)
	}
	w.setClock(t, start.Add(20*time.Second))
	ls := w.latch(t, "ls", "--all").stdout
	if !strings.Contains(ls, "ended 7s ago") || strings.Contains(ls, "in 1m") {
		t.Errorf("ls --all:\n%s", ls)
	}
}

// Revoking one of two grants that share a rule says the rule stays open,
// for which grant, until when, on stdout and in JSON; the rule's tags and
// description then name that grant.
func TestRevokeSharedRuleSaysItStaysOpen(t *testing.T) {
	w := newWorld(t)
	grant := func(d string) latchhttp.GrantJSON {
		r := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", d, "--reason", "shared", "--detach", "--json")
		if r.code != 0 {
			t.Fatalf("grant: exit %d %s", r.code, r.stderr)
		}
		return grantOut(t, r.stdout)
	}
	a, b := grant("60m"), grant("30m") // a's expiry is the later: the rule is tagged for a
	if a.RuleID != b.RuleID {
		t.Fatalf("grants on one opening have rules %s and %s", a.RuleID, b.RuleID)
	}
	until := latch.FormatExpiry(b.ExpiresAt)

	r := w.latch(t, "revoke", string(a.ID))
	if r.code != 0 {
		t.Fatalf("revoke: exit %d %s", r.code, r.stderr)
	}
	want := "rule " + string(a.RuleID) + " stays open for grant " + string(b.ID) + " until " + until
	if !strings.Contains(r.stdout, want) || strings.Contains(r.stdout, "Revoked "+string(a.ID)+".") {
		t.Errorf("revoke stdout does not say %q (or claims a plain revoke):\n%s", want, r.stdout)
	}

	ingress := w.env.Ingress(t, w.group)
	if len(ingress) != 1 {
		t.Fatalf("%d rules, want the shared one", len(ingress))
	}
	if got := ingress[0].Description; got == nil || !strings.Contains(*got, string(b.ID)) || strings.Contains(*got, string(a.ID)) {
		t.Errorf("rule description %v, want it to name %s (and not %s)", got, b.ID, a.ID)
	}
	if tags := w.rules(t)[a.RuleID]; tags[latch.TagGrantID] != string(b.ID) || tags[latch.TagExpiresAt] != until {
		t.Errorf("rule tags %v, want them to name %s until %s", tags, b.ID, until)
	}

	// b ends too, by JSON; nothing is kept now.
	c := grant("10m") // joins the rule again, expiring before b
	r = w.latch(t, "revoke", string(b.ID), "--json")
	got := decode[latchhttp.RevokedJSON](t, r.stdout)
	if got.State != latch.StateRevoked || got.RuleStaysOpen == nil ||
		got.RuleStaysOpen.GrantID != c.ID || !got.RuleStaysOpen.Until.Equal(c.ExpiresAt) || got.RuleStaysOpen.RuleID != a.RuleID {
		t.Errorf("revoke --json = %s, want rule_stays_open naming %s until %s", r.stdout, c.ID, c.ExpiresAt)
	}
	r = w.latch(t, "revoke", string(c.ID), "--json")
	if got := decode[latchhttp.RevokedJSON](t, r.stdout); got.RuleStaysOpen != nil {
		t.Errorf("last grant's revoke says the rule stays open: %s", r.stdout)
	}
	if n := len(w.rules(t)); n != 0 {
		t.Errorf("%d rules after the last grant ended", n)
	}
}

// A database that cannot be opened does not stop a sweep: it revokes from
// AWS alone, then fails, naming the database.
func TestSweepWithBrokenDatabaseStillRevokes(t *testing.T) {
	w := newWorld(t)
	if r := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "x", "--detach"); r.code != 0 {
		t.Fatalf("grant: exit %d %s", r.code, r.stderr)
	}
	w.setClock(t, start.Add(6*time.Minute))
	r := w.latch(t, "sweep", "--db", w.dir) // a directory, not a database
	if r.code != exitRuntime || !strings.Contains(r.stderr, "grant database") {
		t.Errorf("sweep with a broken database: exit %d, stderr %s", r.code, r.stderr)
	}
	if n := len(w.rules(t)); n != 0 {
		t.Errorf("%d rules left: the broken database stopped the sweep", n)
	}
}
