package portal_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/internal/accesstest"
)

type policyReporter broker.PolicyStatus

func (r policyReporter) PolicyStatus() broker.PolicyStatus { return broker.PolicyStatus(r) }

func adminWorld(t *testing.T) *world {
	f := accesstest.NewWithPolicy(t, accesstest.Policy, func(_ *accesstest.Fixture, o *broker.AccessOptions) {
		o.Policies = policyReporter{Path: "/etc/latch/policy.yaml", LoadedAt: accesstest.Start, Rules: 3,
			SHA256: strings.Repeat("ab", 32), LastError: "policy.yaml:4: rules[0].ports: required", LastErrorAt: accesstest.Start.Add(time.Hour)}
	})
	return newWorldWith(t, f)
}

func TestAdminSeesAuditLogVerificationAndPolicyStatus(t *testing.T) {
	w := adminWorld(t)
	a := w.browser(t)
	a.signIn(alice)
	req := requestProdSSH(t, w, a)
	c := w.browser(t)
	c.signIn(carol)

	resp, body := c.get("/admin")
	for _, want := range []string{"/etc/latch/policy.yaml", strings.Repeat("ab", 32), "<dd>3</dd>", "rules[0].ports: required", "stays in force",
		`state-active">verified</span>`, "signatures not checked", `href="/admin/audit"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the admin page (%s) lacks %q:\n%s", resp.Status, want, body)
		}
	}

	_, body = c.get("/admin/audit?action=requested")
	if !strings.Contains(body, "<td>alice@example.com</td><td>requested</td>") || !strings.Contains(body, string(req.ID)) || strings.Contains(body, "<td>login</td>") {
		t.Errorf("the audit log filtered by action does not show just alice's request:\n%s", body)
	}
	_, body = c.get("/admin/audit?actor=carol@example.com")
	if !strings.Contains(body, "<td>login</td>") || strings.Contains(body, "<td>requested</td>") {
		t.Errorf("the audit log filtered by actor shows other actors' entries:\n%s", body)
	}
	_, body = c.get("/admin/audit?target=" + string(req.ID) + "&since=2026-11-23T09:00&until=2026-11-23T11:00")
	if !strings.Contains(body, string(req.ID)) || strings.Contains(body, "<td>login</td>") {
		t.Errorf("the audit log filtered by target and time does not show the request alone:\n%s", body)
	}
	_, body = c.get("/admin/audit?until=2026-11-23T09:00")
	if !strings.Contains(body, "No entries match.") {
		t.Errorf("entries before the fixture's start:\n%s", body)
	}
	_, body = c.get("/admin/audit?before=2")
	if !strings.Contains(body, "<tr><td>1</td>") || strings.Contains(body, "<tr><td>2</td>") {
		t.Errorf("the page before entry 2 is not entry 1 alone:\n%s", body)
	}
	if resp, body := c.get("/admin/audit?since=yesterday"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "is not a time") {
		t.Errorf("a bad time: %s:\n%s", resp.Status, body)
	}
}

func TestNonAdminSeesNoAdminData(t *testing.T) {
	w := adminWorld(t)
	a := w.browser(t)
	a.signIn(alice)
	req := requestProdSSH(t, w, a)
	for _, path := range []string{"/admin", "/admin/audit", "/admin/audit?actor=alice@example.com", "/admin/audit?action=login"} {
		resp, body := a.get(path)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("alice's GET %s: %s, want 403", path, resp.Status)
		}
		for _, leak := range []string{"policy.yaml", strings.Repeat("ab", 32), "verified", "tampered", "<td>login</td>", "<td>requested</td>", "<table", string(req.ID)} {
			if strings.Contains(body, leak) {
				t.Errorf("alice's GET %s shows %q:\n%s", path, leak, body)
			}
		}
	}
	if _, body := a.get("/access"); strings.Contains(body, `href="/admin"`) {
		t.Errorf("alice's navigation offers the admin page")
	}
}

func TestEventsSayWhenSomethingChanged(t *testing.T) {
	w := newWorld(t)
	a := w.browser(t)
	a.signIn(alice)
	resp, err := a.c.Get(w.url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("GET /events: %s, %s", resp.Status, ct)
	}
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(resp.Body)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	b := w.browser(t)
	b.signIn(bob)
	requestProdSSH(t, w, a)
	deadline := time.After(5 * time.Second) // for a hung test, not a sleep
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the stream ended before saying anything changed")
			}
			if l != "" && l != "retry: 5000" && l != "event: changed" && l != "data: {}" {
				t.Fatalf("the stream carries more than a change: %q", l)
			}
			if l == "event: changed" {
				return
			}
		case <-deadline:
			t.Fatal("no changed event after a request")
		}
	}
}

func TestEventsNeedASession(t *testing.T) {
	w := newWorld(t)
	resp, body := w.browser(t).get("/events")
	if resp.Header.Get("Content-Type") == "text/event-stream" || strings.Contains(body, "event:") {
		t.Errorf("a signed-out GET /events got a stream: %s", resp.Status)
	}
}
