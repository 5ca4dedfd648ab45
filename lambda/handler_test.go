package lambda_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/ec2sim"
	at "github.com/latchdev/latch/internal/accesstest"
	"github.com/latchdev/latch/lambda"
)

const iamPolicy = `
version: 1
rules:
  - name: dev-ssh
    targets: {tags: {env: dev}}
    who: {aws_principals: ["arn:aws:sts::123456789012:assumed-role/dev/*"]}
    ports: [tcp/22]
    duration: {default: 30m, max: 4h}
    approval: auto
`

func newHandler(t *testing.T) (*lambda.Handler, *at.Fixture) {
	f := at.NewWithPolicy(t, iamPolicy)
	return &lambda.Handler{Broker: f.Broker, Access: f.Access, Firewalls: []latch.Firewall{f.Env.Firewall(t)}, Region: "us-east-1",
		Recipe: lambda.Recipe{SecurityGroupID: string(f.Fleet.WebGroup), AllowedIP: "203.0.113.7", Duration: "3600"},
		Clock:  f.Clock, Log: slog.New(slog.NewTextHandler(t.Output(), nil))}, f
}

func invoke(t *testing.T, h *lambda.Handler, payload string) (any, error) {
	t.Helper()
	return h.Invoke(t.Context(), json.RawMessage(payload))
}

// The recipe's direct invoke, configured by environment: one grant, and
// the function returns at once; the duration may exceed 15 minutes.
func TestDirectInvokeWithRecipeConfiguration(t *testing.T) {
	h, f := newHandler(t)
	out, err := invoke(t, h, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	g := out.(lambda.GrantResult)
	if g.Source != "203.0.113.7/32" || !g.ExpiresAt.Equal(at.Start.Add(time.Hour)) {
		t.Fatalf("grant = %+v", g)
	}
	rules := f.Rules(f.Fleet.WebGroup)
	if len(rules) != 1 || rules[0].Tags[latch.TagExpiresAt] != "2026-11-23T11:00:00Z" {
		t.Fatalf("rules = %+v", rules)
	}
	for name, ev := range map[string]string{
		"the whole internet": `{"allowed_ip":"0.0.0.0/0"}`,
		"a network":          `{"allowed_ip":"10.0.0.0/8"}`,
		"bad duration":       `{"duration":"soon"}`,
		"bad group":          `{"security_group_id":"sg-nope"}`,
		"unknown event":      `{"latch":"dance"}`,
	} {
		if _, err := invoke(t, h, ev); latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("%s: err = %v, want EINVALID", name, err)
		}
	}
}

// The sweep schedule's event revokes expired rules from their tags alone.
func TestSweepEvent(t *testing.T) {
	h, f := newHandler(t)
	if _, err := invoke(t, h, `{"duration": 60}`); err != nil {
		t.Fatal(err)
	}
	f.Clock.Advance(time.Minute)
	for _, ev := range []string{`{"latch":"sweep"}`, `{"source":"aws.scheduler","detail-type":"Scheduled Event"}`} {
		out, err := invoke(t, h, ev)
		if err != nil {
			t.Fatal(err)
		}
		if res := out.(lambda.SweepResult); ev == `{"latch":"sweep"}` && (res.Rules != 1 || len(res.Revoked) != 1) {
			t.Fatalf("sweep = %+v", res)
		}
	}
	if n := len(f.Rules(f.Fleet.WebGroup)); n != 0 {
		t.Fatalf("%d rules after the sweep", n)
	}
}

func urlRequest(arn, body string) string {
	req := events.LambdaFunctionURLRequest{Body: body, RequestContext: events.LambdaFunctionURLRequestContext{
		HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: "POST", SourceIP: "198.51.100.4"}}}
	if arn != "" {
		req.RequestContext.Authorizer = &events.LambdaFunctionURLRequestContextAuthorizerDescription{
			IAM: &events.LambdaFunctionURLRequestContextAuthorizerIAMDescription{UserARN: arn, AccountID: "123456789012"}}
	}
	b, _ := json.Marshal(req)
	return string(b)
}

// A function URL with AWS_IAM auth: the caller's ARN from the request
// context, the policy deciding, the caller's address opened.
func TestFunctionURL(t *testing.T) {
	h, f := newHandler(t)
	body := `{"target":"` + f.Fleet.Web1 + `","port":"22","reason":"deploy"}`
	tests := []struct {
		name, arn, body string
		status          int
	}{
		{"allowed role", "arn:aws:sts::123456789012:assumed-role/dev/alice", body, 201},
		{"no IAM auth", "", body, 401},
		{"another role", "arn:aws:sts::123456789012:assumed-role/contractor/mallory", body, 403},
		{"bad body", "arn:aws:sts::123456789012:assumed-role/dev/alice", `{"target":1}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := invoke(t, h, urlRequest(tt.arn, tt.body))
			if err != nil {
				t.Fatal(err)
			}
			resp := out.(events.LambdaFunctionURLResponse)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, resp.Body)
			}
		})
	}
	rules := f.Rules(f.Fleet.WebGroup)
	if len(rules) != 1 || rules[0].CIDR != "198.51.100.4/32" || !strings.Contains(rules[0].Tags[latch.TagRequester], "assumed-role/dev/alice") {
		t.Fatalf("rules = %+v", rules)
	}
}

// The Lambda's sweep ends overdue Session Manager sessions too, from AWS
// alone: revocation of a session does not depend on the server that
// started it.
func TestSweepEventTerminatesOverdueSessions(t *testing.T) {
	h, f := newHandler(t)
	sim := f.Env.RequireSim(t, "needs an SSM agent on an instance, which only the simulator's fleet gives")
	if err := sim.SetAgent("us-east-1", f.Fleet.Web1, ec2sim.Agent{PingStatus: ec2sim.PingOnline}); err != nil {
		t.Fatal(err)
	}
	sm := latchaws.NewSessionManager(f.Env.Config(), "arn:aws:iam::123456789012:role/latch-session", nil)
	h.Sessions = map[string]latch.SessionManager{"us-east-1": sm}
	due, cur := at.Start.Add(time.Minute), at.Start.Add(time.Hour)
	var ids []latch.SSMSessionID
	for _, exp := range []time.Time{due, cur} {
		s, err := sm.Start(t.Context(), latch.SessionStart{Grant: latch.NewGrantID(), Target: latch.InstanceID(f.Fleet.Web1),
			Document: latch.DocShell, Requester: "alice@example.com", Expires: exp})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.SessionID)
	}
	f.Clock.Set(due)
	out, err := invoke(t, h, `{"latch":"sweep"}`)
	if err != nil {
		t.Fatal(err)
	}
	res := out.(lambda.SweepResult)
	if res.Sessions == nil || *res.Sessions != 2 || len(res.Terminated) != 1 || res.Terminated[0] != string(ids[0]) {
		t.Fatalf("sweep = %+v; want 2 sessions seen and %s terminated", res, ids[0])
	}
	live, err := sm.Sessions(t.Context())
	if err != nil || len(live) != 1 || live[0].ID != ids[1] {
		t.Errorf("active after the sweep: %+v, %v; want only %s", live, err, ids[1])
	}
}
