package sshclient_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/mock"
	"github.com/latchdev/latch/sshclient"
)

// pipeDial hands the proxy one end of a pipe and the test the other.
func pipeDial(t *testing.T) (dial func(context.Context, string, string) (net.Conn, error), instance <-chan net.Conn) {
	c := make(chan net.Conn, 1)
	return func(_ context.Context, network, addr string) (net.Conn, error) {
		if network != "tcp" || addr != "203.0.113.9:22" {
			t.Errorf("dial %s %s; want tcp 203.0.113.9:22", network, addr)
		}
		a, b := net.Pipe()
		c <- b
		return a, nil
	}, c
}

func TestProxyCarriesTheConnection(t *testing.T) {
	dial, instance := pipeDial(t)
	var out, notices bytes.Buffer
	p := sshclient.Proxy{Address: "203.0.113.9:22", Until: start.Add(time.Hour), Clock: mock.NewClock(start), Name: "web-1.latch",
		Stdin: strings.NewReader("SSH-2.0-client\r\n"), Stdout: &out, Stderr: &notices, Dial: dial}
	done := make(chan error, 1)
	go func() { done <- p.Run(t.Context()) }()
	conn := <-instance
	got := make([]byte, len("SSH-2.0-client\r\n"))
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "SSH-2.0-client\r\n" {
		t.Fatalf("the instance read %q, %v", got, err)
	}
	// ssh's stdin is at its end: the proxy closes the connection.
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if notices.Len() != 0 {
		t.Errorf("notices %q; want none", notices.String())
	}
}

func TestProxyClosesAtExpiry(t *testing.T) {
	dial, instance := pipeDial(t)
	clock := mock.NewClock(start)
	stdin, _ := io.Pipe() // ssh keeps its side open
	var out, notices bytes.Buffer
	p := sshclient.Proxy{Address: "203.0.113.9:22", Until: start.Add(time.Hour), Clock: clock, Name: "web-1.latch",
		Stdin: stdin, Stdout: &out, Stderr: &notices, Dial: dial}
	done := make(chan error, 1)
	go func() { done <- p.Run(t.Context()) }()
	conn := <-instance
	if _, err := conn.Write([]byte("SSH-2.0-server\r\n")); err != nil {
		t.Fatal(err)
	}
	for clock.Pending() == 0 { // Run has set its alarm
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	clock.Advance(time.Hour)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out.String() != "SSH-2.0-server\r\n" || !strings.Contains(notices.String(), "access to web-1.latch expired") {
		t.Errorf("stdout %q, notices %q; want the server's banner, then the expiry notice", out.String(), notices.String())
	}
	if _, err := conn.Write([]byte("x")); err == nil {
		t.Error("the connection is still open after expiry")
	}
}

func TestConnStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, err := sshclient.ReadConnState(dir); err == nil {
		t.Fatal("read state from an empty directory")
	}
	st := sshclient.ConnState{Grant: latch.GrantID("g-0000000000000001"), Address: "203.0.113.9:22", ExpiresAt: start}
	if err := sshclient.WriteConnState(dir, st); err != nil {
		t.Fatal(err)
	}
	if got, err := sshclient.ReadConnState(dir); err != nil || got != st {
		t.Fatalf("ReadConnState = %+v, %v; want %+v", got, err, st)
	}
}
