package portal_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/latchdev/latch"
)

func TestRequestPageListsWhatEachPersonMayAskFor(t *testing.T) {
	w := newWorld(t)
	a := w.browser(t)
	a.signIn(alice)
	_, body := a.get("/request")
	for _, want := range []string{"<strong>dev-ssh</strong>", "<strong>prod-db</strong>", "<strong>prod-ssh</strong>", "tcp/5432",
		"at most 2h", "BREAK-GLASS allowed", "tags env=prod"} {
		if !strings.Contains(body, want) {
			t.Errorf("alice's request page lacks %q:\n%s", want, body)
		}
	}
	b := w.browser(t)
	b.signIn(bob) // an SRE: an approver, no requester
	_, body = b.get("/request")
	if !strings.Contains(body, "No rule in the policy lets you ask for access.") || strings.Contains(body, "prod-ssh") {
		t.Errorf("bob's request page offers rules he is not a caller of:\n%s", body)
	}
}

func TestPreviewSaysWhichRuleDecidesAndRecordsNothing(t *testing.T) {
	w := newWorld(t)
	a := w.browser(t)
	a.signIn(alice)
	form := url.Values{"target": {w.f.Fleet.DB1}, "port": {"22"}, "duration": {"45m"}, "reason": {"replica lag"}}
	resp, body := a.post("/request/preview", form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Rule <strong>prod-ssh</strong> decides, for 45m") ||
		!strings.Contains(body, "needs 1 approval(s)</span> from groups sre") {
		t.Fatalf("preview of prod ssh: %s:\n%s", resp.Status, body)
	}
	form.Set("port", "5432")
	if _, body = a.post("/request/preview", form); !strings.Contains(body, "would be refused") || !strings.Contains(body, "198.51.100.0/24") {
		t.Errorf("preview of the db port from outside the office does not say it would be refused, and why:\n%s", body)
	}
	form.Set("port", "22")
	form.Set("break_glass", "on")
	if _, body = a.post("/request/preview", form); !strings.Contains(body, "<span class=\"flag\">BREAK-GLASS</span> opens <strong>now, without approval</strong>") {
		t.Errorf("break-glass preview does not say it opens without approval:\n%s", body)
	}
	if rs, _ := w.f.Store.Requests(t.Context(), latch.RequestFilter{}); len(rs) != 0 {
		t.Fatalf("previews recorded %d requests; want none", len(rs))
	}
	if resp, _ := a.post("/request/preview", url.Values{"csrf": {""}, "target": {w.f.Fleet.DB1}, "port": {"22"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a preview without the CSRF token: %s, want 403", resp.Status)
	}
}

func TestBreakGlassFromThePortalOpensAtOnceFlagged(t *testing.T) {
	w := newWorld(t)
	a := w.browser(t)
	a.signIn(alice)
	resp, body := a.post("/request", url.Values{"target": {w.f.Fleet.DB1}, "port": {"22"}, "duration": {"30m"},
		"reason": {"prod is down, INC-7"}, "break_glass": {"on"}})
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/access" {
		t.Fatalf("break-glass request: %s at %s:\n%s", resp.Status, resp.Request.URL, body)
	}
	rs, err := w.f.Store.Requests(t.Context(), latch.RequestFilter{})
	if err != nil || len(rs) != 1 || rs[0].State != latch.RequestActive || !rs[0].BreakGlass || rs[0].GrantID == "" || len(rs[0].Reviews) != 0 {
		t.Fatalf("requests = %+v, %v; want one active break-glass request, with no review", rs, err)
	}
	if rules := w.f.Rules(w.f.Fleet.DBGroup); len(rules) != 1 {
		t.Fatalf("the db group has %d rules; want the break-glass one", len(rules))
	}
	if !strings.Contains(body, `<span class="flag">BREAK-GLASS</span>`) || !strings.Contains(body, "/grants/"+string(rs[0].GrantID)+"/end") {
		t.Errorf("My access does not flag the open break-glass grant:\n%s", body)
	}
}
