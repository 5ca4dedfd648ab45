package portal_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/portal"
	"github.com/latchdev/latch/reconcile"
)

// trail is CloudTrail holding the calls that opened every grant in the
// store, and no revocation.
type trail struct{ store latch.Store }

func (tr trail) Events(ctx context.Context, name string, start, end time.Time) ([]reconcile.Event, error) {
	if name != "AuthorizeSecurityGroupIngress" {
		return nil, nil
	}
	gs, err := tr.store.Grants(ctx, latch.GrantFilter{})
	var out []reconcile.Event
	for _, g := range gs {
		out = append(out, reconcile.Event{ID: "ev-" + string(g.ID), Name: name, Time: g.CreatedAt,
			Actor: "arn:aws:iam::123456789012:role/latch", GroupID: string(g.GroupID), RuleIDs: []string{string(g.RuleID)}})
	}
	return out, err
}

type history []latch.GrantEvent

func (h history) History(context.Context, latch.GrantID) ([]latch.GrantEvent, error) { return h, nil }

// approvedAndEnded has alice ask for prod SSH, bob approve it and alice
// end it, and returns its grant.
func approvedAndEnded(t *testing.T, w *world) latch.Grant {
	t.Helper()
	a := w.browser(t)
	a.signIn(alice)
	req := requestProdSSH(t, w, a)
	b := w.browser(t)
	b.signIn(bob)
	if resp, body := b.post("/requests/"+string(req.ID)+"/approve", url.Values{"reason": {"lag ticket OPS-1"}}); resp.Request.URL.Path != "/approvals" {
		t.Fatalf("approve: %s:\n%s", resp.Status, body)
	}
	req, _ = w.f.Store.Request(t.Context(), req.ID)
	w.f.Clock.Advance(5 * time.Minute)
	if resp, body := a.post("/grants/"+string(req.GrantID)+"/end", url.Values{}); resp.Request.URL.Path != "/access" {
		t.Fatalf("end now: %s:\n%s", resp.Status, body)
	}
	g, err := w.f.Store.Grant(t.Context(), req.GrantID)
	if err != nil || g.RuleID == "" || g.State != latch.StateRevoked {
		t.Fatalf("grant = %+v, %v; want revoked, with its rule ID", g, err)
	}
	return g
}

func TestGrantPageShowsItsTimelineAndProofToOwnerAndAdminsOnly(t *testing.T) {
	var w *world
	w = newWorld(t, func(c *portal.Config) {
		c.Prove = func(ctx context.Context, g latch.Grant, h []latch.GrantEvent) (reconcile.Proof, error) {
			return reconcile.Prove(ctx, trail{w.f.Store}, history(h), g, w.f.Clock.Now())
		}
	})
	g := approvedAndEnded(t, w)
	path := "/grants/" + string(g.ID)

	a := w.browser(t)
	a.signIn(alice)
	resp, body := a.get(path)
	for _, want := range []string{
		"requested by alice@example.com under rule prod-ssh", "<q>debug the replica lag</q>",
		"approved by bob@example.com", "<q>lag ticket OPS-1</q>", "grant active", "grant revoked",
		"<dd>prod-ssh</dd>", string(g.RuleID),
		`proof-found">found</span>`, "ev-" + string(g.ID), // opened: CloudTrail has the call
		`proof-pending">pending</span>`, // closed: not delivered yet
	} {
		if !strings.Contains(body, want) {
			t.Errorf("alice's grant page lacks %q (%s):\n%s", want, resp.Status, body)
		}
	}
	if i, j := strings.Index(body, "requested by"), strings.Index(body, "grant revoked"); i < 0 || j < i {
		t.Errorf("the timeline is not in time order:\n%s", body)
	}

	c := w.browser(t)
	c.signIn(carol) // an admin
	if _, body := c.get(path); !strings.Contains(body, "approved by bob@example.com") || !strings.Contains(body, "ev-"+string(g.ID)) {
		t.Errorf("the admin's view of the grant lacks its timeline or proof:\n%s", body)
	}

	b := w.browser(t)
	b.signIn(bob) // approved it, but it is not his grant and he is no admin
	resp, body = b.get(path)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob's GET %s: %s, want 403", path, resp.Status)
	}
	for _, leak := range []string{"Timeline", "CloudTrail", string(g.RuleID), "debug the replica lag", "lag ticket", "ev-", string(g.Source.Addr().String()), "prod-ssh"} {
		if strings.Contains(body, leak) {
			t.Errorf("bob's view of alice's grant shows %q:\n%s", leak, body)
		}
	}
}

func TestGrantPageSaysProofIsNotConfigured(t *testing.T) {
	w := newWorld(t)
	g := approvedAndEnded(t, w)
	a := w.browser(t)
	a.signIn(alice)
	if _, body := a.get("/grants/" + string(g.ID)); !strings.Contains(body, "not configured</span>: this server has no CloudTrail client") {
		t.Errorf("without a CloudTrail client the grant page does not say so:\n%s", body)
	}
}

// A grant page's proof is kept for a minute: reloading the page does not
// spend CloudTrail's quota (LookupEvents: 2 a second per account) again,
// a view after the minute looks again, and so does a view once the grant
// has changed.
func TestGrantPageProofIsCachedForAMinute(t *testing.T) {
	var (
		w       *world
		mu      sync.Mutex
		lookups int
	)
	w = newWorld(t, func(c *portal.Config) {
		c.Prove = func(ctx context.Context, g latch.Grant, h []latch.GrantEvent) (reconcile.Proof, error) {
			mu.Lock()
			lookups++
			mu.Unlock()
			return reconcile.Prove(ctx, trail{w.f.Store}, history(h), g, w.f.Clock.Now())
		}
	})
	count := func() int { mu.Lock(); defer mu.Unlock(); return lookups }
	g := approvedAndEnded(t, w)
	path := "/grants/" + string(g.ID)
	a := w.browser(t)
	a.signIn(alice)
	view := func(want int, when string) {
		t.Helper()
		if _, body := a.get(path); !strings.Contains(body, "ev-"+string(g.ID)) {
			t.Fatalf("%s: the page lacks its proof:\n%s", when, body)
		}
		if got := count(); got != want {
			t.Errorf("%s: %d CloudTrail lookups, want %d", when, got, want)
		}
	}
	view(1, "first view")
	w.f.Clock.Advance(30 * time.Second)
	view(1, "a reload 30 s later")
	c := w.browser(t)
	c.signIn(carol)
	if _, body := c.get(path); !strings.Contains(body, "ev-"+string(g.ID)) || count() != 1 {
		t.Errorf("the admin's view within the minute: %d lookups, want 1:\n%s", count(), body)
	}
	w.f.Clock.Advance(31 * time.Second)
	view(2, "a view 61 s after the first")
	view(2, "a reload right after")
}
