package latch

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ICMP in latch: EC2 keeps an ICMP rule's type in FromPort and its code in
// ToPort, -1 meaning all. icmp is ICMP over IPv4 (protocol 1) and only
// reaches IPv4 sources; icmpv6 (protocol 58) only IPv6 ones. EC2 itself
// accepts icmp with an IPv6 range and opens nothing useful, so latch
// refuses the pair rather than open a rule that does not do what was asked.

// IsICMP reports whether p is icmp or icmpv6, whose ranges are a type and a
// code rather than ports.
func (p Protocol) IsICMP() bool { return p == ICMP || p == ICMPv6 }

// AllICMP is every ICMP type and code.
var AllICMP = PortRange{From: -1, To: -1}

// parseICMP reads "TYPE" or "TYPE-CODE", or "", "-1" or "all" for every
// type, as the ports of an icmp or icmpv6 rule.
func parseICMP(s string) (PortRange, error) {
	if s == "" || s == "-1" || strings.EqualFold(s, "all") {
		return AllICMP, nil
	}
	typ, code, found := strings.Cut(s, "-")
	if !found {
		code = "-1"
	}
	t, err1 := strconv.Atoi(typ)
	c, err2 := strconv.Atoi(code)
	if err1 != nil || err2 != nil || t < 0 || t > 255 || c < -1 || c > 255 {
		return PortRange{}, Invalidf("port", "%q is not an ICMP type; want TYPE or TYPE-CODE (0-255), or all", s)
	}
	return PortRange{From: t, To: c}, nil
}

// ParseICMPTypeCode reads an ICMP type and code given apart, as the
// --type and --code flags do. An empty type is every type; an empty code
// is every code of the type; a code needs a type.
func ParseICMPTypeCode(typ, code string) (PortRange, error) {
	if typ == "" || strings.EqualFold(typ, "all") {
		if code != "" {
			return PortRange{}, Invalidf("code", "code %q needs a type: give --type TYPE (0-255) with it", code)
		}
		return AllICMP, nil
	}
	t, err := strconv.Atoi(typ)
	if err != nil || t < 0 || t > 255 {
		return PortRange{}, Invalidf("type", "%q is not an ICMP type; want a number 0-255 (8 is echo request), or leave it off for all types", typ)
	}
	r := PortRange{From: t, To: -1}
	if code == "" || strings.EqualFold(code, "all") {
		return r, nil
	}
	c, err := strconv.Atoi(code)
	if err != nil || c < 0 || c > 255 {
		return PortRange{}, Invalidf("code", "%q is not an ICMP code; want a number 0-255, or leave it off for every code of type %d", code, t)
	}
	r.To = c
	return r, nil
}

// CheckFamily refuses a protocol that cannot reach source's address
// family: icmp is for IPv4 sources and icmpv6 for IPv6 ones.
func CheckFamily(p Protocol, source netip.Prefix) error {
	switch {
	case p == ICMP && source.Addr().Is6():
		return Invalidf("protocol", "icmp is ICMP over IPv4 and %s is an IPv6 source; for IPv6 use icmpv6", source)
	case p == ICMPv6 && source.Addr().Is4():
		return Invalidf("protocol", "icmpv6 is ICMP over IPv6 and %s is an IPv4 source; for IPv4 use icmp", source)
	}
	return nil
}

// DescribePorts says what a protocol and range open, in words: "tcp 22",
// "udp 60000-61000", "icmp all types", "icmp type 8 (echo request)",
// "icmp type 3 code 4", "icmpv6 type 128 (echo request)".
func DescribePorts(p Protocol, r PortRange) string {
	if !p.IsICMP() {
		return fmt.Sprintf("%s %s", p, r)
	}
	switch {
	case r.From == -1:
		return fmt.Sprintf("%s all types", p)
	case r.To == -1:
		s := fmt.Sprintf("%s type %d", p, r.From)
		if name := icmpTypeName(p, r.From); name != "" {
			s += " (" + name + ")"
		}
		return s
	}
	return fmt.Sprintf("%s type %d code %d", p, r.From, r.To)
}

func icmpTypeName(p Protocol, typ int) string {
	if p == ICMPv6 {
		return icmpv6Types[typ]
	}
	return icmpTypes[typ]
}

// The ICMP types people ask for by name (IANA's registries).
var (
	icmpTypes = map[int]string{
		0: "echo reply", 3: "destination unreachable", 5: "redirect", 8: "echo request",
		9: "router advertisement", 10: "router solicitation", 11: "time exceeded",
		12: "parameter problem", 13: "timestamp", 14: "timestamp reply",
	}
	icmpv6Types = map[int]string{
		1: "destination unreachable", 2: "packet too big", 3: "time exceeded", 4: "parameter problem",
		128: "echo request", 129: "echo reply", 133: "router solicitation", 134: "router advertisement",
		135: "neighbor solicitation", 136: "neighbor advertisement", 137: "redirect",
	}
)
