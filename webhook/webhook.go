// Package webhook is a [latch.Sink] that POSTs events as signed JSON, for
// PagerDuty, Teams, or any receiver: see docs/WEBHOOKS.md.
//
// Each request carries Latch-Event-Id (the idempotency key, the same on
// every retry), Latch-Timestamp (Unix seconds) and Latch-Signature,
// "v1=" and the hex HMAC-SHA256, under the webhook's secret, of the
// timestamp, ".", and the body. [Verify] checks one.
package webhook

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
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

// The headers a delivery carries.
const (
	HeaderEventID   = "Latch-Event-Id"
	HeaderEventKind = "Latch-Event-Kind"
	HeaderTimestamp = "Latch-Timestamp"
	HeaderSignature = "Latch-Signature"
)

// DefaultWindow is how far a receiver should let a delivery's timestamp
// be from its own clock: past it, Verify refuses a replay.
const DefaultWindow = 5 * time.Minute

// Hook is one configured webhook. Its secret comes from a file or the
// environment, never the policy, and is never logged: Hook has no String
// that shows it, and errors name the hook, not its URL (which may hold a
// token, as Teams' do).
type Hook struct {
	URL    string
	Secret []byte
}

// Options configures a Sink. The zero value is ready to use.
type Options struct {
	Client *http.Client // nil means a client that follows no redirects
	Clock  latch.Clock  // stamps Latch-Timestamp; nil means latch.SystemClock
}

// Sink delivers events to named webhooks.
type Sink struct {
	hooks  map[string]Hook
	client *http.Client
	clock  latch.Clock
}

var _ latch.Sink = (*Sink)(nil)

// New returns a sink for hooks, by name.
func New(hooks map[string]Hook, opts Options) *Sink {
	s := &Sink{hooks: hooks, client: opts.Client, clock: opts.Clock}
	if s.client == nil {
		// A redirect would carry a signed body somewhere nobody configured.
		s.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if s.clock == nil {
		s.clock = latch.SystemClock{}
	}
	return s
}

// Body is what a delivery's body holds: the event and its one-line message.
type Body struct {
	latch.Event
	Message string `json:"message"`
}

// Deliver POSTs e to the hook to.To names. A 2xx answer is delivered; a
// 400, 404, 410 or 413 cannot succeed on retry and is EINVALID, as is an
// unknown hook; anything else is an error to retry.
func (s *Sink) Deliver(ctx context.Context, to latch.Route, e latch.Event) error {
	h, ok := s.hooks[to.To]
	if !ok {
		return latch.Invalidf("webhook", "no webhook is named %q; configure it with --webhook %s=URL", to.To, to.To)
	}
	body, err := json.Marshal(Body{Event: e, Message: e.Message()})
	if err != nil {
		return fmt.Errorf("webhook %s: %w", to.To, err)
	}
	ts := strconv.FormatInt(s.clock.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return latch.Invalidf("webhook", "webhook %s: its URL is not usable", to.To)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "latch-webhook/1")
	req.Header.Set(HeaderEventID, string(e.ID))
	req.Header.Set(HeaderEventKind, string(e.Kind))
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, "v1="+Sign(h.Secret, ts, body))
	resp, err := s.client.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // url.Error repeats the URL
		}
		return fmt.Errorf("webhook %s: %w", to.To, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is reused
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusBadRequest, resp.StatusCode == http.StatusNotFound,
		resp.StatusCode == http.StatusGone, resp.StatusCode == http.StatusRequestEntityTooLarge:
		return latch.Invalidf("webhook", "webhook %s answered %s", to.To, resp.Status)
	}
	err = fmt.Errorf("webhook %s answered %s", to.To, resp.Status)
	if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs > 0 &&
		(resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		// A receiver's wish is honoured up to an hour: beyond that the
		// backoff, capped the same, is as polite.
		return &latch.RetryAfterError{After: min(time.Duration(secs)*time.Second, time.Hour), Err: err}
	}
	return err
}

// Sign returns the hex HMAC-SHA256 under secret of timestamp, ".", and body.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery as a receiver gets it: signature is the
// Latch-Signature header (one or more comma-separated "v1=HEX"; one must
// match), timestamp the Latch-Timestamp header, body the raw body. It
// refuses a timestamp more than window from now, so that a captured
// delivery cannot be replayed later. Receivers still deduplicate by
// Latch-Event-Id: a retry is a new delivery with a new timestamp.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, window time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%s %q is not Unix seconds", HeaderTimestamp, timestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return fmt.Errorf("%s is %v from now, outside %v", HeaderTimestamp, d.Round(time.Second), window)
	}
	want := Sign(secret, timestamp, body)
	for _, part := range strings.Split(signature, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if ok && hmac.Equal([]byte(v), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("%s does not match the body", HeaderSignature)
}
