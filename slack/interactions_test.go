package slack_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	at "github.com/latchdev/latch/internal/accesstest"
	"github.com/latchdev/latch/internal/slacktest"
	"github.com/latchdev/latch/notify"
	"github.com/latchdev/latch/slack"
)

const signingSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// slackPolicy: prod needs one approval from sre (by group: not provable in
// Slack) or from bob or mallet by name; Slack users are linked to people.
const slackPolicy = `
version: 1
people:
  - name: alice
    oidc: [u-alice]
    slack: [U0ALICE]
  - name: bob
    oidc: [u-bob]
    slack: [bob@example.com]
  - name: erin
    oidc: [u-erin]
    slack: [U0ERIN]
  - name: dave
    oidc: [u-dave]
    slack: [U0DAVE]
  - name: mallet
    aws: ["arn:aws:iam::111122223333:user/mallet"]
    slack: [U0ALIAS]
rules:
  - name: prod-ssh
    targets: {tags: {env: prod}}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 2h}
    approval: {approvals: 1, from: {groups: [sre], users: [bob@example.com, mallet]}}
    notify: {slack: "#ops"}
`

// The workspace: each person as Slack knows them.
var slackUsers = []slacktest.User{
	{ID: "U0ALICE", Name: "alice", Email: "alice@example.com"},
	{ID: "U0BOB", Name: "bob", Email: "bob@example.com"},
	{ID: "U0ERIN", Name: "erin", Email: "erin@example.com"},
	{ID: "U0DAVE", Name: "dave", Email: "dave@example.com"},
	{ID: "U0MALLORY", Name: "mallory", Email: "mallory@example.com"},
	{ID: "U0ALIAS", Name: "alias", Email: "alice@example.com"}, // a second account with alice's address
	{ID: "U0BOBNEW", Name: "bob2", Email: "bob@example.com", Unconfirmed: true},
	{ID: "U0GUEST", Name: "guest", Email: "bob@example.com", Team: "T0OTHER"},
	{ID: "U0GONE", Name: "gone", Email: "bob@example.com", Deleted: true},
	{ID: "B0BOT", Name: "bot", Email: "bob@example.com", Bot: true},
}

type slackFixture struct {
	*at.Fixture
	fake *slacktest.Server
	h    *slack.Interactions
	req  latch.Request
}

func newSlackFixture(t *testing.T) *slackFixture {
	f := at.NewWithPolicy(t, slackPolicy)
	fake := slacktest.New(t, []string{"ops"}, slackUsers...)
	c := slack.NewClient(slacktest.Token, slack.ClientOptions{APIURL: fake.APIURL})
	h := slack.NewInteractions(c, []byte(signingSecret), f.Access, slack.InteractionOptions{
		Clock: f.Clock, People: func() latch.People { return f.Policy.Policy() },
		ResponseURLs: []string{fake.ResponseURL("")}, Once: f.Store,
	})
	r, err := f.Access.Request(t.Context(), at.Alice, broker.RequestInput{Target: f.Fleet.DB1, Protocol: latch.TCP,
		Ports: latch.PortRange{From: 22, To: 22}, Reason: "INC-7: disk full", Observed: netip.MustParsePrefix("203.0.113.7/32")})
	if err != nil || r.State != latch.RequestPending {
		t.Fatalf("request: %s, %v; want pending", r.State, err)
	}
	return &slackFixture{Fixture: f, fake: fake, h: h, req: r}
}

// click is Slack's block_actions payload for user pressing action on
// request id.
func click(user, team, action string, id latch.RequestID, responseURL string) map[string]any {
	return map[string]any{
		"type": "block_actions", "team": map[string]any{"id": team}, "api_app_id": "A0LATCH",
		"user":         map[string]any{"id": user, "team_id": team},
		"response_url": responseURL,
		"container":    map[string]any{"type": "message", "channel_id": "C00000001", "message_ts": "1700000000.000001"},
		"actions": []any{map[string]any{"type": "button", "block_id": "review", "action_id": action,
			"value": string(id), "action_ts": "1700000001.000001"}},
	}
}

// send signs payload at the time given, as Slack does, and serves it.
func (f *slackFixture) send(t *testing.T, payload any, at time.Time, tamper func(body []byte, h http.Header) []byte) (int, string) {
	t.Helper()
	body, hdr, err := slacktest.Interaction(signingSecret, at, payload)
	if err != nil {
		t.Fatal(err)
	}
	if tamper != nil {
		body = tamper(body, hdr)
	}
	return f.serve(body, hdr)
}

// serve serves a signed body as it is.
func (f *slackFixture) serve(body []byte, hdr http.Header) (int, string) {
	r := httptest.NewRequest(http.MethodPost, "/slack/interactions", strings.NewReader(string(body)))
	r.Header = hdr.Clone()
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

// answered waits for the reviews under way, then returns the texts posted
// to response_url path, oldest first.
func (f *slackFixture) answered(t *testing.T, path string) []string {
	t.Helper()
	f.h.Wait()
	var out []string
	for _, r := range f.fake.Responses() {
		if r.Path == path {
			if r.Body["response_type"] != "ephemeral" {
				t.Errorf("response_url post %+v; want ephemeral", r.Body)
			}
			text, _ := r.Body["text"].(string)
			out = append(out, text)
		}
	}
	return out
}

// pending fails the test unless the request is still pending, unreviewed.
func (f *slackFixture) pending(t *testing.T) {
	t.Helper()
	r, err := f.Store.Request(t.Context(), f.req.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != latch.RequestPending || len(r.Reviews) != 0 {
		t.Fatalf("request is %s with %d reviews; want pending, unreviewed", r.State, len(r.Reviews))
	}
}

// A signed click on Approve by an approver approves the request, opens its
// grant, answers the clicker, and the message says so.
func TestSlackApprovalEndToEnd(t *testing.T) {
	f := newSlackFixture(t)
	ctx := t.Context()
	c := slack.NewClient(slacktest.Token, slack.ClientOptions{APIURL: f.fake.APIURL})
	w := notify.New(f.Store, notify.RouterFunc(func(e latch.Event) []latch.Route { return f.Policy.Policy().Routes(e.Rule) }),
		map[string]latch.Sink{latch.SinkSlack: slack.NewSink(c, f.Store, slack.SinkOptions{})}, notify.Options{Clock: f.Clock})
	w.Pass(ctx)
	msgs := f.fake.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages; want the request's", len(msgs))
	}
	id := latch.RequestID(buttons(t, msgs[0])[slack.ActionApprove])
	if id != f.req.ID {
		t.Fatalf("the Approve button's value is %q; want %s", id, f.req.ID)
	}

	code, body := f.send(t, click("U0BOB", slacktest.Team, slack.ActionApprove, id, f.fake.ResponseURL("r1")), f.Clock.Now(), nil)
	if code != http.StatusOK || !strings.Contains(body, "Recording your approval of request "+string(id)) || !strings.Contains(body, "ephemeral") {
		t.Fatalf("answer %d %s; want 200, an ephemeral 'Recording your approval'", code, body)
	}
	if got := f.answered(t, "r1"); len(got) != 1 || !strings.Contains(got[0], "You approved request "+string(id)) {
		t.Fatalf("response_url posts %q; want one 'You approved'", got)
	}
	r, err := f.Store.Request(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != latch.RequestActive || len(r.Reviews) != 1 || r.Reviews[0].By.Kind != latch.KindSlack ||
		r.Reviews[0].By.Subject != "U0BOB" || r.Reviews[0].By.Email != "bob@example.com" {
		t.Fatalf("request %s, reviews %+v; want active, reviewed by bob in Slack", r.State, r.Reviews)
	}
	if resp := f.fake.Responses(); len(resp) != 1 {
		t.Errorf("response_url posts = %+v; want the one answer", resp)
	}

	// As the worker's Run does: pass again while events are due (a
	// request's events go out one after another, in order).
	for !w.Pass(ctx).After(f.Clock.Now()) {
	}
	msgs = f.fake.Messages()
	if len(msgs) != 1 || msgs[0].Updates == 0 {
		t.Fatalf("messages %+v; want the one message, edited", msgs)
	}
	if text := string(msgs[0].Blocks); !strings.Contains(text, "Open") || len(buttons(t, msgs[0])) != 0 {
		t.Errorf("after approval the message says:\n%s\nwant the grant open, no buttons", text)
	}
}

func TestSlackDenyButtonDenies(t *testing.T) {
	f := newSlackFixture(t)
	code, body := f.send(t, click("U0BOB", slacktest.Team, slack.ActionDeny, f.req.ID, f.fake.ResponseURL("r")), f.Clock.Now(), nil)
	got := f.answered(t, "r")
	r, _ := f.Store.Request(t.Context(), f.req.ID)
	if code != http.StatusOK || !strings.Contains(body, "Recording your denial") || len(got) != 1 || !strings.Contains(got[0], "You denied") ||
		r.State != latch.RequestDenied {
		t.Fatalf("answer %d %s, then %q, request %s; want denied", code, body, got, r.State)
	}
}

// Each refusal changes nothing and says why.
func TestSlackRefusals(t *testing.T) {
	tests := []struct {
		name     string
		user     string
		team     string
		skew     time.Duration
		tamper   func(body []byte, h http.Header) []byte
		wantCode int
		want     string
		reviewed bool // refused by the review, after the acknowledgement: the answer goes to response_url
	}{
		{name: "bad signature", user: "U0BOB", tamper: func(b []byte, h http.Header) []byte {
			h.Set("X-Slack-Signature", "v0="+strings.Repeat("0", 64))
			return b
		}, wantCode: http.StatusUnauthorized, want: "X-Slack-Signature does not match"},
		{name: "body changed after signing", user: "U0MALLORY", tamper: func(b []byte, h http.Header) []byte {
			return []byte(strings.Replace(string(b), "U0MALLORY", "U0BOB", -1))
		}, wantCode: http.StatusUnauthorized, want: "X-Slack-Signature does not match"},
		{name: "signed with another secret", user: "U0BOB", tamper: func(b []byte, h http.Header) []byte {
			s := slacktest.Sign("another-secret", time.Unix(mustInt(t, h.Get("X-Slack-Request-Timestamp")), 0), b)
			h.Set("X-Slack-Signature", s.Get("X-Slack-Signature"))
			return b
		}, wantCode: http.StatusUnauthorized, want: "X-Slack-Signature does not match"},
		{name: "timestamp too old", user: "U0BOB", skew: -5*time.Minute - time.Second, wantCode: http.StatusUnauthorized, want: "outside 5m0s"},
		{name: "timestamp in the future", user: "U0BOB", skew: 5*time.Minute + time.Second, wantCode: http.StatusUnauthorized, want: "outside 5m0s"},
		{name: "unmapped Slack user", user: "U0MALLORY", wantCode: http.StatusOK, want: "not linked to a latch person"},
		{name: "the requester themselves", user: "U0ALICE", wantCode: http.StatusOK, want: "cannot review your own request", reviewed: true},
		{name: "another account with the requester's email", user: "U0ALIAS", wantCode: http.StatusOK, want: "cannot review your own request", reviewed: true},
		{name: "linked but not an approver", user: "U0DAVE", wantCode: http.StatusOK, want: "may not review", reviewed: true},
		{name: "an approver only by group, which Slack cannot prove", user: "U0ERIN", wantCode: http.StatusOK, want: "may not review", reviewed: true},
		{name: "an approver's email, unconfirmed", user: "U0BOBNEW", wantCode: http.StatusOK, want: "not linked to a latch person"},
		{name: "another workspace", user: "U0BOB", team: "T0OTHER", wantCode: http.StatusOK, want: "another Slack workspace"},
		{name: "a shared channel's guest", user: "U0GUEST", wantCode: http.StatusOK, want: "Only members of this workspace"},
		{name: "a deleted user", user: "U0GONE", wantCode: http.StatusOK, want: "Only people"},
		{name: "a bot", user: "B0BOT", wantCode: http.StatusOK, want: "Only people"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newSlackFixture(t)
			team := tt.team
			if team == "" {
				team = slacktest.Team
			}
			code, body := f.send(t, click(tt.user, team, slack.ActionApprove, f.req.ID, f.fake.ResponseURL("r")), f.Clock.Now().Add(tt.skew), tt.tamper)
			got := f.answered(t, "r")
			if tt.reviewed {
				if code != tt.wantCode || !strings.Contains(body, "Recording your approval") {
					t.Errorf("answer %d %q; want %d 'Recording your approval'", code, body, tt.wantCode)
				}
				if len(got) != 1 || !strings.Contains(got[0], tt.want) {
					t.Errorf("response_url posts %q; want one saying %q", got, tt.want)
				}
			} else {
				if code != tt.wantCode || !strings.Contains(body, tt.want) {
					t.Errorf("answer %d %q; want %d saying %q", code, body, tt.wantCode, tt.want)
				}
				if code == http.StatusOK && (len(got) != 1 || !strings.Contains(got[0], tt.want)) {
					t.Errorf("response_url posts %q; want one saying %q", got, tt.want)
				}
				if code != http.StatusOK && len(got) != 0 {
					t.Errorf("response_url posts %q; want none for a request not from Slack", got)
				}
			}
			f.pending(t)
		})
	}
}

// Within the window, either side, a click counts.
func TestSlackTimestampWindowEdges(t *testing.T) {
	for _, skew := range []time.Duration{-5 * time.Minute, 5 * time.Minute} {
		f := newSlackFixture(t)
		code, body := f.send(t, click("U0BOB", slacktest.Team, slack.ActionApprove, f.req.ID, f.fake.ResponseURL("r")), f.Clock.Now().Add(skew), nil)
		if got := f.answered(t, "r"); code != http.StatusOK || len(got) != 1 || !strings.Contains(got[0], "You approved") {
			t.Errorf("skew %v: answer %d %s, then %q; want approved", skew, code, body, got)
		}
	}
}

// One review per person: bob in Slack after bob through the API is refused.
func TestSlackOneReviewPerPerson(t *testing.T) {
	f := at.NewWithPolicy(t, strings.Replace(slackPolicy, "approvals: 1,", "approvals: 2,", 1))
	fake := slacktest.New(t, []string{"ops"}, slackUsers...)
	h := slack.NewInteractions(slack.NewClient(slacktest.Token, slack.ClientOptions{APIURL: fake.APIURL}), []byte(signingSecret), f.Access,
		slack.InteractionOptions{Clock: f.Clock, People: func() latch.People { return f.Policy.Policy() }, ResponseURLs: []string{fake.ResponseURL("")}})
	r, err := f.Access.Request(t.Context(), at.Alice, broker.RequestInput{Target: f.Fleet.DB1, Protocol: latch.TCP,
		Ports: latch.PortRange{From: 22, To: 22}, Reason: "INC-7", Observed: netip.MustParsePrefix("203.0.113.7/32")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Access.Review(t.Context(), at.Bob, r.ID, true, "ok"); err != nil {
		t.Fatal(err)
	}
	sf := &slackFixture{Fixture: f, fake: fake, h: h, req: r}
	code, body := sf.send(t, click("U0BOB", slacktest.Team, slack.ActionApprove, r.ID, fake.ResponseURL("r")), f.Clock.Now(), nil)
	if got := sf.answered(t, "r"); code != http.StatusOK || len(got) != 1 || !strings.Contains(got[0], "already reviewed") {
		t.Fatalf("answer %d %s, then %q; want 'already reviewed'", code, body, got)
	}
	if got, _ := f.Store.Request(t.Context(), r.ID); got.State != latch.RequestPending || len(got.Reviews) != 1 {
		t.Fatalf("request %s with %d reviews; want pending with bob's one", got.State, len(got.Reviews))
	}
}

func mustInt(t *testing.T, s string) int64 {
	var n int64
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatal(err)
	}
	return n
}
