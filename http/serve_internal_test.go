package http

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// A route listed in longPoll answers after WriteTimeout; the same route
// unlisted is cut off (TestWriteTimeoutCutsOffASlowResponse).
func TestLongPollRoutesOutliveWriteTimeout(t *testing.T) {
	const writeTimeout = 200 * time.Millisecond
	release := make(chan struct{})
	s := NewServer(nil, nil, Options{WriteTimeout: writeTimeout, Ready: func(ctx context.Context) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}})
	s.longPoll = map[string]time.Duration{"GET /v1/ready": time.Minute}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	answer := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/v1/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %s", resp.Status)
			}
		}
		answer <- err
	}()
	select {
	case err := <-answer:
		t.Fatalf("answered before the handler finished: %v", err)
	case <-time.After(3 * writeTimeout): // past WriteTimeout
	}
	close(release)
	if err := <-answer; err != nil {
		t.Fatalf("a long-poll route answering after WriteTimeout: %v; want 200", err)
	}
}

// remoteConn is a connection from remote.
type remoteConn struct {
	net.Conn
	remote net.Addr
}

func (c remoteConn) RemoteAddr() net.Addr { return c.remote }

// An address's share of connections is counted as its request budget is:
// an IPv6 /64 is one address, and a mapped IPv4 address is that address.
// Trusted proxies and connections without an IP address are not counted;
// a connection's close gives its share back.
func TestConnectionShareIsPerAddress(t *testing.T) {
	proxy := netip.MustParsePrefix("10.0.0.0/8")
	l := limitListener(nil, 100, 1, proxy.Contains, slog.New(slog.DiscardHandler)).(*capped)
	from := func(a string) net.Conn {
		return remoteConn{remote: net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(a), 4242))}
	}
	steps := []struct {
		conn net.Conn
		want bool
	}{
		{from("2001:db8::1"), true},
		{from("2001:db8::2"), false}, // the same /64
		{from("2001:db8:0:1::1"), true},
		{from("203.0.113.1"), true},
		{from("::ffff:203.0.113.1"), false}, // the IPv4 address, mapped
		{from("10.0.0.1"), true},            // a trusted proxy, uncounted
		{from("10.0.0.1"), true},
		{remoteConn{remote: &net.UnixAddr{Name: "@", Net: "unix"}}, true},
	}
	var keys []string
	for i, s := range steps {
		key, ok := l.admit(s.conn)
		if ok != s.want {
			t.Fatalf("step %d: from %s admitted %v, want %v", i, s.conn.RemoteAddr(), ok, s.want)
		}
		if ok {
			keys = append(keys, key)
		}
	}
	l.leave(keys[0])
	if _, ok := l.admit(from("2001:db8::2")); !ok {
		t.Error("a /64 whose connection closed is still refused")
	}
	for _, k := range keys[1:] {
		l.leave(k)
	}
	l.leave(addressKey(netip.MustParseAddr("2001:db8::2")))
	if len(l.open) != 0 {
		t.Errorf("with every connection closed, %d addresses are still counted: %v", len(l.open), l.open)
	}
}
