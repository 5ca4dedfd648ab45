package webhook_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/mock"
	"github.com/latchdev/latch/webhook"
)

var start = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

var secret = []byte("whsec-test-0123456789")

// receiver is a webhook receiver as docs/WEBHOOKS.md tells one to be: it
// verifies each delivery and keeps what it got.
type receiver struct {
	mu     sync.Mutex
	got    []webhook.Body
	status int // the answer; 0 means 204
	clock  latch.Clock
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := webhook.Verify(secret, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), body,
		rc.clock.Now(), webhook.DefaultWindow); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var b webhook.Body
	if err := json.Unmarshal(body, &b); err != nil || string(b.ID) != r.Header.Get(webhook.HeaderEventID) ||
		string(b.Kind) != r.Header.Get(webhook.HeaderEventKind) {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.got = append(rc.got, b)
	if rc.status != 0 {
		w.WriteHeader(rc.status)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func newReceiver(t *testing.T, clock latch.Clock) (*receiver, string) {
	rc := &receiver{clock: clock}
	srv := httptest.NewServer(rc) // on 127.0.0.1
	t.Cleanup(srv.Close)
	return rc, srv.URL
}

// sample is an event of kind with the fields its message uses.
func sample(kind latch.EventKind) latch.Event {
	return latch.Event{
		ID: latch.NewEventID(), Kind: kind, At: start, RequestID: "r-0123456789abcdef", GrantID: "g-0123456789abcdef",
		Rule: "prod-ssh", Requester: "alice@example.com", Region: "eu-west-1", InstanceID: "i-0123456789abcdef0",
		GroupID: "sg-0123456789abcdef0", Protocol: latch.TCP, FromPort: 22, ToPort: 22, Source: "203.0.113.7/32",
		Duration: 1800, Reason: "INC-1234", State: "x", Reviewer: "bob@example.com", ReviewReason: "not during the freeze",
		ExpiresAt: start.Add(30 * time.Minute), Error: "RequestLimitExceeded", RuleID: "sgr-0123456789abcdef0",
	}
}

func TestSink_DeliversEachKindSignedWithItsMessage(t *testing.T) {
	clock := mock.NewClock(start)
	rc, url := newReceiver(t, clock)
	sink := webhook.New(map[string]webhook.Hook{"pager": {URL: url, Secret: secret}}, webhook.Options{Clock: clock})
	want := map[latch.EventKind]string{
		latch.EventRequestCreated:   "alice@example.com asks for tcp/22 on i-0123456789abcdef0 for 30m0s (rule prod-ssh, request r-0123456789abcdef): INC-1234",
		latch.EventBreakGlassUsed:   "BREAK-GLASS: alice@example.com opened tcp/22 on i-0123456789abcdef0 for 30m0s without approval",
		latch.EventRequestApproved:  "bob@example.com approved alice@example.com's request r-0123456789abcdef for tcp/22 on i-0123456789abcdef0",
		latch.EventRequestDenied:    "bob@example.com denied alice@example.com's request r-0123456789abcdef for tcp/22 on i-0123456789abcdef0: not during the freeze",
		latch.EventRequestWithdrawn: "alice@example.com withdrew request r-0123456789abcdef",
		latch.EventRequestTimedOut:  "request r-0123456789abcdef for tcp/22 on i-0123456789abcdef0 timed out",
		latch.EventRequestFailed:    "could not open: RequestLimitExceeded",
		latch.EventGrantOpened:      "alice@example.com has tcp/22 on i-0123456789abcdef0 from 203.0.113.7/32 until 2026-11-23T10:30:00Z (grant g-0123456789abcdef)",
		latch.EventGrantEnding:      "grant g-0123456789abcdef for tcp/22 on i-0123456789abcdef0 ends at 2026-11-23T10:30:00Z",
		latch.EventGrantEnded:       "grant g-0123456789abcdef for tcp/22 on i-0123456789abcdef0 has ended",
		latch.EventGrantRevokeFail:  "keeps failing, still retrying: RequestLimitExceeded",
		latch.EventRuleOutOfBand:    "rule sgr-0123456789abcdef0 opens tcp/22 on i-0123456789abcdef0 from 203.0.113.7/32, and latch did not open it",
	}
	for _, kind := range latch.EventKinds {
		e := sample(kind)
		if err := sink.Deliver(t.Context(), latch.Route{Sink: latch.SinkWebhook, To: "pager"}, e); err != nil {
			t.Fatalf("Deliver(%s): %v", kind, err)
		}
		got := rc.got[len(rc.got)-1]
		if got.ID != e.ID || got.Kind != kind || got.GrantID != e.GrantID || got.FromPort != 22 || got.Duration != 1800 || !got.At.Equal(start) {
			t.Errorf("%s: received %+v", kind, got.Event)
		}
		if w, ok := want[kind]; !ok || !strings.Contains(got.Message, w) {
			t.Errorf("%s: message %q, want it to contain %q", kind, got.Message, w)
		}
	}
}

// The JSON follows docs/JSON.md: snake_case, durations in seconds, times
// RFC 3339, a time that does not apply left out.
func TestSink_BodyShape(t *testing.T) {
	e := sample(latch.EventRequestCreated)
	e.ExpiresAt = time.Time{}
	b, err := json.Marshal(webhook.Body{Event: e, Message: e.Message()})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for _, k := range []string{"id", "kind", "at", "request_id", "rule", "requester", "from_port", "to_port", "duration_seconds", "message"} {
		if _, ok := m[k]; !ok {
			t.Errorf("body lacks %q: %s", k, b)
		}
	}
	if _, ok := m["expires_at"]; ok {
		t.Errorf("body has an expires_at that does not apply: %s", b)
	}
	if m["at"] != "2026-11-23T10:00:00Z" {
		t.Errorf("at = %v", m["at"])
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"e-0123456789abcdef"}`)
	ts := "1795428000" // 2026-11-23T10:00:00Z
	now := time.Unix(1795428000, 0)
	good := "v1=" + webhook.Sign(secret, ts, body)
	tests := []struct {
		name      string
		secret    []byte
		ts, sig   string
		body      []byte
		now       time.Time
		wantError string
	}{
		{name: "good", sig: good},
		{name: "good among rotated signatures", sig: "v1=00ff, " + good},
		{name: "good at the edge of the window", sig: good, now: now.Add(webhook.DefaultWindow)},
		{name: "bad signature", sig: "v1=" + strings.Repeat("0", 64), wantError: "does not match"},
		{name: "other secret", secret: []byte("other"), sig: good, wantError: "does not match"},
		{name: "body changed", sig: good, body: []byte(`{"id":"e-ffffffffffffffff"}`), wantError: "does not match"},
		{name: "timestamp changed", sig: good, ts: "1795428001", wantError: "does not match"},
		{name: "unknown scheme", sig: strings.Replace(good, "v1=", "v0=", 1), wantError: "does not match"},
		{name: "too old", sig: good, now: now.Add(webhook.DefaultWindow + time.Second), wantError: "outside"},
		{name: "from the future", sig: good, now: now.Add(-webhook.DefaultWindow - time.Second), wantError: "outside"},
		{name: "not a timestamp", sig: good, ts: "yesterday", wantError: "not Unix seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sec, b, at, n := secret, body, ts, now
			if tt.secret != nil {
				sec = tt.secret
			}
			if tt.body != nil {
				b = tt.body
			}
			if tt.ts != "" {
				at = tt.ts
			}
			if !tt.now.IsZero() {
				n = tt.now
			}
			err := webhook.Verify(sec, at, tt.sig, b, n, webhook.DefaultWindow)
			if tt.wantError == "" && err != nil || tt.wantError != "" && (err == nil || !strings.Contains(err.Error(), tt.wantError)) {
				t.Errorf("Verify = %v, want %q", err, tt.wantError)
			}
		})
	}
}

func TestSink_Answers(t *testing.T) {
	clock := mock.NewClock(start)
	rc, url := newReceiver(t, clock)
	sink := webhook.New(map[string]webhook.Hook{"pager": {URL: url, Secret: secret}}, webhook.Options{Clock: clock})
	to := latch.Route{Sink: latch.SinkWebhook, To: "pager"}
	for _, tt := range []struct {
		status    int
		wantRetry bool
	}{
		{http.StatusOK, false}, {http.StatusAccepted, false},
		{http.StatusInternalServerError, true}, {http.StatusServiceUnavailable, true}, {http.StatusTooManyRequests, true},
		{http.StatusUnauthorized, true}, // the receiver may be mid-rotation
		{http.StatusGone, false}, {http.StatusNotFound, false},
	} {
		rc.status = tt.status
		err := sink.Deliver(t.Context(), to, sample(latch.EventGrantOpened))
		ok := tt.status < 300
		switch {
		case ok && err != nil:
			t.Errorf("%d: %v, want delivered", tt.status, err)
		case !ok && err == nil:
			t.Errorf("%d: delivered, want an error", tt.status)
		case !ok && (latch.ErrorCode(err) != latch.EINVALID) != tt.wantRetry:
			t.Errorf("%d: %v (code %s), want retry=%v", tt.status, err, latch.ErrorCode(err), tt.wantRetry)
		}
	}
	if err := sink.Deliver(t.Context(), latch.Route{Sink: latch.SinkWebhook, To: "nobody"}, sample(latch.EventGrantOpened)); latch.ErrorCode(err) != latch.EINVALID {
		t.Errorf("an unknown hook: %v, want EINVALID", err)
	}
}

// A receiver's Retry-After on 429 or 503 reaches the worker, which waits
// at least that long; an hour at most.
func TestSink_RetryAfter(t *testing.T) {
	for _, tt := range []struct {
		status int
		header string
		want   time.Duration // 0: no RetryAfterError
	}{
		{http.StatusTooManyRequests, "120", 120 * time.Second},
		{http.StatusServiceUnavailable, "30", 30 * time.Second},
		{http.StatusTooManyRequests, "86400", time.Hour},
		{http.StatusTooManyRequests, "soon", 0},
		{http.StatusInternalServerError, "120", 0},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", tt.header)
			w.WriteHeader(tt.status)
		}))
		sink := webhook.New(map[string]webhook.Hook{"pager": {URL: srv.URL, Secret: secret}}, webhook.Options{Clock: mock.NewClock(start)})
		err := sink.Deliver(t.Context(), latch.Route{Sink: latch.SinkWebhook, To: "pager"}, sample(latch.EventGrantOpened))
		srv.Close()
		ra, ok := errors.AsType[*latch.RetryAfterError](err)
		switch {
		case err == nil:
			t.Errorf("%d Retry-After %s: delivered", tt.status, tt.header)
		case tt.want == 0 && ok:
			t.Errorf("%d Retry-After %s: %v, want a plain retry", tt.status, tt.header, err)
		case tt.want != 0 && (!ok || ra.After != tt.want):
			t.Errorf("%d Retry-After %s: %v, want retry after %v", tt.status, tt.header, err, tt.want)
		}
	}
}

// A hook's URL may carry a token (Teams' do): a failed delivery's error,
// which the worker logs and stores, names the hook and not the URL.
func TestSink_ErrorsHideTheURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	const token = "tok-SECRET-in-path"
	sink := webhook.New(map[string]webhook.Hook{"teams": {URL: "http://" + addr + "/hook/" + token, Secret: secret}}, webhook.Options{})
	err = sink.Deliver(t.Context(), latch.Route{Sink: latch.SinkWebhook, To: "teams"}, sample(latch.EventGrantOpened))
	if err == nil {
		t.Fatal("delivered to a closed port")
	}
	if strings.Contains(err.Error(), token) || strings.Contains(err.Error(), string(secret)) || !strings.Contains(err.Error(), "teams") {
		t.Errorf("error %q shows the URL or secret, or does not name the hook", err)
	}
}
