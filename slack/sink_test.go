package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/slacktest"
	"github.com/latchdev/latch/slack"
)

var (
	ops   = latch.Route{Sink: latch.SinkSlack, To: "#ops"}
	alice = slacktest.User{ID: "U0ALICE", Name: "alice", Email: "alice@example.com"}
	carol = slacktest.User{ID: "U0CAROL", Name: "carol", Email: "carol@example.com"}
)

// refs is an in-memory latch.MessageRefs.
type refs struct {
	mu sync.Mutex
	m  map[string]latch.MessageRef
}

func (r *refs) SaveMessageRef(_ context.Context, ref latch.MessageRef) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]latch.MessageRef{}
	}
	r.m[string(ref.RequestID)+ref.Route.String()] = ref
	return nil
}

func (r *refs) MessageRef(_ context.Context, id latch.RequestID, route latch.Route) (latch.MessageRef, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, ok := r.m[string(id)+route.String()]
	if !ok {
		return ref, latch.Errorf(latch.ENOTFOUND, "none")
	}
	return ref, nil
}

func newSink(t *testing.T, users ...slacktest.User) (*slacktest.Server, *slack.Sink) {
	fake := slacktest.New(t, []string{"ops"}, users...)
	c := slack.NewClient(slacktest.Token, slack.ClientOptions{APIURL: fake.APIURL})
	return fake, slack.NewSink(c, &refs{}, slack.SinkOptions{
		Approvers: func(rule string) []string { return []string{"carol@example.com", "sre-lead", "nobody@example.com"} },
	})
}

func event(kind latch.EventKind) latch.Event {
	return latch.Event{
		ID: latch.NewEventID(), Kind: kind, At: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC),
		RequestID: "r-0123456789abcdef", Rule: "prod-ssh", Requester: "alice@example.com",
		Region: "eu-west-1", InstanceID: "i-0123456789abcdef0", Protocol: latch.TCP, FromPort: 22, ToPort: 22,
		Source: "203.0.113.7/32", Duration: 1800, Reason: "INC-42: the queue is stuck <!channel>", State: "pending",
	}
}

// blocksOf decodes a message's blocks into generic JSON.
func blocksOf(t *testing.T, m slacktest.Message) []map[string]any {
	t.Helper()
	var b []map[string]any
	if err := json.Unmarshal(m.Blocks, &b); err != nil {
		t.Fatalf("blocks %s: %v", m.Blocks, err)
	}
	return b
}

// buttons returns the message's buttons: action ID → value.
func buttons(t *testing.T, m slacktest.Message) map[string]string {
	out := map[string]string{}
	for _, b := range blocksOf(t, m) {
		if b["type"] != "actions" {
			continue
		}
		for _, el := range b["elements"].([]any) {
			e := el.(map[string]any)
			out[e["action_id"].(string)] = e["value"].(string)
		}
	}
	return out
}

func TestRequestMessageAndItsUpdates(t *testing.T) {
	ctx := t.Context()
	fake, sink := newSink(t, alice, carol)
	created := event(latch.EventRequestCreated)
	if err := sink.Deliver(ctx, ops, created); err != nil {
		t.Fatal(err)
	}
	msgs := fake.Messages()
	if len(msgs) != 1 || msgs[0].Channel != fake.ChannelID("ops") {
		t.Fatalf("messages = %+v; want one in #ops", msgs)
	}
	m := msgs[0]
	text := string(m.Blocks)
	for _, want := range []string{"alice@example.com", "i-0123456789abcdef0 (eu-west-1)", "tcp/22", "203.0.113.7/32", "30m0s",
		"prod-ssh", "INC-42: the queue is stuck \\u0026lt;!channel\\u0026gt;", "Waiting for approval", "\\u003c@U0CAROL\\u003e"} {
		if !strings.Contains(text, want) {
			t.Errorf("request.created blocks lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "<!channel>") || strings.Contains(text, "\\u003c!channel") {
		t.Errorf("a reason's <!channel> reached Slack unescaped:\n%s", text)
	}
	if got := buttons(t, m); got[slack.ActionApprove] != string(created.RequestID) || got[slack.ActionDeny] != string(created.RequestID) || len(got) != 2 {
		t.Errorf("buttons = %v; want approve and deny, valued with the request ID", got)
	}

	// The outbox may deliver an event twice: the message is not posted twice.
	if err := sink.Deliver(ctx, ops, created); err != nil {
		t.Fatal(err)
	}
	if n := len(fake.Messages()); n != 1 {
		t.Fatalf("a repeated request.created posted %d messages; want 1", n)
	}

	steps := []struct {
		kind latch.EventKind
		edit func(*latch.Event)
		want []string
	}{
		{latch.EventRequestApproved, func(e *latch.Event) { e.Reviewer = "carol@example.com" }, []string{"Approved", "carol@example.com"}},
		{latch.EventRequestDenied, func(e *latch.Event) { e.Reviewer, e.ReviewReason = "carol@example.com", "not now" }, []string{"Denied", "not now"}},
		{latch.EventRequestWithdrawn, nil, []string{"Withdrawn"}},
		{latch.EventRequestTimedOut, nil, []string{"Timed out"}},
		{latch.EventRequestFailed, func(e *latch.Event) { e.Error = "group gone" }, []string{"could not open", "group gone"}},
		{latch.EventGrantOpened, func(e *latch.Event) {
			e.GrantID, e.ExpiresAt = "g-0123456789abcdef", time.Date(2026, 12, 4, 10, 30, 0, 0, time.UTC)
		}, []string{"Open", "g-0123456789abcdef"}},
		{latch.EventGrantRevokeFail, func(e *latch.Event) { e.GrantID, e.Error = "g-0123456789abcdef", "throttled" }, []string{"keeps failing", "throttled"}},
		{latch.EventGrantEnded, func(e *latch.Event) { e.GrantID, e.State = "g-0123456789abcdef", "expired" }, []string{"Ended", "expired"}},
	}
	for i, st := range steps {
		e := event(st.kind)
		if st.edit != nil {
			st.edit(&e)
		}
		if err := sink.Deliver(ctx, ops, e); err != nil {
			t.Fatalf("%s: %v", st.kind, err)
		}
		msgs := fake.Messages()
		if len(msgs) != 1 || msgs[0].Updates != i+2 { // the repeated request.created was the first edit
			t.Fatalf("%s: messages = %d, updates %d; want the one message edited", st.kind, len(msgs), msgs[0].Updates)
		}
		text := string(msgs[0].Blocks)
		for _, want := range append(st.want, "alice@example.com", "i-0123456789abcdef0") {
			if !strings.Contains(text, want) {
				t.Errorf("%s: blocks lack %q:\n%s", st.kind, want, text)
			}
		}
		if b := buttons(t, msgs[0]); len(b) != 0 {
			t.Errorf("%s: buttons %v remain; want none once the request is decided", st.kind, b)
		}
		if !strings.Contains(msgs[0].Text, string(e.RequestID)) && e.GrantID == "" {
			t.Errorf("%s: fallback text %q lacks the request", st.kind, msgs[0].Text)
		}
	}
}

// Events reach the sink out of order (a retry, parallel delivery, a
// replica): a late, older event never takes the message back, and events
// delivered at once post one message.
func TestMessageNeverGoesBack(t *testing.T) {
	ctx := t.Context()
	fake, sink := newSink(t, alice, carol)
	opened := event(latch.EventGrantOpened)
	opened.GrantID, opened.ExpiresAt = "g-0123456789abcdef", time.Date(2026, 12, 4, 10, 30, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for _, e := range []latch.Event{event(latch.EventRequestCreated), opened, event(latch.EventRequestApproved)} {
		wg.Go(func() {
			if err := sink.Deliver(ctx, ops, e); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	msgs := fake.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages from three events delivered at once; want one", len(msgs))
	}
	if text := string(msgs[0].Blocks); !strings.Contains(text, "Open") || len(buttons(t, msgs[0])) != 0 {
		t.Errorf("whatever the order, the message should end showing the grant open, without buttons:\n%s", text)
	}
	late := event(latch.EventRequestCreated) // a retry of the first event, long after
	if err := sink.Deliver(ctx, ops, late); err != nil {
		t.Fatal(err)
	}
	if text := string(fake.Messages()[0].Blocks); !strings.Contains(text, "Open") || len(buttons(t, fake.Messages()[0])) != 0 {
		t.Errorf("a late request.created took the message back:\n%s", text)
	}
}

func TestBreakGlassIsOneMarkedMessageWithoutButtons(t *testing.T) {
	fake, sink := newSink(t, alice)
	created, used := event(latch.EventRequestCreated), event(latch.EventBreakGlassUsed)
	created.BreakGlass, used.BreakGlass = true, true
	for _, e := range []latch.Event{created, used} {
		if err := sink.Deliver(t.Context(), ops, e); err != nil {
			t.Fatal(err)
		}
	}
	msgs := fake.Messages()
	if len(msgs) != 1 {
		t.Fatalf("break-glass posted %d messages; want 1", len(msgs))
	}
	if text := string(msgs[0].Blocks); !strings.Contains(text, "BREAK-GLASS") || !strings.Contains(text, "without approval") {
		t.Errorf("blocks do not mark break-glass:\n%s", text)
	}
	if b := buttons(t, msgs[0]); len(b) != 0 {
		t.Errorf("break-glass has buttons %v; want none", b)
	}
}

func TestOutOfBandRulePostsToTheChannel(t *testing.T) {
	fake, sink := newSink(t)
	e := latch.Event{ID: latch.NewEventID(), Kind: latch.EventRuleOutOfBand, RuleID: "sgr-0abc", GroupID: "sg-0123",
		Protocol: latch.TCP, FromPort: 22, ToPort: 22, Source: "0.0.0.0/0"}
	if err := sink.Deliver(t.Context(), ops, e); err != nil {
		t.Fatal(err)
	}
	if m := fake.Messages(); len(m) != 1 || !strings.Contains(string(m[0].Blocks), "sgr-0abc") {
		t.Fatalf("messages = %+v; want one naming the rule", m)
	}
}

func TestGrantEndingIsADMToTheRequester(t *testing.T) {
	fake, sink := newSink(t, alice)
	e := event(latch.EventGrantEnding)
	e.GrantID, e.ExpiresAt = "g-0123456789abcdef", time.Date(2026, 12, 4, 10, 30, 0, 0, time.UTC)
	if err := sink.Deliver(t.Context(), ops, e); err != nil {
		t.Fatal(err)
	}
	msgs := fake.Messages()
	if len(msgs) != 1 || msgs[0].Channel != "D"+alice.ID {
		t.Fatalf("messages = %+v; want one DM to %s", msgs, alice.ID)
	}
	if text := string(msgs[0].Blocks); !strings.Contains(text, "ends at") || !strings.Contains(text, "g-0123456789abcdef") {
		t.Errorf("DM blocks:\n%s", text)
	}

	// A requester Slack does not know gets no DM, and that is no failure.
	e.Requester = "dave@example.com"
	if err := sink.Deliver(t.Context(), ops, e); err != nil {
		t.Errorf("ending notice to a requester not in Slack: %v; want nil", err)
	}
	if n := len(fake.Messages()); n != 1 {
		t.Errorf("%d messages; want no new one", n)
	}
}

func TestRateLimitIsRetryAfter(t *testing.T) {
	fake, sink := newSink(t, alice)
	fake.RateLimit("chat.postMessage", 30*time.Second)
	err := sink.Deliver(t.Context(), ops, event(latch.EventRequestApproved))
	ra, ok := errors.AsType[*latch.RetryAfterError](err)
	if !ok || ra.After != 30*time.Second {
		t.Fatalf("Deliver under a 429 = %v; want a RetryAfterError of 30s", err)
	}
	if strings.Contains(err.Error(), slacktest.Token) {
		t.Errorf("error %q holds the token", err)
	}
	if err := sink.Deliver(t.Context(), ops, event(latch.EventRequestApproved)); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
}

func TestHopelessAnswersAreGivenUp(t *testing.T) {
	_, sink := newSink(t)
	err := sink.Deliver(t.Context(), latch.Route{Sink: latch.SinkSlack, To: "#nowhere"}, event(latch.EventRequestCreated))
	if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), "channel_not_found") {
		t.Fatalf("Deliver to an unknown channel = %v; want EINVALID channel_not_found", err)
	}
	c := slack.NewClient("xoxb-wrong-token", slack.ClientOptions{APIURL: slacktest.New(t, []string{"ops"}).APIURL})
	err = slack.NewSink(c, &refs{}, slack.SinkOptions{}).Deliver(t.Context(), ops, event(latch.EventRequestCreated))
	if latch.ErrorCode(err) != latch.EINVALID || strings.Contains(err.Error(), "xoxb-wrong-token") {
		t.Fatalf("Deliver with a bad token = %v; want EINVALID, without the token", err)
	}
}
