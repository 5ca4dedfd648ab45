package main

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchdev/latch/ec2sim"

	_ "modernc.org/sqlite"
)

// A grant database that opens but cannot answer (a table gone, a corrupt
// page) must not stop `latch sweep` revoking expired rules from AWS.
func TestSweepWithUnreadableDatabaseStillRevokes(t *testing.T) {
	w := newWorld(t)
	if r := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "x", "--detach"); r.code != 0 {
		t.Fatalf("grant: exit %d %s", r.code, r.stderr)
	}
	db, err := sql.Open("sqlite", w.vars["LATCH_DB"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("DROP TABLE grants"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	w.setClock(t, start.Add(6*time.Minute))
	r := w.latch(t, "sweep")
	if n := len(w.rules(t)); n != 0 {
		t.Errorf("%d rules left open: a database that opens but fails queries stopped the sweep (exit %d)\n%s%s", n, r.code, r.stdout, r.stderr)
	}
}

// A bad --audit-key (LATCH_AUDIT_KEY) only matters to what is recorded; it
// must not stop `latch sweep` revoking from AWS.
func TestSweepWithBadAuditKeyStillRevokes(t *testing.T) {
	w := newWorld(t)
	if r := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "x", "--detach"); r.code != 0 {
		t.Fatalf("grant: exit %d %s", r.code, r.stderr)
	}
	w.setClock(t, start.Add(6*time.Minute))
	w.vars["LATCH_AUDIT_KEY"] = filepath.Join(w.dir, "missing.pem")
	r := w.latch(t, "sweep")
	if n := len(w.rules(t)); n != 0 {
		t.Errorf("%d rules left open after sweep (exit %d)\n%s%s", n, r.code, r.stdout, r.stderr)
	}
}

// A foreground `latch grant` through a server, waiting for approval, whose
// terminal closes: nobody holds it any more, so it must not open later.
func TestServerGrantHangupWhileWaitingWithdraws(t *testing.T) {
	w := startApprovalServer(t)
	rules := func() []ec2sim.Rule { return w.env.Rules(t, w.fleet.WebGroup) }
	w.as("AKIDAL", "al-secret")
	p := w.start(t, "", "grant", "--instance", w.fleet.Web1, "--for", "20m", "--reason", "hold")
	p.waitLine(t, "needs 1 approval")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	<-p.done
	_ = p.cmd.Wait()
	var id string
	for _, l := range p.lines {
		if i := strings.Index(l, "r-"); i >= 0 && id == "" {
			id = strings.Fields(l[i:])[0]
		}
	}
	w.as("AKIDBOBIAM", "bob-iam-secret")
	r := w.latch(t, "approve", strings.TrimSuffix(id, "."))
	if n := len(rules()); n != 0 {
		t.Errorf("terminal closed while waiting, then approved (exit %d): %d rule(s) open with no holder\n%s", r.code, n, strings.Join(p.lines, "\n"))
	}
}

// `latch ssh --direct` holds access while ssh runs, and promises to revoke
// "as soon as ssh exits". Closing its terminal (SIGHUP) must revoke too.
func TestSSHDirectRevokesOnHangup(t *testing.T) {
	w := newWorld(t)
	fleet := w.env.DemoFleet(t)
	fake := filepath.Join(w.dir, "fake-ssh")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nif [ \"$1\" = -G ]; then echo 'hostname 127.0.0.1'; echo 'port 22'; exit 0; fi\necho 'fake ssh running' >&2\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := w.start(t, "", "ssh", "--direct", "--method", "instance-connect", "--ip", "203.0.113.7", "--ssh", fake, "--known-hosts", filepath.Join(w.dir, "kh"), fleet.Web1Name)
	p.waitLine(t, "fake ssh running")
	if n := len(w.env.Rules(t, fleet.WebGroup)); n != 1 {
		t.Fatalf("%d rules while ssh runs, want 1\n%s", n, strings.Join(p.lines, "\n"))
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	<-p.done
	err := p.cmd.Wait()
	if n := len(w.env.Rules(t, fleet.WebGroup)); n != 0 {
		t.Errorf("latch ssh --direct after SIGHUP (%v): %d rule(s) left open\n%s", err, n, strings.Join(p.lines, "\n"))
	}
}

// LATCH_DIRECT in the environment would turn every grant direct with
// LATCH_SERVER set, skipping policy, with nothing on the command line:
// --direct is read from the command line only.
func TestLatchDirectIsNeverReadFromTheEnvironment(t *testing.T) {
	w := startServer(t, e2ePolicy)
	w.vars["LATCH_DB"] = filepath.Join(w.dir, "mine.db")
	w.vars["LATCH_DIRECT"] = "true"
	w.as("AKIDMALLORY", "mallory-secret") // outside the policy
	r := w.latch(t, "grant", "--instance", w.fleet.Web1, "--ip", "203.0.113.9", "--for", "20m", "--reason", "x", "--detach")
	if n := len(w.env.Rules(t, w.fleet.WebGroup)); n != 0 || r.code == 0 {
		t.Errorf("LATCH_DIRECT + LATCH_SERVER: exit %d, %d rule(s) opened outside policy\nstdout: %s\nstderr: %s", r.code, n, r.stdout, r.stderr)
	}
}

// A direct revoke is recorded as the caller's AWS identity, not a name the
// caller sets ($USER); when STS cannot answer, it still revokes, and the
// local name is marked unverified.
func TestDirectRevokeRecordsTheCaller(t *testing.T) {
	w := newWorld(t)
	grant := func() string {
		r := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "x", "--detach", "--json")
		if r.code != 0 {
			t.Fatalf("grant: exit %d %s", r.code, r.stderr)
		}
		return string(grantOut(t, r.stdout).ID)
	}
	revokedBy := func(id string) string {
		var entries []struct {
			Actor   string `json:"actor"`
			Action  string `json:"action"`
			GrantID string `json:"grant_id"`
		}
		for _, line := range strings.Split(strings.TrimSpace(w.latch(t, "audit", "export").stdout), "\n") {
			var e struct {
				Actor   string `json:"actor"`
				Action  string `json:"action"`
				GrantID string `json:"grant_id"`
			}
			if err := json.Unmarshal([]byte(line), &e); err == nil {
				entries = append(entries, e)
			}
		}
		for _, e := range entries {
			if e.Action == "revoked" && e.GrantID == id {
				return e.Actor
			}
		}
		t.Fatalf("no revoked entry for %s in %+v", id, entries)
		return ""
	}
	id := grant()
	w.vars["USER"] = "root"
	if r := w.latch(t, "revoke", id); r.code != 0 {
		t.Fatalf("revoke: exit %d %s", r.code, r.stderr)
	}
	if got := revokedBy(id); got != testCallerARN {
		t.Errorf("revoked by %q, want the caller's ARN %s", got, testCallerARN)
	}

	t.Run("STS refusing", func(t *testing.T) {
		w.env.RequireSim(t, "takes EC2 calls signed with a wrong secret, which its STS refuses: the simulator checks no EC2 signature, AWS would refuse both")
		id := grant()
		w.vars["AWS_SECRET_ACCESS_KEY"] = "wrong" // STS refuses; the revoke must not
		if r := w.latch(t, "revoke", id); r.code != 0 {
			t.Fatalf("revoke with STS refusing: exit %d %s", r.code, r.stderr)
		}
		if got := revokedBy(id); !strings.HasPrefix(got, "unverified:") {
			t.Errorf("revoked by %q when STS could not say who; want it marked unverified", got)
		}
	})
}
