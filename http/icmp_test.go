package http_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
)

// A request for ICMP of the other family is bad input, refused before the
// broker records anything: icmp for an IPv6 caller (or asked source) and
// icmpv6 for an IPv4 one.
func TestDecodeRequestRefusesICMPOfTheOtherFamily(t *testing.T) {
	tests := []struct {
		body, from, want string // want "" when accepted
	}{
		{`{"target":"i-0a0b0c0d0e0f00001","protocol":"icmp"}`, "2001:db8::7", "icmpv6"},
		{`{"target":"i-0a0b0c0d0e0f00001","protocol":"icmp","port":"8"}`, "203.0.113.7", ""},
		{`{"target":"i-0a0b0c0d0e0f00001","protocol":"icmp","port":"8"}`, "::ffff:203.0.113.7", ""},
		{`{"target":"i-0a0b0c0d0e0f00001","protocol":"icmpv6","port":"128"}`, "203.0.113.7", "use icmp"},
		{`{"target":"i-0a0b0c0d0e0f00001","protocol":"icmpv6","port":"128"}`, "2001:db8::7", ""},
		{`{"target":"i-0a0b0c0d0e0f00001","protocol":"icmpv6","source":"198.51.100.0/24"}`, "2001:db8::7", "use icmp"},
		{`{"target":"i-0a0b0c0d0e0f00001","protocol":"icmp","source":"2001:db8::/48"}`, "203.0.113.7", "icmpv6"},
	}
	for _, tt := range tests {
		in, err := latchhttp.DecodeRequest([]byte(tt.body), netip.MustParseAddr(tt.from))
		if tt.want == "" {
			if err != nil {
				t.Errorf("DecodeRequest(%s) from %s = %v; want it accepted", tt.body, tt.from, err)
			}
			continue
		}
		if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeRequest(%s) from %s = %+v, %v; want EINVALID saying %q", tt.body, tt.from, in, err, tt.want)
		}
	}
}
