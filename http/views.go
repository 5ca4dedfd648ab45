package http

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/policy"
)

// This file serves what the portal shows beyond requests and grants: the
// access service's views (broker/views.go). As everywhere in this
// package, each handler parses, hands the caller to the access service,
// which authorizes them, and prints what it returns: no handler decides
// who may see what.

// previewRequest is POST /v1/requests/preview: what a request with this
// body would meet, recorded nowhere.
func (s *Server) previewRequest(w http.ResponseWriter, r *http.Request) {
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
	pv, err := s.access.Preview(r.Context(), caller(r), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, previewJSON(pv))
}

// askable is GET /v1/rules: the rules the caller may ask under.
func (s *Server) askable(w http.ResponseWriter, r *http.Request) {
	rules := s.access.Askable(r.Context(), caller(r))
	out := RulesJSON{Rules: make([]RuleJSON, 0, len(rules))}
	for _, rule := range rules {
		out.Rules = append(out.Rules, ruleJSON(rule))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) grantTimeline(w http.ResponseWriter, r *http.Request) {
	id, err := latch.ParseGrantID(r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	tl, err := s.access.GrantTimeline(r.Context(), caller(r), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := TimelineJSON{Grant: ToGrantJSON(tl.Grant), History: make([]GrantEventJSON, 0, len(tl.History))}
	if tl.Request != nil {
		j := requestJSON(*tl.Request)
		out.Request = &j
	}
	for _, e := range tl.History {
		out.History = append(out.History, GrantEventJSON{At: e.At.UTC(), State: e.State, Note: e.Note})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) auditLog(w http.ResponseWriter, r *http.Request) {
	q, err := parseAuditQuery(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.access.AuditLog(r.Context(), caller(r), q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := AuditPageJSON{Entries: make([]AuditEntryJSON, 0, len(p.Entries)), Next: p.Next}
	for _, e := range p.Entries {
		out.Entries = append(out.Entries, ToAuditEntryJSON(e))
	}
	if p.Next > 0 {
		next := r.URL.Query()
		next.Set("before", strconv.FormatInt(p.Next, 10))
		w.Header().Set("Link", "</v1/audit?"+next.Encode()+`>; rel="next"`)
	}
	writeJSON(w, http.StatusOK, out)
}

func parseAuditQuery(r *http.Request) (broker.AuditQuery, error) {
	v := r.URL.Query()
	q := broker.AuditQuery{Actor: v.Get("actor"), Action: latch.AuditAction(v.Get("action")), Target: v.Get("target")}
	var err error
	if q.Since, err = parseTime("since", v.Get("since")); err != nil {
		return q, err
	}
	if q.Until, err = parseTime("until", v.Get("until")); err != nil {
		return q, err
	}
	if b := v.Get("before"); b != "" {
		if q.Before, err = strconv.ParseInt(b, 10, 64); err != nil || q.Before <= 0 {
			return q, latch.Invalidf("before", "%q is not an entry's seq; give the next of the previous page", b)
		}
	}
	if q.Limit, err = parseLimit(v.Get("limit")); err != nil {
		return q, err
	}
	return q, nil
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, latch.Invalidf(field, "%q is not an RFC 3339 time, e.g. 2026-11-23T10:00:00Z", s)
	}
	return t, nil
}

func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request) {
	c, err := s.access.VerifyAudit(r.Context(), caller(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := AuditCheckJSON{Entries: c.Entries, HeadSeq: c.Head.Seq, HeadHash: c.Head.Hash, Signed: c.Signed, Problems: c.Problems}
	if out.Problems == nil {
		out.Problems = []latch.AuditProblem{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) policyStatus(w http.ResponseWriter, r *http.Request) {
	st, ok, err := s.access.PolicyStatus(r.Context(), caller(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := PolicyStatusJSON{Known: ok}
	if ok {
		out.Path, out.SHA256, out.Rules, out.LastError = st.Path, st.SHA256, st.Rules, st.LastError
		out.LoadedAt, out.LastErrorAt = optTime(st.LoadedAt), optTime(st.LastErrorAt)
	}
	writeJSON(w, http.StatusOK, out)
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// PreviewJSON is POST /v1/requests/preview: the decision a request would
// meet, for the caller alone. Nothing is recorded.
type PreviewJSON struct {
	Region                string           `json:"region"`
	InstanceID            latch.InstanceID `json:"instance_id,omitempty"`
	GroupID               latch.GroupID    `json:"group_id"`
	Source                string           `json:"source"`
	Outcome               policy.Outcome   `json:"outcome"` // allowed, needs-approval, denied
	Rule                  string           `json:"rule,omitempty"`
	Why                   string           `json:"why"`
	DurationSeconds       int64            `json:"duration_seconds,omitempty"`
	ApprovalsNeeded       int              `json:"approvals_needed,omitempty"`
	Approvers             *ApproversJSON   `json:"approvers,omitempty"`
	PendingTimeoutSeconds int64            `json:"pending_timeout_seconds,omitempty"`
	BreakGlass            bool             `json:"break_glass,omitempty"`
	Wide                  bool             `json:"wide,omitempty"` // the source is wider than one address, which the rule allows
}

func previewJSON(p broker.Preview) PreviewJSON {
	d := p.Decision
	j := PreviewJSON{Region: p.Target.Region, InstanceID: p.Target.InstanceID, GroupID: p.Target.GroupID, Outcome: d.Outcome, Rule: d.Rule, Why: d.Why,
		DurationSeconds: int64(d.Duration / time.Second), ApprovalsNeeded: d.ApprovalsNeeded,
		PendingTimeoutSeconds: int64(d.PendingTimeout / time.Second), BreakGlass: d.BreakGlass, Wide: d.Wide}
	if p.Source.IsValid() {
		j.Source = p.Source.String()
	}
	if d.Outcome == policy.NeedsApproval {
		j.Approvers = &ApproversJSON{Groups: d.Approvers.Groups, Users: d.Approvers.Users, AWSPrincipals: d.Approvers.AWSPrincipals}
	}
	return j
}

// RulesJSON is GET /v1/rules: the rules the caller may ask under, in the
// policy file's order.
type RulesJSON struct {
	Rules []RuleJSON `json:"rules"`
}

// RuleJSON is a policy rule as a requester may see it: what they may ask
// for and what it takes. Where its events are sent is not shown.
type RuleJSON struct {
	Name                   string          `json:"name"`
	Description            string          `json:"description,omitempty"`
	Targets                RuleTargetsJSON `json:"targets"`
	Ports                  []PortSpecJSON  `json:"ports"`
	DefaultDurationSeconds int64           `json:"default_duration_seconds"`
	MaxDurationSeconds     int64           `json:"max_duration_seconds"`
	Approvals              int             `json:"approvals"` // 0: auto-approved
	Approvers              ApproversJSON   `json:"approvers"`
	PendingTimeoutSeconds  int64           `json:"pending_timeout_seconds,omitempty"`
	BreakGlass             bool            `json:"break_glass"`
	Networks               []string        `json:"networks,omitempty"` // the source must fall inside one; absent means anywhere
	AllowPrefix            bool            `json:"allow_prefix,omitempty"`
	MaxActive              int             `json:"max_active,omitempty"`
	ReasonRequired         bool            `json:"reason_required"`
	SSH                    bool            `json:"ssh"` // the rule gives an SSH login (POST /v1/grants/{id}/ssh)
	// SSM is the Session Manager sessions the rule gives (POST
	// /v1/grants/{id}/session); absent when it gives none.
	SSM *RuleSSMJSON `json:"ssm,omitempty"`
}

// RuleSSMJSON is a rule's ssm section: the documents, and the tcp ports
// on the instance port-forward and ssh sessions may reach.
type RuleSSMJSON struct {
	Documents []latch.SSMDocument `json:"documents"`
	Ports     []PortSpecJSON      `json:"ports"`
}

// RuleTargetsJSON is which targets a rule is about.
type RuleTargetsJSON struct {
	Instances []latch.InstanceID `json:"instances,omitempty"`
	Groups    []latch.GroupID    `json:"groups,omitempty"`
	Tags      map[string]string  `json:"tags,omitempty"`
}

// PortSpecJSON is one protocol and port range a rule may open.
type PortSpecJSON struct {
	Protocol latch.Protocol `json:"protocol"`
	FromPort int            `json:"from_port"`
	ToPort   int            `json:"to_port"`
}

func ruleJSON(r policy.Rule) RuleJSON {
	j := RuleJSON{Name: r.Name, Description: r.Description,
		Targets:                RuleTargetsJSON{Instances: r.Targets.Instances, Groups: r.Targets.Groups, Tags: r.Targets.Tags},
		Ports:                  make([]PortSpecJSON, 0, len(r.Ports)),
		DefaultDurationSeconds: int64(r.DefaultDuration / time.Second), MaxDurationSeconds: int64(r.MaxDuration / time.Second),
		Approvals: r.Approvals, Approvers: ApproversJSON{Groups: r.Approvers.Groups, Users: r.Approvers.Users, AWSPrincipals: r.Approvers.AWSPrincipals},
		PendingTimeoutSeconds: int64(r.PendingTimeout / time.Second), BreakGlass: r.BreakGlass, AllowPrefix: r.AllowPrefix,
		MaxActive: r.MaxActive, ReasonRequired: r.ReasonRequired, SSH: r.SSH != nil}
	for _, p := range r.Ports {
		j.Ports = append(j.Ports, PortSpecJSON{Protocol: p.Protocol, FromPort: p.Ports.From, ToPort: p.Ports.To})
	}
	for _, n := range r.Networks {
		j.Networks = append(j.Networks, n.String())
	}
	if r.SSM != nil {
		j.SSM = &RuleSSMJSON{Documents: r.SSM.Documents, Ports: make([]PortSpecJSON, 0, len(r.SSM.Ports))}
		for _, p := range r.SSM.Ports {
			j.SSM.Ports = append(j.SSM.Ports, PortSpecJSON{Protocol: latch.TCP, FromPort: p.From, ToPort: p.To})
		}
	}
	return j
}

// TimelineJSON is GET /v1/grants/{id}/timeline: a grant, the request that
// opened it (absent for a grant opened directly) and its history.
type TimelineJSON struct {
	Grant   GrantJSON        `json:"grant"`
	Request *RequestJSON     `json:"request,omitempty"`
	History []GrantEventJSON `json:"history"` // oldest first
}

// GrantEventJSON is one change of a grant's state.
type GrantEventJSON struct {
	At    time.Time        `json:"at"`
	State latch.GrantState `json:"state"`
	Note  string           `json:"note,omitempty"`
}

// AuditPageJSON is GET /v1/audit: a page of the audit log, newest first.
type AuditPageJSON struct {
	Entries []AuditEntryJSON `json:"entries"`
	// Next is the before of the next (older) page, as the Link header
	// says; absent on the last page.
	Next int64 `json:"next,omitempty"`
}

// AuditEntryJSON is an audit entry on the wire, as latch audit export
// writes it.
type AuditEntryJSON struct {
	Seq       int64             `json:"seq"`
	At        time.Time         `json:"at"`
	Actor     string            `json:"actor"`
	Action    latch.AuditAction `json:"action"`
	Target    string            `json:"target,omitempty"`
	GrantID   latch.GrantID     `json:"grant_id,omitempty"`
	RequestID latch.RequestID   `json:"request_id,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
	PrevHash  string            `json:"prev_hash"`
	Hash      string            `json:"hash"`
	Signature string            `json:"signature,omitempty"`
}

// ToAuditEntryJSON is e on the wire.
func ToAuditEntryJSON(e latch.AuditEntry) AuditEntryJSON {
	return AuditEntryJSON{e.Seq, e.At.UTC(), e.Actor, e.Action, e.Target, e.GrantID, e.RequestID, e.Details, e.PrevHash, e.Hash, e.Signature}
}

// AuditCheckJSON is GET /v1/audit/verify, as latch audit verify --json
// prints it, with the head's hash to keep elsewhere.
type AuditCheckJSON struct {
	Entries  int                  `json:"entries"`
	HeadSeq  int64                `json:"head_seq"`
	HeadHash string               `json:"head_hash"`
	Signed   bool                 `json:"signatures_checked"`
	Problems []latch.AuditProblem `json:"problems"`
}

// PolicyStatusJSON is GET /v1/policy/status: where the policy in force
// came from and how its last reload went. Known is false, and nothing
// else is set, when this server does not know.
type PolicyStatusJSON struct {
	Known       bool       `json:"known"`
	Path        string     `json:"path,omitempty"`
	LoadedAt    *time.Time `json:"loaded_at,omitempty"`
	SHA256      string     `json:"sha256,omitempty"`
	Rules       int        `json:"rules,omitempty"`
	LastError   string     `json:"last_error,omitempty"` // the last reload failed; the policy before it stays in force
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
}
