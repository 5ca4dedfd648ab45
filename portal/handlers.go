package portal

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/policy"
)

// base is the view every signed-in page starts from.
func (p *Portal) base(s session, title, nav string) view {
	who := s.who
	return view{Title: title, Nav: nav, Who: &who, Admin: p.cfg.Access.IsAdmin(s.who), CSRF: s.csrf, AWSAuth: p.cfg.AWSAuth}
}

// problem shows err on its own page; internal errors are logged, not shown.
func (p *Portal) problem(w http.ResponseWriter, r *http.Request, s session, err error) {
	v := p.base(s, "Something went wrong", "")
	v.Problem = latch.ErrorMessage(err)
	if latch.ErrorCode(err) == latch.EINTERNAL {
		p.log.ErrorContext(r.Context(), "portal", "path", r.URL.Path, "err", err)
	}
	p.pages.render(w, r, latchhttp.Status(err), "problem", v)
}

func (p *Portal) notFound(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "latch: no such page", http.StatusNotFound)
}

// requestData is the Request access page: what the person may ask for,
// what policy says for a target, the form, and the decision previewed.
type requestData struct {
	Target, Region, Port, Duration, Reason string
	BreakGlassAsked                        bool
	Askable                                []policy.Rule // the rules they are among the callers of
	Explained                              bool
	Rules                                  []policy.Explanation
	Applicable                             int
	BreakGlass                             bool            // an applicable rule allows it
	Preview                                *broker.Preview // the decision for exactly the form's values
}

func (p *Portal) requestPage(w http.ResponseWriter, r *http.Request, s session, _ string) {
	q := r.URL.Query()
	d := requestData{Target: strings.TrimSpace(q.Get("target")), Region: q.Get("region"), Port: "22"}
	p.showRequest(w, r, s, d, "", http.StatusOK)
}

// showRequest renders the request page for d, explaining policy for its
// target, with problem (if any) said first.
func (p *Portal) showRequest(w http.ResponseWriter, r *http.Request, s session, d requestData, problem string, code int) {
	v := p.base(s, "Request access", "request")
	d.Askable = p.cfg.Access.Askable(r.Context(), s.who)
	if d.Target != "" {
		ex, err := p.cfg.Access.Explain(r.Context(), s.who, nil, d.Region, d.Target)
		if err != nil {
			if problem == "" {
				problem, code = latch.ErrorMessage(err), latchhttp.Status(err)
			}
		} else {
			d.Explained, d.Rules = true, ex
			for _, e := range ex {
				if e.Applies {
					d.Applicable++
					d.BreakGlass = d.BreakGlass || e.Rule.BreakGlass
				}
			}
		}
	}
	v.Problem, v.Data = problem, d
	p.pages.render(w, r, code, "request", v)
}

// requestForm reads the request form into d and, through the API's own
// decoder, into what the access service takes.
func (p *Portal) requestForm(r *http.Request) (requestData, broker.RequestInput, error) {
	d := requestData{
		Target: strings.TrimSpace(r.PostFormValue("target")), Region: r.PostFormValue("region"),
		Port: strings.TrimSpace(r.PostFormValue("port")), Duration: strings.TrimSpace(r.PostFormValue("duration")),
		Reason: r.PostFormValue("reason"), BreakGlassAsked: r.PostFormValue("break_glass") == "on",
	}
	body, err := json.Marshal(latchhttp.RequestBody{Target: d.Target, Region: d.Region, Port: d.Port, Duration: d.Duration,
		Reason: d.Reason, BreakGlass: d.BreakGlassAsked})
	if err != nil {
		return d, broker.RequestInput{}, err
	}
	in, err := latchhttp.DecodeRequest(body, p.cfg.ClientAddr(r))
	return d, in, err
}

// createRequest sends the form through the API's own decoder and the
// access service's Request: the same checks, the same policy decision.
func (p *Portal) createRequest(w http.ResponseWriter, r *http.Request, s session, _ string) {
	d, in, err := p.requestForm(r)
	if err == nil {
		var req latch.Request
		req, err = p.cfg.Access.Request(r.Context(), s.who, in)
		if req.ID != "" { // recorded, even if its grant failed: My access says how it went
			http.Redirect(w, r, "/access#"+string(req.ID), http.StatusSeeOther)
			return
		}
	}
	p.showRequest(w, r, s, d, latch.ErrorMessage(err), latchhttp.Status(err))
}

// previewRequest shows which rule would decide the form as it stands and
// what approval it needs, by the access service's Preview: the decision
// Request takes, recorded nowhere. It is a POST only to keep the reason
// out of URLs; it changes nothing.
func (p *Portal) previewRequest(w http.ResponseWriter, r *http.Request, s session, _ string) {
	d, in, err := p.requestForm(r)
	if err == nil {
		var pv broker.Preview
		if pv, err = p.cfg.Access.Preview(r.Context(), s.who, in); err == nil {
			d.Preview = &pv
			p.showRequest(w, r, s, d, "", http.StatusOK)
			return
		}
	}
	p.showRequest(w, r, s, d, latch.ErrorMessage(err), latchhttp.Status(err))
}

// accessRow is one of my requests, with its grant when it has one.
type accessRow struct {
	Req   latch.Request
	Grant *latch.Grant
	Open  bool // the grant's rule is (or may still be) open
}

func (p *Portal) accessPage(w http.ResponseWriter, r *http.Request, s session, _ string) {
	ctx := r.Context()
	rs, err := p.cfg.Access.ListRequests(ctx, s.who, latch.RequestFilter{Requesters: []string{s.who.Key()}, Limit: 50})
	if err != nil {
		p.problem(w, r, s, err)
		return
	}
	gs, err := p.cfg.Access.ListGrants(ctx, s.who, false, latch.GrantFilter{Limit: 100})
	if err != nil {
		p.problem(w, r, s, err)
		return
	}
	rows := make([]accessRow, 0, len(rs))
	for _, req := range rs {
		row := accessRow{Req: req}
		if i := slices.IndexFunc(gs, func(g latch.Grant) bool { return g.ID == req.GrantID && req.GrantID != "" }); i >= 0 {
			row.Grant = &gs[i]
			row.Open = openState(gs[i].State)
		}
		rows = append(rows, row)
	}
	v := p.base(s, "My access", "access")
	v.Data = rows
	p.pages.render(w, r, http.StatusOK, "access", v)
}

func openState(s latch.GrantState) bool {
	return s == latch.StateRequested || s == latch.StateActive || s == latch.StateRevoking || s == latch.StateRevokeFailed
}

// endGrant is "end now": the access service's EndGrant, as the API's
// revoke, so only the grant's requester and admins may.
func (p *Portal) endGrant(w http.ResponseWriter, r *http.Request, s session, _ string) {
	id, err := latch.ParseGrantID(r.PathValue("id"))
	if err == nil {
		_, _, err = p.cfg.Access.EndGrant(r.Context(), s.who, id)
	}
	if err != nil {
		p.problem(w, r, s, err)
		return
	}
	back := "/access"
	if r.PostFormValue("from") == "admin" {
		back = "/admin"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// approvalRow is a pending request in the inbox.
type approvalRow struct {
	Req latch.Request
	Own bool // the viewer asked for it: no approve button (the server refuses anyway)
}

func (p *Portal) approvalsPage(w http.ResponseWriter, r *http.Request, s session, _ string) {
	p.showApprovals(w, r, s, "", http.StatusOK)
}

func (p *Portal) showApprovals(w http.ResponseWriter, r *http.Request, s session, problem string, code int) {
	rs, err := p.cfg.Access.ListRequests(r.Context(), s.who, latch.RequestFilter{States: []latch.RequestState{latch.RequestPending}, Limit: 100})
	if err != nil {
		p.problem(w, r, s, err)
		return
	}
	rows := make([]approvalRow, 0, len(rs))
	for _, req := range rs {
		rows = append(rows, approvalRow{Req: req, Own: req.Requester.Key() == s.who.Key()})
	}
	v := p.base(s, "Approvals", "approvals")
	v.Problem, v.Data = problem, rows
	p.pages.render(w, r, code, "approvals", v)
}

// review approves or denies through the access service's Review: the one
// place that refuses a review of one's own request.
func (p *Portal) review(w http.ResponseWriter, r *http.Request, s session, _ string) {
	decision := r.PathValue("decision")
	if decision != "approve" && decision != "deny" {
		p.notFound(w, r)
		return
	}
	id, err := latch.ParseRequestID(r.PathValue("id"))
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if err == nil && reason != "" {
		err = latch.CheckReason("reason", reason)
	}
	if err == nil {
		var req latch.Request
		req, err = p.cfg.Access.Review(r.Context(), s.who, id, decision == "approve", reason)
		if err == nil || req.ID != "" {
			http.Redirect(w, r, "/approvals", http.StatusSeeOther)
			return
		}
	}
	p.showApprovals(w, r, s, latch.ErrorMessage(err), latchhttp.Status(err))
}
