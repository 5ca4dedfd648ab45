package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/sqlite"
	"github.com/latchdev/latch/webhook"
)

const notifyPolicy = e2ePolicy + `    notify:
      webhooks: [pager]
`

// hookToken stands for a token in a webhook's URL (Teams' have one), and
// hookSecret for its signing secret: neither may appear in a log.
const (
	hookToken  = "tok-d1a6c0ffee"
	hookSecret = "whsec-5ba1d-never-logged"
)

// hookReceiver is a webhook receiver that verifies every delivery and
// counts, by event ID, the ones it acknowledged. While hang is set it
// answers nothing: a delivery stays in flight until its connection drops.
type hookReceiver struct {
	mu       sync.Mutex
	hang     bool
	attempts map[latch.EventID]int
	acked    map[latch.EventID]int
	kinds    map[latch.EventID]latch.EventKind
	bad      []string
	changed  chan struct{} // closed and replaced on every delivery
}

func newHookReceiver(t *testing.T) (*hookReceiver, string) {
	rc := &hookReceiver{attempts: map[latch.EventID]int{}, acked: map[latch.EventID]int{}, kinds: map[latch.EventID]latch.EventKind{},
		changed: make(chan struct{})}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return rc, srv.URL + "/hook/" + hookToken
}

func (rc *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var b webhook.Body
	err := webhook.Verify([]byte(hookSecret), r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), body,
		start, time.Hour) // the servers run on the test's clock, from start
	if err == nil {
		err = json.Unmarshal(body, &b)
	}
	rc.mu.Lock()
	if err != nil || string(b.ID) != r.Header.Get(webhook.HeaderEventID) {
		rc.bad = append(rc.bad, "bad delivery: "+string(body))
	}
	rc.attempts[b.ID]++
	rc.kinds[b.ID] = b.Kind
	hang := rc.hang
	if !hang {
		rc.acked[b.ID]++
	}
	close(rc.changed)
	rc.changed = make(chan struct{})
	rc.mu.Unlock()
	if hang {
		<-r.Context().Done() // the sender went away
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// waitFor waits until cond holds of the receiver's state.
func (rc *hookReceiver) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second) // a bound for a hung test
	for {
		rc.mu.Lock()
		ok, changed := cond(), rc.changed
		rc.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("receiver: no %s; attempts %v, acked %v", what, rc.attempts, rc.acked)
		}
	}
}

func (rc *hookReceiver) ackedKinds() map[latch.EventKind]int {
	out := map[latch.EventKind]int{}
	for id, n := range rc.acked {
		out[rc.kinds[id]] += n
	}
	return out
}

// TestNotifyCrash: a server is SIGKILLed after a request's change is
// committed and while its event's delivery is in flight (the receiver
// holds the connection, answering nothing); after a restart, the receiver
// acknowledges every event exactly once, by its idempotency key.
func TestNotifyCrash(t *testing.T) {
	rc, hookURL := newHookReceiver(t)
	rc.hang = true
	var w *serverWorld
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "pager.secret")
	if err := os.WriteFile(secretFile, []byte(hookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--webhook", "pager=" + hookURL, "--webhook-secret-file", "pager=" + secretFile}
	w = startServer(t, notifyPolicy, flags...)
	first := w.server
	w.as("AKIDALICE", "alice-secret")

	r := w.latch(t, "request", w.fleet.Web1, "--port", "22", "--for", "20m", "--reason", "deploy", "--json")
	out := decode[requestOut](t, r.stdout)
	if r.code != 0 || out.Grant == nil || out.Grant.State != latch.StateActive {
		t.Fatalf("request: exit %d %+v\n%s\nserver: %s", r.code, out, r.stderr, first.output())
	}
	var inFlight latch.EventID
	rc.waitFor(t, "delivery in flight", func() bool {
		for id := range rc.attempts {
			inFlight = id
		}
		return inFlight != ""
	})
	first.kill(t)

	// The crash came between the change and the delivery: the change is
	// committed, its events are pending, and the one in flight is still
	// leased to the dead process.
	store, err := sqlite.Open(context.Background(), w.vars["LATCH_DB"], sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	items, err := store.OutboxEvents(t.Context())
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	pending := map[latch.EventKind]latch.EventID{}
	for _, it := range items {
		if it.State != latch.EventPending {
			t.Errorf("after the crash, %s is %s, want pending", it.Event.Kind, it.State)
		}
		pending[it.Event.Kind] = it.Event.ID
	}
	if pending[latch.EventRequestCreated] == "" || pending[latch.EventGrantOpened] == "" || pending[latch.EventGrantEnding] == "" {
		t.Fatalf("after the crash, pending events %v, want request.created, grant.opened and grant.ending", pending)
	}
	rc.mu.Lock()
	if len(rc.acked) != 0 {
		t.Fatalf("the receiver acknowledged %v before the crash", rc.acked)
	}
	rc.hang = false
	rc.mu.Unlock()

	// Restarted after the dead process's lease has run out.
	w.setClock(t, start.Add(2*time.Minute))
	second := w.launchServer(t, flags...)
	rc.waitFor(t, "request.created and grant.opened acknowledged", func() bool {
		k := rc.ackedKinds()
		return k[latch.EventRequestCreated] == 1 && k[latch.EventGrantOpened] == 1
	})

	w.vars["LATCH_SERVER"] = second.url
	if r := w.latch(t, "revoke", string(out.Grant.ID)); r.code != 0 {
		t.Fatalf("revoke: exit %d %s", r.code, r.stderr)
	}
	rc.waitFor(t, "grant.ended acknowledged", func() bool { return rc.ackedKinds()[latch.EventGrantEnded] == 1 })
	w.setClock(t, start.Add(30*time.Minute)) // past when the dropped ending notice was due
	second.server.stop(t)

	rc.mu.Lock()
	defer rc.mu.Unlock()
	for id, n := range rc.acked {
		if n != 1 {
			t.Errorf("event %s (%s) acknowledged %d times, want once", id, rc.kinds[id], n)
		}
	}
	if rc.attempts[inFlight] != 2 || rc.acked[inFlight] != 1 {
		t.Errorf("the event in flight at the crash: %d attempts, %d acknowledged; want 2 and 1", rc.attempts[inFlight], rc.acked[inFlight])
	}
	if k := rc.ackedKinds(); len(k) != 3 || k[latch.EventGrantEnding] != 0 {
		t.Errorf("acknowledged kinds %v, want request.created, grant.opened and grant.ended, and no ending notice for a grant that ended", k)
	}
	if len(rc.bad) > 0 {
		t.Errorf("deliveries that did not verify: %v", rc.bad)
	}
	for _, p := range []*proc{first, second.server} {
		if logs := p.output(); strings.Contains(logs, hookSecret) || strings.Contains(logs, hookToken) {
			t.Errorf("a server's log shows the webhook's secret or URL token:\n%s", logs)
		}
	}
}

// A policy that names a webhook the server was not given is refused at
// start, with the file and line; so is a webhook without a secret.
func TestNotifyRefusedAtStart(t *testing.T) {
	w := newWorld(t)
	pf := filepath.Join(w.dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(notifyPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"server", "--policy", pf, "--listen", "127.0.0.1:0", "--aws-auth", "--aws-account", "123456789012"}
	r := w.latch(t, args...)
	if r.code == 0 || !strings.Contains(r.stderr, pf+`:11: rules[0].notify.webhooks[0]: no webhook named "pager"`) {
		t.Errorf("a policy naming an unconfigured webhook: exit %d %s", r.code, r.stderr)
	}
	r = w.latch(t, append(args, "--webhook", "pager=https://relay.example.com/x/"+hookToken)...)
	if r.code == 0 || !strings.Contains(r.stderr, "LATCH_WEBHOOK_SECRET_PAGER") || strings.Contains(r.stderr, hookToken) {
		t.Errorf("a webhook without a secret: exit %d %s", r.code, r.stderr)
	}
}
