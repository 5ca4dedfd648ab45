package latch

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// GroupID is an EC2 security group ID (sg-…).
type GroupID string

// RuleID is an EC2 security group rule ID (sgr-…).
type RuleID string

var (
	groupIDPattern = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)
	ruleIDPattern  = regexp.MustCompile(`^sgr-([0-9a-f]{8}|[0-9a-f]{17})$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// ParseGroupID checks that s is a well-formed security group ID.
func ParseGroupID(s string) (GroupID, error) {
	if !groupIDPattern.MatchString(s) {
		return "", Invalidf("sg", "%q is not a security group ID; want sg- followed by 8 or 17 lowercase hex digits, e.g. sg-0123456789abcdef0", s)
	}
	return GroupID(s), nil
}

// ParseRuleID checks that s is a well-formed security group rule ID.
func ParseRuleID(s string) (RuleID, error) {
	if !ruleIDPattern.MatchString(s) {
		return "", Invalidf("rule", "%q is not a security group rule ID; want sgr- followed by 17 lowercase hex digits", s)
	}
	return RuleID(s), nil
}

// ParseRegion checks that s looks like an AWS region name.
func ParseRegion(s string) (string, error) {
	if !regionPattern.MatchString(s) {
		return "", Invalidf("region", "%q is not an AWS region; want a name like us-east-1", s)
	}
	return s, nil
}

// Protocol is the IP protocol a grant opens.
type Protocol string

// The protocols a grant may open. "All traffic" (-1) is never allowed.
const (
	TCP    Protocol = "tcp"
	UDP    Protocol = "udp"
	ICMP   Protocol = "icmp"   // ICMP over IPv4, for IPv4 sources
	ICMPv6 Protocol = "icmpv6" // ICMP over IPv6 (protocol 58), for IPv6 sources
)

// ParseProtocol accepts tcp, udp, icmp or icmpv6, in any case.
func ParseProtocol(s string) (Protocol, error) {
	switch p := Protocol(strings.ToLower(s)); p {
	case TCP, UDP, ICMP, ICMPv6:
		return p, nil
	}
	return "", Invalidf("protocol", "%q is not allowed; want tcp, udp, icmp or icmpv6", s)
}

// PortRange is an inclusive range of ports. For icmp and icmpv6, From is
// the type and To the code, with -1 meaning all, as EC2 has it.
type PortRange struct {
	From, To int
}

func (r PortRange) String() string {
	if r.From == r.To {
		return strconv.Itoa(r.From)
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

// ParsePorts accepts "22" or "8000-8080" for tcp and udp. For icmp and
// icmpv6 it accepts "TYPE" or "TYPE-CODE", and "", "-1" or "all" for every
// type, so "8" is echo request, any code.
func ParsePorts(proto Protocol, s string) (PortRange, error) {
	if proto.IsICMP() {
		return parseICMP(s)
	}
	from, to, found := strings.Cut(s, "-")
	if !found {
		to = from
	}
	f, err1 := strconv.Atoi(from)
	t, err2 := strconv.Atoi(to)
	if err1 != nil || err2 != nil || f < 1 || t > 65535 || f > t {
		return PortRange{}, Invalidf("port", "%q is not a port or range; want a number 1-65535 or FROM-TO with FROM <= TO", s)
	}
	return PortRange{From: f, To: t}, nil
}

// ParsePortSpec reads PROTOCOL/PORTS, as policies and LATCH_PORTS write it:
// tcp/22, udp/60000-61000, icmp/8, icmpv6/all. bare, if set, is the
// protocol of a spec written without one ("22"); if not, one is required.
// Errors are EINVALID under field ("" for none, when the caller names the
// place itself) and quote the spec, the part at fault and what is allowed.
func ParsePortSpec(field, s string, bare Protocol) (Protocol, PortRange, error) {
	proto, ports, found := strings.Cut(s, "/")
	if !found && bare != "" {
		proto, ports, found = string(bare), s, true
	}
	if !found || ports == "" {
		return "", PortRange{}, Invalidf(field, "%q is not PROTOCOL/PORTS; want e.g. tcp/22, tcp/8000-8080, icmp/8 or icmpv6/all", s)
	}
	p, err := ParseProtocol(proto)
	if err != nil {
		return "", PortRange{}, Invalidf(field, "%q: protocol %q is not allowed; want tcp, udp, icmp or icmpv6", s, proto)
	}
	r, err := ParsePorts(p, ports)
	if err != nil {
		if p.IsICMP() {
			return "", PortRange{}, Invalidf(field, "%q: %q is not an ICMP type; want TYPE or TYPE-CODE (0-255), or all", s, ports)
		}
		return "", PortRange{}, Invalidf(field, "%q: %q is not a port or range; want 1-65535 or FROM-TO with FROM <= TO", s, ports)
	}
	return p, r, nil
}

// ParseSource turns an address, or a single-address prefix, into the one
// source a grant may open to: an IPv4 /32 or an IPv6 /128. Anything wider is
// refused, the whole internet most firmly.
func ParseSource(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, Invalidf("ip", "%q is not an IP address or prefix", s)
		}
		if p.Bits() == 0 {
			return netip.Prefix{}, Invalidf("ip", "%q opens to the whole internet, which latch never does; give your own address (or --ip auto)", s)
		}
		if p.Bits() != p.Addr().BitLen() {
			return netip.Prefix{}, Invalidf("ip", "%q is a /%d network; a grant opens to a single address only (/%d)", s, p.Bits(), p.Addr().BitLen())
		}
		return checkSourceAddr(s, p.Addr())
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, Invalidf("ip", "%q is not an IP address", s)
	}
	return checkSourceAddr(s, a)
}

func checkSourceAddr(s string, a netip.Addr) (netip.Prefix, error) {
	a = a.Unmap()
	if a.Zone() != "" {
		return netip.Prefix{}, Invalidf("ip", "%q has a zone; a security group rule cannot name one", s)
	}
	if a.IsUnspecified() || a.IsMulticast() {
		return netip.Prefix{}, Invalidf("ip", "%q is not a unicast address a connection can come from", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseWideSource is ParseSource for a policy rule that allows a prefix
// wider than one address. It still refuses the whole internet (/0), and
// canonicalises host bits away as EC2 does.
func ParseWideSource(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		return ParseSource(s)
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, Invalidf("ip", "%q is not an IP address or prefix", s)
	}
	if p.Bits() == 0 {
		return netip.Prefix{}, Invalidf("ip", "%q opens to the whole internet, which latch never does", s)
	}
	if _, err := checkSourceAddr(s, p.Addr()); err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}
