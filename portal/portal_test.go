package portal_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/internal/accesstest"
	"github.com/latchdev/latch/internal/oidctest"
	"github.com/latchdev/latch/oidc"
	"github.com/latchdev/latch/portal"
)

const clientID = "latch"

var (
	alice = oidctest.User{Username: "alice", Password: "alice-pw", Email: "alice@example.com", EmailVerified: true, Groups: []string{"dev"}}
	bob   = oidctest.User{Username: "bob", Password: "bob-pw", Email: "bob@example.com", EmailVerified: true, Groups: []string{"sre"}}
	carol = oidctest.User{Username: "carol", Password: "carol-pw", Email: "carol@example.com", EmailVerified: true, Groups: []string{"admins"}}
)

// world is the API server with the portal mounted, over a real access
// service, a real OpenID provider and the EC2 simulator.
type world struct {
	f   *accesstest.Fixture
	op  *oidctest.OP
	url string
}

func newWorld(t *testing.T, options ...func(*portal.Config)) *world {
	t.Helper()
	return newWorldWith(t, accesstest.New(t), options...)
}

// newWorldWith is newWorld over f, each option changing the portal's
// configuration.
func newWorldWith(t *testing.T, f *accesstest.Fixture, options ...func(*portal.Config)) *world {
	t.Helper()
	op := oidctest.New(t, clientID, alice, bob, carol)
	v, err := oidc.NewVerifier(t.Context(), oidc.Config{Issuer: op.Issuer(), Audience: clientID})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	t.Cleanup(ts.Close)
	base := "http://" + ts.Listener.Addr().String()
	cfg := portal.Config{
		Access: f.Access, Verifier: v, URL: base, ClientAddr: latchhttp.ClientAddr, Clock: f.Clock,
		OAuth: oauth2.Config{ClientID: clientID, Endpoint: v.Endpoint()},
	}
	for _, o := range options {
		o(&cfg)
	}
	p, err := portal.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	api := latchhttp.NewServer(f.Access, v, latchhttp.Options{Portal: p.Handler(), AddrRateLimit: 1000, AddrBurst: 1000})
	ts.Config.Handler = api.Handler()
	ts.Start()
	return &world{f: f, op: op, url: base}
}

// browser is a person's browser: a cookie jar and, once signed in, the
// page's CSRF token.
type browser struct {
	t    *testing.T
	w    *world
	c    *http.Client
	csrf string
}

func (w *world) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, w: w, c: &http.Client{Jar: jar}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn runs the sign-in through the provider's login form.
func (b *browser) signIn(u oidctest.User) {
	b.t.Helper()
	resp, err := b.c.Get(b.w.url + "/login")
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Request.URL.Query().Get("authRequestID")
	if id == "" {
		b.t.Fatalf("the provider's login page was not reached: %s %s", resp.Request.URL, resp.Status)
	}
	resp, err = b.c.PostForm(b.w.op.Issuer()+"/login/username", url.Values{"id": {id}, "username": {u.Username}, "password": {u.Password}})
	if err != nil {
		b.t.Fatal(err)
	}
	body := readAll(b.t, resp)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/access" {
		b.t.Fatalf("sign-in ended at %s with %s:\n%s", resp.Request.URL, resp.Status, body)
	}
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no CSRF token on the signed-in page:\n%s", body)
	}
	b.csrf = m[1]
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.w.url + path)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, readAll(b.t, resp)
}

// post sends a form, with the CSRF token unless the form sets csrf itself.
func (b *browser) post(path string, form url.Values, header ...string) (*http.Response, string) {
	b.t.Helper()
	if _, ok := form["csrf"]; !ok && b.csrf != "" {
		form.Set("csrf", b.csrf)
	}
	req, err := http.NewRequest(http.MethodPost, b.w.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp, readAll(b.t, resp)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// requestProdSSH has alice ask for SSH to the prod instance, which needs
// an SRE's approval, and returns the request.
func requestProdSSH(t *testing.T, w *world, b *browser) latch.Request {
	t.Helper()
	resp, body := b.post("/request", url.Values{"target": {w.f.Fleet.DB1}, "port": {"22"}, "duration": {"30m"}, "reason": {"debug the replica lag"}})
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/access" {
		t.Fatalf("request: ended at %s with %s:\n%s", resp.Request.URL, resp.Status, body)
	}
	rs, err := w.f.Store.Requests(t.Context(), latch.RequestFilter{Limit: 10})
	if err != nil || len(rs) != 1 {
		t.Fatalf("requests in the store: %v, %v; want 1", rs, err)
	}
	if rs[0].State != latch.RequestPending || !strings.Contains(body, string(rs[0].ID)) {
		t.Fatalf("request %s is %s; want pending and on My access:\n%s", rs[0].ID, rs[0].State, body)
	}
	return rs[0]
}

func TestSignedOutSeesOnlyTheSignInPage(t *testing.T) {
	w := newWorld(t)
	owner := w.browser(t)
	owner.signIn(alice)
	req := requestProdSSH(t, w, owner)

	stranger := w.browser(t)
	resp, body := stranger.get("/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `href="/login"`) {
		t.Fatalf("GET / signed out: %s, want the sign-in page:\n%s", resp.Status, body)
	}
	for _, path := range []string{"/access", "/request?target=" + w.f.Fleet.DB1, "/approvals", "/admin", "/grants/" + "g-00000000000000000000000000"} {
		resp, body := stranger.get(path)
		if resp.Request.URL.Path != "/" || !strings.Contains(body, "Sign in with your identity provider") {
			t.Errorf("GET %s signed out ended at %s (%s); want the sign-in page", path, resp.Request.URL, resp.Status)
		}
		for _, leak := range []string{string(req.ID), w.f.Fleet.DB1, "alice", "csrf", "Approve"} {
			if strings.Contains(body, leak) {
				t.Errorf("GET %s signed out shows %q", path, leak)
			}
		}
	}
	for _, path := range []string{"/request", "/requests/" + string(req.ID) + "/approve", "/grants/g-1/end", "/logout"} {
		resp, body := stranger.post(path, url.Values{"target": {w.f.Fleet.DB1}, "port": {"22"}})
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, string(req.ID)) {
			t.Errorf("POST %s signed out: %s %q; want 401 saying nothing", path, resp.Status, body)
		}
	}
	if rs, _ := w.f.Store.Requests(t.Context(), latch.RequestFilter{Limit: 10}); len(rs) != 1 || rs[0].State != latch.RequestPending {
		t.Errorf("after signed-out POSTs the store holds %v; want the one pending request", rs)
	}
}

func TestStateChangeWithoutCSRFIsRefused(t *testing.T) {
	w := newWorld(t)
	a := w.browser(t)
	a.signIn(alice)
	req := requestProdSSH(t, w, a)
	b := w.browser(t)
	b.signIn(bob)

	cases := []struct {
		name   string
		form   url.Values
		header []string
	}{
		{"no token", url.Values{"csrf": {""}, "reason": {"ok"}}, nil},
		{"another session's token", url.Values{"csrf": {a.csrf}, "reason": {"ok"}}, nil},
		{"cross-site", url.Values{"reason": {"ok"}}, []string{"Sec-Fetch-Site", "cross-site"}},
		{"another origin", url.Values{"reason": {"ok"}}, []string{"Origin", "https://evil.example"}},
		{"opaque origin, cross-site", url.Values{"reason": {"ok"}}, []string{"Origin", "null", "Sec-Fetch-Site", "cross-site"}},
		{"opaque origin, unvouched", url.Values{"reason": {"ok"}}, []string{"Origin", "null"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := b.post("/requests/"+string(req.ID)+"/approve", c.form, c.header...)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("approve: %s, want 403:\n%s", resp.Status, body)
			}
			got, err := w.f.Store.Request(t.Context(), req.ID)
			if err != nil || got.State != latch.RequestPending || len(got.Reviews) != 0 {
				t.Errorf("after a refused approval the request is %s with %d reviews (%v); want pending, none", got.State, len(got.Reviews), err)
			}
		})
	}
	resp, _ := a.post("/logout", url.Values{"csrf": {""}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out without the token: %s, want 403", resp.Status)
	}
	if resp, _ := a.get("/access"); resp.Request.URL.Path != "/access" {
		t.Errorf("a refused sign-out signed alice out (now at %s)", resp.Request.URL)
	}
}

func TestRequesterCannotApproveOwnRequest(t *testing.T) {
	w := newWorld(t)
	a := w.browser(t)
	a.signIn(alice)
	req := requestProdSSH(t, w, a)

	_, inbox := a.get("/approvals")
	if !strings.Contains(inbox, string(req.ID)) || !strings.Contains(inbox, "your own request") {
		t.Fatalf("alice's inbox does not show her request as her own:\n%s", inbox)
	}
	if strings.Contains(inbox, "/requests/"+string(req.ID)+"/approve") || strings.Contains(inbox, ">Approve<") {
		t.Errorf("alice's inbox offers to approve her own request:\n%s", inbox)
	}
	resp, body := a.post("/requests/"+string(req.ID)+"/approve", url.Values{"reason": {"trust me"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "own request") {
		t.Errorf("a forged approval of her own request: %s; want 403 saying why:\n%s", resp.Status, body)
	}
	if got, _ := w.f.Store.Request(t.Context(), req.ID); got.State != latch.RequestPending || len(got.Reviews) != 0 {
		t.Errorf("after the refused self-approval the request is %s with %d reviews; want pending, none", got.State, len(got.Reviews))
	}

	b := w.browser(t)
	b.signIn(bob)
	_, inbox = b.get("/approvals")
	if !strings.Contains(inbox, "/requests/"+string(req.ID)+"/approve") {
		t.Fatalf("bob's inbox has no approve button for alice's request:\n%s", inbox)
	}
	resp, body = b.post("/requests/"+string(req.ID)+"/approve", url.Values{"reason": {"lag ticket OPS-1"}})
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/approvals" {
		t.Fatalf("bob's approval: %s at %s:\n%s", resp.Status, resp.Request.URL, body)
	}
	got, _ := w.f.Store.Request(t.Context(), req.ID)
	if got.State != latch.RequestActive || got.GrantID == "" {
		t.Fatalf("after bob's approval the request is %s (grant %q); want active", got.State, got.GrantID)
	}
	if rules := w.f.Rules(w.f.Fleet.DBGroup); len(rules) != 1 {
		t.Fatalf("the db group has %d rules after approval; want 1", len(rules))
	}
	_, mine := a.get("/access")
	if !strings.Contains(mine, "data-expires=") || !strings.Contains(mine, "/grants/"+string(got.GrantID)+"/end") {
		t.Fatalf("My access shows no countdown or end button for grant %s:\n%s", got.GrantID, mine)
	}
	resp, body = a.post("/grants/"+string(got.GrantID)+"/end", url.Values{})
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/access" {
		t.Fatalf("end now: %s at %s:\n%s", resp.Status, resp.Request.URL, body)
	}
	if rules := w.f.Rules(w.f.Fleet.DBGroup); len(rules) != 0 {
		t.Errorf("the db group has %d rules after end now; want none", len(rules))
	}
}

func TestSessionCookieAndHeaders(t *testing.T) {
	w := newWorld(t)
	b := w.browser(t)
	resp, body := b.get("/")
	if got := resp.Header.Get("Content-Security-Policy"); !strings.Contains(got, "script-src 'self'") ||
		!strings.Contains(got, "frame-ancestors 'none'") || strings.Contains(got, "unsafe-inline") {
		t.Errorf("CSP = %q", got)
	}
	for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "style=") || strings.Contains(body, "<style") {
		t.Errorf("the page has inline script or style:\n%s", body)
	}

	// The session cookie, as the callback sets it.
	var setCookie []string
	b.c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if r.Response != nil && r.Response.Request.URL.Path == portal.CallbackPath {
			setCookie = r.Response.Header.Values("Set-Cookie")
		}
		return nil
	}
	b.signIn(alice)
	var session string
	for _, c := range setCookie {
		if strings.HasPrefix(c, "latch_session=") {
			session = c
		}
	}
	if session == "" {
		t.Fatalf("the callback set no session cookie: %q", setCookie)
	}
	for _, want := range []string{"HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="} {
		if !strings.Contains(session, want) {
			t.Errorf("session cookie %q lacks %s", session, want)
		}
	}
	if strings.Contains(session, "Secure") {
		t.Errorf("session cookie %q is Secure on plain HTTP, so the browser would drop it", session)
	}
	if v := strings.TrimPrefix(strings.Split(session, ";")[0], "latch_session="); len(v) < 43 {
		t.Errorf("session ID %q is shorter than 256 bits", v)
	}

	resp, _ = b.post("/logout", url.Values{})
	if resp.Request.URL.Path != "/" {
		t.Fatalf("sign-out ended at %s", resp.Request.URL)
	}
	if resp, _ := b.get("/access"); resp.Request.URL.Path != "/" {
		t.Errorf("after sign-out /access is at %s; want the sign-in page", resp.Request.URL)
	}
}
