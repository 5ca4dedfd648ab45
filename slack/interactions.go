package slack

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/latchdev/latch"
)

// DefaultWindow is how far a click's X-Slack-Request-Timestamp may be from
// latch's clock, as Slack advises: past it, a captured request cannot be
// replayed.
const DefaultWindow = 5 * time.Minute

// maxBody bounds an interaction's body; Slack's are a few kilobytes.
const maxBody = 64 << 10

// Reviewer records a review: broker.Access.Review, the one review path.
type Reviewer interface {
	Review(ctx context.Context, who latch.Identity, id latch.RequestID, approve bool, reason string) (latch.Request, error)
}

// InteractionOptions configures Interactions. Clock is required in spirit:
// nil means the wall clock.
type InteractionOptions struct {
	Clock  latch.Clock
	Logger *slog.Logger // nil discards
	Window time.Duration
	// People returns the policy's people section in force, to tell a
	// clicker Slack knows but latch does not how to be linked. nil
	// links nobody.
	People func() latch.People
	// ResponseURLs are the prefixes a payload's response_url must have
	// for latch to post its answer there; nil means Slack's
	// (https://hooks.slack.com/). Anything else is ignored: latch posts
	// only where Slack would have it post.
	ResponseURLs []string
	HTTPClient   *http.Client // posts to response_url; nil means a 5 s timeout

	// Context is what reviews run under once a click is acknowledged:
	// not the click's request, which ends with the acknowledgement, but
	// the server's, so shutting down cancels them. nil means
	// context.Background().
	Context context.Context
	// ReviewTimeout bounds a review after the acknowledgement (opening a
	// grant calls AWS); 0 means DefaultReviewTimeout.
	ReviewTimeout time.Duration
	// Once records each click's signature until its timestamp leaves the
	// window, so that a captured click replayed within the window is
	// refused. Give the store (latch.Store's UseOnce), which replicas
	// share; nil keeps them in memory, which protects this process only.
	Once Once
}

// Once is latch.Store's UseOnce: it records key until the time until and
// reports whether key was fresh.
type Once interface {
	UseOnce(ctx context.Context, key string, until time.Time) (fresh bool, err error)
}

// DefaultReviewTimeout bounds a review done after Slack was answered.
const DefaultReviewTimeout = 30 * time.Second

// Interactions is the http.Handler for Slack's interactivity requests:
// the Approve and Deny buttons of request messages. Mount it where the
// app's manifest points (the server uses /slack/interactions).
type Interactions struct {
	c        *Client
	secret   []byte
	reviewer Reviewer
	opts     InteractionOptions
	log      *slog.Logger
	running  sync.WaitGroup // reviews started after an acknowledgement
}

// NewInteractions returns the handler, verifying requests with the app's
// signing secret and reviewing through r.
func NewInteractions(c *Client, signingSecret []byte, r Reviewer, opts InteractionOptions) *Interactions {
	if opts.Clock == nil {
		opts.Clock = latch.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.People == nil {
		opts.People = func() latch.People { return latch.NoPeople{} }
	}
	if opts.ResponseURLs == nil {
		opts.ResponseURLs = []string{"https://hooks.slack.com/"}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	if opts.ReviewTimeout <= 0 {
		opts.ReviewTimeout = DefaultReviewTimeout
	}
	if opts.Once == nil {
		opts.Once = newMemOnce(opts.Clock, maxMemOnce)
	}
	return &Interactions{c: c, secret: signingSecret, reviewer: r, opts: opts, log: opts.Logger}
}

// Wait returns once every review started so far has finished and its
// answer was posted: at shutdown, after the server stops taking clicks,
// and in tests.
func (h *Interactions) Wait() { h.running.Wait() }

// ServeHTTP verifies the request came from Slack and was not seen before,
// checks the clicking user, and then answers Slack at once: Slack waits 3
// seconds for an answer, and an approval may open the grant (AWS calls).
// The review itself runs after the answer, bounded by ReviewTimeout, and
// its outcome goes to the clicker through the payload's response_url
// (ephemerally: only they see it). Refusals that need no review (a bad
// signature, a stale or replayed click, a clicker latch cannot link) are
// answered in the response. Nothing is reviewed unless every check passes.
func (h *Interactions) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	if err := h.verify(r.Header, body); err != nil {
		h.log.WarnContext(r.Context(), "slack interaction refused", "err", err, "remote", r.RemoteAddr)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "not a form", http.StatusBadRequest)
		return
	}
	var p slackapi.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &p); err != nil {
		http.Error(w, "payload is not an interaction", http.StatusBadRequest)
		return
	}
	if err := h.once(r.Context(), r.Header); err != nil {
		h.log.WarnContext(r.Context(), "slack interaction refused", "err", err, "remote", r.RemoteAddr)
		code := http.StatusUnauthorized
		if !errors.Is(err, errReplay) {
			code = http.StatusServiceUnavailable
		}
		http.Error(w, err.Error(), code)
		return
	}
	rv, text := h.check(r.Context(), p)
	if rv == nil {
		h.respond(r.Context(), p.ResponseURL, text)
		h.answer(w, text)
		return
	}
	h.running.Add(1)
	go func() {
		defer h.running.Done()
		ctx, cancel := context.WithTimeout(h.opts.Context, h.opts.ReviewTimeout)
		defer cancel()
		h.respond(ctx, p.ResponseURL, h.review(ctx, rv))
	}()
	h.answer(w, fmt.Sprintf("Recording your %s of request %s…", rv.verb(), rv.id))
}

// answer is the acknowledgement's body: an ephemeral message.
func (h *Interactions) answer(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"response_type": "ephemeral", "replace_original": false, "text": text})
}

// errReplay is a click whose signature was seen within the window.
var errReplay = errors.New("this click was already received: a replay is refused")

// once records the click's signature until its timestamp leaves the
// window, or says it was seen. verify has checked both headers.
func (h *Interactions) once(ctx context.Context, hdr http.Header) error {
	sec, _ := strconv.ParseInt(hdr.Get("X-Slack-Request-Timestamp"), 10, 64)
	until := time.Unix(sec, 0).Add(h.opts.Window + time.Second)
	fresh, err := h.opts.Once.UseOnce(ctx, "slack-interaction:"+hdr.Get("X-Slack-Signature"), until)
	switch {
	case err != nil:
		h.log.ErrorContext(ctx, "slack interaction: record its signature", "err", err)
		return errors.New("latch could not record this click; try again")
	case !fresh:
		return errReplay
	}
	return nil
}

// verify checks X-Slack-Signature ("v0=" and the hex HMAC-SHA256 of
// "v0:TIMESTAMP:BODY" under the signing secret) in constant time, and that
// the timestamp is within the window of latch's clock. It checks the
// window itself, rather than through slack-go's verifier, which reads the
// wall clock.
func (h *Interactions) verify(hdr http.Header, body []byte) error {
	ts := hdr.Get("X-Slack-Request-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("X-Slack-Request-Timestamp %q is not Unix seconds", ts)
	}
	if d := h.opts.Clock.Now().Sub(time.Unix(sec, 0)); d > h.opts.Window || d < -h.opts.Window {
		return fmt.Errorf("X-Slack-Request-Timestamp is %v from now, outside %v", d.Round(time.Second), h.opts.Window)
	}
	mac := hmac.New(sha256.New, h.secret)
	fmt.Fprintf(mac, "v0:%s:", ts)
	mac.Write(body)
	want := "v0=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(hdr.Get("X-Slack-Signature")), []byte(want)) {
		return fmt.Errorf("X-Slack-Signature does not match the body")
	}
	return nil
}

// pendingReview is a checked click, to be reviewed.
type pendingReview struct {
	who     latch.Identity
	id      latch.RequestID
	approve bool
	log     *slog.Logger
}

func (rv *pendingReview) verb() string {
	if rv.approve {
		return "approval"
	}
	return "denial"
}

// check reads a verified interaction and returns the review it asks for,
// or nil and what to tell the clicker.
func (h *Interactions) check(ctx context.Context, p slackapi.InteractionCallback) (*pendingReview, string) {
	if p.Type != slackapi.InteractionTypeBlockActions || len(p.ActionCallback.BlockActions) != 1 {
		return nil, "latch only understands its Approve and Deny buttons."
	}
	a := p.ActionCallback.BlockActions[0]
	approve := a.ActionID == ActionApprove
	if !approve && a.ActionID != ActionDeny {
		return nil, "latch only understands its Approve and Deny buttons."
	}
	id, err := latch.ParseRequestID(a.Value)
	if err != nil {
		return nil, "That button names no request."
	}
	who, refusal := h.clicker(ctx, p)
	log := h.log.With("request_id", id, "slack_user", p.User.ID, "approve", approve)
	if refusal != "" {
		log.InfoContext(ctx, "slack review refused", "why", refusal)
		return nil, refusal
	}
	return &pendingReview{who: who, id: id, approve: approve, log: log}, ""
}

// review records a checked click's review and returns what to tell the
// clicker.
func (h *Interactions) review(ctx context.Context, rv *pendingReview) string {
	reason := ""
	if !rv.approve {
		reason = "denied in Slack" // Review needs a reason for a denial; a button has none
	}
	rq, err := h.reviewer.Review(ctx, rv.who, rv.id, rv.approve, reason)
	if err != nil {
		rv.log.InfoContext(ctx, "slack review refused", "reviewer", rv.who.String(), "err", err)
		return "Not recorded: " + latch.ErrorMessage(err)
	}
	rv.log.InfoContext(ctx, "slack review", "reviewer", rv.who.String(), "state", rq.State)
	verdict := "denied"
	if rv.approve {
		verdict = "approved"
	}
	return fmt.Sprintf("You %s request %s; it is now %s.", verdict, rv.id, rq.State)
}

// clicker makes the clicker's identity, or says why there is none. The
// user must be a live human member of the bot's own workspace; the email
// is kept only when Slack says it is confirmed. A user the policy's
// people section does not link to a person is refused here with how to
// link them; Review would refuse them too (latch.Distinct cannot tell an
// unlinked Slack user from anyone), less helpfully.
func (h *Interactions) clicker(ctx context.Context, p slackapi.InteractionCallback) (latch.Identity, string) {
	team, err := h.c.Team(ctx)
	if err != nil {
		h.log.ErrorContext(ctx, "slack team", "err", err)
		return latch.Identity{}, "latch could not reach Slack to check who you are; try again."
	}
	if p.Team.ID != team {
		return latch.Identity{}, "This button belongs to another Slack workspace."
	}
	u, err := h.c.api.GetUserInfoContext(ctx, p.User.ID)
	if err != nil {
		h.log.WarnContext(ctx, "slack users.info", "slack_user", p.User.ID, "err", translate("users.info", err))
		return latch.Identity{}, "latch could not look you up in Slack; try again."
	}
	switch {
	case u.ID != p.User.ID || u.Deleted || u.IsBot || u.IsAppUser:
		return latch.Identity{}, "Only people can review requests."
	case u.TeamID != team:
		return latch.Identity{}, "Only members of this workspace can review requests; a shared channel's guests cannot."
	}
	who := latch.Identity{Kind: latch.KindSlack, Issuer: team, Subject: u.ID, Name: u.RealName}
	if u.IsEmailConfirmed {
		who.Email = u.Profile.Email
	}
	if person, _ := h.opts.People().Person(who); person == "" {
		also := ""
		if who.Email != "" {
			also = " or slack: [" + who.Email + "]"
		}
		return latch.Identity{}, fmt.Sprintf("Your Slack user %s is not linked to a latch person, so latch cannot tell you from the requester. "+
			"Ask a latch admin to add slack: [%s]%s to your entry in the policy's people section.", u.ID, u.ID, also)
	}
	return who, ""
}

// respond posts text to the interaction's response_url, ephemerally, if
// it is Slack's. A failure only costs the clicker the answer.
func (h *Interactions) respond(ctx context.Context, responseURL, text string) {
	if responseURL == "" || !h.allowed(responseURL) {
		return
	}
	body, _ := json.Marshal(map[string]any{"response_type": "ephemeral", "replace_original": false, "text": text})
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responseURL, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.opts.HTTPClient.Do(req)
	if err != nil {
		h.log.WarnContext(ctx, "slack response_url", "err", "post failed") // its URL is a bearer capability: not logged
		return
	}
	resp.Body.Close()
}

func (h *Interactions) allowed(u string) bool {
	for _, p := range h.opts.ResponseURLs {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}
