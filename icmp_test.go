package latch_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/latchdev/latch"
)

func TestParseICMPPorts(t *testing.T) {
	for _, proto := range []latch.Protocol{latch.ICMP, latch.ICMPv6} {
		for in, want := range map[string]latch.PortRange{
			"": latch.AllICMP, "-1": latch.AllICMP, "all": latch.AllICMP, "ALL": latch.AllICMP,
			"8": {From: 8, To: -1}, "128": {From: 128, To: -1}, "3-4": {From: 3, To: 4}, "8--1": {From: 8, To: -1},
		} {
			if got, err := latch.ParsePorts(proto, in); err != nil || got != want {
				t.Errorf("ParsePorts(%s, %q) = %v, %v; want %v", proto, in, got, err, want)
			}
		}
		for _, bad := range []string{"256", "-1-4", "8-256", "echo", "8-", "-2"} {
			if _, err := latch.ParsePorts(proto, bad); latch.ErrorCode(err) != latch.EINVALID {
				t.Errorf("ParsePorts(%s, %q) = %v; want EINVALID", proto, bad, err)
			}
		}
	}
}

func TestParseProtocolICMPv6(t *testing.T) {
	for _, in := range []string{"icmpv6", "ICMPv6", "ICMPV6"} {
		if p, err := latch.ParseProtocol(in); err != nil || p != latch.ICMPv6 {
			t.Errorf("ParseProtocol(%q) = %q, %v; want icmpv6", in, p, err)
		}
	}
	for _, bad := range []string{"-1", "58", "all", "icmp6", "ipv6-icmp"} {
		if _, err := latch.ParseProtocol(bad); latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), "icmpv6") {
			t.Errorf("ParseProtocol(%q) = %v; want EINVALID listing icmpv6", bad, err)
		}
	}
}

func TestParseICMPTypeCode(t *testing.T) {
	tests := []struct {
		typ, code string
		want      latch.PortRange
		field     string // the field a refusal names; "" for none
	}{
		{"", "", latch.AllICMP, ""},
		{"all", "", latch.AllICMP, ""},
		{"8", "", latch.PortRange{From: 8, To: -1}, ""},
		{"3", "4", latch.PortRange{From: 3, To: 4}, ""},
		{"0", "0", latch.PortRange{From: 0, To: 0}, ""},
		{"255", "255", latch.PortRange{From: 255, To: 255}, ""},
		{"", "4", latch.PortRange{}, "code"},
		{"256", "", latch.PortRange{}, "type"},
		{"-1", "", latch.PortRange{}, "type"},
		{"echo", "", latch.PortRange{}, "type"},
		{"3", "-1", latch.PortRange{}, "code"},
		{"3", "256", latch.PortRange{}, "code"},
	}
	for _, tt := range tests {
		got, err := latch.ParseICMPTypeCode(tt.typ, tt.code)
		if tt.field != "" {
			if latch.ErrorCode(err) != latch.EINVALID || !strings.HasPrefix(err.Error(), tt.field+": ") {
				t.Errorf("ParseICMPTypeCode(%q, %q) = %v; want EINVALID naming %s", tt.typ, tt.code, err, tt.field)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseICMPTypeCode(%q, %q) = %v, %v; want %v", tt.typ, tt.code, got, err, tt.want)
		}
	}
}

// TestValidateRefusesICMPOfTheOtherFamily: an icmp rule for an IPv6 source
// would open ICMPv4, which never reaches it; icmpv6 for IPv4 likewise.
func TestValidateRefusesICMPOfTheOtherFamily(t *testing.T) {
	tests := []struct {
		proto  latch.Protocol
		source string
		wide   bool
		want   string // "" when allowed
	}{
		{latch.ICMP, "203.0.113.7/32", false, ""},
		{latch.ICMPv6, "2001:db8::7/128", false, ""},
		{latch.ICMP, "2001:db8::7/128", false, "use icmpv6"},
		{latch.ICMP, "2001:db8::/48", true, "use icmpv6"},
		{latch.ICMPv6, "203.0.113.7/32", false, "use icmp"},
		{latch.ICMPv6, "198.51.100.0/24", true, "use icmp"},
		{latch.TCP, "2001:db8::7/128", false, ""},
	}
	for _, tt := range tests {
		r := grantRequest("ping")
		r.Protocol, r.Ports, r.Source, r.Wide = tt.proto, latch.AllICMP, netip.MustParsePrefix(tt.source), tt.wide
		if tt.proto == latch.TCP {
			r.Ports = latch.PortRange{From: 22, To: 22}
		}
		err := r.Validate(latch.DefaultMaxDuration)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s from %s: %v; want allowed", tt.proto, tt.source, err)
			}
			continue
		}
		if latch.ErrorCode(err) != latch.EINVALID || !strings.HasPrefix(err.Error(), "protocol: ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s from %s: %v; want EINVALID on protocol saying %q", tt.proto, tt.source, err, tt.want)
		}
	}
}

func TestDescribePorts(t *testing.T) {
	tests := []struct {
		proto latch.Protocol
		r     latch.PortRange
		want  string
	}{
		{latch.TCP, latch.PortRange{From: 22, To: 22}, "tcp 22"},
		{latch.UDP, latch.PortRange{From: 60000, To: 61000}, "udp 60000-61000"},
		{latch.ICMP, latch.AllICMP, "icmp all types"},
		{latch.ICMP, latch.PortRange{From: 8, To: -1}, "icmp type 8 (echo request)"},
		{latch.ICMP, latch.PortRange{From: 3, To: 4}, "icmp type 3 code 4"},
		{latch.ICMP, latch.PortRange{From: 42, To: -1}, "icmp type 42"},
		{latch.ICMPv6, latch.AllICMP, "icmpv6 all types"},
		{latch.ICMPv6, latch.PortRange{From: 128, To: -1}, "icmpv6 type 128 (echo request)"},
		{latch.ICMPv6, latch.PortRange{From: 8, To: -1}, "icmpv6 type 8"},
		{latch.ICMPv6, latch.PortRange{From: 1, To: 4}, "icmpv6 type 1 code 4"},
	}
	for _, tt := range tests {
		if got := latch.DescribePorts(tt.proto, tt.r); got != tt.want {
			t.Errorf("DescribePorts(%s, %v) = %q, want %q", tt.proto, tt.r, got, tt.want)
		}
	}
}
