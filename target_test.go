package latch_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

func TestParseSource(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{name: "bare IPv4", in: "203.0.113.7", want: "203.0.113.7/32"},
		{name: "IPv4 host prefix", in: "203.0.113.7/32", want: "203.0.113.7/32"},
		{name: "bare IPv6", in: "2001:db8::1", want: "2001:db8::1/128"},
		{name: "IPv6 host prefix", in: "2001:DB8::1/128", want: "2001:db8::1/128"},
		{name: "IPv4-mapped IPv6", in: "::ffff:203.0.113.7", want: "203.0.113.7/32"},
		{name: "IPv4 everywhere", in: "0.0.0.0/0", wantErr: "whole internet"},
		{name: "IPv6 everywhere", in: "::/0", wantErr: "whole internet"},
		{name: "IPv4 subnet", in: "203.0.113.0/24", wantErr: "single address"},
		{name: "IPv4 slash 31", in: "203.0.113.0/31", wantErr: "single address"},
		{name: "IPv6 slash 64", in: "2001:db8::/64", wantErr: "single address"},
		{name: "unspecified", in: "0.0.0.0", wantErr: "unicast"},
		{name: "hostname", in: "example.com", wantErr: "not an IP address"},
		{name: "empty", in: "", wantErr: "not an IP address"},
		{name: "zone", in: "fe80::1%eth0", wantErr: "zone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := latch.ParseSource(tt.in)
			if tt.wantErr != "" {
				if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(latch.ErrorMessage(err), tt.wantErr) {
					t.Fatalf("ParseSource(%q) err = %v, want EINVALID mentioning %q", tt.in, err, tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "ip: ") {
					t.Errorf("error %q does not name the field", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSource(%q) err = %v", tt.in, err)
			}
			if got != netip.MustParsePrefix(tt.want) {
				t.Errorf("ParseSource(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParsePorts(t *testing.T) {
	tests := []struct {
		name  string
		proto latch.Protocol
		in    string
		want  latch.PortRange
		bad   bool
	}{
		{name: "ssh", proto: latch.TCP, in: "22", want: latch.PortRange{From: 22, To: 22}},
		{name: "range", proto: latch.UDP, in: "60000-61000", want: latch.PortRange{From: 60000, To: 61000}},
		{name: "zero", proto: latch.TCP, in: "0", bad: true},
		{name: "too high", proto: latch.TCP, in: "65536", bad: true},
		{name: "backwards", proto: latch.TCP, in: "30-20", bad: true},
		{name: "words", proto: latch.TCP, in: "ssh", bad: true},
		{name: "icmp echo", proto: latch.ICMP, in: "8", want: latch.PortRange{From: 8, To: -1}},
		{name: "icmp all", proto: latch.ICMP, in: "-1", want: latch.PortRange{From: -1, To: -1}},
		{name: "icmp type code", proto: latch.ICMP, in: "3-4", want: latch.PortRange{From: 3, To: 4}},
		{name: "icmp bad type", proto: latch.ICMP, in: "300", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := latch.ParsePorts(tt.proto, tt.in)
			if tt.bad {
				if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), tt.in) {
					t.Fatalf("ParsePorts(%q) err = %v, want EINVALID naming the value", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParsePorts(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseIDs(t *testing.T) {
	for _, ok := range []string{"sg-0123abcd", "sg-0123456789abcdef0"} {
		if _, err := latch.ParseGroupID(ok); err != nil {
			t.Errorf("ParseGroupID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "sg-", "sg-0123ABCD", "sg-0123abc", "sgr-0123456789abcdef0", "sg-0123456789abcdef0 "} {
		if _, err := latch.ParseGroupID(bad); latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("ParseGroupID(%q) = %v, want EINVALID", bad, err)
		}
	}
	if _, err := latch.ParseGrantID(string(latch.NewGrantID())); err != nil {
		t.Errorf("a new grant ID does not parse: %v", err)
	}
	if a, b := latch.NewGrantID(), latch.NewGrantID(); a == b {
		t.Error("two new grant IDs are equal")
	}
}

func TestGrantRequestValidate(t *testing.T) {
	good := latch.GrantRequest{
		Region: "us-east-1", GroupID: "sg-0123456789abcdef0", Protocol: latch.TCP,
		Ports: latch.PortRange{From: 22, To: 22}, Source: netip.MustParsePrefix("203.0.113.7/32"),
		Duration: 30 * time.Minute, Requester: "alice", Reason: "deploy",
	}
	if err := good.Validate(latch.DefaultMaxDuration); err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	tests := []struct {
		name  string
		edit  func(*latch.GrantRequest)
		field string
	}{
		{"zero duration", func(r *latch.GrantRequest) { r.Duration = 0 }, "for"},
		{"negative duration", func(r *latch.GrantRequest) { r.Duration = -time.Minute }, "for"},
		{"over maximum", func(r *latch.GrantRequest) { r.Duration = 61 * time.Minute }, "for"},
		{"fractional seconds", func(r *latch.GrantRequest) { r.Duration = 1500 * time.Millisecond }, "for"},
		{"no reason", func(r *latch.GrantRequest) { r.Reason = "" }, "reason"},
		{"long reason", func(r *latch.GrantRequest) { r.Reason = strings.Repeat("é", 257) }, "reason"},
		{"subnet source", func(r *latch.GrantRequest) { r.Source = netip.MustParsePrefix("10.0.0.0/8") }, "ip"},
		{"world source", func(r *latch.GrantRequest) { r.Source = netip.MustParsePrefix("0.0.0.0/0") }, "ip"},
		{"bad group", func(r *latch.GrantRequest) { r.GroupID = "sg-nope" }, "sg"},
		{"bad protocol", func(r *latch.GrantRequest) { r.Protocol = "-1" }, "protocol"},
		{"bad region", func(r *latch.GrantRequest) { r.Region = "moon" }, "region"},
		{"no requester", func(r *latch.GrantRequest) { r.Requester = "" }, "requester"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good
			tt.edit(&r)
			err := r.Validate(latch.DefaultMaxDuration)
			e, ok := err.(*latch.Error)
			if !ok || e.Code != latch.EINVALID || e.Field != tt.field {
				t.Fatalf("Validate() = %#v, want EINVALID on field %q", err, tt.field)
			}
		})
	}
	long := good
	long.Reason = strings.Repeat("é", 256)
	if err := long.Validate(latch.DefaultMaxDuration); err != nil {
		t.Errorf("256-character reason refused: %v", err)
	}
}

func TestGrantStateMoves(t *testing.T) {
	for _, ended := range []latch.GrantState{latch.StateRevoked, latch.StateExpired, latch.StateFailed} {
		for _, to := range []latch.GrantState{latch.StateRequested, latch.StateActive, latch.StateRevoking} {
			if ended.CanMove(to) {
				t.Errorf("%s grant may move to %s; ended grants never reopen", ended, to)
			}
		}
		if ended.Open() {
			t.Errorf("%s counts as open", ended)
		}
	}
	if !latch.StateRevokeFailed.CanMove(latch.StateExpired) || !latch.StateActive.CanMove(latch.StateRevoking) {
		t.Error("a legal move is refused")
	}
	if latch.StateActive.CanMove(latch.StateExpired) {
		t.Error("active may skip revoking")
	}
}

func TestExpiryTagRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	s := latch.FormatExpiry(at)
	if s != "2026-11-23T09:00:00Z" {
		t.Fatalf("FormatExpiry = %q", s)
	}
	got, err := latch.ParseExpiry(s)
	if err != nil || !got.Equal(at) {
		t.Fatalf("ParseExpiry(%q) = %v, %v", s, got, err)
	}
	if _, err := latch.ParseExpiry("tomorrow"); err == nil {
		t.Fatal("ParseExpiry accepted garbage")
	}
}

// One parser reads port specs for policies and for LATCH_PORTS; its errors
// name the field, quote the value and say what is allowed.
func TestParsePortSpec(t *testing.T) {
	tests := []struct {
		name, in string
		bare     latch.Protocol
		proto    latch.Protocol
		want     latch.PortRange
		wantErr  string
	}{
		{name: "ssh", in: "tcp/22", proto: latch.TCP, want: latch.PortRange{From: 22, To: 22}},
		{name: "upper case", in: "UDP/60000-61000", proto: latch.UDP, want: latch.PortRange{From: 60000, To: 61000}},
		{name: "icmp every type", in: "icmpv6/all", proto: latch.ICMPv6, want: latch.PortRange{From: -1, To: -1}},
		{name: "bare port with a default", in: "8080", bare: latch.TCP, proto: latch.TCP, want: latch.PortRange{From: 8080, To: 8080}},
		{name: "bare port without one", in: "22", wantErr: `ports: "22" is not PROTOCOL/PORTS; want e.g. tcp/22`},
		{name: "no ports", in: "tcp/", bare: latch.TCP, wantErr: `ports: "tcp/" is not PROTOCOL/PORTS`},
		{name: "unknown protocol", in: "all/22", wantErr: `ports: "all/22": protocol "all" is not allowed; want tcp, udp, icmp or icmpv6`},
		{name: "port out of range", in: "tcp/70000", wantErr: `ports: "tcp/70000": "70000" is not a port or range; want 1-65535 or FROM-TO with FROM <= TO`},
		{name: "bad icmp type", in: "icmp/300", wantErr: `ports: "icmp/300": "300" is not an ICMP type; want TYPE or TYPE-CODE (0-255), or all`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proto, got, err := latch.ParsePortSpec("ports", tt.in, tt.bare)
			if tt.wantErr != "" {
				if latch.ErrorCode(err) != latch.EINVALID || !strings.HasPrefix(latch.ErrorMessage(err), tt.wantErr) {
					t.Fatalf("ParsePortSpec(%q) err = %v, want EINVALID starting %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || proto != tt.proto || got != tt.want {
				t.Fatalf("ParsePortSpec(%q) = %s %v, %v; want %s %v", tt.in, proto, got, err, tt.proto, tt.want)
			}
		})
	}
}
