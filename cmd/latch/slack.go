package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/policy"
	"github.com/latchdev/latch/slack"
)

// slackOptions configure the Slack app: its bot token posts and edits
// messages, its signing secret proves button clicks came from Slack.
// Both come from files or the environment, never flags' values or the
// policy, and are never logged.
type slackOptions struct {
	tokenFile, secretFile string
	apiURL                string // tests point it at a fake
}

func (o *slackOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.tokenFile, "slack-token-file", "", "the file holding the Slack app's bot token (xoxb-…), else LATCH_SLACK_TOKEN; needed when the policy notifies Slack")
	f.StringVar(&o.secretFile, "slack-signing-secret-file", "", "the file holding the Slack app's signing secret, else LATCH_SLACK_SIGNING_SECRET; enables the Approve/Deny buttons at /slack/interactions")
	f.StringVar(&o.apiURL, "slack-api-url", "", "the Slack Web API's base URL (for tests)")
	_ = f.MarkHidden("slack-api-url")
}

// slackSetup is the Slack app as the server uses it; its zero value is
// no Slack.
type slackSetup struct {
	client *slack.Client
	secret []byte // nil: no buttons
}

// slackInteractionsPath is where the app manifest's interactivity
// request URL points (README, Slack).
const slackInteractionsPath = "/slack/interactions"

// checkSlack reads the token and secret, and refuses a policy that names a
// Slack channel when there is no token, naming the rule and the flag.
func (a *app) checkSlack(o slackOptions, p *policy.Policy) (slackSetup, error) {
	token, err := a.secret("--slack-token-file", o.tokenFile, "LATCH_SLACK_TOKEN")
	if err != nil {
		return slackSetup{}, err
	}
	secret, err := a.secret("--slack-signing-secret-file", o.secretFile, "LATCH_SLACK_SIGNING_SECRET")
	if err != nil {
		return slackSetup{}, err
	}
	if token == "" {
		if err := needSlackToken(p); err != nil {
			return slackSetup{}, err
		}
		if secret != "" {
			return slackSetup{}, usagef("a Slack signing secret without a bot token: the buttons need the token to look up who clicked; give --slack-token-file PATH or set LATCH_SLACK_TOKEN")
		}
		return slackSetup{}, nil
	}
	s := slackSetup{client: slack.NewClient(token, slack.ClientOptions{APIURL: o.apiURL})}
	if secret != "" {
		s.secret = []byte(secret)
	}
	a.log.Info("slack configured", "buttons", secret != "") // never the token or the secret
	if secret == "" {
		a.log.Warn("no Slack signing secret: messages will have Approve/Deny buttons that latch refuses; give --slack-signing-secret-file or LATCH_SLACK_SIGNING_SECRET")
	}
	return s, nil
}

// needSlackToken refuses a policy that notifies Slack, for a server with
// no Slack bot token, naming where and the flag.
func needSlackToken(p *policy.Policy) error {
	if where := slackRoutes(p); len(where) > 0 {
		return latch.Invalidf("slack", "%s notifies Slack, but the server has no Slack bot token: give --slack-token-file PATH or set LATCH_SLACK_TOKEN",
			strings.Join(where, ", "))
	}
	return nil
}

// secret reads a secret from path, else from the environment variable;
// "" when neither is set.
func (a *app) secret(flag, path, env string) (string, error) {
	if path == "" {
		return strings.TrimSpace(a.getenv(env)), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usagef("%s: %v", flag, err) // the path, never the contents
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", usagef("%s %s is empty", flag, path)
	}
	return s, nil
}

// slackRoutes lists where the policy names a Slack channel: rules by name,
// and the top-level notify.
func slackRoutes(p *policy.Policy) []string {
	var out []string
	has := func(rs []latch.Route) bool {
		for _, r := range rs {
			if r.Sink == latch.SinkSlack {
				return true
			}
		}
		return false
	}
	if has(p.Routes("")) {
		out = append(out, "the policy's top-level notify")
	}
	for _, r := range p.Rules() {
		if has(r.Notify) {
			out = append(out, fmt.Sprintf("rule %q", r.Name))
		}
	}
	return out
}

// sinks returns the Slack sink, keyed for the notification worker, or none.
func (s slackSetup) sinks(a *app, refs latch.MessageRefs, holder *policyHolder) map[string]latch.Sink {
	if s.client == nil {
		return nil
	}
	approvers := func(rule string) []string {
		r, ok := holder.Policy().Rule(rule)
		if !ok {
			return nil
		}
		return r.Approvers.Users
	}
	return map[string]latch.Sink{latch.SinkSlack: slack.NewSink(s.client, refs, slack.SinkOptions{
		Approvers: approvers, Logger: a.log.With("component", "slack"),
	})}
}

// mount returns the interactivity handler for the API server to serve, or
// none without a signing secret, and a function that waits for the
// reviews it runs after answering Slack. Those reviews run under ctx (the
// server's: shutting down cancels them) and its signatures are kept in
// store, which replicas share, so that a replayed click is refused by any.
func (s slackSetup) mount(ctx context.Context, a *app, o slackOptions, access *broker.Access, holder *policyHolder, store latch.Store) (map[string]http.Handler, func()) {
	if s.client == nil || s.secret == nil {
		return nil, func() {}
	}
	opts := slack.InteractionOptions{
		Clock: a.clock, Logger: a.log.With("component", "slack"),
		People:  func() latch.People { return holder.Policy() },
		Context: ctx, Once: store,
	}
	if o.apiURL != "" {
		opts.ResponseURLs = []string{strings.TrimSuffix(o.apiURL, "api/")} // the fake's response URLs, beside its API
	}
	h := slack.NewInteractions(s.client, s.secret, access, opts)
	return map[string]http.Handler{"POST " + slackInteractionsPath: h}, h.Wait
}
