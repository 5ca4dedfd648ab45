// Package slacktest runs a fake of the Slack Web API for tests, on
// 127.0.0.1: the methods latch's notifications call (chat.postMessage,
// chat.update, users.info, users.lookupByEmail, conversations.open,
// auth.test), with Slack's envelope
// ({"ok": false, "error": "…"}) and its 429 with Retry-After, so tests
// drive the real slack-go client (slack.OptionAPIURL(server.APIURL)).
// It also signs interactivity requests as Slack does, for the handler
// that receives button clicks.
package slacktest

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Token is the bot token the fake accepts.
const Token = "xoxb-latch-test"

// Team is the workspace the fake is, and its users' team unless they name
// another.
const Team = "T0000001"

// Message is a message as the fake holds it: posted, then perhaps updated.
type Message struct {
	Channel string // the channel's ID
	TS      string
	Text    string
	Blocks  json.RawMessage // as posted: a JSON array, or nil
	Updates int             // how many chat.update calls changed it
}

// User is a workspace member.
type User struct {
	ID, Name, Email string
	Bot             bool
	Deleted         bool
	Unconfirmed     bool   // the email is not confirmed (is_email_confirmed: false)
	Team            string // "" means Team: another team's user is one from a shared channel
}

func (u User) object() map[string]any {
	return map[string]any{"id": u.ID, "name": u.Name, "is_bot": u.Bot, "deleted": u.Deleted,
		"team_id": cmp.Or(u.Team, Team), "is_email_confirmed": !u.Unconfirmed,
		"profile": map[string]any{"email": u.Email, "real_name": u.Name}}
}

// Response is what an app posted to an interaction's response_url.
type Response struct {
	Path string
	Body map[string]any
}

// Server is the fake. Its zero value is not usable: call New.
type Server struct {
	// APIURL is the base URL to give slack.OptionAPIURL (it ends in /).
	APIURL string

	mu       sync.Mutex
	channels map[string]string // name without '#' → ID
	users    map[string]User
	messages []*Message
	calls    map[string]int
	limited  map[string][]time.Duration // method → Retry-Afters still to answer
	seq      int
	url      string
	resps    []Response
}

// New starts a fake with the named channels (without '#') and users.
func New(t testing.TB, channels []string, users ...User) *Server {
	t.Helper()
	s := &Server{channels: map[string]string{}, users: map[string]User{}, calls: map[string]int{}, limited: map[string][]time.Duration{}}
	for i, name := range channels {
		s.channels[name] = fmt.Sprintf("C%08d", i+1)
	}
	for _, u := range users {
		s.users[u.ID] = u
	}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.APIURL = srv.URL + "/api/"
	s.url = srv.URL
	return s
}

// ResponseURL returns a response_url for an interaction: posts to it are
// kept, for Responses.
func (s *Server) ResponseURL(name string) string { return s.url + "/actions/" + name }

// Responses returns what was posted to response URLs, oldest first.
func (s *Server) Responses() []Response {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Response(nil), s.resps...)
}

// ChannelID is the ID of the channel name (with or without '#'), or "".
func (s *Server) ChannelID(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channels[strings.TrimPrefix(name, "#")]
}

// RateLimit makes the next len(retryAfter) calls of method answer 429,
// each with its Retry-After.
func (s *Server) RateLimit(method string, retryAfter ...time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limited[method] = append(s.limited[method], retryAfter...)
}

// Calls is how many times method was called, answered 429 or not.
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Messages returns a copy of every message posted, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		out[i] = *m
	}
	return out
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if name, ok := strings.CutPrefix(r.URL.Path, "/actions/"); ok && r.Method == http.MethodPost {
		var body map[string]any
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.resps = append(s.resps, Response{Path: name, Body: body})
		s.mu.Unlock()
		return
	}
	method, ok := strings.CutPrefix(r.URL.Path, "/api/")
	if !ok || r.Method != http.MethodPost && r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[method]++
	if q := s.limited[method]; len(q) > 0 {
		s.limited[method] = q[1:]
		w.Header().Set("Retry-After", strconv.Itoa(int(q[0].Seconds())))
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	args, err := params(r)
	if err != nil {
		reply(w, nil, "invalid_form_data")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+Token && args.Get("token") != Token {
		reply(w, nil, "invalid_auth")
		return
	}
	switch method {
	case "chat.postMessage":
		s.post(w, args)
	case "chat.update":
		s.update(w, args)
	case "users.info":
		u, ok := s.users[args.Get("user")]
		if !ok {
			reply(w, nil, "user_not_found")
			return
		}
		reply(w, map[string]any{"user": u.object()}, "")
	case "users.lookupByEmail":
		for _, u := range s.users {
			if u.Email != "" && strings.EqualFold(u.Email, args.Get("email")) {
				reply(w, map[string]any{"user": u.object()}, "")
				return
			}
		}
		reply(w, nil, "users_not_found")
	case "auth.test":
		reply(w, map[string]any{"team_id": Team, "team": "latch-test", "user_id": "UBOT", "user": "latch", "bot_id": "BBOT"}, "")
	case "conversations.open":
		id := args.Get("users")
		if _, ok := s.users[id]; !ok || strings.Contains(id, ",") {
			reply(w, nil, "user_not_found")
			return
		}
		reply(w, map[string]any{"channel": map[string]any{"id": "D" + id}}, "")
	default:
		reply(w, nil, "unknown_method")
	}
}

// channel resolves what chat.postMessage accepts: an ID, a '#name', a
// name, or a DM channel conversations.open gave.
func (s *Server) channel(c string) (string, bool) {
	if id, ok := s.channels[strings.TrimPrefix(c, "#")]; ok {
		return id, true
	}
	for _, id := range s.channels {
		if id == c {
			return id, true
		}
	}
	if u, ok := strings.CutPrefix(c, "D"); ok {
		_, known := s.users[u]
		return c, known
	}
	if _, ok := s.users[c]; ok { // a user ID posts to the app's DM with them
		return "D" + c, true
	}
	return "", false
}

func (s *Server) post(w http.ResponseWriter, args url.Values) {
	ch, ok := s.channel(args.Get("channel"))
	if !ok {
		reply(w, nil, "channel_not_found")
		return
	}
	blocks, err := blocksOf(args)
	if err != nil {
		reply(w, nil, "invalid_blocks")
		return
	}
	if args.Get("text") == "" && blocks == nil {
		reply(w, nil, "no_text")
		return
	}
	s.seq++
	m := &Message{Channel: ch, TS: fmt.Sprintf("1700000000.%06d", s.seq), Text: args.Get("text"), Blocks: blocks}
	s.messages = append(s.messages, m)
	reply(w, map[string]any{"channel": ch, "ts": m.TS, "message": map[string]any{"text": m.Text, "ts": m.TS}}, "")
}

func (s *Server) update(w http.ResponseWriter, args url.Values) {
	for _, m := range s.messages {
		if m.Channel == args.Get("channel") && m.TS == args.Get("ts") {
			blocks, err := blocksOf(args)
			if err != nil {
				reply(w, nil, "invalid_blocks")
				return
			}
			m.Text, m.Blocks = args.Get("text"), blocks
			m.Updates++
			reply(w, map[string]any{"channel": m.Channel, "ts": m.TS, "text": m.Text}, "")
			return
		}
	}
	reply(w, nil, "message_not_found")
}

func blocksOf(args url.Values) (json.RawMessage, error) {
	b := args.Get("blocks")
	if b == "" {
		return nil, nil
	}
	var v []json.RawMessage
	if err := json.Unmarshal([]byte(b), &v); err != nil {
		return nil, err
	}
	return json.RawMessage(b), nil
}

// params reads a Web API call's arguments: a form (what slack-go sends
// for most methods), a JSON body, or the query string.
func params(r *http.Request) (url.Values, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		return r.Form, nil
	}
	var body map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		return nil, err
	}
	v := r.URL.Query()
	for k, x := range body {
		switch x := x.(type) {
		case string:
			v.Set(k, x)
		default:
			b, _ := json.Marshal(x)
			v.Set(k, string(b))
		}
	}
	return v, nil
}

func reply(w http.ResponseWriter, fields map[string]any, errCode string) {
	body := map[string]any{"ok": errCode == ""}
	if errCode != "" {
		body["error"] = errCode
	}
	for k, v := range fields {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(body)
}

// Sign returns the headers Slack sends with a request to an app's
// interactivity URL: X-Slack-Request-Timestamp and X-Slack-Signature,
// "v0=" and the hex HMAC-SHA256, keyed by the signing secret, of
// "v0:TIMESTAMP:BODY".
func Sign(secret string, at time.Time, body []byte) http.Header {
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "v0:%s:", ts)
	mac.Write(body)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", ts)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return h
}

// Interaction is the body and headers of a signed interactivity request
// carrying payload (a block_actions payload, say): a form whose one field,
// payload, is the JSON.
func Interaction(secret string, at time.Time, payload any) ([]byte, http.Header, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, nil, err
	}
	body := []byte(url.Values{"payload": {string(p)}}.Encode())
	h := Sign(secret, at, body)
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return body, h, nil
}
