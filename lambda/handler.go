// Package lambda runs latch as an AWS Lambda function. One handler takes
// three kinds of event:
//
//   - a sweep ({"latch":"sweep"}, from the rate(1 minute) schedule, or any
//     EventBridge scheduled event): revoke every expired latch rule, and
//     terminate every Session Manager session latch started whose grant
//     has expired;
//   - a direct invoke with the recipe's configuration
//     ({"security_group_id", "allowed_ip", "duration", "port"} in the
//     event, or the SECURITY_GROUP_ID, ALLOWED_IP and DURATION environment
//     variables): open a grant within the function's [Limits] and return
//     at once. No policy decides it (whoever may invoke the function may
//     open); the limits and the engine's managed check still hold;
//   - a Lambda function URL request with AWS_IAM auth: the caller's IAM
//     identity comes from the request context and the policy decides.
//
// Nothing sleeps: revocation comes from each rule's backstop schedule and
// from the sweep, so grants may outlast Lambda's 15-minute limit.
package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/awsauth"
	"github.com/latchdev/latch/broker"
)

// Recipe is the well-known recipe's configuration, from the environment.
type Recipe struct {
	SecurityGroupID string
	AllowedIP       string
	Duration        string // seconds, as the recipe has it
}

// Limits bound what a direct invoke may open, since no policy decides it.
type Limits struct {
	MaxDuration time.Duration     // longest grant; 0 means DefaultMaxDuration
	Ports       []latch.PortRange // TCP ports or ranges a grant may open within; nil means DefaultPorts
}

// The limits of a direct invoke when none are configured.
var (
	DefaultMaxDuration = time.Hour
	DefaultPorts       = []latch.PortRange{{From: 22, To: 22}}
)

// DirectRequester is the requester recorded for direct invokes: Lambda
// does not tell a function who invoked it, so the grant names the path,
// and CloudTrail's Invoke event (a data event) names the caller.
const DirectRequester = "lambda-invoke"

// Handler handles every event the function receives.
type Handler struct {
	Broker    *broker.Broker
	Access    *broker.Access // nil: function URL requests are refused
	Firewalls []latch.Firewall
	// Sessions are Session Manager, by region, when Session Manager access
	// is on: the sweep ends overdue sessions too.
	Sessions map[string]latch.SessionManager
	Region   string
	Recipe   Recipe
	Limits   Limits // for direct invokes
	Clock    latch.Clock
	Log      *slog.Logger
}

// event is the union of the shapes the handler tells apart.
type event struct {
	Latch           string          `json:"latch"`
	Source          string          `json:"source"`
	DetailType      string          `json:"detail-type"`
	RequestContext  json.RawMessage `json:"requestContext"`
	SecurityGroupID string          `json:"security_group_id"`
	AllowedIP       string          `json:"allowed_ip"`
	Duration        json.RawMessage `json:"duration"`
	Port            string          `json:"port"`
	Reason          string          `json:"reason"`
}

// Invoke dispatches one event.
func (h *Handler) Invoke(ctx context.Context, payload json.RawMessage) (any, error) {
	var ev event
	if len(payload) > 0 {
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, latch.Invalidf("event", "the event is not a JSON object: %v", err)
		}
	}
	switch {
	case ev.Latch == "sweep" || ev.DetailType == "Scheduled Event":
		return h.sweep(ctx)
	case len(ev.RequestContext) > 0:
		var req events.LambdaFunctionURLRequest
		if err := json.Unmarshal(payload, &req); err != nil {
			return nil, latch.Invalidf("event", "not a function URL request: %v", err)
		}
		return h.url(ctx, req), nil
	case ev.Latch != "":
		return nil, latch.Invalidf("latch", "%q is not an event latch handles; want sweep", ev.Latch)
	default:
		return h.grant(ctx, ev)
	}
}

// SweepResult is what a sweep returns.
type SweepResult struct {
	Rules   int      `json:"rules"`
	Revoked []string `json:"revoked"`
	// Sessions counts the active Session Manager sessions latch started,
	// and Terminated the overdue ones ended (absent when none was).
	Sessions   *int     `json:"sessions,omitempty"`
	Terminated []string `json:"sessions_terminated,omitempty"`
	Errors     []string `json:"errors,omitempty"`
}

func (h *Handler) sweep(ctx context.Context) (SweepResult, error) {
	reports, err := broker.Sweep(ctx, h.Firewalls, h.Clock.Now(), false, h.Log)
	res := SweepResult{Revoked: []string{}}
	for _, rep := range reports {
		res.Rules += rep.Rules
		for _, s := range rep.Swept {
			if s.Revoked {
				res.Revoked = append(res.Revoked, string(s.Rule.ID))
			}
		}
	}
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
	}
	if len(h.Sessions) > 0 {
		sessErr := h.sweepSessions(ctx, &res)
		if sessErr != nil {
			res.Errors = append(res.Errors, sessErr.Error())
		}
		err = errors.Join(err, sessErr)
	}
	return res, err
}

// sweepSessions ends overdue sessions from AWS alone, as the rules are.
func (h *Handler) sweepSessions(ctx context.Context, res *SweepResult) error {
	reports, err := broker.SweepSessions(ctx, h.Sessions, h.Clock.Now(), false, nil, h.Log)
	n := 0
	res.Terminated = []string{}
	for _, rep := range reports {
		n += rep.Sessions
		for _, s := range rep.Swept {
			if s.Terminated {
				res.Terminated = append(res.Terminated, string(s.Session.ID))
			}
		}
	}
	res.Sessions = &n
	return err
}

// GrantResult is what a direct grant returns.
type GrantResult struct {
	GrantID   latch.GrantID `json:"grant_id"`
	RuleID    latch.RuleID  `json:"rule_id"`
	Source    string        `json:"source"`
	ExpiresAt time.Time     `json:"expires_at"`
}

// grant is the recipe: open one address to one group for a while; the
// event's fields win over the environment's.
func (h *Handler) grant(ctx context.Context, ev event) (GrantResult, error) {
	sg, ip, dur := firstOf(ev.SecurityGroupID, h.Recipe.SecurityGroupID), firstOf(ev.AllowedIP, h.Recipe.AllowedIP), h.Recipe.Duration
	if len(ev.Duration) > 0 {
		dur = strings.Trim(string(ev.Duration), `"`)
	}
	if ev.Reason != "" { // optional: "direct invoke" stands in for none
		if err := latch.CheckReason("reason", ev.Reason); err != nil {
			return GrantResult{}, err
		}
	}
	secs, err := strconv.Atoi(dur)
	if err != nil || secs <= 0 {
		return GrantResult{}, latch.Invalidf("duration", "DURATION %q is not a positive whole number of seconds", dur)
	}
	group, err := latch.ParseGroupID(sg)
	if err != nil {
		return GrantResult{}, err
	}
	src, err := latch.ParseSource(ip)
	if err != nil {
		return GrantResult{}, err
	}
	ports, err := latch.ParsePorts(latch.TCP, firstOf(ev.Port, strconv.Itoa(h.Limits.ports()[0].From)))
	if err != nil {
		return GrantResult{}, err
	}
	d := time.Duration(secs) * time.Second
	if err := h.Limits.check(d, ports); err != nil {
		return GrantResult{}, err
	}
	g, err := h.Broker.Grant(ctx, latch.GrantRequest{Region: h.Region, GroupID: group, Protocol: latch.TCP, Ports: ports, Source: src,
		Duration: d, Requester: DirectRequester, Reason: firstOf(ev.Reason, "direct invoke")})
	if err != nil {
		return GrantResult{}, err
	}
	return GrantResult{GrantID: g.ID, RuleID: g.RuleID, Source: g.Source.String(), ExpiresAt: g.ExpiresAt}, nil
}

func (l Limits) maxDuration() time.Duration {
	if l.MaxDuration <= 0 {
		return DefaultMaxDuration
	}
	return l.MaxDuration
}

func (l Limits) ports() []latch.PortRange {
	if len(l.Ports) == 0 {
		return DefaultPorts
	}
	return l.Ports
}

// check refuses a direct invoke's ask beyond the limits, naming what was
// asked and what is allowed.
func (l Limits) check(d time.Duration, ports latch.PortRange) error {
	if max := l.maxDuration(); d > max {
		return latch.Invalidf("duration", "%d seconds (%s) is longer than this function allows; want at most %d (%s, LATCH_MAX_DURATION)",
			int(d.Seconds()), d, int(max.Seconds()), max)
	}
	allowed := l.ports()
	for _, a := range allowed {
		if a.From <= ports.From && ports.To <= a.To {
			return nil
		}
	}
	return latch.Invalidf("port", "tcp %s is not allowed by this function; allowed: %s (LATCH_PORTS)", ports, FormatPorts(allowed))
}

// ParsePorts reads a direct invoke's allowed ports: a comma-separated list
// of tcp/PORT or tcp/FROM-TO (a bare PORT means tcp). Direct invokes open
// TCP only.
func ParsePorts(s string) ([]latch.PortRange, error) {
	var out []latch.PortRange
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		p, r, err := latch.ParsePortSpec("ports", item, latch.TCP)
		if err != nil {
			return nil, err
		}
		if p != latch.TCP {
			return nil, latch.Invalidf("ports", "%q: a direct invoke opens tcp only; want tcp/PORT or tcp/FROM-TO, e.g. tcp/22", item)
		}
		out = append(out, r)
	}
	return out, nil
}

// FormatPorts writes ports as ParsePorts reads them.
func FormatPorts(ports []latch.PortRange) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = "tcp/" + p.String()
	}
	return strings.Join(s, ",")
}

// url serves a function URL request: POST with a RequestBody-like JSON.
func (h *Handler) url(ctx context.Context, req events.LambdaFunctionURLRequest) events.LambdaFunctionURLResponse {
	if h.Access == nil {
		return jsonResponse(404, map[string]string{"code": latch.ENOTFOUND, "message": "this function takes no URL requests"})
	}
	iam := req.RequestContext.Authorizer
	if iam == nil || iam.IAM == nil || iam.IAM.UserARN == "" {
		return jsonResponse(401, map[string]string{"code": latch.EUNAUTHENTICATED, "message": "the function URL must use AWS_IAM auth"})
	}
	subject, err := awsauth.NormalizeARN(iam.IAM.UserARN)
	if err != nil {
		return jsonResponse(401, map[string]string{"code": latch.EUNAUTHENTICATED, "message": err.Error()})
	}
	who := latch.Identity{Kind: latch.KindIAM, Subject: subject, Issuer: iam.IAM.AccountID}
	addr, err := netip.ParseAddr(req.RequestContext.HTTP.SourceIP)
	if err != nil {
		return jsonResponse(400, map[string]string{"code": latch.EINVALID, "message": "no source address in the request"})
	}
	in, err := decodeURLRequest([]byte(req.Body), req.IsBase64Encoded, addr)
	if err != nil {
		return errorResponse(err)
	}
	r, err := h.Access.Request(ctx, who, in)
	if err != nil && r.ID == "" {
		return errorResponse(err)
	}
	return jsonResponse(201, map[string]any{"request_id": r.ID, "state": r.State, "grant_id": r.GrantID, "rule": r.Rule,
		"source": r.Source.String(), "duration": r.Duration.String()})
}

func errorResponse(err error) events.LambdaFunctionURLResponse {
	status := map[string]int{latch.EINVALID: 400, latch.EFORBIDDEN: 403, latch.ENOTFOUND: 404, latch.ECONFLICT: 409, latch.EUNAVAILABLE: 503}[latch.ErrorCode(err)]
	if status == 0 {
		status = 500
	}
	body := map[string]string{"code": latch.ErrorCode(err), "message": latch.ErrorMessage(err)}
	if e, ok := errors.AsType[*latch.Error](err); ok && e.Field != "" {
		body["field"], body["message"] = e.Field, e.Message
	}
	return jsonResponse(status, body)
}

func jsonResponse(status int, v any) events.LambdaFunctionURLResponse {
	b, _ := json.Marshal(v)
	return events.LambdaFunctionURLResponse{StatusCode: status, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
