package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchdev/latch/slack"
	"github.com/latchdev/latch/webhook"
)

// quietPolicy is slackPolicy without its notify; webhookPolicy notifies a
// webhook instead of Slack.
var (
	quietPolicy   = strings.Replace(slackPolicy, `    notify: {slack: "#ops"}`+"\n", "", 1)
	webhookPolicy = strings.Replace(slackPolicy, `notify: {slack: "#ops"}`, `notify: {webhooks: [pager]}`, 1)
)

// A reload is checked against the server's configuration as the start
// is: a policy naming Slack on a server without a bot token, or a webhook
// the server does not know, is refused and the old policy kept.
func TestPolicyReloadChecksConfiguration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	bare := configured(nil, slackSetup{})
	withAll := configured(map[string]webhook.Hook{"pager": {}}, slackSetup{client: slack.NewClient("xoxb-x", slack.ClientOptions{})})
	h := &policyHolder{}
	write(quietPolicy)
	if _, err := h.load(path, t0, bare); err != nil {
		t.Fatal(err)
	}
	st := h.PolicyStatus()
	for i, tt := range []struct {
		policy string
		want   string
	}{
		{slackPolicy, `rule "dev-ssh-approved" notifies Slack, but the server has no Slack bot token`},
		{webhookPolicy, `no webhook named "pager" is configured on this server`},
	} {
		write(tt.policy)
		at := t0.Add(time.Duration(i+1) * time.Hour)
		if _, err := h.load(path, at, bare); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("reload %d: %v; want refused: %s", i, err, tt.want)
		}
		got := h.PolicyStatus()
		if got.SHA256 != st.SHA256 || !strings.Contains(got.LastError, tt.want) || !got.LastErrorAt.Equal(at) ||
			len(h.Policy().Routes("dev-ssh-approved")) != 0 {
			t.Errorf("reload %d: status %+v, routes %v; want the old policy in force and the error", i, got, h.Policy().Routes("dev-ssh-approved"))
		}
		if _, err := h.load(path, at, withAll); err != nil {
			t.Errorf("reload %d on a server with the token and the webhook: %v", i, err)
		}
		write(quietPolicy)
		if _, err := h.load(path, at, bare); err != nil {
			t.Fatal(err)
		}
		st = h.PolicyStatus()
	}
}

// The same through a server process and SIGHUP: the refusal is logged,
// and a good file still reloads after it.
func TestServerHUPRefusesUnconfiguredRoutes(t *testing.T) {
	w := newWorldForSlack(t)
	pf := filepath.Join(w.dir, "policy.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(pf, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(quietPolicy)
	sw := w.launchServer(t)
	write(slackPolicy)
	hupUntil(t, sw.server, "notifies Slack, but the server has no Slack bot token")
	write(webhookPolicy)
	hupUntil(t, sw.server, `no webhook named \"pager\"`)
	write(quietPolicy)
	hupUntil(t, sw.server, "policy reloaded")
	if out := sw.server.output(); strings.Count(out, "policy reload failed; keeping the old policy") < 2 {
		t.Errorf("the server's log does not say it kept the old policy:\n%s", out)
	}
}

// hupUntil signals p with SIGHUP until it logs a new line containing s:
// a signal sent before the server listens for it is lost.
func hupUntil(t *testing.T, p *proc, s string) {
	t.Helper()
	count := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		n := 0
		for _, l := range p.lines {
			if strings.Contains(l, s) {
				n++
			}
		}
		return n
	}
	before := count()
	deadline := time.After(20 * time.Second) // a bound for a hung test
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for count() == before {
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		select {
		case <-tick.C:
		case <-p.done:
			t.Fatalf("the server ended without logging %q:\n%s", s, p.output())
		case <-deadline:
			t.Fatalf("no %q in the server's log:\n%s", s, p.output())
		}
	}
}
