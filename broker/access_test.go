package broker_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	at "github.com/latchdev/latch/internal/accesstest"
)

var home = netip.MustParsePrefix("203.0.113.50/32")
var office = netip.MustParsePrefix("198.51.100.9/32")

func ask(target string, port int, from netip.Prefix) broker.RequestInput {
	return broker.RequestInput{Target: target, Protocol: latch.TCP, Ports: latch.PortRange{From: port, To: port}, Reason: "deploy", Observed: from}
}

func TestAutoApprovedRequestOpensAtOnce(t *testing.T) {
	f := at.New(t)
	r, err := f.Access.Request(t.Context(), at.Alice, ask(f.Fleet.Web1, 22, home))
	if err != nil {
		t.Fatal(err)
	}
	if r.State != latch.RequestActive || r.Rule != "dev-ssh" || r.GrantID == "" || r.Target.GroupID != f.Fleet.WebGroup {
		t.Fatalf("request = %+v, want active under dev-ssh on web-latch", r)
	}
	g, err := f.Store.Grant(t.Context(), r.GrantID)
	if err != nil || g.State != latch.StateActive || !g.ExpiresAt.Equal(at.Start.Add(30*time.Minute)) || g.Requester != at.Alice.Email || g.Owner != at.Alice.Key() {
		t.Fatalf("grant = %+v, %v; want active for the default 30m, for alice", g, err)
	}
	if rules := f.Rules(f.Fleet.WebGroup); len(rules) != 1 || rules[0].CIDR != "203.0.113.50/32" {
		t.Fatalf("rules = %+v", rules)
	}
}

func TestApprovalFlow(t *testing.T) {
	f := at.New(t)
	r, err := f.Access.Request(t.Context(), at.Alice, ask(f.Fleet.DB1, 22, home))
	if err != nil {
		t.Fatal(err)
	}
	if r.State != latch.RequestPending || r.ApprovalsNeeded != 1 || len(f.Rules(f.Fleet.DBGroup)) != 0 {
		t.Fatalf("request = %s needing %d, rules %d; want pending, nothing open", r.State, r.ApprovalsNeeded, len(f.Rules(f.Fleet.DBGroup)))
	}
	if _, err := f.Access.Review(t.Context(), at.Alice, r.ID, true, ""); latch.ErrorCode(err) != latch.EFORBIDDEN {
		t.Fatalf("self-approval = %v, want EFORBIDDEN", err)
	}
	if _, err := f.Access.Review(t.Context(), at.Dave, r.ID, true, ""); latch.ErrorCode(err) != latch.EFORBIDDEN {
		t.Fatalf("approval by a non-approver = %v, want EFORBIDDEN", err)
	}
	f.Clock.Advance(20 * time.Minute) // the duration counts from approval, not from asking
	r, err = f.Access.Review(t.Context(), at.Bob, r.ID, true, "ok")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != latch.RequestActive || len(r.Reviews) != 1 || r.Reviews[0].By.Subject != at.Bob.Subject {
		t.Fatalf("after approval: %+v", r)
	}
	g, _ := f.Store.Grant(t.Context(), r.GrantID)
	if want := at.Start.Add(20*time.Minute + 30*time.Minute); !g.ExpiresAt.Equal(want) {
		t.Errorf("grant expires %v, want %v (30m from approval)", g.ExpiresAt, want)
	}
	if len(f.Rules(f.Fleet.DBGroup)) != 1 {
		t.Fatal("approved request opened no rule")
	}
	if _, err := f.Access.Review(t.Context(), at.Erin, r.ID, true, ""); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Errorf("review of an active request = %v, want ECONFLICT", err)
	}
}

func TestTwoApprovalsFromTwoPeople(t *testing.T) {
	f := at.New(t)
	r, err := f.Access.Request(t.Context(), at.Alice, ask(f.Fleet.DB1, 5432, office))
	if err != nil {
		t.Fatal(err)
	}
	if r, err = f.Access.Review(t.Context(), at.Bob, r.ID, true, ""); err != nil || r.State != latch.RequestPending {
		t.Fatalf("after one approval: %s, %v; want still pending", r.State, err)
	}
	if _, err := f.Access.Review(t.Context(), at.Bob, r.ID, true, ""); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Fatalf("second approval by the same person = %v, want ECONFLICT", err)
	}
	if r, err = f.Access.Review(t.Context(), at.Erin, r.ID, true, ""); err != nil || r.State != latch.RequestActive {
		t.Fatalf("after two approvals: %s, %v; want active", r.State, err)
	}
}

func TestPolicyRefusals(t *testing.T) {
	f := at.New(t)
	tests := []struct {
		name string
		who  latch.Identity
		in   broker.RequestInput
		code string
		says string
	}{
		{"stranger", at.Dave, ask(f.Fleet.Web1, 22, home), latch.EFORBIDDEN, "dave@example.com"},
		{"port not in any rule", at.Alice, ask(f.Fleet.Web1, 3389, home), latch.EFORBIDDEN, "3389"},
		{"over the maximum duration", at.Alice, func() broker.RequestInput {
			in := ask(f.Fleet.Web1, 22, home)
			in.Duration = 2 * time.Hour
			return in
		}(), latch.EFORBIDDEN, "1h"},
		{"outside the allowed networks", at.Alice, ask(f.Fleet.DB1, 5432, home), latch.EFORBIDDEN, "198.51.100.0/24"},
		{"naming another address without networks", at.Alice, func() broker.RequestInput {
			in := ask(f.Fleet.Web1, 22, home)
			in.Asked = netip.MustParsePrefix("192.0.2.1/32")
			return in
		}(), latch.EFORBIDDEN, "192.0.2.1"},
		{"unknown instance", at.Alice, ask("i-0000000000000dead", 22, home), latch.ENOTFOUND, "i-0000000000000dead"},
		{"unmanaged group", at.Alice, ask(string(f.Fleet.DefaultGroup), 22, home), latch.EFORBIDDEN, "latch:managed"},
		{"no instance of that name", at.Alice, ask("web-1.example.com", 22, home), latch.ENOTFOUND, "Name tag"},
		{"not a target", at.Alice, ask("i-web1", 22, home), latch.EINVALID, "instance ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Access.Request(t.Context(), tt.who, tt.in)
			if latch.ErrorCode(err) != tt.code || !strings.Contains(latch.ErrorMessage(err), tt.says) {
				t.Fatalf("Request() = %v, want %s mentioning %q", err, tt.code, tt.says)
			}
		})
	}
	if rs, _ := f.Store.Requests(t.Context(), latch.RequestFilter{}); len(rs) != 0 {
		t.Errorf("%d requests recorded for refusals", len(rs))
	}
}

func TestNamedAddressInsideNetworks(t *testing.T) {
	f := at.New(t)
	in := ask(f.Fleet.DB1, 5432, office)
	in.Asked = netip.MustParsePrefix("198.51.100.77/32") // a colleague's desk, same network
	r, err := f.Access.Request(t.Context(), at.Alice, in)
	if err != nil || r.Source != in.Asked {
		t.Fatalf("Request() = %v source %s, want pending for %s", err, r.Source, in.Asked)
	}
}

func TestMaxActive(t *testing.T) {
	f := at.New(t)
	for i, src := range []string{"203.0.113.1/32", "203.0.113.2/32"} {
		if _, err := f.Access.Request(t.Context(), at.Alice, ask(f.Fleet.Web1, 22, netip.MustParsePrefix(src))); err != nil {
			t.Fatalf("grant %d: %v", i, err)
		}
	}
	_, err := f.Access.Request(t.Context(), at.Alice, ask(f.Fleet.Web2, 22, netip.MustParsePrefix("203.0.113.3/32")))
	if latch.ErrorCode(err) != latch.EFORBIDDEN {
		t.Fatalf("third active grant = %v, want EFORBIDDEN (max_active 2)", err)
	}
}

func TestBreakGlass(t *testing.T) {
	f := at.New(t)
	in := ask(f.Fleet.DB1, 22, home)
	in.BreakGlass, in.Reason = true, "INC-7 database down"
	r, err := f.Access.Request(t.Context(), at.Alice, in)
	if err != nil || r.State != latch.RequestActive || !r.BreakGlass {
		t.Fatalf("break-glass = %s (break_glass %v), %v; want active and flagged", r.State, r.BreakGlass, err)
	}
	g, _ := f.Store.Grant(t.Context(), r.GrantID)
	if !strings.HasPrefix(g.Reason, "BREAK-GLASS") {
		t.Errorf("grant reason %q does not flag break-glass", g.Reason)
	}
	in.Target, in.Ports = f.Fleet.DB1, latch.PortRange{From: 5432, To: 5432}
	in.Observed = office
	if _, err := f.Access.Request(t.Context(), at.Alice, in); latch.ErrorCode(err) != latch.EFORBIDDEN {
		t.Errorf("break-glass under a rule without it = %v, want EFORBIDDEN", err)
	}
}

func TestPendingTimesOut(t *testing.T) {
	f := at.New(t)
	r, err := f.Access.Request(t.Context(), at.Alice, ask(f.Fleet.DB1, 22, home))
	if err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(time.Hour)
	if _, err := f.Access.Review(t.Context(), at.Bob, r.ID, true, ""); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Fatalf("approval after the timeout = %v, want ECONFLICT", err)
	}
	got, _ := f.Access.GetRequest(t.Context(), at.Alice, r.ID)
	if got.State != latch.RequestTimedOut || len(f.Rules(f.Fleet.DBGroup)) != 0 {
		t.Fatalf("request %s with %d rules, want timed-out with none", got.State, len(f.Rules(f.Fleet.DBGroup)))
	}
}

func TestDenyAndWithdraw(t *testing.T) {
	f := at.New(t)
	r1, _ := f.Access.Request(t.Context(), at.Alice, ask(f.Fleet.DB1, 22, home))
	if _, err := f.Access.Review(t.Context(), at.Bob, r1.ID, false, ""); latch.ErrorCode(err) != latch.EINVALID {
		t.Fatalf("denial without a reason = %v, want EINVALID", err)
	}
	r1, err := f.Access.Review(t.Context(), at.Bob, r1.ID, false, "change freeze")
	if err != nil || r1.State != latch.RequestDenied || r1.Reviews[0].Reason != "change freeze" {
		t.Fatalf("deny = %+v, %v", r1, err)
	}
	r2, _ := f.Access.Request(t.Context(), at.Alice, ask(f.Fleet.DB1, 22, netip.MustParsePrefix("203.0.113.51/32")))
	if _, err := f.Access.Withdraw(t.Context(), at.Bob, r2.ID); latch.ErrorCode(err) != latch.EFORBIDDEN {
		t.Fatalf("withdraw by another = %v, want EFORBIDDEN", err)
	}
	if r2, err = f.Access.Withdraw(t.Context(), at.Alice, r2.ID); err != nil || r2.State != latch.RequestWithdrawn {
		t.Fatalf("withdraw = %s, %v", r2.State, err)
	}
	if _, err := f.Access.Review(t.Context(), at.Bob, r2.ID, true, ""); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Errorf("approving a withdrawn request = %v, want ECONFLICT", err)
	}
}

func TestEndGrantEarly(t *testing.T) {
	f := at.New(t)
	r, _ := f.Access.Request(t.Context(), at.Alice, ask(f.Fleet.Web1, 22, home))
	if _, _, err := f.Access.EndGrant(t.Context(), at.Dave, r.GrantID); latch.ErrorCode(err) != latch.EFORBIDDEN {
		t.Fatalf("stranger ends grant = %v, want EFORBIDDEN", err)
	}
	g, _, err := f.Access.EndGrant(t.Context(), at.Alice, r.GrantID)
	if err != nil || g.State != latch.StateRevoked || len(f.Rules(f.Fleet.WebGroup)) != 0 {
		t.Fatalf("end = %s, %v, rules %d; want revoked at once", g.State, err, len(f.Rules(f.Fleet.WebGroup)))
	}
	r2, _ := f.Access.Request(t.Context(), at.Alice, ask(f.Fleet.Web1, 22, home))
	if g, _, err := f.Access.EndGrant(t.Context(), at.Carol, r2.GrantID); err != nil || g.State != latch.StateRevoked {
		t.Fatalf("admin ends grant = %s, %v", g.State, err)
	}
}

func TestExplain(t *testing.T) {
	f := at.New(t)
	ex, err := f.Access.Explain(t.Context(), at.Alice, nil, "", f.Fleet.DB1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 3 || ex[0].Applies || !ex[1].Applies || !ex[2].Applies {
		t.Fatalf("explain for alice on db-1 = %+v; want dev-ssh not applying, prod rules applying", ex)
	}
	if _, err := f.Access.Explain(t.Context(), at.Alice, &at.Dave, "", f.Fleet.DB1); latch.ErrorCode(err) != latch.EFORBIDDEN {
		t.Errorf("explain as someone else by a non-admin = %v, want EFORBIDDEN", err)
	}
	if _, err := f.Access.Explain(t.Context(), at.Carol, &at.Alice, "", f.Fleet.DB1); err != nil {
		t.Errorf("admin explain as alice = %v", err)
	}
}

// Ending a grant whose rule another live grant shares says the rule stays
// open, until when, and names that grant only to someone who may see it.
func TestEndGrantSharedRuleNamesOnlyVisibleGrants(t *testing.T) {
	f := at.New(t)
	frank := latch.Identity{Kind: latch.KindOIDC, Issuer: at.Issuer, Subject: "u-frank", Email: "frank@example.com", Groups: []string{"dev"}}
	grant := func(who latch.Identity) latch.Grant {
		t.Helper()
		r, err := f.Access.Request(t.Context(), who, ask(f.Fleet.Web1, 22, home))
		if err != nil {
			t.Fatal(err)
		}
		g, err := f.Access.GetGrant(t.Context(), who, r.GrantID)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	alices := grant(at.Alice)
	f.Clock.Advance(time.Minute)
	franks := grant(frank)
	if alices.RuleID != franks.RuleID {
		t.Fatalf("rules %s and %s; want one shared", alices.RuleID, franks.RuleID)
	}
	g, kept, err := f.Access.EndGrant(t.Context(), at.Alice, alices.ID)
	if err != nil || g.State != latch.StateRevoked {
		t.Fatalf("end = %s, %v", g.State, err)
	}
	if kept == nil || kept.GrantID != "" || kept.RuleID != alices.RuleID || !kept.Until.Equal(franks.ExpiresAt) {
		t.Fatalf("kept for another's grant = %+v; want rule %s until %s, not naming %s", kept, alices.RuleID, franks.ExpiresAt, franks.ID)
	}
	alices2 := grant(at.Alice)
	_, kept, err = f.Access.EndGrant(t.Context(), at.Carol, franks.ID) // an admin sees every grant
	if err != nil || kept == nil || kept.GrantID != alices2.ID || !kept.Until.Equal(alices2.ExpiresAt) {
		t.Fatalf("admin's end = %+v, %v; want it kept for %s", kept, err, alices2.ID)
	}
	_, kept, err = f.Access.EndGrant(t.Context(), at.Alice, alices2.ID)
	if err != nil || kept != nil || len(f.Rules(f.Fleet.WebGroup)) != 0 {
		t.Fatalf("last end = %+v, %v, %d rules; want the rule revoked", kept, err, len(f.Rules(f.Fleet.WebGroup)))
	}
}
