package slack

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"

	slackapi "github.com/slack-go/slack"

	"github.com/latchdev/latch"
)

// Sink posts events to the Slack channels policy rules name. A request's
// first event posts a message, with Approve and Deny buttons while it
// waits for approval; each later event about the request edits that
// message (chat.update) to say where it stands. A grant's ending notice
// goes to its requester by DM.
type Sink struct {
	c         *Client
	refs      latch.MessageRefs
	approvers func(rule string) []string
	log       *slog.Logger
	// locks serialise the deliveries of one request's events (striped by
	// its ID), which the worker may run at once: two of them finding no
	// message yet would post two.
	locks [64]sync.Mutex
}

var _ latch.Sink = (*Sink)(nil)

// SinkOptions configures a Sink. The zero value is ready to use.
type SinkOptions struct {
	// Approvers returns the users entries of a rule's approval, for
	// mentions: those that are emails of workspace members are mentioned
	// (users.lookupByEmail); groups and other names are not, as latch
	// cannot tell who is in them. nil mentions nobody.
	Approvers func(rule string) []string
	Logger    *slog.Logger // nil discards
}

// NewSink returns a sink posting with c, remembering messages in refs.
func NewSink(c *Client, refs latch.MessageRefs, opts SinkOptions) *Sink {
	s := &Sink{c: c, refs: refs, approvers: opts.Approvers, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Deliver implements latch.Sink. It is safe to repeat: a request's
// message is posted once (its ref is checked first) and edits render the
// whole message from the event.
func (s *Sink) Deliver(ctx context.Context, to latch.Route, e latch.Event) error {
	if to.Sink != latch.SinkSlack {
		return latch.Invalidf("route", "the slack sink cannot deliver to %s", to)
	}
	switch {
	case e.Kind == latch.EventGrantEnding:
		return s.dm(ctx, e)
	case e.Kind == latch.EventRequestCreated && e.BreakGlass:
		return nil // its breakglass.used posts the one message, marked as such
	case e.RequestID == "":
		return s.post(ctx, to, e, nil) // a direct grant, a rule found out of band: nothing to edit
	}
	mu := &s.locks[stripe(e.RequestID, len(s.locks))]
	mu.Lock()
	defer mu.Unlock()
	ref, err := s.refs.MessageRef(ctx, e.RequestID, to)
	switch {
	case err == nil && e.Kind.Stage() < ref.Stage:
		// Late (a retry, a replica): the message already shows a later
		// state, which this would overwrite.
		s.log.Debug("slack: event older than its message; not edited", "event_id", e.ID, "kind", e.Kind, "request_id", e.RequestID)
		return nil
	case err == nil:
		return s.update(ctx, ref, e)
	case latch.ErrorCode(err) != latch.ENOTFOUND:
		return fmt.Errorf("slack: message of %s: %w", e.RequestID, err)
	}
	var mentions []string
	if e.Kind == latch.EventRequestCreated {
		mentions = s.mentions(ctx, e.Rule)
	}
	return s.post(ctx, to, e, mentions)
}

// post posts e's message to to's channel, and remembers it for edits when
// e is about a request.
func (s *Sink) post(ctx context.Context, to latch.Route, e latch.Event, mentions []string) error {
	ch, ts, err := s.c.api.PostMessageContext(ctx, to.To, slackapi.MsgOptionText(e.Message(), true), slackapi.MsgOptionBlocks(Blocks(e, mentions)...))
	if err != nil {
		return translate("chat.postMessage", err)
	}
	if e.RequestID == "" {
		return nil
	}
	// Should this fail, the retry posts again: a second message beats a
	// lost one.
	if err := s.refs.SaveMessageRef(ctx, latch.MessageRef{RequestID: e.RequestID, Route: to, Channel: ch, MessageID: ts, Stage: e.Kind.Stage()}); err != nil {
		return fmt.Errorf("slack: remember message of %s: %w", e.RequestID, err)
	}
	return nil
}

func (s *Sink) update(ctx context.Context, ref latch.MessageRef, e latch.Event) error {
	_, _, _, err := s.c.api.UpdateMessageContext(ctx, ref.Channel, ref.MessageID,
		slackapi.MsgOptionText(e.Message(), true), slackapi.MsgOptionBlocks(Blocks(e, nil)...))
	if err != nil {
		return translate("chat.update", err)
	}
	ref.Stage = e.Kind.Stage()
	if err := s.refs.SaveMessageRef(ctx, ref); err != nil {
		return fmt.Errorf("slack: remember message of %s: %w", e.RequestID, err)
	}
	return nil
}

// stripe picks one of n locks for id.
func stripe(id latch.RequestID, n int) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

// mentions returns Slack mentions (<@U…>) of rule's approvers that are
// workspace members by email. A failed lookup costs the mention, not the
// message.
func (s *Sink) mentions(ctx context.Context, rule string) []string {
	if s.approvers == nil {
		return nil
	}
	var out []string
	for _, u := range s.approvers(rule) {
		if !strings.Contains(u, "@") {
			continue
		}
		id, err := s.c.userByEmail(ctx, u)
		if err != nil {
			s.log.DebugContext(ctx, "approver not mentioned", "rule", rule, "approver", u, "err", err)
			continue
		}
		if id != "" {
			out = append(out, "<@"+id+">")
		}
	}
	return out
}

// dm sends e, a grant's ending notice, to its requester: the workspace
// member with the requester's email. A requester Slack does not know
// (no email, or none of its members) gets no DM, which is no failure.
func (s *Sink) dm(ctx context.Context, e latch.Event) error {
	if !strings.Contains(e.Requester, "@") {
		s.log.DebugContext(ctx, "no DM: the requester has no email", "grant_id", e.GrantID)
		return nil
	}
	id, err := s.c.userByEmail(ctx, e.Requester)
	if err != nil {
		return err
	}
	if id == "" {
		s.log.DebugContext(ctx, "no DM: the requester is not in the Slack workspace", "grant_id", e.GrantID)
		return nil
	}
	ch, _, _, err := s.c.api.OpenConversationContext(ctx, &slackapi.OpenConversationParameters{Users: []string{id}})
	if err != nil {
		return translate("conversations.open", err)
	}
	if _, _, err := s.c.api.PostMessageContext(ctx, ch.ID, slackapi.MsgOptionText(e.Message(), true), slackapi.MsgOptionBlocks(Blocks(e, nil)...)); err != nil {
		return translate("chat.postMessage", err)
	}
	return nil
}
