package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

const defaultIPEchoURL = "https://checkip.amazonaws.com"

// publicIP asks an echo service which address our requests come from. It
// accepts exactly one address and nothing else: a proxy's error page, a
// list, or a prefix is refused rather than guessed at.
func (a *app) publicIP(ctx context.Context) (string, error) {
	url := a.getenv("LATCH_IP_ECHO_URL")
	if url == "" {
		url = defaultIPEchoURL
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", latch.Invalidf("ip", "LATCH_IP_ECHO_URL=%q is not a URL: %v", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("--ip auto: ask %s for your address: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return "", fmt.Errorf("--ip auto: read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("--ip auto: %s answered %s", url, resp.Status)
	}
	s := strings.TrimSpace(string(body))
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return "", fmt.Errorf("--ip auto: %s answered %q, which is not one IP address; pass --ip ADDRESS instead", url, truncate(s, 60))
	}
	return addr.String(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
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
