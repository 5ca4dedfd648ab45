package main

import (
	"io"
	"net"
	"strings"
	"testing"
)

func TestSSMForwardFlag(t *testing.T) {
	for _, bad := range []string{"i-01:22", "web-1:22=127.0.0.1:22", "i-01:0=127.0.0.1:22", "i-01:22=localhost"} {
		if _, err := parseFlags([]string{"-ssm-forward", bad}, io.Discard); err == nil {
			t.Errorf("-ssm-forward %s accepted", bad)
		}
	}
	if _, err := parseFlags([]string{"-ssm-forward", "i-01:22=127.0.0.1:1", "-ssm-forward", "i-01:22=127.0.0.1:2"}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "twice") {
		t.Errorf("a repeated forward = %v, want an error", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			_ = c.Close()
		}
	}()
	cfg, err := parseFlags([]string{"-ssm-forward", "i-0a0b0c0d0e0f00001:22=" + ln.Addr().String()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	dial := forwardDialer(cfg.forwards)
	conn, err := dial(t.Context(), "us-east-1", "i-0a0b0c0d0e0f00001", 22)
	if err != nil {
		t.Fatalf("dial forwarded port = %v", err)
	}
	_ = conn.Close()
	if _, err := dial(t.Context(), "us-east-1", "i-0a0b0c0d0e0f00001", 80); err == nil {
		t.Error("dial of a port not forwarded succeeded")
	}
	if forwardDialer(nil) != nil {
		t.Error("no forwards should leave Options.Dial nil")
	}
}
