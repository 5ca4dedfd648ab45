package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
)

// RequestBody is POST /v1/requests.
type RequestBody struct {
	Target     string `json:"target"`
	Region     string `json:"region,omitempty"`
	Protocol   string `json:"protocol,omitempty"` // default tcp
	Port       string `json:"port"`               // "22" or "8000-8080"; for icmp and icmpv6 TYPE or TYPE-CODE, "" for all types
	Duration   string `json:"duration,omitempty"` // "30m"; empty means the rule's default
	Reason     string `json:"reason,omitempty"`
	Source     string `json:"source,omitempty"` // an address other than the caller's, if policy allows
	BreakGlass bool   `json:"break_glass,omitempty"`
	// Document asks for Session Manager access instead of an opened port:
	// shell, port-forward or ssh. Port is then the port on the instance
	// (required for port-forward and ssh; none for shell), and Source must
	// be empty.
	Document string `json:"document,omitempty"`
}

// ReviewBody is POST /v1/requests/{id}/approve and /deny.
type ReviewBody struct {
	Reason string `json:"reason,omitempty"`
}

// DecodeReview reads a review body. Its reason is optional (a denial's is
// required by [latch.Request.Review]), but one given must pass
// [latch.CheckReason]: it is shown to the requester and kept in the audit
// log.
func DecodeReview(body io.Reader) (ReviewBody, error) {
	var b ReviewBody
	if err := decode(body, &b); err != nil {
		return b, err
	}
	if b.Reason != "" {
		if err := latch.CheckReason("reason", b.Reason); err != nil {
			return b, err
		}
	}
	return b, nil
}

// decode reads exactly one JSON object into v, refusing unknown fields.
func decode(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return latch.Errorf(codeTooLarge, "the request body is too large")
		}
		if errors.Is(err, io.EOF) {
			return latch.Invalidf("body", "a JSON object is required")
		}
		return latch.Invalidf("body", "not valid JSON for this endpoint: %v", err)
	}
	if dec.More() {
		return latch.Invalidf("body", "one JSON object only")
	}
	return nil
}

// DecodeRequest parses and checks a request body, with observed as the
// caller's address. Everything the caller can get wrong is an EINVALID
// naming the field.
func DecodeRequest(body []byte, observed netip.Addr) (broker.RequestInput, error) {
	var b RequestBody
	if err := decode(bytes.NewReader(body), &b); err != nil {
		return broker.RequestInput{}, err
	}
	in := broker.RequestInput{Target: strings.TrimSpace(b.Target), Region: b.Region, Reason: b.Reason, BreakGlass: b.BreakGlass}
	if in.Target == "" {
		return in, latch.Invalidf("target", "a target is required: an instance ID (i-…), an instance's Name tag or a managed security group ID (sg-…)")
	}
	if in.Region != "" {
		if _, err := latch.ParseRegion(in.Region); err != nil {
			return in, err
		}
	}
	if b.Protocol == "" {
		b.Protocol = "tcp"
	}
	if b.Document != "" {
		return decodeSessionRequest(b, in, observed)
	}
	var err error
	if in.Protocol, err = latch.ParseProtocol(b.Protocol); err != nil {
		return in, err
	}
	if in.Ports, err = latch.ParsePorts(in.Protocol, b.Port); err != nil {
		return in, err
	}
	if !observed.IsValid() {
		return in, latch.Errorf(latch.EINTERNAL, "no client address")
	}
	in.Observed = netip.PrefixFrom(observed, observed.BitLen())
	source := netip.PrefixFrom(observed.Unmap(), observed.Unmap().BitLen())
	if err := decodeDuration(b, &in); err != nil {
		return in, err
	}
	if b.Source != "" {
		if in.Asked, err = latch.ParseWideSource(b.Source); err != nil {
			return in, latch.Invalidf("source", "%s", latch.ErrorMessage(err))
		}
		source = in.Asked
	}
	return in, latch.CheckFamily(in.Protocol, source)
}

// decodeDuration reads the duration and reason every request has.
func decodeDuration(b RequestBody, in *broker.RequestInput) error {
	if b.Duration != "" {
		d, err := time.ParseDuration(b.Duration)
		if err != nil || d <= 0 || d%time.Second != 0 {
			return latch.Invalidf("duration", "%q is not a positive whole number of seconds, e.g. 30m", b.Duration)
		}
		in.Duration = d
	}
	if in.Reason != "" { // optional here; the policy may require one
		return latch.CheckReason("reason", in.Reason)
	}
	return nil
}

// decodeSessionRequest is DecodeRequest for Session Manager access.
func decodeSessionRequest(b RequestBody, in broker.RequestInput, observed netip.Addr) (broker.RequestInput, error) {
	var err error
	if in.Document, err = latch.ParseSSMDocument(b.Document); err != nil {
		return in, err
	}
	if b.Protocol != "tcp" {
		return in, latch.Invalidf("protocol", "a Session Manager session carries tcp only; got %q", b.Protocol)
	}
	if b.Source != "" {
		return in, latch.Invalidf("source", "Session Manager access opens no port to an address; give no source")
	}
	in.Protocol = latch.TCP
	switch {
	case in.Document.TakesPort():
		n, err := strconv.Atoi(b.Port)
		if err != nil || n < 1 || n > 65535 {
			return in, latch.Invalidf("port", "%q is not a port; a %s session reaches one tcp port on the instance, 1 to 65535", b.Port, in.Document)
		}
		in.Ports = latch.PortRange{From: n, To: n}
	case b.Port != "":
		return in, latch.Invalidf("port", "a %s session takes no port; got %q", in.Document, b.Port)
	}
	if err := decodeDuration(b, &in); err != nil {
		return in, err
	}
	if !observed.IsValid() {
		return in, latch.Errorf(latch.EINTERNAL, "no client address")
	}
	in.Observed = netip.PrefixFrom(observed, observed.BitLen())
	return in, nil
}

// IdentityJSON is a person on the wire: a request's requester, a grant's,
// a reviewer, the caller of whoami. It is one shape wherever a person is
// printed: key (the stable identity key, [latch.Identity.Key]; "" for a
// grant no identity asked for) and display (what to show people) are
// always there; kind, subject, issuer, email, name and groups are there
// when known (a grant keeps only its requester's key and display).
type IdentityJSON struct {
	Key     string             `json:"key"`
	Display string             `json:"display"`
	Kind    latch.IdentityKind `json:"kind,omitempty"`
	Subject string             `json:"subject,omitempty"`
	Issuer  string             `json:"issuer,omitempty"`
	Email   string             `json:"email,omitempty"`
	Name    string             `json:"name,omitempty"`
	Groups  []string           `json:"groups,omitempty"`
}

func identityJSON(i latch.Identity) IdentityJSON {
	return IdentityJSON{Key: i.Key(), Display: i.String(), Kind: i.Kind, Subject: i.Subject, Issuer: i.Issuer, Email: i.Email, Name: i.Name, Groups: i.Groups}
}

// ApproversJSON says who may review a request.
type ApproversJSON struct {
	Groups        []string `json:"groups,omitempty"`
	Users         []string `json:"users,omitempty"`
	AWSPrincipals []string `json:"aws_principals,omitempty"`
}

// ExplanationJSON is one rule's part of GET /v1/policy/explain.
type ExplanationJSON struct {
	Rule    string `json:"rule"`
	Applies bool   `json:"applies"`
	Why     string `json:"why"`
}

// WhoAmIJSON is GET /v1/whoami.
type WhoAmIJSON struct {
	IdentityJSON
	Address string `json:"address"` // the caller's address as the server sees it
	Admin   bool   `json:"admin"`
}

// ReviewJSON is one review on the wire. By is the reviewer, without their
// groups.
type ReviewJSON struct {
	By      IdentityJSON `json:"by"`
	Approve bool         `json:"approve"`
	Reason  string       `json:"reason,omitempty"`
	At      time.Time    `json:"at"`
}

// RequestJSON is a request on the wire.
type RequestJSON struct {
	ID              latch.RequestID    `json:"request_id"`
	State           latch.RequestState `json:"state"`
	Requester       IdentityJSON       `json:"requester"`
	Region          string             `json:"region"`
	InstanceID      latch.InstanceID   `json:"instance_id,omitempty"`
	GroupID         latch.GroupID      `json:"group_id"`
	Protocol        latch.Protocol     `json:"protocol"`
	FromPort        int                `json:"from_port"` // for icmp and icmpv6 the type, -1 for all
	ToPort          int                `json:"to_port"`   // for icmp and icmpv6 the code, -1 for any
	Source          string             `json:"source"`
	DurationSeconds int64              `json:"duration_seconds"`
	Reason          string             `json:"reason,omitempty"`
	BreakGlass      bool               `json:"break_glass,omitempty"`
	Rule            string             `json:"rule"`
	ApprovalsNeeded int                `json:"approvals_needed"`
	ApproverGroups  []string           `json:"approver_groups,omitempty"` // Approvers.Groups, kept for older clients
	Approvers       ApproversJSON      `json:"approvers"`
	Reviews         []ReviewJSON       `json:"reviews,omitempty"`
	CreatedAt       time.Time          `json:"created_at"`
	PendingUntil    time.Time          `json:"pending_until"`
	DecidedAt       *time.Time         `json:"decided_at,omitempty"`
	GrantID         latch.GrantID      `json:"grant_id,omitempty"`
	Note            string             `json:"note,omitempty"`
	// Access is network (a rule opened to source) or ssm (Session Manager
	// sessions with document; source is then "").
	Access   latch.Access      `json:"access"`
	Document latch.SSMDocument `json:"document,omitempty"`
}

// reviewerJSON is a reviewer as a request shows them: who they are, as
// a grant's requester is shown; their groups, email and subject are the
// approver's business, not the requester's.
func reviewerJSON(i latch.Identity) IdentityJSON {
	return IdentityJSON{Key: i.Key(), Display: i.String()}
}

// Ports is the protocol's port range (or ICMP type and code) j carries.
func (j GrantJSON) Ports() latch.PortRange { return latch.PortRange{From: j.FromPort, To: j.ToPort} }

// Ports is the protocol's port range (or ICMP type and code) j carries.
func (j RequestJSON) Ports() latch.PortRange { return latch.PortRange{From: j.FromPort, To: j.ToPort} }

// Duration is how long j's access lasts once granted.
func (j RequestJSON) Duration() time.Duration { return time.Duration(j.DurationSeconds) * time.Second }

func requestJSON(r latch.Request) RequestJSON {
	j := RequestJSON{
		ID: r.ID, State: r.State, Requester: identityJSON(r.Requester), Region: r.Target.Region,
		InstanceID: r.Target.InstanceID, GroupID: r.Target.GroupID, Protocol: r.Protocol, FromPort: r.Ports.From, ToPort: r.Ports.To,
		Source: prefixText(r.Source), Access: accessOf(r.Access), Document: r.Document, DurationSeconds: int64(r.Duration / time.Second), Reason: r.Reason, BreakGlass: r.BreakGlass, Rule: r.Rule,
		ApprovalsNeeded: r.ApprovalsNeeded, ApproverGroups: r.Approvers.Groups,
		Approvers: ApproversJSON{Groups: r.Approvers.Groups, Users: r.Approvers.Users, AWSPrincipals: r.Approvers.AWSPrincipals}, CreatedAt: r.CreatedAt, PendingUntil: r.PendingUntil,
		GrantID: r.GrantID, Note: r.Note,
	}
	for _, rv := range r.Reviews {
		j.Reviews = append(j.Reviews, ReviewJSON{By: reviewerJSON(rv.By), Approve: rv.Approve, Reason: rv.Reason, At: rv.At})
	}
	if !r.DecidedAt.IsZero() {
		t := r.DecidedAt
		j.DecidedAt = &t
	}
	return j
}

// GrantJSON is a grant on the wire.
type GrantJSON struct {
	ID        latch.GrantID    `json:"grant_id"`
	State     latch.GrantState `json:"state"`
	Region    string           `json:"region"`
	GroupID   latch.GroupID    `json:"group_id"`
	RuleID    latch.RuleID     `json:"rule_id,omitempty"`
	Protocol  latch.Protocol   `json:"protocol"`
	FromPort  int              `json:"from_port"` // for icmp and icmpv6 the type, -1 for all
	ToPort    int              `json:"to_port"`   // for icmp and icmpv6 the code, -1 for any
	Source    string           `json:"source"`
	Requester IdentityJSON     `json:"requester"` // key and display only`
	Reason    string           `json:"reason"`
	CreatedAt time.Time        `json:"created_at"`
	ExpiresAt time.Time        `json:"expires_at"`
	EndedAt   *time.Time       `json:"ended_at,omitempty"`
	Attempts  int              `json:"revoke_attempts,omitempty"`
	LastError string           `json:"last_error,omitempty"`
	// Access is network (a rule opened to source) or ssm (Session Manager
	// sessions to instance_id with document; group_id and source are "").
	Access     latch.Access      `json:"access"`
	InstanceID latch.InstanceID  `json:"instance_id,omitempty"`
	Document   latch.SSMDocument `json:"document,omitempty"`
}

// ToGrantJSON is g as the API and the CLI's --json print it. Field names
// are a contract with scripts (docs/JSON.md, which records the one
// break, when ports and requesters took their present shape): add, never
// rename.
func ToGrantJSON(g latch.Grant) GrantJSON {
	j := GrantJSON{ID: g.ID, State: g.State, Region: g.Region, GroupID: g.GroupID, RuleID: g.RuleID, Protocol: g.Protocol,
		FromPort: g.Ports.From, ToPort: g.Ports.To, Source: prefixText(g.Source), Access: accessOf(g.Access), InstanceID: g.Target, Document: g.Document, Requester: IdentityJSON{Key: g.Owner, Display: g.Requester}, Reason: g.Reason,
		CreatedAt: g.CreatedAt.UTC(), ExpiresAt: g.ExpiresAt.UTC(), Attempts: g.Attempts, LastError: g.LastError}
	if !g.EndedAt.IsZero() {
		t := g.EndedAt.UTC()
		j.EndedAt = &t
	}
	return j
}

// RevokedJSON is a grant just ended: POST /v1/grants/{id}/revoke, and
// `latch revoke --json`.
type RevokedJSON struct {
	GrantJSON
	// RuleStaysOpen is set when the grant's rule was shared: it was not
	// revoked, and stays open for another grant.
	RuleStaysOpen *RuleKeptJSON `json:"rule_stays_open,omitempty"`
}

// RuleKeptJSON says an ended grant's rule stays open for another grant,
// until when. GrantID is empty when the caller may not see that grant.
type RuleKeptJSON struct {
	RuleID  latch.RuleID  `json:"rule_id"`
	GrantID latch.GrantID `json:"grant_id,omitempty"`
	Until   time.Time     `json:"until"`
}

// SSHBody is POST /v1/grants/{id}/ssh.
type SSHBody struct {
	PublicKey string `json:"public_key"`      // one OpenSSH public key line
	Login     string `json:"login,omitempty"` // the OS user; default the rule's first principal
}

// SSHLoginJSON is a short-lived SSH credential on the wire.
type SSHLoginJSON struct {
	Method      latch.SSHMethod `json:"method"`
	Login       string          `json:"login"`
	Principals  []string        `json:"principals"`
	Certificate string          `json:"certificate,omitempty"` // certificate method: authorized_keys format
	Serial      string          `json:"serial,omitempty"`      // decimal; a uint64 is too big for a JSON number
	ValidBefore time.Time       `json:"valid_before"`          // the credential's end, for new logins
	AccessUntil time.Time       `json:"access_until"`          // the grant's end, when sessions should close
	Instance    *InstanceJSON   `json:"instance,omitempty"`
	// HostKeys are the instance's SSH host keys, read from its console
	// output by the server: pin them instead of trusting on first use.
	HostKeys []string `json:"host_keys,omitempty"`
}

// InstanceJSON is an instance and the addresses to reach it at.
type InstanceJSON struct {
	ID        latch.InstanceID `json:"instance_id"`
	Name      string           `json:"name,omitempty"`
	PrivateIP string           `json:"private_ip,omitempty"`
	PublicIP  string           `json:"public_ip,omitempty"`
}

// DecodeSSH parses and checks an SSH login body.
func DecodeSSH(body io.Reader) (broker.SSHLoginInput, error) {
	var b SSHBody
	if err := decode(body, &b); err != nil {
		return broker.SSHLoginInput{}, err
	}
	if strings.TrimSpace(b.PublicKey) == "" {
		return broker.SSHLoginInput{}, latch.Invalidf("public_key", "an OpenSSH public key is required, e.g. \"ssh-ed25519 AAAA…\"")
	}
	if b.Login != "" {
		if err := latch.CheckLogin("login", b.Login); err != nil {
			return broker.SSHLoginInput{}, err
		}
	}
	return broker.SSHLoginInput{PublicKey: []byte(b.PublicKey), Login: b.Login}, nil
}

func sshLoginJSON(l broker.SSHLogin) SSHLoginJSON {
	j := SSHLoginJSON{Method: l.Method, Login: l.Login, Principals: l.Principals, Certificate: string(l.Certificate), ValidBefore: l.ValidBefore.UTC(), AccessUntil: l.AccessUntil.UTC()}
	j.HostKeys = l.HostKeys
	if l.Serial != 0 {
		j.Serial = strconv.FormatUint(l.Serial, 10)
	}
	if l.Instance.ID != "" {
		j.Instance = &InstanceJSON{ID: l.Instance.ID, Name: l.Instance.Name}
		if l.Instance.PrivateIP.IsValid() {
			j.Instance.PrivateIP = l.Instance.PrivateIP.String()
		}
		if l.Instance.PublicIP.IsValid() {
			j.Instance.PublicIP = l.Instance.PublicIP.String()
		}
	}
	return j
}

func parseStates(s string) ([]latch.RequestState, error) {
	if s == "" {
		return nil, nil
	}
	var out []latch.RequestState
	for _, p := range strings.Split(s, ",") {
		st := latch.RequestState(strings.TrimSpace(p))
		switch st {
		case latch.RequestPending, latch.RequestApproved, latch.RequestActive, latch.RequestDenied,
			latch.RequestWithdrawn, latch.RequestTimedOut, latch.RequestFailed:
			out = append(out, st)
		default:
			return nil, latch.Invalidf("state", "%q is not a request state", p)
		}
	}
	return out, nil
}

// prefixText is p as text, or "" when there is none (Session Manager access).
func prefixText(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

// accessOf names the access on the wire: network unless it is ssm.
func accessOf(a latch.Access) latch.Access {
	if a == "" {
		return latch.AccessNetwork
	}
	return a
}

// SessionBody is POST /v1/grants/{id}/session.
type SessionBody struct {
	// LocalPort is the port the plugin listens on for port-forward; 0
	// lets it choose.
	LocalPort int `json:"local_port,omitempty"`
}

// SessionJSON is a started Session Manager session: what the standard
// session-manager-plugin needs, as ssm:StartSession returns it. The token
// opens the session's stream once: clients pass it to the plugin and
// never print or store it.
type SessionJSON struct {
	SessionID  latch.SSMSessionID `json:"session_id"`
	TokenValue string             `json:"token_value"`
	StreamURL  string             `json:"stream_url"`
	Region     string             `json:"region"`
	InstanceID latch.InstanceID   `json:"instance_id"`
	Document   latch.SSMDocument  `json:"document"`
	// DocumentName and Parameters are the StartSession request's, which
	// the plugin reads too.
	DocumentName string              `json:"document_name"`
	Parameters   map[string][]string `json:"parameters,omitempty"`
}

func sessionJSON(h latch.SessionHandle) SessionJSON {
	return SessionJSON{SessionID: h.SessionID, TokenValue: h.TokenValue, StreamURL: h.StreamURL, Region: h.Region,
		InstanceID: h.Target, Document: h.Document, DocumentName: h.Document.AWSName(), Parameters: h.Parameters}
}
