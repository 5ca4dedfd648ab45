package policy_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/policy"
)

const notifyPolicy = `version: 1
notify:
  webhooks: [audit-sink]
rules:
  - name: prod-ssh
    targets: {tags: {env: prod}}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: {approvals: 1, from: [sre]}
    notify:
      slack: "#ops"
      webhooks:
        - pager
        - teams
  - name: dev-ssh
    targets: {tags: {env: dev}}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: auto
`

func TestNotifyRoutes(t *testing.T) {
	p, err := policy.Parse("policy.yaml", []byte(notifyPolicy))
	if err != nil {
		t.Fatal(err)
	}
	want := []latch.Route{{Sink: "slack", To: "#ops"}, {Sink: "webhook", To: "pager"}, {Sink: "webhook", To: "teams"}}
	if got := p.Routes("prod-ssh"); !slices.Equal(got, want) {
		t.Errorf("Routes(prod-ssh) = %v, want %v", got, want)
	}
	if got := p.Routes("dev-ssh"); got != nil {
		t.Errorf("Routes(dev-ssh) = %v, want none", got)
	}
	if got := p.Routes(""); !slices.Equal(got, []latch.Route{{Sink: "webhook", To: "audit-sink"}}) {
		t.Errorf("Routes() = %v, want the top-level notify", got)
	}
	if got := p.Webhooks(); !slices.Equal(got, []string{"audit-sink", "pager", "teams"}) {
		t.Errorf("Webhooks() = %v", got)
	}
	err = p.CheckWebhooks(func(name string) bool { return name != "teams" })
	if err == nil || latch.ErrorCode(err) != latch.EINVALID ||
		!strings.Contains(err.Error(), `policy.yaml:15: rules[0].notify.webhooks[1]: no webhook named "teams"`) {
		t.Errorf("CheckWebhooks without teams = %v, want it refused at line 15", err)
	}
	if err := p.CheckWebhooks(func(string) bool { return true }); err != nil {
		t.Errorf("CheckWebhooks with all known = %v", err)
	}
	if w := strings.Join(p.Warnings(), "\n"); !strings.Contains(w, `line 14: rules[0].notify.webhooks[0]: webhook "pager" must be configured on the server`) {
		t.Errorf("Warnings() = %s, want one per webhook named", w)
	}
}

func TestNotifyRefused(t *testing.T) {
	tests := []struct {
		name, notify, want string
	}{
		{"a URL", `{webhooks: ["https://hooks.example.com/T0/B0/secret"]}`, `policy.yaml:7: rules[0].notify.webhooks[0]: a URL does not belong in the policy`},
		{"a bad webhook name", `{webhooks: ["pager duty"]}`, `policy.yaml:7: rules[0].notify.webhooks[0]: "pager duty" is not a webhook name`},
		{"a bad channel", `{slack: "ops"}`, `policy.yaml:7: rules[0].notify.slack[0]: "ops" is not a Slack channel`},
		{"an unknown key", `{email: ops@example.com}`, `policy.yaml:7: rules[0].notify: unknown key "email"`},
		{"empty", `{}`, `policy.yaml:7: rules[0].notify: empty`},
		{"a secret", `{webhooks: [pager], secret: hunter2}`, `unknown key "secret"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := `version: 1
rules:
  - name: r
    targets: {tags: {env: prod}}
    who: {groups: [dev]}
    ports: [tcp/22]
    notify: ` + tt.notify + `
    duration: {default: 30m, max: 1h}
    approval: auto
`
			_, err := policy.Parse("policy.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %v, want %q", err, tt.want)
			}
		})
	}
}

// Slack routes warn about the token only the server can check, and about
// buttons that would refuse every click: approvers by group only, or no
// one linked to Slack.
func TestSlackWarnings(t *testing.T) {
	const rule = `
rules:
  - name: prod-ssh
    targets: {tags: {env: prod}}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: {approvals: 1, from: %s}
    notify: {slack: "#ops"}
`
	linked := "people:\n  - name: bob\n    oidc: [u-bob]\n    slack: [U0BOB]\n"
	unlinked := "people:\n  - name: bob\n    oidc: [u-bob]\n    aws: [\"arn:aws:iam::111122223333:user/bob\"]\n"
	tests := []struct {
		name, people, from string
		want, not          []string
	}{
		{name: "approvers by user, linked", people: linked, from: "{users: [bob]}",
			want: []string{`line 14: rules[0].notify.slack[0]: Slack channel #ops needs the Slack app's bot token`},
			not:  []string{"refuse everyone"}},
		{name: "approvers by group only", people: linked, from: "{groups: [sre]}",
			want: []string{`rules["prod-ssh"]: notifies Slack, but its approvers are named only by group`}},
		{name: "nobody linked to Slack", people: unlinked, from: "{users: [bob]}",
			want: []string{`rules["prod-ssh"]: notifies Slack, but no person in the people section is linked to Slack`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "version: 1\n" + tt.people + strings.Replace(rule, "%s", tt.from, 1)
			p, err := policy.Parse("policy.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			w := strings.Join(p.Warnings(), "\n")
			for _, s := range tt.want {
				if !strings.Contains(w, s) {
					t.Errorf("Warnings() = %s\nwant %q", w, s)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(w, s) {
					t.Errorf("Warnings() = %s\nwant no %q", w, s)
				}
			}
		})
	}
}
