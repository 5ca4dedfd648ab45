// Package ipecho asks an echo service, such as checkip.amazonaws.com,
// which public address this machine's requests come from: the source a
// grant opens to when the user asks for their own address (--ip auto).
package ipecho

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

// DefaultURL is AWS's echo service: it answers with one address and a
// newline.
const DefaultURL = "https://checkip.amazonaws.com"

// timeout bounds the whole lookup: a grant waits on it.
const timeout = 10 * time.Second

// Lookup asks the service at url (DefaultURL if "") which address the
// request came from, with c (http.DefaultClient if nil). It accepts
// exactly one address and nothing else: a proxy's error page, a list or a
// prefix is refused rather than guessed at, since the answer decides who
// is let in. A url that is not one is EINVALID.
func Lookup(ctx context.Context, c *http.Client, url string) (netip.Addr, error) {
	if url == "" {
		url = DefaultURL
	}
	if c == nil {
		c = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return netip.Addr{}, latch.Errorf(latch.EINVALID, "%q is not a URL: %v", url, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("ask %s for your address: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256)) // one address is at most 45 bytes
	if err != nil {
		return netip.Addr{}, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return netip.Addr{}, fmt.Errorf("%s answered %s", url, resp.Status)
	}
	s := strings.TrimSpace(string(body))
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s answered %q, which is not one IP address; pass --ip ADDRESS instead", url, truncate(s, 60))
	}
	return addr, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
