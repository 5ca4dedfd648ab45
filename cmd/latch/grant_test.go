package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

// runAsync runs latch in the background and returns its result channel.
func (w *world) runAsync(ctx context.Context, t *testing.T, args ...string) <-chan result {
	done := make(chan result, 1)
	go func() { done <- w.latchCtx(ctx, t, args...) }()
	return done
}

// waitForRule waits until the group has n rules.
func (w *world) waitForRules(t *testing.T, n int) map[latch.RuleID]map[string]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second) // a bound for a hung test
	for {
		rules := w.rules(t)
		if len(rules) == n {
			return rules
		}
		if time.Now().After(deadline) {
			t.Fatalf("group has %d rules, want %d", len(rules), n)
		}
		time.Sleep(10 * time.Millisecond) // polling AWS for another goroutine's effect
	}
}

func TestForegroundGrantRevokesAtExpiry(t *testing.T) {
	w := newWorld(t)
	done := w.runAsync(t.Context(), t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "10m", "--reason", "x", "--json")
	w.waitForRules(t, 1)
	w.setClock(t, start.Add(10*time.Minute-time.Second))
	select {
	case r := <-done:
		t.Fatalf("returned a second before expiry: %+v", r)
	case <-time.After(100 * time.Millisecond): // give a wrongly early revoke the chance to show
	}
	if len(w.rules(t)) != 1 {
		t.Fatal("rule revoked before expiry")
	}
	w.setClock(t, start.Add(10*time.Minute))
	r := <-done
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := len(w.rules(t)); n != 0 {
		t.Fatalf("%d rules after expiry", n)
	}
	events := decodeLines[grantEventJSON](t, r.stdout)
	if len(events) != 2 || events[0].Event != eventOpened || events[1].Event != eventEnded {
		t.Fatalf("want an opened line then an ended line:\n%s", r.stdout)
	}
	if last := events[1].Grant; last.State != latch.StateExpired {
		t.Errorf("final state %s, want expired\n%s", last.State, r.stdout)
	}
	if !strings.Contains(r.stderr, "left") || !strings.Contains(r.stderr, `"msg":"expired"`) {
		t.Errorf("stderr lacks countdown or evidence:\n%s", r.stderr)
	}
}

func TestInterruptedGrantRevokesAtOnce(t *testing.T) {
	w := newWorld(t)
	ctx, interrupt := context.WithCancel(t.Context())
	done := w.runAsync(ctx, t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "10m", "--reason", "x")
	w.waitForRules(t, 1)
	interrupt() // what SIGINT does through signal.NotifyContext
	r := <-done
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if n := len(w.rules(t)); n != 0 {
		t.Fatalf("%d rules after Ctrl-C", n)
	}
	if !strings.Contains(r.stdout, "revoked") || !strings.Contains(r.stderr, "Interrupted") {
		t.Errorf("output does not say it revoked:\n%s\n%s", r.stdout, r.stderr)
	}
}

func TestIPAuto(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		want       string // source on success, else part of the error
		code       int
	}{
		{name: "one address", body: "203.0.113.99\n", status: 200, want: "203.0.113.99/32"},
		{name: "IPv6", body: "2001:db8::99", status: 200, want: "2001:db8::99/128"},
		{name: "a network", body: "203.0.113.0/24", status: 200, want: "not one IP address", code: 1},
		{name: "two addresses", body: "203.0.113.1, 203.0.113.2", status: 200, want: "not one IP address", code: 1},
		{name: "an error page", body: "<html>oops</html>", status: 502, want: "502", code: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			echo := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
				rw.WriteHeader(tt.status)
				fmt.Fprint(rw, tt.body)
			}))
			defer echo.Close()
			w.vars["LATCH_IP_ECHO_URL"] = echo.URL
			r := w.latch(t, "grant", "--sg", string(w.group), "--ip", "auto", "--for", "5m", "--reason", "x", "--detach", "--json")
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d: %s", r.code, tt.code, r.stderr)
			}
			if tt.code != 0 {
				if !strings.Contains(r.stderr, tt.want) || len(w.rules(t)) != 0 {
					t.Fatalf("stderr %q (want %q), %d rules", r.stderr, tt.want, len(w.rules(t)))
				}
				return
			}
			if g := grantOut(t, r.stdout); g.Source != tt.want {
				t.Errorf("source %s, want %s", g.Source, tt.want)
			}
		})
	}
}

func TestSweepCommand(t *testing.T) {
	w := newWorld(t)
	r := w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "5m", "--reason", "x", "--detach", "--json")
	g := grantOut(t, r.stdout)
	delete(w.vars, "LATCH_DB") // sweep needs no database: it revokes by the rules' tags

	if r := w.latch(t, "sweep", "--json"); r.code != 0 || len(decode[sweepJSON](t, r.stdout).Swept) != 0 {
		t.Fatalf("sweep before expiry: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
	w.setClock(t, start.Add(5*time.Minute))
	dry := decode[sweepJSON](t, w.latch(t, "sweep", "--dry-run", "--json").stdout).Swept
	if len(dry) != 1 || dry[0].RuleID != g.RuleID || dry[0].Revoked || len(w.rules(t)) != 1 {
		t.Fatalf("dry run = %+v with %d rules", dry, len(w.rules(t)))
	}
	r = w.latch(t, "sweep")
	if r.code != 0 || !strings.Contains(r.stdout, "revoked "+string(g.RuleID)) {
		t.Fatalf("sweep: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if len(w.rules(t)) != 0 {
		t.Fatal("sweep left the expired rule")
	}
}
