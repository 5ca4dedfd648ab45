package pgtest

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Partition is a TCP proxy between a client and the cluster that a test
// can cut, as a network partition does: after Cut, bytes in flight and new
// connections go nowhere and nothing is refused, so the client's calls
// hang until their deadlines.
type Partition struct {
	ln   net.Listener
	cut  chan struct{}
	once sync.Once
}

// Partitioned returns a DSN for dsn's database through a Partition.
func Partitioned(t testing.TB, dsn string) (string, *Partition) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Partition{ln: ln, cut: make(chan struct{})}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); _ = ln.Close() })
	target := u.Host
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c, target, stop)
		}
	}()
	u.Host = ln.Addr().String()
	return u.String(), p
}

// Cut partitions the client from the cluster, for good.
func (p *Partition) Cut() { p.once.Do(func() { close(p.cut) }) }

func (p *Partition) serve(c net.Conn, target string, stop chan struct{}) {
	defer c.Close()
	select {
	case <-p.cut: // a new connection after the cut: hold it, unanswered
		<-stop
		return
	default:
	}
	s, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer s.Close()
	go func() { _, _ = io.Copy(gate{s, p.cut, stop}, c) }()
	_, _ = io.Copy(gate{c, p.cut, stop}, s)
	<-stop
}

// gate writes until the cut, then swallows writes by blocking until the
// test ends.
type gate struct {
	w         io.Writer
	cut, stop chan struct{}
}

func (g gate) Write(b []byte) (int, error) {
	select {
	case <-g.cut:
		<-g.stop
		return 0, io.ErrClosedPipe
	default:
		return g.w.Write(b)
	}
}
