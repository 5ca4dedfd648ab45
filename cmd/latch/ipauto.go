package main

import (
	"context"
	"fmt"
	"os"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/ipecho"
)

// publicIP asks an echo service (LATCH_IP_ECHO_URL, else AWS's) which
// address our requests come from, for --ip auto.
func (a *app) publicIP(ctx context.Context) (string, error) {
	url := a.getenv("LATCH_IP_ECHO_URL")
	addr, err := ipecho.Lookup(ctx, nil, url)
	if latch.ErrorCode(err) == latch.EINVALID {
		return "", latch.Invalidf("ip", "LATCH_IP_ECHO_URL=%s", latch.ErrorMessage(err))
	}
	if err != nil {
		return "", fmt.Errorf("--ip auto: %w", err)
	}
	return addr.String(), nil
}

// localUser names the person at this terminal, for grants made directly.
func (a *app) localUser() string {
	user := a.getenv("USER")
	if user == "" {
		user = "unknown"
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return user
	}
	return user + "@" + host
}
