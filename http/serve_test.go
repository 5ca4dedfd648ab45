package http_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	latchhttp "github.com/latchdev/latch/http"
	at "github.com/latchdev/latch/internal/accesstest"
)

// serveOn runs s with Serve, as latch server does, on 127.0.0.1, until the
// test ends; it returns the address.
func serveOn(t *testing.T, s *latchhttp.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// dial connects to addr; the connection is closed when the test ends,
// before the server is stopped.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialFrom connects to addr from the loopback address local (Linux
// routes all of 127.0.0.0/8 to lo), to stand for another client.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// probe sends GET /v1/health on c and waits up to d for the answer. It
// returns the status; 0 if the server closed c without answering; -1 if
// the wait ended with neither.
func probe(c net.Conn, br *bufio.Reader, d time.Duration) int {
	fmt.Fprint(c, "GET /v1/health HTTP/1.1\r\nHost: latch\r\n\r\n") // may fail: closed already
	_ = c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return -1
		}
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// closedByServer reads c for up to d, discarding any answer, and reports
// whether the server closed it (EOF or reset) rather than the wait ending.
func closedByServer(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// answered reports whether a response starts arriving on br within d.
func answered(c net.Conn, br *bufio.Reader, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := br.Peek(1)
	return err == nil
}

// healthCheck sends GET /v1/health on c and reads the answer, which must
// leave the connection open.
func healthCheck(t *testing.T, c net.Conn, br *bufio.Reader) {
	t.Helper()
	fmt.Fprint(c, "GET /v1/health HTTP/1.1\r\nHost: latch\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("health: %s, close %v; want 200 on a kept-alive connection", resp.Status, resp.Close)
	}
}

// A client that sends its body a byte at a time is cut off at ReadTimeout,
// long before it has sent it.
func TestReadTimeoutCutsOffATrickledBody(t *testing.T) {
	const readTimeout, every, bytes = 200 * time.Millisecond, 20 * time.Millisecond, 100 // 100 bytes take ten ReadTimeouts
	addr := serveOn(t, latchhttp.NewServer(at.New(t).Access, people, latchhttp.Options{ReadTimeout: readTimeout}))
	c := dial(t, addr)
	fmt.Fprintf(c, "POST /v1/requests HTTP/1.1\r\nHost: latch\r\nAuthorization: Bearer alice\r\n"+
		"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
	for i := range bytes {
		if _, err := c.Write([]byte(" ")); err != nil {
			return // closed under us
		}
		if closedByServer(c, every) {
			t.Logf("closed by the server after %d bytes", i+1)
			return
		}
	}
	t.Fatalf("the server still held the connection after %d body bytes, one every %s; ReadTimeout is %s", bytes, every, readTimeout)
}

// A kept-alive connection with no request on it is closed at IdleTimeout.
func TestIdleTimeoutClosesAKeptAliveConnection(t *testing.T) {
	const idle = 200 * time.Millisecond
	addr := serveOn(t, latchhttp.NewServer(at.New(t).Access, people, latchhttp.Options{IdleTimeout: idle}))
	c := dial(t, addr)
	healthCheck(t, c, bufio.NewReader(c))
	if !closedByServer(c, 20*idle) {
		t.Fatalf("an idle kept-alive connection was still open %s after its request; IdleTimeout is %s", 20*idle, idle)
	}
}

// A response that takes longer than WriteTimeout is not sent: the
// connection is closed instead.
func TestWriteTimeoutCutsOffASlowResponse(t *testing.T) {
	const writeTimeout = 200 * time.Millisecond
	release := make(chan struct{})
	addr := serveOn(t, latchhttp.NewServer(at.New(t).Access, people, latchhttp.Options{WriteTimeout: writeTimeout,
		Ready: func(ctx context.Context) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}}))
	c := dial(t, addr)
	br := bufio.NewReader(c)
	fmt.Fprint(c, "GET /v1/ready HTTP/1.1\r\nHost: latch\r\n\r\n")
	if answered(c, br, 3*writeTimeout) {
		t.Fatal("answered before the handler finished")
	}
	close(release) // the handler answers now, after its deadline
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(br, nil); err == nil {
		resp.Body.Close()
		t.Fatalf("a response finished after WriteTimeout (%s) was sent: %s", writeTimeout, resp.Status)
	}
}

// Connections beyond MaxConns wait: they are not served until one of
// those being served closes.
func TestConnectionsBeyondTheCapWait(t *testing.T) {
	const max = 2
	addr := serveOn(t, latchhttp.NewServer(at.New(t).Access, people, latchhttp.Options{MaxConns: max}))
	var held []net.Conn
	for range max {
		c := dial(t, addr)
		healthCheck(t, c, bufio.NewReader(c)) // served, and kept alive
		held = append(held, c)
	}
	extra := dial(t, addr)
	br := bufio.NewReader(extra)
	fmt.Fprint(extra, "GET /v1/health HTTP/1.1\r\nHost: latch\r\n\r\n")
	if answered(extra, br, 300*time.Millisecond) {
		t.Fatalf("a connection beyond the cap of %d was served while %d were open", max, max)
	}
	held[0].Close()
	if !answered(extra, br, 10*time.Second) {
		t.Fatal("the waiting connection was not served after one closed")
	}
	_ = extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the waiting connection: %v, %v", resp, err)
	}
}

// The reviewer's attack: one address opens every connection MaxConns
// allows and keeps each busy with a health check a second (which spends
// its address budget, but far from all of it), so that nobody else is
// served. It gets only its share, MaxConnsPerAddr: the connections beyond
// it are closed, and a caller from another address is served.
func TestAttackOneAddressHoldsEveryConnection(t *testing.T) {
	const max, perAddr = 4, 2
	addr := serveOn(t, latchhttp.NewServer(at.New(t).Access, people,
		latchhttp.Options{MaxConns: max, MaxConnsPerAddr: perAddr, IdleTimeout: 3 * time.Second}))
	var held []net.Conn
	for i := range max {
		c := dial(t, addr)
		switch st := probe(c, bufio.NewReader(c), 10*time.Second); st {
		case http.StatusOK:
			held = append(held, c)
		case 0: // beyond the address's share
		default:
			t.Fatalf("the attacker's connection %d: %d; want 200, or closed unanswered", i, st)
		}
	}
	if len(held) != perAddr {
		t.Fatalf("one address holds %d connections; want its share, %d", len(held), perAddr)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
				for _, c := range held {
					fmt.Fprint(c, "GET /v1/health HTTP/1.1\r\nHost: latch\r\n\r\n")
				}
			}
		}
	}()
	victim := dialFrom(t, "127.0.0.2", addr)
	if st := probe(victim, bufio.NewReader(victim), 6*time.Second); st != http.StatusOK {
		t.Fatalf("one address holds all %d connections: another address got %d, want 200", max, st)
	}
}

// A connection beyond its address's share is closed as soon as it is
// accepted, not queued as one beyond MaxConns is
// (TestConnectionsBeyondTheCapWait). A connection that never sends a
// request counts to the share like a kept-alive one. Once one closes, the
// address is served again.
func TestConnectionsBeyondAnAddressShareAreClosed(t *testing.T) {
	const perAddr = 2
	addr := serveOn(t, latchhttp.NewServer(at.New(t).Access, people, latchhttp.Options{MaxConnsPerAddr: perAddr}))
	kept := dial(t, addr)
	healthCheck(t, kept, bufio.NewReader(kept))
	_ = dial(t, addr) // silent: held until ReadHeaderTimeout
	extra := dial(t, addr)
	if st := probe(extra, bufio.NewReader(extra), 10*time.Second); st != 0 {
		t.Fatalf("a connection beyond its address's share of %d: %d; want it closed unanswered (-1: left waiting)", perAddr, st)
	}
	kept.Close()
	// The server learns of the close when its read of the idle connection
	// ends; until then the share is full.
	for i := 0; ; i++ {
		c := dial(t, addr)
		st := probe(c, bufio.NewReader(c), 10*time.Second)
		if st == http.StatusOK {
			break
		}
		if st != 0 || i == 50 {
			t.Fatalf("after one of its connections closed, attempt %d: %d; want 200", i, st)
		}
		c.Close()
		time.Sleep(100 * time.Millisecond)
	}
}

// A trusted proxy carries many clients, so its connections are exempt from
// the address's share; they still count to MaxConns. An untrusted address
// beside it keeps its share.
func TestTrustedProxyConnectionsAreExemptFromTheAddressShare(t *testing.T) {
	const max, perAddr = 4, 1
	addr := serveOn(t, latchhttp.NewServer(at.New(t).Access, people, latchhttp.Options{MaxConns: max, MaxConnsPerAddr: perAddr,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}))
	other := dialFrom(t, "127.0.0.2", addr)
	healthCheck(t, other, bufio.NewReader(other))
	if c := dialFrom(t, "127.0.0.2", addr); probe(c, bufio.NewReader(c), 10*time.Second) != 0 {
		t.Fatalf("an untrusted address was served beyond its share of %d", perAddr)
	}
	var proxied []net.Conn
	for range max - 1 { // every slot left
		c := dial(t, addr)
		healthCheck(t, c, bufio.NewReader(c))
		proxied = append(proxied, c)
	}
	extra := dial(t, addr)
	br := bufio.NewReader(extra)
	if st := probe(extra, br, 300*time.Millisecond); st != -1 {
		t.Fatalf("a trusted proxy's connection beyond MaxConns (%d): %d; want it left waiting (-1)", max, st)
	}
	proxied[0].Close()
	if !answered(extra, br, 10*time.Second) {
		t.Fatal("the proxy's waiting connection was not served after one closed")
	}
}
