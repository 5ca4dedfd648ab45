package slack_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/slacktest"
	"github.com/latchdev/latch/slack"
)

// handler replaces the fixture's handler with one reviewing through r,
// with opts and the fixture's clock, people and fake.
func (f *slackFixture) handler(r slack.Reviewer, opts slack.InteractionOptions) {
	opts.Clock = f.Clock
	opts.People = func() latch.People { return f.Policy.Policy() }
	opts.ResponseURLs = []string{f.fake.ResponseURL("")}
	f.h = slack.NewInteractions(slack.NewClient(slacktest.Token, slack.ClientOptions{APIURL: f.fake.APIURL}), []byte(signingSecret), r, opts)
}

// gate is a Reviewer that holds each review until release is closed or
// its context ends, which it then returns.
type gate struct {
	slack.Reviewer
	started chan struct{}
	release chan struct{}
}

func newGate(r slack.Reviewer) *gate {
	return &gate{Reviewer: r, started: make(chan struct{}, 10), release: make(chan struct{})}
}

func (g *gate) Review(ctx context.Context, who latch.Identity, id latch.RequestID, approve bool, reason string) (latch.Request, error) {
	g.started <- struct{}{}
	select {
	case <-g.release:
		return g.Reviewer.Review(ctx, who, id, approve, reason)
	case <-ctx.Done():
		return latch.Request{}, ctx.Err()
	}
}

// Slack gives up on a click after 3 seconds: the click is answered while
// the review (which may open the grant, calling AWS) is still running, and
// its outcome goes to response_url.
func TestSlackAnswersBeforeTheReview(t *testing.T) {
	f := newSlackFixture(t)
	g := newGate(f.Access)
	f.handler(g, slack.InteractionOptions{})
	type answer struct {
		code int
		body string
	}
	done := make(chan answer, 1)
	go func() {
		code, body := f.send(t, click("U0BOB", slacktest.Team, slack.ActionApprove, f.req.ID, f.fake.ResponseURL("r")), f.Clock.Now(), nil)
		done <- answer{code, body}
	}()
	<-g.started
	var a answer
	select {
	case a = <-done:
	case <-time.After(10 * time.Second): // a deadline, not a wait: the answer must not need the review
		close(g.release)
		t.Fatal("the click was not answered while its review was running")
	}
	if a.code != http.StatusOK || !strings.Contains(a.body, "Recording your approval") {
		t.Fatalf("answer %d %s; want 200 'Recording your approval'", a.code, a.body)
	}
	f.pending(t)
	close(g.release)
	if got := f.answered(t, "r"); len(got) != 1 || !strings.Contains(got[0], "You approved") {
		t.Fatalf("response_url posts %q; want one 'You approved'", got)
	}
	if r, _ := f.Store.Request(t.Context(), f.req.ID); r.State != latch.RequestActive {
		t.Fatalf("request %s; want active", r.State)
	}
}

// A review after the answer is cancelled when the server shuts down
// (its base context ends), and bounded by ReviewTimeout; the clicker is
// told it was not recorded.
func TestSlackBackgroundReviewEnds(t *testing.T) {
	for _, tt := range []struct {
		name    string
		timeout time.Duration
		cancel  bool
	}{
		{name: "shutdown", timeout: time.Hour, cancel: true},
		{name: "timeout", timeout: time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newSlackFixture(t)
			g := newGate(f.Access)
			base, cancel := context.WithCancel(context.Background())
			defer cancel()
			f.handler(g, slack.InteractionOptions{Context: base, ReviewTimeout: tt.timeout})
			code, body := f.send(t, click("U0BOB", slacktest.Team, slack.ActionApprove, f.req.ID, f.fake.ResponseURL("r")), f.Clock.Now(), nil)
			if code != http.StatusOK || !strings.Contains(body, "Recording your approval") {
				t.Fatalf("answer %d %s; want 200 'Recording your approval'", code, body)
			}
			<-g.started
			if tt.cancel {
				cancel()
			}
			if got := f.answered(t, "r"); len(got) != 1 || !strings.Contains(got[0], "Not recorded") {
				t.Fatalf("response_url posts %q; want one 'Not recorded'", got)
			}
			f.pending(t)
		})
	}
}

// A signed click replayed within the window is refused, whether the
// signatures are kept in the store (which replicas share) or in memory.
func TestSlackReplayRefused(t *testing.T) {
	for _, inStore := range []bool{true, false} {
		name := "memory"
		if inStore {
			name = "store"
		}
		t.Run(name, func(t *testing.T) {
			f := newSlackFixture(t)
			opts := slack.InteractionOptions{}
			if inStore {
				opts.Once = f.Store
			}
			f.handler(f.Access, opts)
			body, hdr, err := slacktest.Interaction(signingSecret, f.Clock.Now(),
				click("U0BOB", slacktest.Team, slack.ActionDeny, f.req.ID, f.fake.ResponseURL("r")))
			if err != nil {
				t.Fatal(err)
			}
			if code, b := f.serve(body, hdr); code != http.StatusOK {
				t.Fatalf("first click: %d %s; want 200", code, b)
			}
			f.h.Wait()
			before, _ := f.Store.Request(t.Context(), f.req.ID)
			f.Clock.Advance(4 * time.Minute) // still within the window
			code, b := f.serve(body, hdr)
			if code != http.StatusUnauthorized || !strings.Contains(b, "already received") {
				t.Errorf("replay: %d %s; want 401 'already received'", code, b)
			}
			after, _ := f.Store.Request(t.Context(), f.req.ID)
			if got := f.answered(t, "r"); len(got) != 1 || after.State != before.State || len(after.Reviews) != len(before.Reviews) {
				t.Errorf("after the replay: %s, %d reviews, answers %q; want as before: %s, %d reviews, one answer",
					after.State, len(after.Reviews), got, before.State, len(before.Reviews))
			}
		})
	}
}
