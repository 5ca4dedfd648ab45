package broker_test

import (
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	at "github.com/latchdev/latch/internal/accesstest"
	"github.com/latchdev/latch/policy"
)

func TestPreviewDecidesAsRequestWouldAndRecordsNothing(t *testing.T) {
	f := at.New(t)
	in := ask(f.Fleet.DB1, 22, home)
	p, err := f.Access.Preview(t.Context(), at.Alice, in)
	if err != nil {
		t.Fatal(err)
	}
	if p.Decision.Outcome != policy.NeedsApproval || p.Decision.Rule != "prod-ssh" || p.Decision.ApprovalsNeeded != 1 {
		t.Fatalf("preview = %+v, want prod-ssh needing one approval", p.Decision)
	}
	if rs, _ := f.Store.Requests(t.Context(), latch.RequestFilter{}); len(rs) != 0 {
		t.Fatalf("a preview recorded %d requests", len(rs))
	}
	r, err := f.Access.Request(t.Context(), at.Alice, in)
	if err != nil || r.Rule != p.Decision.Rule || r.ApprovalsNeeded != p.Decision.ApprovalsNeeded || r.Duration != p.Decision.Duration {
		t.Fatalf("request = %+v, %v; the preview said %+v", r, err, p.Decision)
	}
	if p, _ := f.Access.Preview(t.Context(), at.Dave, ask(f.Fleet.DB1, 22, home)); p.Decision.Outcome != policy.Denied {
		t.Errorf("dave's preview = %+v, want denied", p.Decision)
	}
}

func TestAskableIsTheCallersRules(t *testing.T) {
	f := at.New(t)
	var names []string
	for _, r := range f.Access.Askable(t.Context(), at.Alice) {
		names = append(names, r.Name)
	}
	if len(names) != 3 {
		t.Errorf("alice may ask under %v, want the three dev rules", names)
	}
	if rs := f.Access.Askable(t.Context(), at.Dave); len(rs) != 0 {
		t.Errorf("dave may ask under %d rules, want none", len(rs))
	}
}

func TestTimelineAndAdminViewsAreAuthorized(t *testing.T) {
	f := at.New(t)
	r, err := f.Access.Request(t.Context(), at.Alice, ask(f.Fleet.Web1, 22, home))
	if err != nil {
		t.Fatal(err)
	}
	tl, err := f.Access.GrantTimeline(t.Context(), at.Alice, r.GrantID)
	if err != nil || tl.Request == nil || tl.Request.ID != r.ID || len(tl.History) == 0 {
		t.Fatalf("alice's timeline = %+v, %v; want her request and the grant's history", tl, err)
	}
	if _, err := f.Access.GrantTimeline(t.Context(), at.Carol, r.GrantID); err != nil {
		t.Errorf("an admin's timeline: %v", err)
	}
	if tl, err := f.Access.GrantTimeline(t.Context(), at.Bob, r.GrantID); latch.ErrorCode(err) != latch.EFORBIDDEN || tl.Request != nil || tl.History != nil {
		t.Errorf("bob's timeline of alice's grant = %+v, %v; want EFORBIDDEN and nothing", tl, err)
	}

	if p, err := f.Access.AuditLog(t.Context(), at.Alice, broker.AuditQuery{}); latch.ErrorCode(err) != latch.EFORBIDDEN || p.Entries != nil {
		t.Errorf("alice's audit log = %d entries, %v; want EFORBIDDEN", len(p.Entries), err)
	}
	if c, err := f.Access.VerifyAudit(t.Context(), at.Alice); latch.ErrorCode(err) != latch.EFORBIDDEN || c.Entries != 0 {
		t.Errorf("alice's audit check = %+v, %v; want EFORBIDDEN", c, err)
	}
	if _, _, err := f.Access.PolicyStatus(t.Context(), at.Alice); latch.ErrorCode(err) != latch.EFORBIDDEN {
		t.Errorf("alice's policy status: %v; want EFORBIDDEN", err)
	}

	p, err := f.Access.AuditLog(t.Context(), at.Carol, broker.AuditQuery{Action: latch.AuditGranted, Limit: 1})
	if err != nil || len(p.Entries) != 1 || p.Entries[0].GrantID != r.GrantID {
		t.Fatalf("carol's audit log of grants = %+v, %v", p, err)
	}
	all, err := f.Access.AuditLog(t.Context(), at.Carol, broker.AuditQuery{Target: string(f.Fleet.WebGroup), Limit: 1})
	if err != nil || len(all.Entries) != 1 || all.Next == 0 {
		t.Fatalf("carol's first page for %s = %+v, %v; want one entry and a next page", f.Fleet.WebGroup, all, err)
	}
	next, err := f.Access.AuditLog(t.Context(), at.Carol, broker.AuditQuery{Target: string(f.Fleet.WebGroup), Before: all.Next, Limit: 1})
	if err != nil || len(next.Entries) != 1 || next.Entries[0].Seq >= all.Entries[0].Seq {
		t.Fatalf("carol's second page = %+v, %v; want an older entry", next, err)
	}
	c, err := f.Access.VerifyAudit(t.Context(), at.Carol)
	if err != nil || c.Entries == 0 || len(c.Problems) != 0 {
		t.Fatalf("carol's audit check = %+v, %v; want a clean chain", c, err)
	}
}
