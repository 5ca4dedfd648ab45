package portal

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
)

// The admin pages do not check who is an admin: the access service's
// methods they call refuse anyone else, with EFORBIDDEN and no data.

// adminData is the admin page: grants that need attention, the policy's
// status and the audit chain's.
type adminData struct {
	Open, Failed []latch.Grant
	Policy       broker.PolicyStatus
	PolicyKnown  bool
	Audit        broker.AuditCheck
}

func (p *Portal) adminPage(w http.ResponseWriter, r *http.Request, s session, _ string) {
	ctx := r.Context()
	var d adminData
	gs, err := p.cfg.Access.ListGrants(ctx, s.who, true, latch.GrantFilter{
		States: []latch.GrantState{latch.StateRequested, latch.StateActive, latch.StateRevoking, latch.StateRevokeFailed}, Limit: 500})
	if err == nil {
		d.Policy, d.PolicyKnown, err = p.cfg.Access.PolicyStatus(ctx, s.who)
	}
	if err == nil {
		d.Audit, err = p.cfg.Access.VerifyAudit(ctx, s.who)
	}
	if err != nil {
		p.problem(w, r, s, err)
		return
	}
	for _, g := range gs {
		if g.State == latch.StateRevokeFailed {
			d.Failed = append(d.Failed, g)
		} else {
			d.Open = append(d.Open, g)
		}
	}
	v := p.base(s, "Admin", "admin")
	v.Data = d
	p.pages.render(w, r, http.StatusOK, "admin", v)
}

// auditData is the audit log page: the filters as given, and a page.
type auditData struct {
	Actor, Action, Target, Since, Until string
	Page                                broker.AuditPage
	Older                               string // the next page's URL, "" when none
}

// timeLayout is the browser's datetime-local value, read as UTC.
const timeLayout = "2006-01-02T15:04"

func (p *Portal) auditPage(w http.ResponseWriter, r *http.Request, s session, _ string) {
	q := r.URL.Query()
	d := auditData{Actor: strings.TrimSpace(q.Get("actor")), Action: strings.TrimSpace(q.Get("action")),
		Target: strings.TrimSpace(q.Get("target")), Since: q.Get("since"), Until: q.Get("until")}
	aq := broker.AuditQuery{Actor: d.Actor, Action: latch.AuditAction(d.Action), Target: d.Target}
	var err error
	if aq.Since, err = parseTime("since", d.Since); err != nil {
		p.problem(w, r, s, err)
		return
	}
	if aq.Until, err = parseTime("until", d.Until); err != nil {
		p.problem(w, r, s, err)
		return
	}
	if b := q.Get("before"); b != "" {
		if aq.Before, err = strconv.ParseInt(b, 10, 64); err != nil || aq.Before < 1 {
			p.problem(w, r, s, latch.Invalidf("before", "%q is not an audit entry's sequence number", b))
			return
		}
	}
	if d.Page, err = p.cfg.Access.AuditLog(r.Context(), s.who, aq); err != nil {
		p.problem(w, r, s, err)
		return
	}
	if d.Page.Next > 0 {
		next := url.Values{}
		for k, v := range map[string]string{"actor": d.Actor, "action": d.Action, "target": d.Target, "since": d.Since, "until": d.Until} {
			if v != "" {
				next.Set(k, v)
			}
		}
		next.Set("before", strconv.FormatInt(d.Page.Next, 10))
		d.Older = "/admin/audit?" + next.Encode()
	}
	v := p.base(s, "Audit log", "admin")
	v.Data = d
	p.pages.render(w, r, http.StatusOK, "audit", v)
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		if t, err = time.Parse(time.RFC3339, s); err != nil {
			return time.Time{}, latch.Invalidf(field, "%q is not a time: want e.g. 2026-11-23T10:00 (UTC)", s)
		}
	}
	return t.UTC(), nil
}
