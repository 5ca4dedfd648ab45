package main

import (
	"bufio"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/ec2sim"
	latchhttp "github.com/latchdev/latch/http"
)

// With a server configured, `latch grant` is a request through the
// server's policy: a principal the policy does not name opens nothing,
// where the same command used to go direct with the caller's own AWS
// credentials.
func TestGrantWithServerGoesThroughPolicy(t *testing.T) {
	w := startServer(t, e2ePolicy)
	w.vars["LATCH_DB"] = filepath.Join(w.dir, "mine.db") // the CLI's own database, not the server's
	rules := func() []ec2sim.Rule { return w.env.Rules(t, w.fleet.WebGroup) }

	w.as("AKIDMALLORY", "mallory-secret")
	r := w.latch(t, "grant", "--instance", w.fleet.Web1, "--ip", "127.0.0.1", "--for", "20m", "--reason", "x", "--detach")
	if r.code != exitRuntime || !strings.Contains(r.stderr, "mallory") || len(rules()) != 0 {
		t.Fatalf("grant by a principal outside the policy: exit %d, %d rules\nstdout: %s\nstderr: %s", r.code, len(rules()), r.stdout, r.stderr)
	}

	w.as("AKIDALICE", "alice-secret")
	r = w.latch(t, "grant", "--instance", w.fleet.Web1, "--for", "20m", "--reason", "deploy", "--detach", "--json")
	if r.code != 0 {
		t.Fatalf("grant through the server: exit %d\n%s\nserver: %s", r.code, r.stderr, w.server.output())
	}
	out := decode[requestOut](t, r.stdout)
	if out.Request.State != latch.RequestActive || out.Grant == nil || out.Grant.State != latch.StateActive {
		t.Fatalf("grant through the server = %+v", out)
	}
	if got := rules(); len(got) != 1 || got[0].CIDR != "127.0.0.1/32" || got[0].Tags[latch.TagGrantID] != string(out.Grant.ID) {
		t.Fatalf("rules = %+v, want the server's grant %s from the address it saw", got, out.Grant.ID)
	}
	// Flags only a direct grant has are refused, not ignored.
	if r := w.latch(t, "grant", "--instance", w.fleet.Web1, "--for", "20m", "--reason", "x", "--max-duration", "2h", "--detach"); r.code != exitUsage ||
		!strings.Contains(r.stderr, "--max-duration") || !strings.Contains(r.stderr, "--direct") {
		t.Errorf("--max-duration with a server: exit %d %s", r.code, r.stderr)
	}
	if r := w.latch(t, "grant", "--direct", "--server", "https://latch.example.com", "--detach", "--instance", w.fleet.Web1, "--ip", "127.0.0.1", "--for", "20m", "--reason", "x"); r.code != exitUsage ||
		!strings.Contains(r.stderr, "--direct") || !strings.Contains(r.stderr, "--server") {
		t.Errorf("--direct with --server on the command line: exit %d %s", r.code, r.stderr)
	}
	// Typed on the command line, --server contradicts --direct even when it
	// says what LATCH_SERVER says.
	if r := w.latch(t, "grant", "--direct", "--server", w.vars["LATCH_SERVER"], "--detach", "--instance", w.fleet.Web1, "--ip", "127.0.0.1", "--for", "20m", "--reason", "x"); r.code != exitUsage ||
		!strings.Contains(r.stderr, "--server") {
		t.Errorf("--direct with --server as LATCH_SERVER has it: exit %d %s", r.code, r.stderr)
	}
	if len(rules()) != 1 {
		t.Fatalf("refused grants changed the rules: %+v", rules())
	}

	// --direct opens with the caller's own credentials, and says how to end it.
	r = w.latch(t, "grant", "--direct", "--sg", string(w.fleet.WebGroup), "--ip", "203.0.113.9", "--for", "20m", "--reason", "direct", "--detach")
	if r.code != 0 {
		t.Fatalf("grant --direct: exit %d %s", r.code, r.stderr)
	}
	direct := grantIDIn(t, r.stdout)
	if want := "'latch revoke --direct " + direct + "'"; !strings.Contains(r.stdout, want) {
		t.Errorf("grant --direct with a server configured: want the hint %s, got\n%s", want, r.stdout)
	}
	if len(rules()) != 2 {
		t.Fatalf("after grant --direct: %d rules, want 2", len(rules()))
	}

	// revoke goes to the server, which does not know the direct grant: it
	// says where the grant is and how to end it, and ends nothing.
	r = w.latch(t, "revoke", direct)
	if r.code != exitRuntime || !strings.Contains(r.stderr, "latch revoke --direct "+direct) || !strings.Contains(r.stderr, w.url) {
		t.Fatalf("revoke of a direct grant with a server configured: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if len(rules()) != 2 {
		t.Fatalf("a refused revoke changed the rules: %+v", rules())
	}
	r = w.latch(t, "revoke", "--direct", direct)
	if r.code != 0 || len(rules()) != 1 || !strings.Contains(r.stdout, "Direct, database "+w.vars["LATCH_DB"]) {
		t.Fatalf("revoke --direct: exit %d, %d rules\nstderr: %s", r.code, len(rules()), r.stderr)
	}

	// ls says where it looked.
	r = w.latch(t, "ls")
	if r.code != 0 || !strings.Contains(r.stdout, "From server "+w.url) || !strings.Contains(r.stdout, string(out.Grant.ID)) {
		t.Errorf("ls with a server: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	r = w.latch(t, "ls", "--json")
	if l := decode[struct {
		Mode   string `json:"mode"`
		Server string `json:"server"`
	}](t, r.stdout); l.Mode != "server" || l.Server != w.url {
		t.Errorf("ls --json with a server: mode %q server %q\n%s", l.Mode, l.Server, r.stdout)
	}
	r = w.latch(t, "ls", "--direct", "--all")
	if r.code != 0 || !strings.Contains(r.stdout, "Direct, database "+w.vars["LATCH_DB"]) || !strings.Contains(r.stdout, direct) {
		t.Errorf("ls --direct: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	r = w.latch(t, "ls", "--direct", "--all", "--json")
	if l := decode[lsJSON](t, r.stdout); l.Mode != "direct" || l.Database != w.vars["LATCH_DB"] || len(l.Grants) == 0 {
		t.Errorf("ls --direct --json: mode %q database %q\n%s", l.Mode, l.Database, r.stdout)
	}
}

// grantIDIn finds the grant ID in a human grant block.
func grantIDIn(t *testing.T, s string) string {
	t.Helper()
	for f := range strings.FieldsSeq(s) {
		f = strings.Trim(f, "'.,()")
		if _, err := latch.ParseGrantID(f); err == nil {
			return f
		}
	}
	t.Fatalf("no grant ID in\n%s", s)
	return ""
}

type revokedOut struct {
	latchhttp.GrantJSON
	Mode          string `json:"mode"`
	RuleStaysOpen *struct {
		RuleID  latch.RuleID  `json:"rule_id"`
		GrantID latch.GrantID `json:"grant_id"`
		Until   time.Time     `json:"until"`
	} `json:"rule_stays_open"`
}

// Revoking, through the server, one of two grants that share a rule says
// the rule stays open, until when, and for which grant only when the caller
// may see that grant.
func TestServerRevokeSaysTheSharedRuleStaysOpen(t *testing.T) {
	w := startServer(t, e2ePolicy)
	w.env.Identity(t, "AKIDBOB", "bob-secret", "arn:aws:sts::123456789012:assumed-role/dev/bob")
	rules := func() []ec2sim.Rule { return w.env.Rules(t, w.fleet.WebGroup) }
	request := func(dur string) latchhttp.GrantJSON {
		t.Helper()
		r := w.latch(t, "request", w.fleet.Web1, "--port", "22", "--for", dur, "--reason", "shared", "--json")
		out := decode[requestOut](t, r.stdout)
		if r.code != 0 || out.Grant == nil {
			t.Fatalf("request: exit %d %+v %s", r.code, out, r.stderr)
		}
		return *out.Grant
	}
	w.as("AKIDALICE", "alice-secret")
	alices := request("20m")
	w.as("AKIDBOB", "bob-secret")
	bobs := request("30m")
	if len(rules()) != 1 || alices.RuleID != bobs.RuleID {
		t.Fatalf("two grants for one address and port: rules %+v, rule IDs %s %s; want one shared", rules(), alices.RuleID, bobs.RuleID)
	}

	// Alice may not see Bob's grant: she learns the rule stays open, and
	// until when, but not for whom.
	w.as("AKIDALICE", "alice-secret")
	r := w.latch(t, "revoke", string(alices.ID), "--json")
	out := decode[revokedOut](t, r.stdout)
	if r.code != 0 || out.State != latch.StateRevoked || out.RuleStaysOpen == nil || out.Mode != "server" {
		t.Fatalf("revoke of a shared grant: exit %d %+v\n%s\n%s", r.code, out, r.stdout, r.stderr)
	}
	if k := out.RuleStaysOpen; k.RuleID != alices.RuleID || k.GrantID != "" || !k.Until.Equal(bobs.ExpiresAt) {
		t.Errorf("rule_stays_open for another's grant = %+v; want rule %s until %s, no grant ID", *k, alices.RuleID, bobs.ExpiresAt)
	}
	if strings.Contains(r.stdout, string(bobs.ID)) {
		t.Errorf("alice's revoke names bob's grant:\n%s", r.stdout)
	}
	if len(rules()) != 1 {
		t.Fatalf("the shared rule was revoked: %+v", rules())
	}

	// Bob's second grant shares his first's rule; he may see both.
	w.as("AKIDBOB", "bob-secret")
	bobs2 := request("40m")
	r = w.latch(t, "revoke", string(bobs.ID))
	want := "stays open for grant " + string(bobs2.ID) + " until " + latch.FormatExpiry(bobs2.ExpiresAt)
	if r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Fatalf("bob's revoke: exit %d, want %q in\n%s\n%s", r.code, want, r.stdout, r.stderr)
	}
	r = w.latch(t, "revoke", string(bobs2.ID))
	if r.code != 0 || strings.Contains(r.stdout, "stays open") || len(rules()) != 0 {
		t.Fatalf("revoke of the last grant: exit %d, %d rules\n%s", r.code, len(rules()), r.stdout)
	}
}

// A non-owner's human output says the rule stays open for another grant,
// without naming it.
func TestServerRevokeSharedRuleHumanForANonOwner(t *testing.T) {
	w := startServer(t, e2ePolicy)
	w.env.Identity(t, "AKIDBOB", "bob-secret", "arn:aws:sts::123456789012:assumed-role/dev/bob")
	var ids []string
	for _, who := range [][2]string{{"AKIDALICE", "alice-secret"}, {"AKIDBOB", "bob-secret"}} {
		w.as(who[0], who[1])
		r := w.latch(t, "request", w.fleet.Web1, "--port", "22", "--for", "20m", "--reason", "shared", "--json")
		out := decode[requestOut](t, r.stdout)
		if r.code != 0 || out.Grant == nil {
			t.Fatalf("request: exit %d %s", r.code, r.stderr)
		}
		ids = append(ids, string(out.Grant.ID))
	}
	w.as("AKIDALICE", "alice-secret")
	r := w.latch(t, "revoke", ids[0])
	if r.code != 0 || !strings.Contains(r.stdout, "stays open for another grant until") || strings.Contains(r.stdout, ids[1]) {
		t.Fatalf("alice's revoke: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "From server "+w.url) {
		t.Errorf("revoke with a server does not say where: %s", r.stderr)
	}
}

// A foreground grant through the server is held as a direct one is:
// interrupting it ends the grant on the server.
func TestGrantWithServerHeldUntilInterrupted(t *testing.T) {
	w := startServer(t, e2ePolicy)
	w.as("AKIDALICE", "alice-secret")
	rules := func() []ec2sim.Rule { return w.env.Rules(t, w.fleet.WebGroup) }
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		var stdout strings.Builder
		code := run(ctx, []string{"grant", "--instance", w.fleet.Web1, "--for", "20m", "--reason", "hold"}, w.getenvSnapshot(), strings.NewReader(""), &stdout, pw)
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() && !strings.Contains(sc.Text(), "Holding") {
	}
	if len(rules()) != 1 {
		t.Fatalf("held grant: %d rules, want 1", len(rules()))
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if code := <-done; code != 0 || len(rules()) != 0 {
		t.Fatalf("interrupted grant: exit %d, %d rules left", code, len(rules()))
	}
}
