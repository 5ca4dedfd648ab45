package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServerRefusesBadLimits(t *testing.T) {
	w := newWorld(t)
	pf := filepath.Join(w.dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(e2ePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	for flag, value := range map[string]string{
		"addr-rate-limit": "0", "max-verifications": "0", "max-conns": "-1",
		"read-timeout": "0s", "write-timeout": "soon", "idle-timeout": "-1m",
	} {
		t.Run(flag, func(t *testing.T) {
			// Refused before binding: the address given is never listened on.
			r := w.latch(t, "server", "--policy", pf, "--aws-auth", "--aws-account", "123456789012", "--listen", "127.0.0.1:0", "--"+flag, value)
			if r.code != exitUsage || !strings.Contains(r.stderr, flag) {
				t.Fatalf("--%s %s: exit %d: %s", flag, value, r.code, r.stderr)
			}
		})
	}
}

// The limit flags reach the running server: the address budget spent by
// unauthenticated calls, and the idle timeout.
func TestServerLimitFlags(t *testing.T) {
	w := startServer(t, e2ePolicy, "--addr-rate-limit", "0.001", "--idle-timeout", "200ms")
	limited := false
	for range 60 { // the burst is 50
		resp, err := http.Get(w.url + "/v1/whoami")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			limited = resp.Header.Get("Retry-After") != ""
			break
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("an unauthenticated call: %s", resp.Status)
		}
	}
	if !limited {
		t.Errorf("60 unauthenticated calls from one address, none answered 429 with Retry-After\nserver: %s", w.server.output())
	}

	c, err := net.Dial("tcp", strings.TrimPrefix(w.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /v1/health HTTP/1.1\r\nHost: latch\r\n\r\n")
	br := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("health: %v %v", resp, err)
	}
	resp.Body.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = br.ReadByte()
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("an idle connection was still open 5s after its request with --idle-timeout 200ms")
	}
}
