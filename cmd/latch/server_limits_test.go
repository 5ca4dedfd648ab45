package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
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
		"addr-rate-limit": "0", "max-verifications": "0", "max-conns": "-1", "max-conns-per-addr": "0",
		"read-timeout": "0s", "write-timeout": "soon", "idle-timeout": "-1m",
	} {
		t.Run(flag, func(t *testing.T) {
			// Refused before binding (the address given is never listened
			// on), naming the flag, the value and what is allowed.
			r := w.latch(t, "server", "--policy", pf, "--aws-auth", "--aws-account", "123456789012", "--listen", "127.0.0.1:0", "--"+flag, value)
			if r.code != exitUsage || !strings.Contains(r.stderr, flag) || !strings.Contains(r.stderr, value) || !strings.Contains(r.stderr, "want") {
				t.Fatalf("--%s %s: exit %d: %s", flag, value, r.code, r.stderr)
			}
		})
	}
}

// The limit flags reach the running server: the address budget spent by
// unauthenticated calls (and by probes), the idle timeout, and an address's
// share of connections.
func TestServerLimitFlags(t *testing.T) {
	const perAddr = 2
	w := startServer(t, e2ePolicy, "--addr-rate-limit", "0.001", "--idle-timeout", "200ms", "--max-conns-per-addr", fmt.Sprint(perAddr))
	limited := false
	for range 60 { // the burst is 50
		resp, err := http.Get(w.url + "/v1/whoami")
		if err != nil {
			t.Fatal(err)
		}
		// Drained, so that the connection is kept alive for the next call:
		// a connection per call would outrun the server's noticing their
		// closes, and fill the address's share of perAddr.
		_, _ = io.Copy(io.Discard, resp.Body)
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
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("health, with the address's budget spent: %v %v; want 429", resp, err)
	}
	resp.Body.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = br.ReadByte()
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("an idle connection was still open 5s after its request with --idle-timeout 200ms")
	}

	// Hold perAddr+1 connections open at once, sending nothing (each kept
	// until the 10 s header timeout), then ask on each: at most perAddr are
	// served, and the rest were closed. (A connection of the address's not
	// yet seen closed by the server can only make more refused.)
	var conns []net.Conn
	for range perAddr + 1 {
		c, err := net.Dial("tcp", strings.TrimPrefix(w.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	served, closed := 0, 0
	for i, c := range conns {
		fmt.Fprint(c, "GET /v1/health HTTP/1.1\r\nHost: latch\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(make([]byte, 1))
		switch ne, isNet := errors.AsType[net.Error](err); {
		case n > 0:
			served++
		case isNet && ne.Timeout():
			t.Fatalf("connection %d of %d from one address: left waiting, neither answered nor closed", i+1, len(conns))
		default:
			closed++
		}
	}
	if served > perAddr || closed == 0 {
		t.Errorf("%d connections open at once from one address with --max-conns-per-addr %d: %d served, %d closed; want at most %d served",
			len(conns), perAddr, served, closed, perAddr)
	}
}
