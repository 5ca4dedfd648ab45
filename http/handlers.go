package http

import (
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/policy"
)

// caller is the authenticated identity; the middleware guarantees one.
func caller(r *http.Request) latch.Identity {
	who, _ := identity(r.Context())
	return who
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	who := caller(r)
	writeJSON(w, http.StatusOK, WhoAmIJSON{identityJSON(who), clientAddr(r.Context()).String(), s.access.IsAdmin(who)})
}

// login records in the audit log that the caller logged in; the CLI calls
// it after 'latch login'.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	who := caller(r)
	s.access.RecordLogin(r.Context(), who, clientAddr(r.Context()).String())
	writeJSON(w, http.StatusOK, WhoAmIJSON{identityJSON(who), clientAddr(r.Context()).String(), s.access.IsAdmin(who)})
}

func (s *Server) createRequest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.writeError(w, r, latch.Errorf(codeTooLarge, "the request body is too large"))
		return
	}
	in, err := DecodeRequest(body, clientAddr(r.Context()))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := s.access.Request(r.Context(), caller(r), in)
	if err != nil && req.ID == "" {
		s.writeError(w, r, err)
		return
	}
	// A recorded request whose grant failed is still created; its state says so.
	writeJSON(w, http.StatusCreated, requestJSON(req))
}

func (s *Server) listRequests(w http.ResponseWriter, r *http.Request) {
	states, err := parseStates(r.URL.Query().Get("state"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit, err := parseLimit(r.URL.Query().Get("limit"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if limit == 0 {
		limit = broker.DefaultPage
	}
	f := latch.RequestFilter{States: states, Limit: limit}
	if r.URL.Query().Get("mine") == "true" {
		f.Requesters = []string{caller(r).Key()}
	}
	if b := r.URL.Query().Get("before"); b != "" {
		id, err := latch.ParseRequestID(b)
		if err != nil {
			s.writeError(w, r, latch.Invalidf("before", "%q is not a request ID; give the last request_id of the previous page", b))
			return
		}
		// A cursor must be a request the caller may see, or its place in
		// the list would say when someone else asked.
		prev, err := s.access.GetRequest(r.Context(), caller(r), id)
		if err != nil {
			s.writeError(w, r, latch.Invalidf("before", "%s is not a request in your list", id))
			return
		}
		f.Before = &latch.RequestCursor{CreatedAt: prev.CreatedAt, ID: prev.ID}
	}
	rs, err := s.access.ListRequests(r.Context(), caller(r), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]RequestJSON, 0, len(rs))
	for _, req := range rs {
		out = append(out, requestJSON(req))
	}
	if len(rs) == limit {
		next := r.URL.Query()
		next.Set("before", string(rs[len(rs)-1].ID))
		w.Header().Set("Link", "</v1/requests?"+next.Encode()+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getRequest(w http.ResponseWriter, r *http.Request) {
	id, err := latch.ParseRequestID(r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := s.access.GetRequest(r.Context(), caller(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, requestJSON(req))
}

func (s *Server) review(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := latch.ParseRequestID(r.PathValue("id"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		var b ReviewBody
		if r.ContentLength != 0 {
			if b, err = DecodeReview(r.Body); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		req, err := s.access.Review(r.Context(), caller(r), id, approve, b.Reason)
		if err != nil && req.ID == "" { // a refused review says nothing of the request
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, requestJSON(req))
	}
}

func (s *Server) withdraw(w http.ResponseWriter, r *http.Request) {
	id, err := latch.ParseRequestID(r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := s.access.Withdraw(r.Context(), caller(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, requestJSON(req))
}

func (s *Server) listGrants(w http.ResponseWriter, r *http.Request) {
	limit, err := parseLimit(r.URL.Query().Get("limit"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f := latch.GrantFilter{Limit: limit}
	if r.URL.Query().Get("open") == "true" {
		f.States = []latch.GrantState{latch.StateRequested, latch.StateActive, latch.StateRevoking, latch.StateRevokeFailed}
	}
	gs, err := s.access.ListGrants(r.Context(), caller(r), r.URL.Query().Get("all") == "true", f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]GrantJSON, 0, len(gs))
	for _, g := range gs {
		out = append(out, ToGrantJSON(g))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getGrant(w http.ResponseWriter, r *http.Request) {
	id, err := latch.ParseGrantID(r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	g, err := s.access.GetGrant(r.Context(), caller(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ToGrantJSON(g))
}

func (s *Server) revokeGrant(w http.ResponseWriter, r *http.Request) {
	id, err := latch.ParseGrantID(r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	g, kept, err := s.access.EndGrant(r.Context(), caller(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := RevokedJSON{GrantJSON: ToGrantJSON(g)}
	if kept != nil {
		out.RuleStaysOpen = &RuleKeptJSON{RuleID: kept.RuleID, GrantID: kept.GrantID, Until: kept.Until.UTC()}
	}
	writeJSON(w, http.StatusOK, out)
}

// sshLogin issues a short-lived SSH credential for the caller's grant.
func (s *Server) sshLogin(w http.ResponseWriter, r *http.Request) {
	id, err := latch.ParseGrantID(r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := DecodeSSH(r.Body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	l, err := s.access.SSHLogin(r.Context(), caller(r), id, in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sshLoginJSON(l))
}

func (s *Server) startSession(w http.ResponseWriter, r *http.Request) {
	id, err := latch.ParseGrantID(r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var b SessionBody
	if err := decode(r.Body, &b); err != nil {
		s.writeError(w, r, err)
		return
	}
	h, err := s.access.StartSession(r.Context(), caller(r), id, b.LocalPort)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store") // the token is a secret
	writeJSON(w, http.StatusCreated, sessionJSON(h))
}

// explainSessionQuery reads ?document= and ?port= of an explanation of a
// Session Manager session; ssh's port defaults to 22.
func explainSessionQuery(d, p string) (latch.SSMDocument, int, error) {
	doc, err := latch.ParseSSMDocument(d)
	if err != nil {
		return "", 0, err
	}
	switch {
	case !doc.TakesPort() && p != "":
		return "", 0, latch.Invalidf("port", "a %s session takes no port; got %q", doc, p)
	case doc == latch.DocSSH && p == "":
		return doc, 22, nil
	case !doc.TakesPort():
		return doc, 0, nil
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, latch.Invalidf("port", "%q is not a port; a %s session reaches one tcp port on the instance, 1 to 65535", p, doc)
	}
	return doc, port, nil
}

func parseLimit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1000 {
		return 0, latch.Invalidf("limit", "%q is not a number from 0 to 1000", s)
	}
	return n, nil
}

func (s *Server) explain(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	target := q.Get("target")
	if target == "" {
		s.writeError(w, r, latch.Invalidf("target", "a target is required: ?target=i-… or sg-…"))
		return
	}
	who := caller(r)
	var as *latch.Identity
	if sub := q.Get("as"); sub != "" {
		other := latch.Identity{Kind: latch.KindOIDC, Issuer: who.Issuer, Subject: sub}
		if who.Kind != latch.KindOIDC {
			other.Issuer = ""
		}
		if strings.Contains(sub, "@") {
			other.Email = sub // as a policy's users entries may name people
		}
		if strings.HasPrefix(sub, "arn:aws:") {
			other.Kind = latch.KindIAM
		}
		if g := q.Get("groups"); g != "" {
			other.Groups = strings.Split(g, ",")
		}
		as = &other
	}
	var ex []policy.Explanation
	var err error
	if d := q.Get("document"); d != "" {
		doc, port, perr := explainSessionQuery(d, q.Get("port"))
		if perr != nil {
			s.writeError(w, r, perr)
			return
		}
		ex, err = s.access.ExplainSession(r.Context(), who, as, q.Get("region"), target, doc, port)
	} else {
		ex, err = s.access.Explain(r.Context(), who, as, q.Get("region"), target)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]ExplanationJSON, 0, len(ex))
	for _, e := range ex {
		out = append(out, ExplanationJSON{Rule: e.Rule.Name, Applies: e.Applies, Why: e.Why})
	}
	writeJSON(w, http.StatusOK, out)
}
