package ec2sim

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// perm is one requested rule, validated and canonical, before it is stored
// or matched.
type perm struct {
	protocol    string
	fromPort    int
	toPort      int
	cidr        netip.Prefix
	description string
	// sourceGroup (or groupName, in the default VPC, until resolveSources
	// names its ID) and prefixList are the sources that are not a CIDR.
	sourceGroup string
	groupName   string
	userID      string
	prefixList  string
}

func (p perm) key(groupID string) ruleKey {
	return ruleKey{groupID, p.protocol, p.fromPort, p.toPort, p.cidr, p.sourceGroup, p.prefixList}
}

// permissions parses IpPermissions.N into one perm per CIDR, as EC2 stores
// them. It also accepts the legacy top-level IpProtocol/FromPort/ToPort/
// CidrIp form.
func (p params) permissions() ([]perm, *apiError) {
	members := p.members("IpPermissions")
	if len(members) == 0 {
		if _, ok := p.get("IpProtocol"); ok {
			return p.permission("", "CidrIp")
		}
		if _, ok := p.get("CidrIp"); ok {
			return p.permission("", "CidrIp")
		}
		return nil, missing("IpPermissions")
	}
	var out []perm
	for _, m := range members {
		ps, err := p.permission(m+".", "")
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// permission parses the IpPermission at prefix (or the legacy form when
// legacyCIDR names its single CIDR parameter).
func (p params) permission(prefix, legacyCIDR string) ([]perm, *apiError) {
	raw, ok := p.get(prefix + "IpProtocol")
	if !ok {
		return nil, missing(prefix + "IpProtocol")
	}
	proto, err := canonicalProtocol(raw)
	if err != nil {
		return nil, err
	}
	from, hasFrom, err := p.integer(prefix + "FromPort")
	if err != nil {
		return nil, err
	}
	to, hasTo, err := p.integer(prefix + "ToPort")
	if err != nil {
		return nil, err
	}
	if from, to, err = portRange(proto, from, hasFrom, to, hasTo); err != nil {
		return nil, err
	}
	type source struct{ param, cidr, desc string }
	var sources []source
	if legacyCIDR != "" {
		sources = append(sources, source{legacyCIDR, p.str(legacyCIDR), ""})
	}
	for _, m := range p.members(prefix + "IpRanges") {
		sources = append(sources, source{m + ".CidrIp", p.str(m + ".CidrIp"), p.str(m + ".Description")})
	}
	for _, m := range p.members(prefix + "Ipv6Ranges") {
		sources = append(sources, source{m + ".CidrIpv6", p.str(m + ".CidrIpv6"), p.str(m + ".Description")})
	}
	others, err := p.otherSources(prefix)
	if err != nil {
		return nil, err
	}
	if len(sources)+len(others) == 0 {
		return nil, missing(prefix + "IpRanges")
	}
	var out []perm
	for _, src := range sources {
		cidr, err := parseCIDR(src.param, src.cidr, strings.HasSuffix(src.param, "CidrIpv6"))
		if err != nil {
			return nil, err
		}
		if err := checkDescription(src.desc); err != nil {
			return nil, err
		}
		out = append(out, perm{protocol: proto, fromPort: from, toPort: to, cidr: cidr, description: src.desc})
	}
	for _, o := range others {
		o.protocol, o.fromPort, o.toPort = proto, from, to
		out = append(out, o)
	}
	return out, nil
}

// xml renders p as the IpPermission that names it alone.
func (p perm) xml() xmlPermission {
	x := xmlPermission{IPProtocol: p.protocol}
	if p.protocol != "-1" {
		from, to := p.fromPort, p.toPort
		x.FromPort, x.ToPort = &from, &to
	}
	switch {
	case p.sourceGroup != "" || p.groupName != "":
		x.Groups.Items = []xmlGroupPair{{UserID: p.userID, GroupID: p.sourceGroup, GroupName: p.groupName, Description: p.description}}
	case p.prefixList != "":
		x.PrefixListIDs.Items = []xmlPrefixListID{{p.prefixList, p.description}}
	case p.cidr.Addr().Is4():
		x.IPRanges.Items = []xmlIPRange{{p.cidr.String(), p.description}}
	default:
		x.IPv6Ranges.Items = []xmlIPv6Range{{p.cidr.String(), p.description}}
	}
	return x
}

// canonicalProtocol maps what EC2 accepts (names in any case, or IANA
// numbers) to what it stores: the name for tcp, udp, icmp and icmpv6,
// "-1" for all, and the number for anything else.
func canonicalProtocol(raw string) (string, *apiError) {
	switch p := strings.ToLower(strings.TrimSpace(raw)); p {
	case "tcp", "6":
		return "tcp", nil
	case "udp", "17":
		return "udp", nil
	case "icmp", "1":
		return "icmp", nil
	case "icmpv6", "58":
		return "icmpv6", nil
	case "-1":
		return "-1", nil
	default:
		if n, err := strconv.Atoi(p); err == nil && n >= 0 && n <= 255 {
			return strconv.Itoa(n), nil
		}
		return "", errf(CodeInvalidParameterValue, "Invalid value '%s' for IP protocol. Unknown protocol.", raw)
	}
}

// portRange validates ports the way EC2 reads them for each protocol: a
// range for tcp and udp, type and code for ICMP, and nothing (-1) for the
// rest.
func portRange(proto string, from int, hasFrom bool, to int, hasTo bool) (int, int, *apiError) {
	switch proto {
	case "tcp", "udp":
		if !hasFrom || !hasTo {
			return 0, 0, errf(CodeInvalidParameterValue,
				"Invalid value 'null' for portRange. Must specify both from and to ports with TCP/UDP.")
		}
		if from < 0 || from > 65535 {
			return 0, 0, invalidValue("FromPort", strconv.Itoa(from), "Ports must be between 0 and 65535.")
		}
		if to < 0 || to > 65535 {
			return 0, 0, invalidValue("ToPort", strconv.Itoa(to), "Ports must be between 0 and 65535.")
		}
		if from > to {
			return 0, 0, errf(CodeInvalidParameterValue,
				"Invalid TCP/UDP port range: FromPort %d is greater than ToPort %d.", from, to)
		}
		return from, to, nil
	case "icmp", "icmpv6":
		// EC2: "For tcp, udp, and icmp, you must specify a port range. For
		// icmpv6, the port range is optional" (all types and codes).
		if proto == "icmp" && (!hasFrom || !hasTo) {
			return 0, 0, errf(CodeInvalidParameterValue,
				"Invalid value 'null' for portRange. Must specify both from and to ports with ICMP.")
		}
		if !hasFrom {
			from = -1
		}
		if !hasTo {
			to = -1
		}
		if from < -1 || from > 255 {
			return 0, 0, invalidValue("FromPort", strconv.Itoa(from), "ICMP type must be between -1 and 255.")
		}
		if to < -1 || to > 255 {
			return 0, 0, invalidValue("ToPort", strconv.Itoa(to), "ICMP code must be between -1 and 255.")
		}
		if from == -1 && to != -1 {
			return 0, 0, errf(CodeInvalidParameterValue, "Invalid ICMP code %d: a code needs a type.", to)
		}
		return from, to, nil
	default:
		return -1, -1, nil
	}
}

// parseCIDR parses and canonicalises a CIDR as EC2 does: host bits are
// cleared (100.68.0.18/18 becomes 100.68.0.0/18) and IPv6 is written in
// lowercase, compressed form.
func parseCIDR(param, s string, ipv6 bool) (netip.Prefix, *apiError) {
	if s == "" {
		return netip.Prefix{}, missing(param)
	}
	pfx, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil || pfx.Addr().Zone() != "" {
		return netip.Prefix{}, invalidValue(param, s, "This is not a valid CIDR block.")
	}
	if pfx.Addr().Is6() != ipv6 || pfx.Addr().Is4In6() {
		family := "IPv4"
		if ipv6 {
			family = "IPv6"
		}
		return netip.Prefix{}, invalidValue(param, s, "This is not a valid "+family+" CIDR block.")
	}
	return pfx.Masked(), nil
}

// checkDescription applies EC2's rule-description limits, so a caller
// whose descriptions AWS would refuse finds out in tests.
func checkDescription(d string) *apiError {
	const allowed = " ._-:/()#,@[]+=&;{}!$*"
	bad := len(d) > 255
	for _, c := range d {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(allowed, c)) {
			bad = true
		}
	}
	if bad {
		return errf(CodeInvalidParameterValue,
			"Invalid rule description %q. Valid descriptions are strings less than 256 characters from the following set: a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*", d)
	}
	return nil
}

// describePeer renders a rule the way EC2's duplicate message does.
func describePeer(k ruleKey) string {
	proto := strings.ToUpper(k.protocol)
	peer := k.cidr.String()
	switch {
	case k.sourceGroup != "":
		peer = k.sourceGroup
	case k.prefixList != "":
		peer = k.prefixList
	}
	if k.protocol == "-1" {
		return fmt.Sprintf("peer: %s, ALL, ALLOW", peer)
	}
	return fmt.Sprintf("peer: %s, %s, from port: %d, to port: %d, ALLOW", peer, proto, k.fromPort, k.toPort)
}

func mustPrefix(s string) netip.Prefix {
	return netip.MustParsePrefix(s)
}
