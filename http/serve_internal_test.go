package http

import (
	"context"
	"fmt"
	"net"
	"net/http"
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
