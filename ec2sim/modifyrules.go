package ec2sim

import "strings"

type modifyRulesResponse struct {
	meta
	Return bool `xml:"return"`
}

// modifySecurityGroupRules replaces rules of a group in place: each
// SecurityGroupRule.N names a rule by SecurityGroupRuleId and gives its
// new protocol, ports, CIDR and description (SecurityGroupRuleRequest; an
// omitted description clears it). A rule keeps its ID and tags. Like
// authorize it is all or nothing.
func (s *Server) modifySecurityGroupRules(r *region, p params) (response, *apiError) {
	if p.str("GroupId") == "" {
		return nil, missing("GroupId")
	}
	g, err := s.lookupGroup(r, p)
	if err != nil {
		return nil, err
	}
	members := p.members("SecurityGroupRule")
	if len(members) == 0 {
		return nil, missing("SecurityGroupRule")
	}
	type update struct {
		ru *rule
		pm perm
	}
	var ups []update
	for _, m := range members {
		id := p.str(m + ".SecurityGroupRuleId")
		switch {
		case id == "":
			return nil, missing(m + ".SecurityGroupRuleId")
		case !validRuleID(id):
			return nil, errf(CodeInvalidRuleIDMalformed, "Invalid id: %q (expecting \"sgr-...\")", id)
		}
		ru, ok := r.rules[id]
		if !ok || ru.groupID != g.id {
			return nil, errf(CodeInvalidRuleIDNotFound,
				"The security group rule ID '%s' does not exist in security group '%s'", id, g.id)
		}
		pm, err := p.ruleRequest(m + ".SecurityGroupRule.")
		if err != nil {
			return nil, err
		}
		ups = append(ups, update{ru, pm})
	}

	// The rules after the change must still be distinct.
	changed := map[string]bool{}
	for _, u := range ups {
		changed[u.ru.id] = true
	}
	seen := map[ruleKey]bool{}
	for _, ru := range r.rulesOf(g.id) {
		if !changed[ru.id] {
			seen[ru.key()] = true
		}
	}
	for _, u := range ups {
		k := u.pm.key(g.id)
		if seen[k] {
			return nil, errf(CodeInvalidPermissionDuplicate, "the specified rule %q already exists", describePeer(k))
		}
		seen[k] = true
	}

	for _, u := range ups {
		s.noteRule(r, u.ru.id)
		u.ru.protocol, u.ru.fromPort, u.ru.toPort = u.pm.protocol, u.pm.fromPort, u.pm.toPort
		u.ru.cidr, u.ru.description = u.pm.cidr, u.pm.description
		u.ru.sourceGroup, u.ru.prefixList = "", "" // the request names a CIDR

	}
	return &modifyRulesResponse{Return: true}, nil
}

// ruleRequest parses the SecurityGroupRuleRequest at prefix: a CIDR source
// in CidrIpv4 or CidrIpv6, as the simulator models no other.
func (p params) ruleRequest(prefix string) (perm, *apiError) {
	raw, ok := p.get(prefix + "IpProtocol")
	if !ok {
		return perm{}, missing(prefix + "IpProtocol")
	}
	proto, err := canonicalProtocol(raw)
	if err != nil {
		return perm{}, err
	}
	from, hasFrom, err := p.integer(prefix + "FromPort")
	if err != nil {
		return perm{}, err
	}
	to, hasTo, err := p.integer(prefix + "ToPort")
	if err != nil {
		return perm{}, err
	}
	if from, to, err = portRange(proto, from, hasFrom, to, hasTo); err != nil {
		return perm{}, err
	}
	v4, v6 := p.str(prefix+"CidrIpv4"), p.str(prefix+"CidrIpv6")
	var param, cidr string
	switch {
	case p.str(prefix+"ReferencedGroupId") != "" || p.str(prefix+"PrefixListId") != "":
		return perm{}, errf(CodeUnsupportedOperation,
			"ec2sim's ModifySecurityGroupRules takes CIDR sources only; security group and prefix list sources are not supported")
	case v4 != "" && v6 != "":
		return perm{}, errf(CodeInvalidParameterCombination, "Only one of CidrIpv4 and CidrIpv6 may be specified")
	case v6 != "":
		param, cidr = prefix+"CidrIpv6", v6
	default:
		param, cidr = prefix+"CidrIpv4", v4
	}
	pfx, err := parseCIDR(param, cidr, strings.HasSuffix(param, "CidrIpv6"))
	if err != nil {
		return perm{}, err
	}
	desc := p.str(prefix + "Description")
	if err := checkDescription(desc); err != nil {
		return perm{}, err
	}
	return perm{protocol: proto, fromPort: from, toPort: to, cidr: pfx, description: desc}, nil
}
