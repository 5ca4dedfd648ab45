package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/oidctest"
)

// chromium starts a headless Debian chromium for the test, or skips
// saying why; scripts/test installs it as it installs sshd.
func chromium(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (scripts/test installs Debian's chromium when run as root): the portal's browser test needs it")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
		chromedp.Flag("headless", "new"), chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1100, 900))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // chromium refuses to run as root with its sandbox
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelBrowser := chromedp.NewContext(ctx)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// person is one browser profile (its own cookies) in the shared browser.
func person(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// Open the tab now: a tab opened by a step's shorter-lived context
	// would close when that step ends.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a browser context: %v", err)
	}
	return ctx
}

// page checks the page the browser shows for what the portal promises
// people who use a keyboard, a screen reader or poor eyesight
// (a11yProblems), and saves it as docs/screenshots/name.png when
// LATCH_UPDATE_SCREENSHOTS=1, so that an ordinary run changes no file.
func page(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if problems := eval[[]string](t, ctx, a11yProblems); len(problems) > 0 {
		t.Errorf("page %s: accessibility:\n  %s", name, strings.Join(problems, "\n  "))
	}
	if os.Getenv("LATCH_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// do runs steps, each within 20 s; on failure it says where the
// browser was and what it showed.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	for i, step := range steps {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := chromedp.Do(sctx, step)
		cancel()
		if err != nil {
			where, _ := chromedp.Run(ctx, chromedp.Location())
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
			t.Fatalf("%s, step %d: %v\nat %s:\n%s", what, i+1, err, where, body)
		}
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// at waits until the page's path is path and the page has loaded.
func at(path string) chromedp.Action[chromedp.Void] {
	return until("location.pathname === " + jsString(path) + " && document.readyState === 'complete'")
}

// until waits until the expression is true. (chromedp.Poll builds its
// predicate with new Function, which the portal's CSP rightly forbids;
// Runtime.evaluate is the debugger's, outside the page's policy.)
func until(js string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		for {
			ok, err := chromedp.Evaluate[bool]("!!("+js+")")(ctx, tg)
			if err == nil && ok {
				return chromedp.Void{}, nil
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, fmt.Errorf("waiting for %s: %w (last error: %v)", js, ctx.Err(), err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

func jsString(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// signIn signs in through the provider's login form in the browser.
func signIn(t *testing.T, ctx context.Context, url string, u oidctest.User) {
	t.Helper()
	do(t, ctx, "sign in as "+u.Username,
		chromedp.Navigate(url+"/"),
		chromedp.Click(`a[href="/login"]`),
		chromedp.WaitVisible(`input[name="username"]`),
		chromedp.SendKeys(`input[name="username"]`, u.Username),
		chromedp.SendKeys(`input[name="password"]`, u.Password),
		chromedp.Submit(`input[name="password"]`),
		at("/access"))
}

// The portal in a real headless Chromium against a real server process,
// the simulator and a real OpenID provider: sign in, request, a second
// person approves in their inbox, the grant counts down, end now, the
// rule is gone. Along the way: no approve button on one's own request
// (and the API refuses it), a POST without the CSRF token is refused,
// and a signed-out browser sees only the sign-in page.
func TestPortalInBrowser(t *testing.T) {
	browser := chromium(t)
	op := oidctest.New(t, "latch-cli", opAlice, opBob)
	// Three people's browsers and the CLI share 127.0.0.1 here, as real
	// users do not: a page load is several requests, and the default
	// address budget (50, then 10/s) refused the last pages on a fast CI
	// machine. The limit itself is tested in server_limits_test.go.
	w := startServer(t, oidcPolicy, "--oidc-issuer", op.Issuer(), "--oidc-audience", "latch-cli", "--admin-user", "bob@example.com",
		"--addr-rate-limit", "1000")
	w.setClock(t, time.Now().UTC()) // the countdown runs on the browser's clock
	rules := func() int { return len(w.env.Rules(t, w.fleet.DBGroup)) }

	stranger := person(t, browser)
	do(t, stranger, "signed out", chromedp.Navigate(w.url+"/"), at("/"))
	page(t, stranger, "signin")
	// The check sees what it looks for: a page given an unlabelled field,
	// pale text, a nameless button and a state in colour only fails it.
	bad := eval[[]string](t, stranger, `(() => {
		document.querySelector("main").insertAdjacentHTML("beforeend",
			'<input name="x"><p id="pale">pale</p><button></button><span class="state-active"></span>');
		document.getElementById("pale").style.color = "#bbb"; // CSSOM: the CSP refuses a style attribute
		return `+a11yProblems+`;
	})()`)
	if joined := strings.Join(bad, "\n"); len(bad) != 4 || !strings.Contains(joined, "unlabelled") || !strings.Contains(joined, "contrast") ||
		!strings.Contains(joined, "without a name") || !strings.Contains(joined, "colour alone") {
		t.Errorf("the accessibility check on a page made to fail it found:\n%s\nwant the four planted problems", joined)
	}
	do(t, stranger, "reload", chromedp.Navigate(w.url+"/"), at("/"))

	alice := person(t, browser)
	signIn(t, alice, w.url, opAlice)
	do(t, alice, "explain the target",
		chromedp.Navigate(w.url+"/request?target="+w.fleet.DB1), at("/request"), chromedp.WaitVisible(`textarea[name="reason"]`))
	if may := eval[string](t, alice, `document.querySelector(".rules.askable").innerText`); !strings.Contains(may, "prod-ssh") || !strings.Contains(may, "tcp/5432") {
		t.Fatalf("the request page does not list what alice may ask for: %q", may)
	}
	if why := eval[string](t, alice, `document.querySelector(".rules:not(.askable)").innerText`); !strings.Contains(why, "prod-ssh") || !strings.Contains(why, "needs 1 approval") {
		t.Fatalf("the request page does not explain policy for the target: %q", why)
	}
	do(t, alice, "fill the request and check it with policy", chromedp.SetValue(`input[name="duration"]`, "30m"),
		chromedp.SendKeys(`textarea[name="reason"]`, "replica lag, ticket OPS-7"),
		chromedp.Click(`button[formaction="/request/preview"]`), at("/request/preview"), chromedp.WaitVisible(`.preview`))
	if pv := eval[string](t, alice, `document.querySelector(".preview").innerText`); !strings.Contains(pv, "Rule prod-ssh decides, for 30m") || !strings.Contains(pv, "NEEDS 1 APPROVAL") {
		t.Fatalf("the preview does not say which rule decides and what approval it needs: %q", pv)
	}
	if rules() != 0 {
		t.Fatal("the preview opened a rule")
	}
	page(t, alice, "request")
	do(t, alice, "send the request", chromedp.Click(`form[action="/request"][method="post"] button.primary`), at("/access"))
	if state := eval[string](t, alice, `document.querySelector(".cards .state").innerText`); !strings.EqualFold(state, "pending") || rules() != 0 {
		t.Fatalf("after the request: state %q, %d rules; want pending, none", state, rules())
	}
	reqID := eval[string](t, alice, `document.querySelector(".cards > li").id`)

	do(t, alice, "alice's inbox", chromedp.Navigate(w.url+"/approvals"), at("/approvals"))
	if n := eval[int](t, alice, `document.querySelectorAll('form[action$="/approve"]').length`); n != 0 {
		t.Errorf("alice's inbox has %d approve buttons on her own request", n)
	}
	loginAs(t, w, op, opAlice)
	if r := w.latch(t, "approve", reqID); r.code != exitRuntime || !strings.Contains(r.stderr, "your own request") {
		t.Errorf("the API let alice approve her own request: exit %d %s", r.code, r.stderr)
	}

	bob := person(t, browser)
	signIn(t, bob, w.url, opBob)
	do(t, bob, "bob's inbox", chromedp.Navigate(w.url+"/approvals"), at("/approvals"), chromedp.WaitVisible(`form[action$="/approve"]`))
	forged := eval[int](t, bob, `fetch("/requests/`+reqID+`/approve", {method: "POST", body: new URLSearchParams({reason: "no token"})}).then(r => r.status)`)
	if forged != 403 {
		t.Errorf("an approval without the CSRF token answered %d, want 403", forged)
	}
	if state := eval[string](t, bob, `fetch("/access").then(r => r.status + "")`); state != "200" || rules() != 0 {
		t.Fatalf("the refused approval opened a rule (%d rules)", rules())
	}
	do(t, bob, "reason", chromedp.SendKeys(`input[name="reason"]`, "OPS-7 is real"))
	page(t, bob, "approvals")
	// Listening before bob approves: a change made before the page's event
	// stream opened would only show at the minute's refresh.
	do(t, alice, "my access, pending", chromedp.Navigate(w.url+"/access"), at("/access"), chromedp.WaitVisible(`.state-pending`),
		until(`document.documentElement.getAttribute("data-events") === "open"`))
	do(t, bob, "approve", chromedp.Click(`form[action$="/approve"] button.primary`), at("/approvals"),
		until(`!document.querySelector('[id="`+reqID+`"]')`))
	if rules() != 1 {
		t.Fatalf("after bob's approval the db group has %d rules, want 1", rules())
	}

	// No navigation: the server's event stream makes the page refresh its
	// list (the fallback timer is a minute, longer than the step's 20 s).
	do(t, alice, "my access, live", until(`(document.querySelector(".countdown") || {}).innerText?.includes("left")`))
	count := eval[string](t, alice, `document.querySelector(".countdown").innerText`)
	if !strings.HasPrefix(count, "Open: 29m") && !strings.HasPrefix(count, "Open: 30m") {
		t.Errorf("countdown = %q, want about 30m left", count)
	}
	if hint := eval[string](t, alice, `document.querySelector("main").innerText`); !strings.Contains(hint, "latch ssh "+w.fleet.DB1) {
		t.Errorf("My access does not say how to connect:\n%s", hint)
	}
	page(t, alice, "access")
	grantID := strings.TrimPrefix(eval[string](t, alice, `document.querySelector('a[href^="/grants/"]').getAttribute("href")`), "/grants/")
	do(t, bob, "admin", chromedp.Navigate(w.url+"/admin"), at("/admin"))
	if admin := eval[string](t, bob, `document.querySelector("main").innerText`); !strings.Contains(admin, "VERIFIED") || !strings.Contains(admin, "policy.yaml") {
		t.Errorf("the admin page does not show the audit chain verified and the policy file:\n%s", admin)
	}
	page(t, bob, "admin")
	do(t, bob, "audit log", chromedp.Navigate(w.url+"/admin/audit?action=approved"), at("/admin/audit"), chromedp.WaitVisible(`table.audit`))
	if log := eval[string](t, bob, `document.querySelector("table.audit").innerText`); !strings.Contains(log, "approved") || strings.Contains(log, "login") {
		t.Errorf("the audit log filtered by action shows:\n%s", log)
	}
	do(t, bob, "audit log", chromedp.Navigate(w.url+"/admin/audit"), at("/admin/audit"), chromedp.WaitVisible(`table.audit`))
	page(t, bob, "audit")
	do(t, alice, "not admin", chromedp.Navigate(w.url+"/admin/audit"), at("/admin/audit"))
	if body := eval[string](t, alice, `document.body.innerText`); strings.Contains(body, "approved") || !strings.Contains(body, "only admins") {
		t.Errorf("alice at /admin/audit sees:\n%s", body)
	}
	do(t, alice, "grant page", chromedp.Navigate(w.url+"/grants/"+grantID), at("/grants/"+grantID))
	if page := eval[string](t, alice, `document.querySelector("main").innerText`); !strings.Contains(page, "approved by bob@example.com") || !strings.Contains(page, "CloudTrail proof") {
		t.Errorf("the grant page lacks its timeline or proof:\n%s", page)
	}
	page(t, alice, "grant")

	do(t, alice, "end now", chromedp.Navigate(w.url+"/access"), at("/access"),
		chromedp.Click(`form[action$="/end"] button`), at("/access"), until(`!document.querySelector('form[action$="/end"]')`))
	if n := rules(); n != 0 {
		t.Errorf("after end now the db group has %d rules, want none", n)
	}
	if state := eval[string](t, alice, `document.querySelector(".cards a[href^='/grants/'] + .state, .cards .state-revoked").innerText`); !strings.EqualFold(state, string(latch.StateRevoked)) {
		t.Errorf("the grant is %q after end now, want revoked", state)
	}

	for _, path := range []string{"/access", "/approvals", "/admin", "/grants/" + grantID, "/request?target=" + w.fleet.DB1} {
		do(t, stranger, "signed out "+path, chromedp.Navigate(w.url+path), at("/"))
		body := eval[string](t, stranger, `document.body.innerText`)
		if !strings.Contains(body, "Sign in") || strings.Contains(body, reqID) || strings.Contains(body, w.fleet.DB1) {
			t.Errorf("a signed-out browser at %s sees:\n%s", path, body)
		}
	}
	do(t, stranger, "phone width", chromedp.EmulateViewport(390, 844), chromedp.Navigate(w.url+"/"), at("/"))
	page(t, stranger, "signin-phone")
}

// a11yProblems lists what keeps a page from being usable without a mouse,
// without sight of colour, or with a screen reader: a form control with no
// label; a button or link with no name; text whose contrast with the
// background it sits on is under WCAG 2's AA (4.5:1, 3:1 for large text);
// a state shown by colour alone (an element of class state-* with no
// words); a control that is not natively focusable (a click handler on a
// div); no main landmark or title.
const a11yProblems = `(() => {
  const problems = [];
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    const byFor = el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
    if (!byFor && !el.closest("label") && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby")) {
      problems.push("unlabelled control: " + el.outerHTML.slice(0, 100));
    }
  }
  for (const el of document.querySelectorAll("button, a[href], [role=button]")) {
    if (!(el.innerText || "").trim() && !el.getAttribute("aria-label") && !el.getAttribute("title")) {
      problems.push("control without a name: " + el.outerHTML.slice(0, 100));
    }
  }
  for (const el of document.querySelectorAll("[class*=state-]")) {
    if (!(el.innerText || el.textContent || "").trim()) problems.push("state shown by colour alone: " + el.outerHTML.slice(0, 100));
  }
  for (const el of document.querySelectorAll("div[onclick], span[onclick], [tabindex='-1'][onclick]")) {
    problems.push("click handler on an element a keyboard cannot reach: " + el.outerHTML.slice(0, 100));
  }
  if (!document.querySelector("main")) problems.push("no main landmark");
  if (!document.title.trim()) problems.push("no title");
  const rgba = (s) => {
    const m = s.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(parseFloat);
    return { c: p.slice(0, 3), a: p.length > 3 ? p[3] : 1 };
  };
  const lum = (c) => {
    const [r, g, b] = c.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c.c;
    }
    return [255, 255, 255];
  };
  const seen = new Set();
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const text = walk.currentNode.textContent.trim();
    const el = walk.currentNode.parentElement;
    if (!text || !el || seen.has(el)) continue;
    seen.add(el);
    const st = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (st.visibility === "hidden" || st.display === "none" || box.width === 0 || box.bottom < 0 || box.right < 0) continue;
    const fg = rgba(st.color);
    if (!fg) continue;
    const a = lum(fg.c), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const px = parseFloat(st.fontSize), bold = parseInt(st.fontWeight, 10) >= 700;
    const need = px >= 24 || (px >= 18.66 && bold) ? 3 : 4.5;
    if (ratio < need) problems.push("contrast " + ratio.toFixed(2) + ":1, under " + need + ":1: " + JSON.stringify(text.slice(0, 40)));
  }
  return problems;
})()`
