package main

import (
	"fmt"
	"maps"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/notify"
	"github.com/latchdev/latch/policy"
	"github.com/latchdev/latch/webhook"
)

// notifyOptions configure where the server's notifications go. The policy
// says which rule notifies which route; these say what the routes are.
type notifyOptions struct {
	webhooks    []string // NAME=URL
	secretFiles []string // NAME=PATH
}

func (o *notifyOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&o.webhooks, "webhook", nil, "a webhook the policy may name: NAME=URL (repeatable); its secret from --webhook-secret-file or LATCH_WEBHOOK_SECRET_<NAME>; see docs/WEBHOOKS.md")
	f.StringArrayVar(&o.secretFiles, "webhook-secret-file", nil, "NAME=PATH: the file holding webhook NAME's signing secret (repeatable)")
}

// checkNotify reads the webhooks and their secrets, and refuses a policy
// that names a webhook not among them.
func (a *app) checkNotify(o notifyOptions, p *policy.Policy) (map[string]webhook.Hook, error) {
	hooks, err := a.webhooks(o)
	if err != nil {
		return nil, err
	}
	if err := p.CheckWebhooks(func(name string) bool { _, ok := hooks[name]; return ok }); err != nil {
		return nil, err
	}
	return hooks, nil
}

// notifier returns the worker that delivers the outbox's events to hooks
// and the other sinks (Slack's), by the policy in force when each is
// delivered.
func (a *app) notifier(hooks map[string]webhook.Hook, others map[string]latch.Sink, outbox notify.Outbox, holder *policyHolder) *notify.Worker {
	host, _ := os.Hostname()
	router := notify.RouterFunc(func(e latch.Event) []latch.Route { return holder.Policy().Routes(e.Rule) })
	sinks := map[string]latch.Sink{latch.SinkWebhook: webhook.New(hooks, webhook.Options{Clock: a.clock})}
	maps.Copy(sinks, others)
	names := make([]string, 0, len(hooks))
	for name := range hooks {
		names = append(names, name)
	}
	a.log.Info("notifications configured", "webhooks", names) // names only: URLs may hold tokens
	return notify.New(outbox, router, sinks, notify.Options{
		Owner: fmt.Sprintf("%s/%d", host, os.Getpid()), Clock: a.clock, Logger: a.log.With("component", "notify"),
		Coalesce: notify.ServerCoalesce,
	})
}

// webhooks reads --webhook and each webhook's secret.
func (a *app) webhooks(o notifyOptions) (map[string]webhook.Hook, error) {
	files := map[string]string{}
	for _, v := range o.secretFiles {
		name, path, ok := strings.Cut(v, "=")
		if !ok || name == "" || path == "" {
			return nil, usagef("--webhook-secret-file %q: want NAME=PATH", v)
		}
		files[name] = path
	}
	hooks := map[string]webhook.Hook{}
	for _, v := range o.webhooks {
		name, url, ok := strings.Cut(v, "=")
		if !ok || name == "" || !(strings.HasPrefix(url, "https://") || strings.HasPrefix(url, "http://")) {
			return nil, usagef("--webhook %q: want NAME=URL, e.g. pager=https://relay.example.com/latch", redactURL(v))
		}
		if _, dup := hooks[name]; dup {
			return nil, usagef("--webhook %s is given twice", name)
		}
		secret, err := a.webhookSecret(name, files[name])
		if err != nil {
			return nil, err
		}
		hooks[name] = webhook.Hook{URL: url, Secret: secret}
		delete(files, name)
	}
	for name := range files {
		return nil, usagef("--webhook-secret-file %s=…: no --webhook %s=URL", name, name)
	}
	return hooks, nil
}

// webhookSecret reads name's secret from path, else from the environment.
func (a *app) webhookSecret(name, path string) ([]byte, error) {
	env := "LATCH_WEBHOOK_SECRET_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	var secret string
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: read its secret: %w", name, err)
		}
		secret = strings.TrimSpace(string(b))
	} else {
		secret = a.getenv(env)
	}
	if len(secret) < 16 {
		return nil, usagef("webhook %s has no secret, or one under 16 characters: give --webhook-secret-file %s=PATH or set %s", name, name, env)
	}
	return []byte(secret), nil
}

// redactURL keeps a flag's NAME= and the URL's scheme and host out of an
// error message, dropping a path that may hold a token.
func redactURL(v string) string {
	name, url, _ := strings.Cut(v, "=")
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return name + "=…"
	}
	host, _, _ := strings.Cut(rest, "/")
	return name + "=" + scheme + "://" + host + "/…"
}
