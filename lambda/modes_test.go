package lambda_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/latchdev/latch"
	at "github.com/latchdev/latch/internal/accesstest"
	"github.com/latchdev/latch/lambda"
	"github.com/latchdev/latch/policy"
)

// unmanagedPolicy lets alice's role ask for the demo fleet's unmanaged
// "app" group by ID: only the engine's managed check stands in the way.
func unmanagedPolicy(t *testing.T, app latch.GroupID) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("unmanaged.yaml", []byte(`
version: 1
rules:
  - name: app-ssh
    targets: {groups: [`+string(app)+`]}
    who: {aws_principals: ["arn:aws:sts::123456789012:assumed-role/dev/*"]}
    ports: [tcp/22]
    duration: {default: 30m, max: 4h}
    approval: auto
`))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A direct invoke naming a group not tagged latch:managed=true opens
// nothing and records nothing, the recipe's configuration or not.
func TestDirectInvokeRefusesAnUnmanagedGroup(t *testing.T) {
	h, f := newHandler(t)
	for name, ev := range map[string]string{
		"in the event":       `{"security_group_id":"` + string(f.Fleet.AppGroup) + `"}`,
		"in the environment": `{}`,
	} {
		t.Run(name, func(t *testing.T) {
			h.Recipe.SecurityGroupID = string(f.Fleet.DefaultGroup)
			_, err := invoke(t, h, ev)
			if latch.ErrorCode(err) != latch.EFORBIDDEN || !strings.Contains(latch.ErrorMessage(err), "latch:managed=true") {
				t.Errorf("err = %v; want EFORBIDDEN naming latch:managed=true", err)
			}
		})
	}
	for _, g := range []latch.GroupID{f.Fleet.AppGroup, f.Fleet.DefaultGroup} {
		if rules := f.Rules(g); len(rules) != 2 && g == f.Fleet.AppGroup || len(rules) != 0 && g == f.Fleet.DefaultGroup {
			t.Errorf("%s has %d rules; want only its standing ones", g, len(rules))
		}
	}
	if gs, _ := f.Store.Grants(t.Context(), latch.GrantFilter{}); len(gs) != 0 {
		t.Errorf("store holds %d grants; want none", len(gs))
	}
}

// A function URL request the policy allows, for an unmanaged group, is
// still refused by the engine.
func TestFunctionURLRefusesAnUnmanagedGroup(t *testing.T) {
	f := at.New(t)
	f.Policy.Set(unmanagedPolicy(t, f.Fleet.AppGroup))
	h := &lambda.Handler{Broker: f.Broker, Access: f.Access, Firewalls: []latch.Firewall{f.Env.Firewall(t)}, Region: "us-east-1",
		Clock: f.Clock, Log: slog.New(slog.NewTextHandler(t.Output(), nil))}
	out, err := invoke(t, h, urlRequest("arn:aws:sts::123456789012:assumed-role/dev/alice", `{"target":"`+string(f.Fleet.AppGroup)+`","port":"22","reason":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(events.LambdaFunctionURLResponse)
	if resp.StatusCode != 403 || !strings.Contains(resp.Body, "latch:managed=true") {
		t.Errorf("status %d %s; want 403 naming latch:managed=true", resp.StatusCode, resp.Body)
	}
	if rules := f.Rules(f.Fleet.AppGroup); len(rules) != 2 {
		t.Errorf("app group has %d rules; want its 2 standing ones", len(rules))
	}
}

// A direct invoke obeys the function's configured limits: by default at
// most an hour, on tcp/22 only. Asking for more is refused, naming what
// was asked and what is allowed; nothing opens.
func TestDirectInvokeObeysItsLimits(t *testing.T) {
	h, f := newHandler(t)
	h.Recipe.Duration = "1800"
	for _, tt := range []struct{ name, ev, says string }{
		{"12 hours", `{"duration": 43200}`, "at most 3600"},
		{"every TCP port", `{"port":"1-65535"}`, "tcp/22"},
		{"another port", `{"port":"3389"}`, "3389"},
		{"a range over 22", `{"port":"20-23"}`, "20-23"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := invoke(t, h, tt.ev)
			if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("err = %v; want EINVALID saying %q", err, tt.says)
			}
		})
	}
	if n := len(f.Rules(f.Fleet.WebGroup)); n != 0 {
		t.Fatalf("%d rules opened past the limits", n)
	}

	// Configured otherwise, the same asks pass.
	h.Limits = lambda.Limits{MaxDuration: 12 * time.Hour, Ports: []latch.PortRange{{From: 22, To: 22}, {From: 8000, To: 8080}}}
	if _, err := invoke(t, h, `{"duration": 43200, "port": "8000-8010"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := invoke(t, h, `{"port": "8079-8081"}`); latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), "tcp/8000-8080") {
		t.Errorf("err = %v; want EINVALID naming the allowed ports", err)
	}
}
