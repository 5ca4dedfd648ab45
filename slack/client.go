// Package slack is latch's Slack adapter, over github.com/slack-go/slack:
// a [latch.Sink] that posts a Block Kit message per request to the
// channels a policy rule names and edits it as the request and its grant
// move on, DMs requesters before their grant ends, and [Interactions],
// the handler for the Approve and Deny buttons.
//
// # Who clicked
//
// A click is signed by Slack (the app's signing secret, a timestamp
// within [DefaultWindow]) and names a Slack user. latch asks Slack about
// that user (users.info, with the bot token) and makes a
// [latch.KindSlack] identity: the workspace, the user ID, and the email
// only when Slack says it is confirmed. Deleted users, bots, app users
// and users of another workspace (a shared channel) are refused. The
// identity then goes through the same review as the API's
// (broker.Access.Review): it counts only if the policy's people section
// links it to a person (slack: [USER_ID or email]), and is refused when
// latch cannot tell that person from the requester (latch.Distinct,
// which also refuses one verified email on both sides). Slack proves no
// groups, so a Slack reviewer is an approver only by a users entry.
package slack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/latchdev/latch"
)

// Client is the Slack Web API as latch uses it, with the bot token. The
// token is kept by slack-go and sent in the Authorization header: it is
// in no error, log or String.
type Client struct {
	api *slackapi.Client

	mu   sync.Mutex
	team string // the token's workspace, once auth.test has said
}

// ClientOptions configures a Client. The zero value talks to Slack.
type ClientOptions struct {
	APIURL     string       // the Web API's base URL, ending in /; "" means Slack's (tests give a fake's)
	HTTPClient *http.Client // nil means one with a 10 s timeout
}

// NewClient returns a client acting with the bot token.
func NewClient(token string, opts ClientOptions) *Client {
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	o := []slackapi.Option{slackapi.OptionHTTPClient(hc)}
	if opts.APIURL != "" {
		o = append(o, slackapi.OptionAPIURL(opts.APIURL))
	}
	return &Client{api: slackapi.New(token, o...)}
}

// Team returns the workspace the bot token belongs to, asking Slack once.
func (c *Client) Team(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.team != "" {
		return c.team, nil
	}
	at, err := c.api.AuthTestContext(ctx)
	if err != nil {
		return "", translate("auth.test", err)
	}
	if at.TeamID == "" {
		return "", errors.New("slack auth.test: no team_id")
	}
	c.team = at.TeamID
	return c.team, nil
}

// userByEmail returns the Slack user ID of the workspace member with
// email, or "" when there is none.
func (c *Client) userByEmail(ctx context.Context, email string) (string, error) {
	u, err := c.api.GetUserByEmailContext(ctx, email)
	if err != nil {
		if isSlackError(err, "users_not_found", "user_not_found") {
			return "", nil
		}
		return "", translate("users.lookupByEmail", err)
	}
	if u.Deleted || u.IsBot {
		return "", nil
	}
	return u.ID, nil
}

// giveUp are Slack's answers that no retry can change: the event is given
// up (EINVALID) rather than retried for a day.
var giveUp = []string{
	"channel_not_found", "not_in_channel", "is_archived", "msg_too_long", "no_text", "invalid_blocks",
	"invalid_auth", "not_authed", "account_inactive", "token_revoked", "missing_scope", "restricted_action",
	"message_not_found", "cant_update_message", "edit_window_closed",
}

// translate turns a slack-go error into latch's vocabulary: a 429 into a
// RetryAfterError with Slack's Retry-After, a hopeless answer into
// EINVALID, anything else into an error to retry. It names the method,
// never the token, and drops the URL a transport error repeats.
func translate(method string, err error) error {
	if rl, ok := errors.AsType[*slackapi.RateLimitedError](err); ok {
		return &latch.RetryAfterError{After: rl.RetryAfter, Err: fmt.Errorf("slack %s: rate limited", method)}
	}
	for _, code := range giveUp {
		if isSlackError(err, code) {
			return latch.Invalidf("slack", "slack %s: %s", method, code)
		}
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	return fmt.Errorf("slack %s: %w", method, err)
}

// isSlackError reports whether err is Slack's {"ok": false} answer with
// one of codes.
func isSlackError(err error, codes ...string) bool {
	var code string
	if se, ok := errors.AsType[slackapi.SlackErrorResponse](err); ok {
		code = se.Err
	} else if err != nil {
		code = err.Error() // slack-go returns most answers as errors.New(code)
	}
	for _, c := range codes {
		if strings.EqualFold(code, c) {
			return true
		}
	}
	return false
}
