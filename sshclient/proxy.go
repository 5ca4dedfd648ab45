package sshclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/latchdev/latch"
)

// ConnState is what the block's Match exec leaves for its ProxyCommand,
// beside the connection's key: the grant to end and where to connect.
type ConnState struct {
	Grant     latch.GrantID `json:"grant_id"`
	Address   string        `json:"address"` // HOST:PORT
	ExpiresAt time.Time     `json:"expires_at"`
}

const connStateFile = "state.json"

// ReadConnState reads the state WriteConnState left in dir.
func ReadConnState(dir string) (ConnState, error) {
	var st ConnState
	b, err := os.ReadFile(filepath.Join(dir, connStateFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read %s: %w", filepath.Join(dir, connStateFile), err)
	}
	if st.Grant == "" || st.Address == "" {
		return st, errors.New("incomplete state")
	}
	return st, nil
}

// WriteConnState records st in dir for the ProxyCommand.
func WriteConnState(dir string, st ConnState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, connStateFile), b, 0o600)
}

// dialTimeout bounds the connection to the instance: ssh shows nothing
// while its ProxyCommand connects.
const dialTimeout = 15 * time.Second

// Proxy is the ProxyCommand side of a connection: it carries ssh's stdin
// and stdout to the instance.
type Proxy struct {
	Address string    // HOST:PORT
	Until   time.Time // when access ends; the connection is closed then
	Clock   latch.Clock
	Name    string // the host as the user named it, for the notice at expiry
	Stdin   io.Reader
	// Stdout is ssh's side of the connection; Stderr takes latch's notice.
	Stdout, Stderr io.Writer
	// Dial connects to Address; nil dials TCP with a 15 s timeout.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Run carries the connection until either side closes it, ctx ends, or
// access expires at Until (a security group keeps tracked connections
// open after their rule goes, so latch closes them itself). It returns
// once the connection is closed and nothing more goes to Stdout; the read
// from Stdin may still be waiting, which only the process's exit ends.
func (p Proxy) Run(ctx context.Context) error {
	dial := p.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: dialTimeout}).DialContext
	}
	conn, err := dial(ctx, "tcp", p.Address)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", p.Address, err)
	}
	in, out := make(chan struct{}), make(chan struct{})
	go func() { _, _ = io.Copy(conn, p.Stdin); close(in) }()
	go func() { _, _ = io.Copy(p.Stdout, conn); close(out) }()
	select {
	case <-in:
	case <-out:
	case <-ctx.Done():
	case <-p.Clock.Alarm(p.Until):
		fmt.Fprintf(p.Stderr, "\r\nlatch: access to %s expired; closing the connection.\r\n", p.Name)
	}
	_ = conn.Close()
	<-out
	return nil
}
