package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/latchdev/latch"
)

// A policy names where events go, never how: a webhook by the name the
// server gives it (--webhook NAME=URL), a Slack channel by name or ID. URLs
// and secrets stay in the server's configuration, so a policy can be
// reviewed and shared without leaking them.

var (
	webhookName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	slackChannel = regexp.MustCompile(`^(#[a-z0-9][a-z0-9._-]{0,79}|[CGD][A-Z0-9]{6,20})$`)
)

// webhookRef is where a policy names a webhook, for errors about it.
type webhookRef struct {
	name, path string
	line       int
}

// slackRef is where a policy names a Slack channel, for warnings.
type slackRef struct {
	channel, path string
	line          int
}

// notify reads notify: {slack: CHANNEL or [CHANNELS], webhooks: [NAMES]}.
func (d *decoder) notify(n *yaml.Node, path string) []latch.Route {
	m := d.mapping(n, path, "slack", "webhooks")
	if m == nil {
		return nil
	}
	if len(m) == 0 {
		d.failf(n, path, "empty; name slack or webhooks, or remove it")
		return nil
	}
	var routes []latch.Route
	slack := m["slack"]
	if slack != nil && slack.Kind == yaml.ScalarNode {
		slack = &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{slack}, Line: slack.Line}
	}
	for _, ch := range d.strs(slack, join(path, "slack"), func(n *yaml.Node, p, s string) bool {
		if !slackChannel.MatchString(s) {
			d.failf(n, p, "%q is not a Slack channel; want #name (lower case) or a channel ID such as C0123456789", s)
			return false
		}
		d.slacks = append(d.slacks, slackRef{channel: s, path: p, line: n.Line})
		return true
	}) {
		routes = append(routes, latch.Route{Sink: latch.SinkSlack, To: ch})
	}
	for i, name := range d.strs(m["webhooks"], join(path, "webhooks"), func(n *yaml.Node, p, s string) bool {
		switch {
		case strings.Contains(s, "://"):
			d.failf(n, p, "a URL does not belong in the policy (it may hold a token); name the webhook, and give its URL to the server: --webhook NAME=URL")
			return false
		case !webhookName.MatchString(s):
			d.failf(n, p, "%q is not a webhook name; want letters, digits, - and _, as given to the server's --webhook NAME=URL", s)
			return false
		}
		return true
	}) {
		routes = append(routes, latch.Route{Sink: latch.SinkWebhook, To: name})
		line := m["webhooks"].Line
		if items := m["webhooks"].Content; i < len(items) {
			line = items[i].Line
		}
		d.webhooks = append(d.webhooks, webhookRef{name: name, path: index(join(path, "webhooks"), i), line: line})
	}
	return routes
}

// Routes returns where an event goes: the routes of the rule that decided
// it, or the policy's top-level notify for events no rule decided (a direct
// grant, a rule found out of band). A rule without notify sends nowhere.
func (p *Policy) Routes(rule string) []latch.Route {
	if rule == "" {
		return slices.Clone(p.notify)
	}
	if r, ok := p.Rule(rule); ok {
		return r.Notify
	}
	return nil // a rule since removed: its events go nowhere rather than somewhere unintended
}

// Webhooks returns the webhook names the policy uses, sorted, once each.
func (p *Policy) Webhooks() []string {
	var out []string
	for _, r := range p.webhooks {
		out = append(out, r.name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// CheckWebhooks refuses, with the file and line of each, webhook names the
// server does not know. Returns an EINVALID *latch.Error, or nil.
func (p *Policy) CheckWebhooks(known func(name string) bool) error {
	d := &decoder{file: p.file}
	for _, r := range p.webhooks {
		if !known(r.name) {
			d.whole(r.line, fmt.Sprintf("%s: no webhook named %q is configured on this server; give it --webhook %s=URL", r.path, r.name, r.name))
		}
	}
	return d.err()
}

// webhookWarnings are Warnings about names only the server can check.
func (p *Policy) webhookWarnings() []string {
	var out []string
	for _, r := range p.webhooks {
		out = append(out, fmt.Sprintf("line %d: %s: webhook %q must be configured on the server (--webhook %s=URL and its secret); latch server refuses to start without it",
			r.line, r.path, r.name, r.name))
	}
	return out
}

// slackWarnings are Warnings about Slack: the token only the server can
// check, and buttons that would refuse every click. Slack proves no
// groups, so a click counts only from a Slack user the people section
// links, and only against approvers' users entries.
func (p *Policy) slackWarnings() []string {
	var out []string
	for _, r := range p.slacks {
		out = append(out, fmt.Sprintf("line %d: %s: Slack channel %s needs the Slack app's bot token on the server (--slack-token-file or LATCH_SLACK_TOKEN), and the app invited to the channel; latch server refuses to start without the token",
			r.line, r.path, r.channel))
	}
	linked := slices.ContainsFunc(p.people, func(person Person) bool { return len(person.Slack) > 0 })
	for _, r := range p.rules {
		if r.Approvals == 0 || !slices.ContainsFunc(r.Notify, func(rt latch.Route) bool { return rt.Sink == latch.SinkSlack }) {
			continue
		}
		switch {
		case len(r.Approvers.Users) == 0:
			out = append(out, fmt.Sprintf("line %d: rules[%q]: notifies Slack, but its approvers are named only by group or AWS principal, which a Slack click cannot prove: "+
				"the Approve and Deny buttons will refuse everyone (name approvers under users, linked to Slack in people, or review with latch approve)", r.Line, r.Name))
		case !linked:
			out = append(out, fmt.Sprintf("line %d: rules[%q]: notifies Slack, but no person in the people section is linked to Slack (slack: [USER_ID or email]): "+
				"the Approve and Deny buttons will refuse everyone", r.Line, r.Name))
		}
	}
	return out
}
