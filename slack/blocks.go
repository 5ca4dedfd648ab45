package slack

import (
	"fmt"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/latchdev/latch"
)

// The buttons' action IDs; each button's value is the request's ID.
const (
	ActionApprove = "latch_approve"
	ActionDeny    = "latch_deny"
)

// Blocks is the Block Kit message for e: what is asked, by whom and why,
// where it stands, and while it waits for approval the Approve and Deny
// buttons, mentioning the approvers given.
func Blocks(e latch.Event, mentions []string) []slackapi.Block {
	// verbatim: Slack then links no bare URL, channel name or @here in
	// what people typed (a reason); latch's own <@U…> mentions still work.
	md := func(s string) *slackapi.TextBlockObject {
		return slackapi.NewTextBlockObject(slackapi.MarkdownType, s, false, true)
	}
	title := "Access request " + string(e.RequestID)
	switch {
	case e.BreakGlass:
		title = "🚨 BREAK-GLASS access, opened without approval: " + string(e.RequestID)
	case e.Kind == latch.EventGrantEnding:
		title = "Your access ends soon"
	case e.RequestID == "" && e.GrantID != "":
		title = "Grant " + string(e.GrantID)
	case e.Kind == latch.EventRuleOutOfBand:
		title = "A rule latch did not open"
	}
	blocks := []slackapi.Block{
		slackapi.NewHeaderBlock(slackapi.NewTextBlockObject(slackapi.PlainTextType, truncate(title, 150), false, false)),
	}
	fields := []*slackapi.TextBlockObject{}
	field := func(name, value string) {
		if value != "" {
			fields = append(fields, md(fmt.Sprintf("*%s*\n%s", name, esc(value))))
		}
	}
	field("Requester", e.Requester)
	target := e.Target()
	if e.Region != "" && target != "" {
		target += " (" + e.Region + ")"
	}
	field("Target", target)
	switch {
	case e.Access == latch.AccessSSM:
		access := fmt.Sprintf("Session Manager: %s", e.Document)
		if e.Document.TakesPort() {
			access += fmt.Sprintf(" to port %d", e.FromPort)
		}
		field("Access", access+" (no port opened)")
	case e.Protocol != "":
		field("Access", fmt.Sprintf("%s/%s", e.Protocol, latch.PortRange{From: e.FromPort, To: e.ToPort}))
	}
	field("From", e.Source)
	if e.Duration > 0 {
		field("Duration", (time.Duration(e.Duration) * time.Second).String())
	}
	field("Rule", e.Rule)
	if !e.ExpiresAt.IsZero() {
		field("Until", latch.FormatExpiry(e.ExpiresAt))
	}
	field("Rule ID", e.RuleID)
	if len(fields) > 0 {
		blocks = append(blocks, slackapi.NewSectionBlock(nil, fields[:min(len(fields), 10)], nil))
	}
	if e.Reason != "" {
		blocks = append(blocks, slackapi.NewSectionBlock(md("*Reason*\n>"+truncate(esc(e.Reason), 2000)), nil, nil))
	}
	blocks = append(blocks, slackapi.NewSectionBlock(md(status(e)), nil, nil))
	if e.Kind == latch.EventRequestCreated && !e.BreakGlass {
		if len(mentions) > 0 {
			blocks = append(blocks, slackapi.NewContextBlock("approvers", md("Approvers: "+strings.Join(mentions, " "))))
		}
		blocks = append(blocks, slackapi.NewActionBlock("review",
			slackapi.NewButtonBlockElement(ActionApprove, string(e.RequestID), slackapi.NewTextBlockObject(slackapi.PlainTextType, "Approve", false, false)).WithStyle(slackapi.StylePrimary),
			slackapi.NewButtonBlockElement(ActionDeny, string(e.RequestID), slackapi.NewTextBlockObject(slackapi.PlainTextType, "Deny", false, false)).WithStyle(slackapi.StyleDanger),
		))
	}
	return blocks
}

// status is the line saying where the request or grant stands after e.
func status(e latch.Event) string {
	var s string
	switch e.Kind {
	case latch.EventRequestCreated:
		s = "⏳ *Waiting for approval*"
	case latch.EventBreakGlassUsed:
		s = "🚨 *Break-glass*: opened at once, without approval; review it after the fact"
	case latch.EventRequestApproved:
		s = "✅ *Approved* by " + esc(e.Reviewer)
	case latch.EventRequestDenied:
		s = "⛔ *Denied* by " + esc(e.Reviewer) + ": " + esc(e.ReviewReason)
	case latch.EventRequestWithdrawn:
		s = "↩️ *Withdrawn* by the requester"
	case latch.EventRequestTimedOut:
		s = "⌛ *Timed out* waiting for approval"
	case latch.EventRequestFailed:
		s = "❌ *Approved, but could not open*: " + esc(e.Error)
	case latch.EventGrantOpened:
		s = fmt.Sprintf("🔓 *Open* until %s (grant %s)", latch.FormatExpiry(e.ExpiresAt), e.GrantID)
	case latch.EventGrantEnding:
		s = fmt.Sprintf("⏰ Grant %s ends at %s. Ask again if you need longer.", e.GrantID, latch.FormatExpiry(e.ExpiresAt))
	case latch.EventGrantEnded:
		s = fmt.Sprintf("🔒 *Ended* (%s): grant %s", esc(e.State), e.GrantID)
	case latch.EventGrantRevokeFail:
		s = fmt.Sprintf("⚠️ *Revoking grant %s keeps failing*, still retrying: %s", e.GrantID, esc(e.Error))
	case latch.EventRuleOutOfBand:
		s = "⚠️ " + esc(e.Message())
	default:
		s = esc(e.Message())
	}
	return truncate(s, 2900)
}

// esc escapes what Slack's mrkdwn would read as a mention or a link
// (<!channel>, <https://…|text>) in text people typed, such as a reason.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
