package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/slacktest"
	"github.com/latchdev/latch/sqlite"
)

// slackPolicy: IAM user alice asks for dev SSH, with one approval from bob,
// and requests go to #ops; Slack users are linked to the people.
const slackPolicy = `
version: 1
people:
  - name: alice
    aws: ["arn:aws:iam::123456789012:user/alice"]
    slack: [U0ALICE]
  - name: bob
    aws: ["arn:aws:iam::123456789012:user/bob"]
    slack: [bob@example.com]
rules:
  - name: dev-ssh-approved
    targets: {tags: {env: dev}}
    who: {aws_principals: ["arn:aws:iam::123456789012:user/alice"]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: {approvals: 1, from: {users: [bob]}}
    notify: {slack: "#ops"}
`

const (
	slackToken  = slacktest.Token // the fake's; it must appear in no log
	slackSecret = "slk-signing-5e3c7-never-logged"
)

// The Approve button end to end, through a latch server process: the
// request's message reaches the fake Slack, a signed click by someone
// latch cannot link, by the requester and with a bad signature change
// nothing, bob's click approves and opens the grant, and the message is
// edited to say so. Neither secret appears in the server's log.
func TestServerSlackApproval(t *testing.T) {
	fake := slacktest.New(t, []string{"ops"},
		slacktest.User{ID: "U0ALICE", Name: "alice", Email: "alice@example.com"},
		slacktest.User{ID: "U0BOB", Name: "bob", Email: "bob@example.com"},
		slacktest.User{ID: "U0MALLORY", Name: "mallory", Email: "mallory@example.com"})
	tokenFile := filepath.Join(t.TempDir(), "slack-token")
	if err := os.WriteFile(tokenFile, []byte(slackToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := newWorldForSlack(t)
	w.vars["LATCH_SLACK_SIGNING_SECRET"] = slackSecret
	sw := w.start(t, "--slack-token-file", tokenFile, "--slack-api-url", fake.APIURL)
	sw.as("AKIDAL", "al-secret")
	r := sw.latch(t, "request", sw.fleet.Web1, "--port", "22", "--for", "20m", "--reason", "deploy", "--json")
	out := decode[requestOut](t, r.stdout)
	if r.code != 0 || out.Request.State != latch.RequestPending {
		t.Fatalf("request: exit %d %+v %s", r.code, out, r.stderr)
	}
	id := latch.RequestID(out.Request.ID)
	msg := waitSlack(t, fake, "the request's message", func(m []slacktest.Message) bool { return len(m) == 1 })[0]
	if !strings.Contains(string(msg.Blocks), `"value":"`+string(id)+`"`) {
		t.Fatalf("the message has no button for %s:\n%s", id, msg.Blocks)
	}

	click := func(user string, sign func(body []byte, h http.Header)) (int, string) {
		payload := map[string]any{"type": "block_actions", "team": map[string]any{"id": slacktest.Team},
			"user": map[string]any{"id": user}, "response_url": fake.ResponseURL(user),
			"actions": []any{map[string]any{"type": "button", "block_id": "review", "action_id": "latch_approve", "value": string(id)}}}
		body, h, err := slacktest.Interaction(slackSecret, start, payload) // the server's clock reads start
		if err != nil {
			t.Fatal(err)
		}
		if sign != nil {
			sign(body, h)
		}
		req, _ := http.NewRequest(http.MethodPost, sw.url+"/slack/interactions", bytes.NewReader(body))
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	state := func() latch.RequestState {
		store, err := sqlite.Open(context.Background(), w.vars["LATCH_DB"], sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		r, err := store.Request(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return r.State
	}

	refusals := []struct {
		name, user string
		sign       func([]byte, http.Header)
		code       int
		want       string
		reviewed   bool // refused by the review, after the answer: said at response_url
	}{
		{"bad signature", "U0BOB", func(_ []byte, h http.Header) { h.Set("X-Slack-Signature", "v0="+strings.Repeat("ab", 32)) }, 401, "does not match", false},
		{"stale timestamp", "U0BOB", func(b []byte, h http.Header) {
			for k, v := range slacktest.Sign(slackSecret, start.Add(-6*time.Minute), b) {
				h[k] = v
			}
		}, 401, "outside 5m0s", false},
		{"unmapped Slack user", "U0MALLORY", nil, 200, "not linked to a latch person", false},
		{"the requester", "U0ALICE", nil, 200, "cannot review your own request", true},
	}
	for _, rf := range refusals {
		code, body := click(rf.user, rf.sign)
		if rf.reviewed {
			if code != rf.code || !strings.Contains(body, "Recording your approval") {
				t.Errorf("%s: answer %d %s; want %d 'Recording your approval'", rf.name, code, body, rf.code)
			}
			body = waitResponse(t, fake, rf.user)
		}
		if code != rf.code || !strings.Contains(body, rf.want) {
			t.Errorf("%s: answer %d %s; want %d saying %q", rf.name, code, body, rf.code, rf.want)
		}
		if s := state(); s != latch.RequestPending {
			t.Fatalf("%s: the request is %s; want still pending", rf.name, s)
		}
	}

	if code, body := click("U0BOB", nil); code != 200 || !strings.Contains(body, "Recording your approval of request "+string(id)) {
		t.Fatalf("bob's click: %d %s\nserver: %s", code, body, sw.server.output())
	}
	if body := waitResponse(t, fake, "U0BOB"); !strings.Contains(body, "You approved request "+string(id)) {
		t.Fatalf("bob's answer at response_url: %s; want 'You approved'\nserver: %s", body, sw.server.output())
	}
	if s := state(); s != latch.RequestActive {
		t.Fatalf("after bob's click the request is %s; want active", s)
	}
	waitSlack(t, fake, "the message edited to the open grant", func(m []slacktest.Message) bool {
		return len(m) == 1 && strings.Contains(string(m[0].Blocks), "Open") && !strings.Contains(string(m[0].Blocks), "latch_approve")
	})
	if logs := sw.server.output(); strings.Contains(logs, slackToken) || strings.Contains(logs, slackSecret) {
		t.Errorf("the server's log shows the Slack token or signing secret:\n%s", logs)
	}
}

// A policy that notifies Slack is refused at start without a token,
// naming the rule and the flag.
func TestServerSlackRefusedWithoutToken(t *testing.T) {
	w := newWorld(t)
	pf := filepath.Join(w.dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(slackPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	r := w.latch(t, "server", "--policy", pf, "--listen", "127.0.0.1:0", "--aws-auth", "--aws-account", "123456789012")
	if r.code == 0 || !strings.Contains(r.stderr, `rule "dev-ssh-approved" notifies Slack`) || !strings.Contains(r.stderr, "--slack-token-file") {
		t.Errorf("a Slack route without a token: exit %d %s", r.code, r.stderr)
	}
}

// slackWorld is a world with slackPolicy's people, before its server starts.
type slackWorld struct{ *world }

func newWorldForSlack(t *testing.T) slackWorld {
	w := newWorld(t)
	w.env.Identity(t, "AKIDAL", "al-secret", "arn:aws:iam::123456789012:user/alice")
	w.env.Identity(t, "AKIDBOBIAM", "bob-iam-secret", "arn:aws:iam::123456789012:user/bob")
	return slackWorld{w}
}

func (w slackWorld) start(t *testing.T, extra ...string) *serverWorld {
	fleet := w.env.DemoFleet(t)
	if err := os.WriteFile(filepath.Join(w.dir, "policy.yaml"), []byte(slackPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	sw := w.launchServer(t, extra...)
	sw.fleet = fleet
	w.vars["LATCH_SERVER"] = sw.url
	w.vars["LATCH_AUTH"] = "aws"
	return sw
}

// waitSlack polls the fake until cond holds of its messages.
// waitResponse waits for the one post to response_url path, and returns
// its text.
func waitResponse(t *testing.T, fake *slacktest.Server, path string) string {
	t.Helper()
	deadline := time.After(30 * time.Second) // a bound for a hung test
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var got []string
		for _, r := range fake.Responses() {
			if r.Path == path {
				text, _ := r.Body["text"].(string)
				got = append(got, text)
			}
		}
		if len(got) > 1 {
			t.Fatalf("slack: %d posts to response_url %s, %q; want one", len(got), path, got)
		}
		if len(got) == 1 {
			return got[0]
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("slack: no post to response_url %s; posts %+v", path, fake.Responses())
		}
	}
}

func waitSlack(t *testing.T, fake *slacktest.Server, what string, cond func([]slacktest.Message) bool) []slacktest.Message {
	t.Helper()
	deadline := time.After(30 * time.Second) // a bound for a hung test
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := fake.Messages(); cond(m) {
			return m
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("slack: no %s; messages %+v", what, fake.Messages())
		}
	}
}
