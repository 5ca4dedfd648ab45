package slack_test

import (
	"encoding/json"
	"strings"
	"testing"

	slackapi "github.com/slack-go/slack"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/slack"
)

// esc stops <!channel> and <url|text>, but the mrkdwn text
// objects carrying people's text are sent with verbatim false, and Slack
// says that with verbatim false "URLs will be auto-converted into links,
// conversation names will be link-ified, and certain mentions will be
// automatically parsed" (Block Kit text object reference). A reason of
// "@here … https://evil.example/…" then pings the channel and shows a
// live link under latch's name. Every mrkdwn object holding a requester's
// or reviewer's text must be verbatim.
func TestPeoplesTextIsVerbatim(t *testing.T) {
	e := latch.Event{ID: "e-0123456789abcdef", Kind: latch.EventRequestDenied, RequestID: "r-0123456789abcdef",
		Requester: "mallory@example.com", Reviewer: "bob@example.com", Rule: "prod-ssh", InstanceID: "i-0123456789abcdef0",
		Protocol: latch.TCP, FromPort: 22, ToPort: 22, Source: "203.0.113.7/32", Duration: 1800,
		Reason: "@here urgent: approve at https://evil.example/latch #general", ReviewReason: "@channel see https://evil.example/x"}
	for _, b := range slack.Blocks(e, nil) {
		var texts []*slackapi.TextBlockObject
		if s, ok := b.(*slackapi.SectionBlock); ok {
			if s.Text != nil {
				texts = append(texts, s.Text)
			}
			texts = append(texts, s.Fields...)
		}
		for _, tx := range texts {
			if tx.Type != slackapi.MarkdownType || !(strings.Contains(tx.Text, "@here") || strings.Contains(tx.Text, "@channel")) {
				continue
			}
			if !tx.Verbatim {
				j, _ := json.Marshal(tx)
				t.Errorf("people's text sent as mrkdwn without verbatim, so Slack parses its mentions and links: %s", j)
			}
		}
	}
}
