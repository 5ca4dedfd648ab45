package ipecho_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/ipecho"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		want       netip.Addr
		wantErr    string // part of the error; empty means success
	}{
		{name: "one address", body: "203.0.113.99\n", status: 200, want: netip.MustParseAddr("203.0.113.99")},
		{name: "IPv6", body: "2001:db8::99", status: 200, want: netip.MustParseAddr("2001:db8::99")},
		{name: "a network", body: "203.0.113.0/24", status: 200, wantErr: "not one IP address"},
		{name: "two addresses", body: "203.0.113.1, 203.0.113.2", status: 200, wantErr: "not one IP address"},
		{name: "a long page", body: strings.Repeat("x", 1000), status: 200, wantErr: strings.Repeat("x", 60) + "…"},
		{name: "an error page", body: "<html>oops</html>", status: 502, wantErr: "502"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			echo := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
				rw.WriteHeader(tt.status)
				fmt.Fprint(rw, tt.body)
			}))
			defer echo.Close()
			got, err := ipecho.Lookup(t.Context(), echo.Client(), echo.URL)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Lookup = %v, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Lookup = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestLookupRefusesABadURL(t *testing.T) {
	if _, err := ipecho.Lookup(t.Context(), nil, "http://a b"); latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), "not a URL") {
		t.Fatalf("err = %v; want EINVALID, not a URL", err)
	}
}
