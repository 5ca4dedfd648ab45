package http_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	latchhttp "github.com/latchdev/latch/http"
	at "github.com/latchdev/latch/internal/accesstest"
	"github.com/latchdev/latch/policy"
)

type policyReporter broker.PolicyStatus

func (r policyReporter) PolicyStatus() broker.PolicyStatus { return broker.PolicyStatus(r) }

const policySHA = "abababababababababababababababababababababababababababababababab"

// bearer is the tokens Authenticator's credential for who.
func bearer(who string) latchhttp.Credentials {
	return func(context.Context) (string, error) { return "Bearer " + who, nil }
}

// newAdminServer is newServer whose access service knows its policy's
// status.
func newAdminServer(t *testing.T) *server {
	t.Helper()
	f := at.NewWithPolicy(t, at.Policy, func(_ *at.Fixture, o *broker.AccessOptions) {
		o.Policies = policyReporter{Path: "/etc/latch/policy.yaml", LoadedAt: at.Start, Rules: 3, SHA256: policySHA,
			LastError: "policy.yaml:4: rules[0].ports: required", LastErrorAt: at.Start.Add(time.Hour)}
	})
	srv := httptest.NewServer(latchhttp.NewServer(f.Access, people, latchhttp.Options{RateLimit: 1000, Burst: 1000}).Handler())
	t.Cleanup(srv.Close)
	return &server{Fixture: f, url: srv.URL}
}

// The audit log, its verification and the policy's status are for admins:
// carol sees rows, hashes and the policy's file; anyone else is refused
// and their body holds none of it.
func TestAuditAndPolicyStatusAreForAdmins(t *testing.T) {
	s := newAdminServer(t)
	pending := s.pendingRequest(t)
	entries, err := s.Store.AuditEntries(t.Context(), latch.AuditFilter{})
	if err != nil || len(entries) == 0 {
		t.Fatalf("no audit entries to hide: %v", err)
	}
	last := entries[len(entries)-1]

	// What carol sees.
	st, body := s.call(t, "carol", "GET", "/v1/audit?action=requested", nil)
	page := decodeAs[latchhttp.AuditPageJSON](t, body)
	if st != 200 || len(page.Entries) != 1 || string(page.Entries[0].RequestID) != pending || page.Entries[0].Hash == "" ||
		page.Entries[0].Actor != "alice@example.com" && !strings.Contains(page.Entries[0].Actor, "alice") {
		t.Errorf("carol's audit log of requests = %d %s, want alice's request %s with its hash", st, body, pending)
	}
	st, body = s.call(t, "carol", "GET", "/v1/audit/verify", nil)
	check := decodeAs[latchhttp.AuditCheckJSON](t, body)
	if st != 200 || check.Entries != len(entries) || check.HeadSeq != last.Seq || check.HeadHash != last.Hash || len(check.Problems) != 0 ||
		!strings.Contains(string(body), `"problems": []`) {
		t.Errorf("carol's verification = %d %s, want %d entries, head %d %s, no problems", st, body, len(entries), last.Seq, last.Hash)
	}
	st, body = s.call(t, "carol", "GET", "/v1/policy/status", nil)
	ps := decodeAs[latchhttp.PolicyStatusJSON](t, body)
	if st != 200 || !ps.Known || ps.Path != "/etc/latch/policy.yaml" || ps.SHA256 != policySHA || ps.Rules != 3 ||
		ps.LoadedAt == nil || !ps.LoadedAt.Equal(at.Start) || !strings.Contains(string(body), `"loaded_at": "2026-11-23T10:00:00Z"`) ||
		ps.LastError == "" || ps.LastErrorAt == nil {
		t.Errorf("carol's policy status = %d %s", st, body)
	}

	// What everyone else sees: a refusal, and nothing of the above.
	secrets := []string{pending, last.Hash, policySHA, "/etc/latch/policy.yaml", "rules[0]", `"seq"`, `"entries"`, `"head_seq"`}
	for _, who := range []string{"alice", "bob", "dave"} {
		for _, path := range []string{"/v1/audit", "/v1/audit?actor=" + last.Actor, "/v1/audit/verify", "/v1/policy/status"} {
			st, body := s.call(t, who, "GET", path, nil)
			if st != http.StatusForbidden {
				t.Errorf("%s GET %s = %d, want 403: %s", who, path, st, body)
			}
			for _, secret := range secrets {
				if strings.Contains(string(body), secret) {
					t.Errorf("%s GET %s refused, but the body holds %q: %s", who, path, secret, body)
				}
			}
		}
	}

	// Through the client: the admin's answers, and the refusal as an error.
	admin := &latchhttp.Client{URL: s.url, Creds: bearer("carol")}
	if c, err := admin.VerifyAudit(t.Context()); err != nil || c.HeadHash != last.Hash {
		t.Errorf("client VerifyAudit as carol = %+v, %v", c, err)
	}
	if p, err := admin.Audit(t.Context(), latchhttp.AuditQuery{Target: pending, Since: at.Start.Add(-time.Hour), Until: at.Start.Add(time.Hour)}); err != nil ||
		len(p.Entries) == 0 || string(p.Entries[0].RequestID) != pending {
		t.Errorf("client Audit as carol = %+v, %v", p, err)
	}
	other := &latchhttp.Client{URL: s.url, Creds: bearer("alice")}
	if p, err := other.Audit(t.Context(), latchhttp.AuditQuery{}); latch.ErrorCode(err) != latch.EFORBIDDEN || len(p.Entries) != 0 {
		t.Errorf("client Audit as alice = %+v, %v, want EFORBIDDEN", p, err)
	}
	if ps, err := other.PolicyStatus(t.Context()); latch.ErrorCode(err) != latch.EFORBIDDEN || ps.Path != "" {
		t.Errorf("client PolicyStatus as alice = %+v, %v, want EFORBIDDEN", ps, err)
	}
}

// The audit log pages newest first: each page at most limit long, the
// Link header and next naming the next, all of it once.
func TestAuditLogPages(t *testing.T) {
	s := newAdminServer(t)
	for range 3 {
		s.pendingRequest(t)
	}
	all, err := s.Store.AuditEntries(t.Context(), latch.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	admin := &latchhttp.Client{URL: s.url, Creds: bearer("carol")}
	var got []int64
	q := latchhttp.AuditQuery{Limit: 2}
	for pages := 0; ; pages++ {
		if pages > len(all) {
			t.Fatal("more pages than entries")
		}
		p, err := admin.Audit(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Entries) > 2 {
			t.Fatalf("a page of %d, want at most 2", len(p.Entries))
		}
		for _, e := range p.Entries {
			got = append(got, e.Seq)
		}
		if p.Next == 0 {
			break
		}
		q.Before = p.Next
	}
	var want []int64
	for i := len(all) - 1; i >= 0; i-- {
		want = append(want, all[i].Seq)
	}
	if !slices.Equal(got, want) {
		t.Errorf("pages hold %v, want %v", got, want)
	}
	for _, bad := range []string{"?since=yesterday", "?before=-1", "?limit=x"} {
		if st, body := s.call(t, "carol", "GET", "/v1/audit"+bad, nil); st != http.StatusBadRequest {
			t.Errorf("GET /v1/audit%s = %d %s, want 400", bad, st, body)
		}
	}
}

// A grant's timeline is its requester's and admins': they see the request,
// its rule and the history; anyone else is refused without the grant's
// rule ID, reason, source or rule.
func TestGrantTimelineWhoSees(t *testing.T) {
	s := newServer(t, latchhttp.Options{RateLimit: 1000, Burst: 1000})
	id := s.activeGrant(t)
	g, err := s.Store.Grant(t.Context(), latch.GrantID(id))
	if err != nil || g.RuleID == "" {
		t.Fatalf("grant %s: %+v, %v", id, g, err)
	}
	for _, who := range []string{"alice", "carol"} {
		st, body := s.call(t, who, "GET", "/v1/grants/"+id+"/timeline", nil)
		tl := decodeAs[latchhttp.TimelineJSON](t, body)
		if st != 200 || string(tl.Grant.ID) != id || tl.Grant.RuleID != g.RuleID || tl.Request == nil || tl.Request.Rule != "dev-ssh" ||
			tl.Request.Reason != "deploy" || tl.Request.GrantID != g.ID || len(tl.History) == 0 || tl.History[len(tl.History)-1].State != latch.StateActive {
			t.Errorf("%s's timeline of %s = %d %s", who, id, st, body)
		}
	}
	for _, who := range []string{"bob", "dave"} {
		st, body := s.call(t, who, "GET", "/v1/grants/"+id+"/timeline", nil)
		if st != http.StatusForbidden && st != http.StatusNotFound {
			t.Errorf("%s's timeline of alice's grant = %d, want 403 or 404: %s", who, st, body)
		}
		for _, secret := range []string{string(g.RuleID), "deploy", g.Source.String(), "dev-ssh", "alice", `"history"`} {
			if strings.Contains(string(body), secret) {
				t.Errorf("%s's timeline of alice's grant refused, but the body holds %q: %s", who, secret, body)
			}
		}
	}
	c := &latchhttp.Client{URL: s.url, Creds: bearer("bob")}
	if tl, err := c.Timeline(t.Context(), g.ID); latch.ErrorCode(err) != latch.EFORBIDDEN || tl.Grant.ID != "" {
		t.Errorf("client Timeline as bob = %+v, %v, want EFORBIDDEN", tl, err)
	}
}

// A preview says what a request would meet, and records nothing: no
// request, no grant, no audit entry, no rule in EC2.
func TestPreviewRecordsNothing(t *testing.T) {
	s := newServer(t, latchhttp.Options{RateLimit: 1000, Burst: 1000})
	ctx := t.Context()
	before, err := s.Store.AuditEntries(ctx, latch.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	c := &latchhttp.Client{URL: s.url, Creds: bearer("alice")}
	p, err := c.Preview(ctx, latchhttp.RequestBody{Target: s.Fleet.DB1, Port: "22", Reason: "fix"})
	if err != nil || p.Outcome != policy.NeedsApproval || p.Rule != "prod-ssh" || p.ApprovalsNeeded != 1 || p.Approvers == nil ||
		!slices.Equal(p.Approvers.Groups, []string{"sre"}) || p.DurationSeconds != 1800 || p.PendingTimeoutSeconds != 3600 || p.Source == "" {
		t.Errorf("alice's preview of prod ssh = %+v, %v", p, err)
	}
	if p, err = c.Preview(ctx, latchhttp.RequestBody{Target: s.Fleet.Web1, Port: "22", Reason: "deploy"}); err != nil || p.Outcome != policy.Allowed || p.Rule != "dev-ssh" {
		t.Errorf("alice's preview of dev ssh = %+v, %v", p, err)
	}
	dave := &latchhttp.Client{URL: s.url, Creds: bearer("dave")}
	if p, err = dave.Preview(ctx, latchhttp.RequestBody{Target: s.Fleet.Web1, Port: "22", Reason: "x"}); err != nil || p.Outcome != policy.Denied || p.Why == "" {
		t.Errorf("dave's preview = %+v, %v", p, err)
	}

	after, err := s.Store.AuditEntries(ctx, latch.AuditFilter{})
	if err != nil || len(after) != len(before) {
		t.Errorf("previews appended %d audit entries (%v)", len(after)-len(before), err)
	}
	if rs, err := s.Store.Requests(ctx, latch.RequestFilter{}); err != nil || len(rs) != 0 {
		t.Errorf("previews recorded requests: %v, %v", rs, err)
	}
	if gs, err := s.Store.Grants(ctx, latch.GrantFilter{}); err != nil || len(gs) != 0 {
		t.Errorf("previews recorded grants: %v, %v", gs, err)
	}
}

// GET /v1/rules is the rules the caller may ask under, and nobody else's.
func TestAskableRules(t *testing.T) {
	s := newServer(t, latchhttp.Options{RateLimit: 1000, Burst: 1000})
	alice := &latchhttp.Client{URL: s.url, Creds: bearer("alice")}
	rules, err := alice.Rules(t.Context())
	var names []string
	for _, r := range rules {
		names = append(names, r.Name)
	}
	if err != nil || !slices.Equal(names, []string{"dev-ssh", "prod-db", "prod-ssh"}) {
		t.Fatalf("alice's rules = %v, %v", names, err)
	}
	if r := rules[2]; r.Approvals != 1 || !slices.Equal(r.Approvers.Groups, []string{"sre"}) || !r.BreakGlass || r.MaxDurationSeconds != 7200 ||
		len(r.Ports) != 1 || r.Ports[0].Protocol != latch.TCP || r.Ports[0].FromPort != 22 || r.Targets.Tags["env"] != "prod" {
		t.Errorf("prod-ssh as alice sees it = %+v", r)
	}
	if r := rules[1]; !slices.Equal(r.Networks, []string{"198.51.100.0/24"}) {
		t.Errorf("prod-db's networks = %v", r.Networks)
	}
	st, body := s.call(t, "dave", "GET", "/v1/rules", nil)
	if st != 200 || strings.TrimSpace(string(body)) != "{\n  \"rules\": []\n}" {
		t.Errorf("dave's rules = %d %s, want none", st, body)
	}
}
