package main

import (
	"bufio"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each mistake gets one line that names the flag, the value and the fix.
func TestErrorsNameTheFix(t *testing.T) {
	t.Run("server URL without a scheme", func(t *testing.T) {
		w := newWorld(t)
		r := w.latch(t, "--server", "127.0.0.1:1", "--auth", "aws", "whoami")
		if r.code != exitUsage || !strings.Contains(r.stderr, "--server") || !strings.Contains(r.stderr, `"127.0.0.1:1"`) || !strings.Contains(r.stderr, "http://127.0.0.1:1") ||
			strings.Contains(r.stderr, "first path segment") {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
	})
	t.Run("server certificate from an unknown authority", func(t *testing.T) {
		w := newWorld(t)
		srv := httptest.NewUnstartedServer(http.NotFoundHandler())
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
		srv.StartTLS()
		t.Cleanup(srv.Close)
		r := w.latch(t, "--server", srv.URL, "--auth", "aws", "whoami")
		if r.code == 0 || !strings.Contains(r.stderr, "--server-ca") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
	})
	t.Run("STS endpoint the server does not trust", func(t *testing.T) {
		w := newWorld(t)
		pf := filepath.Join(w.dir, "policy.yaml")
		if err := os.WriteFile(pf, []byte(e2ePolicy), 0o600); err != nil {
			t.Fatal(err)
		}
		// A server that trusts only AWS's own STS endpoints.
		url := startInProcessServer(t, w, "server", "--policy", pf, "--listen", "127.0.0.1:0", "--aws-auth", "--aws-account", "123456789012")
		r := w.latch(t, "--server", url, "--auth", "aws", "whoami")
		if r.code == 0 || !strings.Contains(r.stderr, "--aws-sts-host") || !strings.Contains(r.stderr, w.env.URL) {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
	})
	t.Run("database in a directory that does not exist", func(t *testing.T) {
		w := newWorld(t)
		missing := filepath.Join(w.dir, "no", "such")
		r := w.latch(t, "--db", filepath.Join(missing, "latch.db"), "ls")
		if r.code != exitUsage || !strings.Contains(r.stderr, "--db") || !strings.Contains(r.stderr, missing) {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(w.dir, "no")); !os.IsNotExist(err) {
			t.Errorf("latch created %s: %v", missing, err)
		}
	})
	t.Run("unreachable endpoint", func(t *testing.T) {
		w := newWorld(t)
		w.vars["AWS_ENDPOINT_URL"] = "http://127.0.0.1:1"
		w.vars["AWS_MAX_ATTEMPTS"] = "1"
		sweep := w.latch(t, "sweep")
		if msg := strings.TrimSpace(sweep.stderr[strings.LastIndex(sweep.stderr, "latch: ")+1:]); sweep.code != exitRuntime ||
			strings.Contains(msg, "\n") || strings.Contains(msg, "StatusCode: 0") || !strings.Contains(msg, "cannot reach http://127.0.0.1:1") {
			t.Errorf("sweep: exit %d: %s", sweep.code, sweep.stderr)
		}
		r := w.latch(t, "doctor")
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.HasPrefix(line, "FAIL  credentials") {
				if strings.Contains(line, "StatusCode: 0") || strings.Contains(line, "RequestID: ,") || !strings.Contains(line, "127.0.0.1:1") {
					t.Errorf("doctor: %s", line)
				}
				return
			}
		}
		t.Errorf("doctor found no credentials problem:\n%s", r.stdout)
	})
	t.Run("oidc without a login", func(t *testing.T) {
		w := newWorld(t)
		r := w.latch(t, "--server", "http://127.0.0.1:1", "--auth", "oidc", "whoami")
		if r.code == 0 || strings.Count(r.stderr, "latch login") != 1 || !strings.Contains(r.stderr, "--auth aws") {
			t.Errorf("exit %d: %s", r.code, r.stderr)
		}
	})
}

// startInProcessServer runs latch with args (a server) in w's environment
// until the test ends, and returns the URL it prints.
func startInProcessServer(t *testing.T, w *world, args ...string) string {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	outR, outW := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx, args, func(k string) string { return w.vars[k] }, strings.NewReader(""), outW, io.Discard)
		outW.Close()
	}()
	t.Cleanup(func() { stop(); <-done })
	lines := bufio.NewReader(outR)
	url, err := lines.ReadString('\n')
	if err != nil {
		t.Fatalf("the server printed no URL: %v", err)
	}
	go io.Copy(io.Discard, lines) //nolint:errcheck // nothing more
	return strings.TrimSpace(url)
}
