package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

// Credentials returns the Authorization header value for each call: a
// bearer ID token, or a fresh presigned AWS identity.
type Credentials func(ctx context.Context) (string, error)

// Client calls a latch server. Errors come back as *latch.Error with the
// server's code, message and field.
type Client struct {
	URL   string // e.g. https://latch.example.com
	Creds Credentials
	HTTP  *http.Client // nil means http.DefaultClient
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	u := strings.TrimRight(c.URL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return latch.Invalidf("server", "%q is not a usable server URL: %v", c.URL, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Creds != nil {
		auth, err := c.Creds(ctx)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", auth)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return latch.Errorf(latch.EUNAVAILABLE, "reach latch server %s: %v", c.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return latch.Errorf(latch.EUNAVAILABLE, "read answer from %s: %v", c.URL, err)
	}
	if resp.StatusCode >= 400 {
		return fromError(resp, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return latch.Errorf(latch.EINTERNAL, "the server's answer to %s %s is not the JSON expected: %v", method, path, err)
	}
	return nil
}

// fromError turns an error response back into the *latch.Error the server
// returned.
func fromError(resp *http.Response, data []byte) error {
	var e ErrorBody
	if json.Unmarshal(data, &e) != nil || e.Code == "" {
		code := latch.EINTERNAL
		for c, s := range statuses {
			if s == resp.StatusCode && c != codeRateLimited && c != codeTooLarge {
				code = c
			}
		}
		return latch.Errorf(code, "server answered %s: %s", resp.Status, strings.TrimSpace(string(data)))
	}
	msg := e.Message
	if e.RequestID != "" && (e.Code == latch.EINTERNAL || e.Code == latch.EUNAVAILABLE) {
		msg += fmt.Sprintf(" (request %s)", e.RequestID)
	}
	return &latch.Error{Code: e.Code, Message: msg, Field: e.Field}
}

// WhoAmI returns the caller as the server sees them.
func (c *Client) WhoAmI(ctx context.Context) (WhoAmIJSON, error) {
	var out WhoAmIJSON
	return out, c.do(ctx, http.MethodGet, "/v1/whoami", nil, nil, &out)
}

// Login tells the server the caller has logged in, for its audit log.
func (c *Client) Login(ctx context.Context) (WhoAmIJSON, error) {
	var out WhoAmIJSON
	return out, c.do(ctx, http.MethodPost, "/v1/login", nil, nil, &out)
}

// CreateRequest asks for access.
func (c *Client) CreateRequest(ctx context.Context, body RequestBody) (RequestJSON, error) {
	var out RequestJSON
	return out, c.do(ctx, http.MethodPost, "/v1/requests", nil, body, &out)
}

// Request returns one request.
func (c *Client) Request(ctx context.Context, id latch.RequestID) (RequestJSON, error) {
	var out RequestJSON
	return out, c.do(ctx, http.MethodGet, "/v1/requests/"+url.PathEscape(string(id)), nil, nil, &out)
}

// Requests lists requests; states is comma-separated, "" for all.
func (c *Client) Requests(ctx context.Context, states string, mine bool) ([]RequestJSON, error) {
	q := url.Values{}
	if states != "" {
		q.Set("state", states)
	}
	if mine {
		q.Set("mine", "true")
	}
	var out []RequestJSON
	return out, c.do(ctx, http.MethodGet, "/v1/requests", q, nil, &out)
}

// Review approves or denies a request.
func (c *Client) Review(ctx context.Context, id latch.RequestID, approve bool, reason string) (RequestJSON, error) {
	verb := "deny"
	if approve {
		verb = "approve"
	}
	var out RequestJSON
	return out, c.do(ctx, http.MethodPost, "/v1/requests/"+url.PathEscape(string(id))+"/"+verb, nil, ReviewBody{Reason: reason}, &out)
}

// Withdraw cancels one's own pending request.
func (c *Client) Withdraw(ctx context.Context, id latch.RequestID) (RequestJSON, error) {
	var out RequestJSON
	return out, c.do(ctx, http.MethodPost, "/v1/requests/"+url.PathEscape(string(id))+"/withdraw", nil, nil, &out)
}

// Grants lists the caller's grants, or everyone's with all (admins).
func (c *Client) Grants(ctx context.Context, all, open bool) ([]GrantJSON, error) {
	q := url.Values{}
	if all {
		q.Set("all", "true")
	}
	if open {
		q.Set("open", "true")
	}
	var out []GrantJSON
	return out, c.do(ctx, http.MethodGet, "/v1/grants", q, nil, &out)
}

// Grant returns one grant.
func (c *Client) Grant(ctx context.Context, id latch.GrantID) (GrantJSON, error) {
	var out GrantJSON
	return out, c.do(ctx, http.MethodGet, "/v1/grants/"+url.PathEscape(string(id)), nil, nil, &out)
}

// Revoke ends a grant now. RuleStaysOpen says when its rule stays open
// for another grant.
func (c *Client) Revoke(ctx context.Context, id latch.GrantID) (RevokedJSON, error) {
	var out RevokedJSON
	return out, c.do(ctx, http.MethodPost, "/v1/grants/"+url.PathEscape(string(id))+"/revoke", nil, nil, &out)
}

// SSHLogin asks for a short-lived SSH credential for grant id.
func (c *Client) SSHLogin(ctx context.Context, id latch.GrantID, body SSHBody) (SSHLoginJSON, error) {
	var out SSHLoginJSON
	err := c.do(ctx, http.MethodPost, "/v1/grants/"+string(id)+"/ssh", nil, body, &out)
	return out, err
}

// StartSession starts a Session Manager session for a grant.
func (c *Client) StartSession(ctx context.Context, id latch.GrantID, body SessionBody) (SessionJSON, error) {
	var out SessionJSON
	err := c.do(ctx, http.MethodPost, "/v1/grants/"+string(id)+"/session", nil, body, &out)
	return out, err
}

// Explain asks what as (or the caller, if empty) may do on target.
func (c *Client) Explain(ctx context.Context, target, region, as string, groups []string) ([]ExplanationJSON, error) {
	return c.ExplainSession(ctx, target, region, as, groups, "", 0)
}

// ExplainSession is Explain for a Session Manager session with doc (to
// port on the instance; 0 for none, or ssh's default); doc "" explains
// an opening, as Explain does.
func (c *Client) ExplainSession(ctx context.Context, target, region, as string, groups []string, doc latch.SSMDocument, port int) ([]ExplanationJSON, error) {
	q := url.Values{"target": {target}}
	if doc != "" {
		q.Set("document", string(doc))
		if port != 0 {
			q.Set("port", strconv.Itoa(port))
		}
	}
	if region != "" {
		q.Set("region", region)
	}
	if as != "" {
		q.Set("as", as)
	}
	if len(groups) > 0 {
		q.Set("groups", strings.Join(groups, ","))
	}
	var out []ExplanationJSON
	return out, c.do(ctx, http.MethodGet, "/v1/policy/explain", q, nil, &out)
}

// Preview asks what a request with body would meet, recording nothing.
func (c *Client) Preview(ctx context.Context, body RequestBody) (PreviewJSON, error) {
	var out PreviewJSON
	return out, c.do(ctx, http.MethodPost, "/v1/requests/preview", nil, body, &out)
}

// Rules returns the rules the caller may ask under.
func (c *Client) Rules(ctx context.Context) ([]RuleJSON, error) {
	var out RulesJSON
	return out.Rules, c.do(ctx, http.MethodGet, "/v1/rules", nil, nil, &out)
}

// Timeline returns a grant with the request that opened it and its
// history.
func (c *Client) Timeline(ctx context.Context, id latch.GrantID) (TimelineJSON, error) {
	var out TimelineJSON
	return out, c.do(ctx, http.MethodGet, "/v1/grants/"+url.PathEscape(string(id))+"/timeline", nil, nil, &out)
}

// AuditQuery selects a page of the audit log (admins); zero fields match
// all. Before is the Next of the previous page.
type AuditQuery struct {
	Actor, Action, Target string
	Since, Until          time.Time
	Before                int64
	Limit                 int
}

// Audit returns a page of the audit log, newest first (admins).
func (c *Client) Audit(ctx context.Context, aq AuditQuery) (AuditPageJSON, error) {
	q := url.Values{}
	for k, v := range map[string]string{"actor": aq.Actor, "action": aq.Action, "target": aq.Target} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !aq.Since.IsZero() {
		q.Set("since", aq.Since.UTC().Format(time.RFC3339))
	}
	if !aq.Until.IsZero() {
		q.Set("until", aq.Until.UTC().Format(time.RFC3339))
	}
	if aq.Before > 0 {
		q.Set("before", strconv.FormatInt(aq.Before, 10))
	}
	if aq.Limit > 0 {
		q.Set("limit", strconv.Itoa(aq.Limit))
	}
	var out AuditPageJSON
	return out, c.do(ctx, http.MethodGet, "/v1/audit", q, nil, &out)
}

// VerifyAudit has the server check its whole audit chain (admins).
func (c *Client) VerifyAudit(ctx context.Context) (AuditCheckJSON, error) {
	var out AuditCheckJSON
	return out, c.do(ctx, http.MethodGet, "/v1/audit/verify", nil, nil, &out)
}

// PolicyStatus returns where the server's policy came from and how its
// last reload went (admins).
func (c *Client) PolicyStatus(ctx context.Context) (PolicyStatusJSON, error) {
	var out PolicyStatusJSON
	return out, c.do(ctx, http.MethodGet, "/v1/policy/status", nil, nil, &out)
}
