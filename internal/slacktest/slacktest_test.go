package slacktest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/latchdev/latch/internal/slacktest"
)

// The fake answers the real slack-go client as Slack does.
func TestSlackGoAgainstTheFake(t *testing.T) {
	ctx := context.Background()
	s := slacktest.New(t, []string{"ops"}, slacktest.User{ID: "U1", Name: "alice", Email: "alice@example.com"})
	api := slack.New(slacktest.Token, slack.OptionAPIURL(s.APIURL))

	blocks := slack.MsgOptionBlocks(slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "*r-1* wants ssh", false, false), nil, nil))
	ch, ts, err := api.PostMessageContext(ctx, "#ops", slack.MsgOptionText("r-1 wants ssh", false), blocks)
	if err != nil || ch != s.ChannelID("ops") || ts == "" {
		t.Fatalf("post = %q %q %v; want the channel's ID and a ts", ch, ts, err)
	}
	if b := string(s.Messages()[0].Blocks); !strings.Contains(b, "wants ssh") {
		t.Errorf("blocks = %s; want the section as posted", b)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText("approved", false)); err != nil {
		t.Fatal(err)
	}
	m := s.Messages()
	if len(m) != 1 || m[0].Text != "approved" || m[0].Updates != 1 {
		t.Errorf("messages = %+v; want one, updated to 'approved'", m)
	}

	u, err := api.GetUserInfoContext(ctx, "U1")
	if err != nil || u.Profile.Email != "alice@example.com" || u.TeamID != slacktest.Team || !u.IsEmailConfirmed || u.Deleted {
		t.Errorf("users.info = %+v %v", u, err)
	}
	if u, err := api.GetUserByEmailContext(ctx, "Alice@Example.com"); err != nil || u.ID != "U1" {
		t.Errorf("users.lookupByEmail = %+v %v; want U1", u, err)
	}
	if _, err := api.GetUserByEmailContext(ctx, "nobody@example.com"); err == nil || err.Error() != "users_not_found" {
		t.Errorf("users.lookupByEmail of nobody: %v; want users_not_found", err)
	}
	if at, err := api.AuthTestContext(ctx); err != nil || at.TeamID != slacktest.Team {
		t.Errorf("auth.test = %+v %v", at, err)
	}
	if _, err := api.GetUserInfoContext(ctx, "U404"); err == nil || err.Error() != "user_not_found" {
		t.Errorf("unknown user: %v; want user_not_found", err)
	}
	dm, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{"U1"}})
	if err != nil || dm.ID == "" {
		t.Fatalf("conversations.open = %v %v", dm, err)
	}
	if _, _, err := api.PostMessageContext(ctx, dm.ID, slack.MsgOptionText("ends in 5 minutes", false)); err != nil {
		t.Errorf("DM: %v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "#nowhere", slack.MsgOptionText("x", false)); err == nil || err.Error() != "channel_not_found" {
		t.Errorf("unknown channel: %v; want channel_not_found", err)
	}

	s.RateLimit("chat.postMessage", 7*time.Second)
	_, _, err = api.PostMessageContext(ctx, "#ops", slack.MsgOptionText("x", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
		t.Errorf("rate limited: %v; want a RateLimitedError with Retry-After 7s", err)
	}
	if _, _, err := api.PostMessageContext(ctx, "#ops", slack.MsgOptionText("x", false)); err != nil {
		t.Errorf("after the 429: %v", err)
	}

	bad := slack.New("xoxb-wrong", slack.OptionAPIURL(s.APIURL))
	if _, _, err := bad.PostMessageContext(ctx, "#ops", slack.MsgOptionText("x", false)); err == nil || err.Error() != "invalid_auth" {
		t.Errorf("wrong token: %v; want invalid_auth", err)
	}
}

// Interaction signs as Slack does: slack-go's own verifier accepts it,
// and refuses it under another secret.
func TestInteractionIsSignedAsSlackSigns(t *testing.T) {
	body, h, err := slacktest.Interaction("s3cret", time.Now(), map[string]any{"type": "block_actions"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		secret string
		ok     bool
	}{{"s3cret", true}, {"other", false}} {
		v, err := slack.NewSecretsVerifier(h, tt.secret)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = v.Write(body)
		if err := v.Ensure(); (err == nil) != tt.ok {
			t.Errorf("secret %q: Ensure = %v, want ok=%v", tt.secret, err, tt.ok)
		}
	}
}
