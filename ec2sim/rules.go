package ec2sim

import (
	"maps"
	"slices"
)

// xmlRule is a SecurityGroupRule as DescribeSecurityGroupRules and
// AuthorizeSecurityGroupIngress return it.
type xmlRule struct {
	SecurityGroupRuleID string `xml:"securityGroupRuleId"`
	GroupID             string `xml:"groupId"`
	GroupOwnerID        string `xml:"groupOwnerId"`
	IsEgress            bool   `xml:"isEgress"`
	IPProtocol          string `xml:"ipProtocol"`
	FromPort            int    `xml:"fromPort"`
	ToPort              int    `xml:"toPort"`
	CidrIpv4            string `xml:"cidrIpv4,omitempty"`
	CidrIpv6            string `xml:"cidrIpv6,omitempty"`
	// PrefixListID or ReferencedGroupInfo is the source when it is not a
	// CIDR (sources.go).
	PrefixListID         string              `xml:"prefixListId,omitempty"`
	ReferencedGroupInfo  *xmlReferencedGroup `xml:"referencedGroupInfo,omitempty"`
	Description          string              `xml:"description,omitempty"`
	TagSet               set[xmlTag]         `xml:"tagSet"`
	SecurityGroupRuleArn string              `xml:"securityGroupRuleArn"`
}

func (s *Server) xmlRule(r *region, ru *rule) xmlRule {
	x := xmlRule{
		SecurityGroupRuleID:  ru.id,
		GroupID:              ru.groupID,
		GroupOwnerID:         s.accountID(),
		IPProtocol:           ru.protocol,
		FromPort:             ru.fromPort,
		ToPort:               ru.toPort,
		Description:          ru.description,
		TagSet:               tagSet(ru.tags),
		SecurityGroupRuleArn: s.arn(r, "security-group-rule", ru.id),
		IsEgress:             ru.egress,
	}
	s.setSource(&x, ru)
	return x
}

func (s *Server) arn(r *region, kind, id string) string {
	return "arn:aws:ec2:" + r.name + ":" + s.accountID() + ":" + kind + "/" + id
}

type authorizeResponse struct {
	meta
	Return               bool         `xml:"return"`
	SecurityGroupRuleSet set[xmlRule] `xml:"securityGroupRuleSet"`
}

// authorizeIngress adds rules to a group. It is all or nothing: one bad,
// duplicate or over-quota permission and no rule is added.
func (s *Server) authorizeIngress(r *region, p params) (response, *apiError) {
	g, err := s.lookupGroup(r, p)
	if err != nil {
		return nil, err
	}
	perms, err := p.permissions()
	if err != nil {
		return nil, err
	}
	if err := s.resolveSources(r, perms); err != nil {
		return nil, err
	}
	tags, err := p.tagSpecs("security-group-rule")
	if err != nil {
		return nil, err
	}

	existing := r.rulesOf(g.id)
	seen := make(map[ruleKey]bool, len(existing)+len(perms))
	var v4, v6 int
	for _, ru := range existing {
		seen[ru.key()] = true
		a, b := familiesOf(ru.cidr)
		v4, v6 = v4+a, v6+b
	}
	for _, pm := range perms {
		k := pm.key(g.id)
		if seen[k] {
			return nil, errf(CodeInvalidPermissionDuplicate, "the specified rule %q already exists", describePeer(k))
		}
		seen[k] = true
		a, b := familiesOf(pm.cidr)
		v4, v6 = v4+a, v6+b
	}
	if limit := s.ruleLimit(); v4 > limit || v6 > limit {
		return nil, errf(CodeRulesPerGroupLimitExceeded, "The maximum number of rules per security group has been reached.")
	}

	resp := &authorizeResponse{Return: true}
	for _, pm := range perms {
		ru := &rule{
			id:          s.ids.resource("sgr"),
			groupID:     g.id,
			protocol:    pm.protocol,
			fromPort:    pm.fromPort,
			toPort:      pm.toPort,
			cidr:        pm.cidr,
			description: pm.description,
			seq:         s.nextSeq(),
			tags:        maps.Clone(tags),
			sourceGroup: pm.sourceGroup,
			prefixList:  pm.prefixList,
		}
		s.noteRule(r, ru.id)
		r.rules[ru.id] = ru
		resp.SecurityGroupRuleSet.Items = append(resp.SecurityGroupRuleSet.Items, s.xmlRule(r, ru))
	}
	return resp, nil
}

type xmlRevokedRule struct {
	SecurityGroupRuleID string `xml:"securityGroupRuleId"`
	GroupID             string `xml:"groupId"`
	IsEgress            bool   `xml:"isEgress"`
	IPProtocol          string `xml:"ipProtocol"`
	FromPort            int    `xml:"fromPort"`
	ToPort              int    `xml:"toPort"`
	CidrIpv4            string `xml:"cidrIpv4,omitempty"`
	CidrIpv6            string `xml:"cidrIpv6,omitempty"`
	PrefixListID        string `xml:"prefixListId,omitempty"`
	ReferencedGroupID   string `xml:"referencedGroupId,omitempty"`
	Description         string `xml:"description,omitempty"`
}

type revokeResponse struct {
	meta
	Return                      bool                `xml:"return"`
	UnknownIPPermissionSet      *set[xmlPermission] `xml:"unknownIpPermissionSet,omitempty"`
	RevokedSecurityGroupRuleSet set[xmlRevokedRule] `xml:"revokedSecurityGroupRuleSet"`
}

// revokeIngress removes rules, named either by SecurityGroupRuleId.N or by
// IpPermissions. A revoked rule's tags go with it. Like authorize it is all
// or nothing, with one exception EC2 documents: in a default VPC,
// permissions that match no rule are not an error but are listed in
// unknownIpPermissionSet, and the others are revoked.
func (s *Server) revokeIngress(r *region, p params) (response, *apiError) {
	g, err := s.lookupGroup(r, p)
	if err != nil {
		return nil, err
	}
	ids := p.list("SecurityGroupRuleId")
	hasPerms := len(p.members("IpPermissions")) > 0 || p.str("IpProtocol") != "" || p.str("CidrIp") != ""
	var doomed []*rule
	var unknown []perm
	switch {
	case len(ids) > 0 && hasPerms:
		return nil, errf(CodeInvalidParameterCombination,
			"The parameter SecurityGroupRuleId cannot be used together with IpPermissions")
	case len(ids) > 0:
		for _, id := range ids {
			if !validRuleID(id) {
				return nil, errf(CodeInvalidRuleIDMalformed, "Invalid id: %q (expecting \"sgr-...\")", id)
			}
			ru, ok := r.rules[id]
			if !ok || ru.groupID != g.id {
				return nil, errf(CodeInvalidRuleIDNotFound,
					"The security group rule ID '%s' does not exist in security group '%s'", id, g.id)
			}
			doomed = append(doomed, ru)
		}
	default:
		perms, err := p.permissions()
		if err != nil {
			return nil, err
		}
		if err := s.resolveSources(r, perms); err != nil {
			return nil, err
		}
		byKey := map[ruleKey]*rule{}
		for _, ru := range r.rulesOf(g.id) {
			byKey[ru.key()] = ru
		}
		lenient := g.vpcID == r.defaultVPC
		for _, pm := range perms {
			ru, ok := byKey[pm.key(g.id)]
			switch {
			case ok:
				doomed = append(doomed, ru)
			case lenient:
				unknown = append(unknown, pm)
			default:
				return nil, errf(CodeInvalidPermissionNotFound,
					"The specified rule does not exist in this security group.")
			}
		}
	}

	resp := &revokeResponse{Return: true}
	if len(unknown) > 0 {
		resp.UnknownIPPermissionSet = &set[xmlPermission]{}
		for _, pm := range unknown {
			resp.UnknownIPPermissionSet.Items = append(resp.UnknownIPPermissionSet.Items, pm.xml())
		}
	}
	for _, ru := range doomed {
		if _, ok := r.rules[ru.id]; !ok {
			continue // named twice in one call
		}
		s.noteRule(r, ru.id)
		delete(r.rules, ru.id)
		x := xmlRevokedRule{
			SecurityGroupRuleID: ru.id,
			GroupID:             ru.groupID,
			IPProtocol:          ru.protocol,
			FromPort:            ru.fromPort,
			ToPort:              ru.toPort,
			Description:         ru.description,
			PrefixListID:        ru.prefixList,
			ReferencedGroupID:   ru.sourceGroup,
		}
		switch {
		case ru.sourceGroup != "" || ru.prefixList != "":
		case ru.cidr.Addr().Is4():
			x.CidrIpv4 = ru.cidr.String()
		default:
			x.CidrIpv6 = ru.cidr.String()
		}
		resp.RevokedSecurityGroupRuleSet.Items = append(resp.RevokedSecurityGroupRuleSet.Items, x)
	}
	return resp, nil
}

type describeRulesResponse struct {
	meta
	SecurityGroupRuleSet set[xmlRule] `xml:"securityGroupRuleSet"`
	NextToken            string       `xml:"nextToken,omitempty"`
}

// ruleListing takes the filters EC2 documents for
// DescribeSecurityGroupRules (besides the tag filters every describe takes).
var ruleListing = listing[*rule]{
	fields: fields[*rule]{
		"group-id":               func(ru *rule) []string { return []string{ru.groupID} },
		"security-group-rule-id": func(ru *rule) []string { return []string{ru.id} },
	},
	tags: func(ru *rule) map[string]string { return ru.tags },
	key:  func(ru *rule) string { return seqKey(ru.seq) },
}

func (s *Server) describeSecurityGroupRules(r *region, p params) (response, *apiError) {
	// The rules listed are the inbound ones a describe sees now
	// (consistency.go) and the outbound ones (egress.go).
	visible := s.visibleRules(r)
	items, next, err := describe(p, ruleListing, func(page) ([]*rule, *apiError) {
		ids := p.list("SecurityGroupRuleId")
		if len(ids) == 0 {
			all := slices.AppendSeq(slices.Collect(maps.Values(visible)), maps.Values(r.egress))
			return all, nil
		}
		var candidates []*rule
		for _, id := range ids {
			if !validRuleID(id) {
				return nil, errf(CodeInvalidRuleIDMalformed, "Invalid id: %q (expecting \"sgr-...\")", id)
			}
			ru, ok := r.egress[id]
			if !ok {
				ru, ok = visible[id]
			}
			if !ok {
				return nil, errf(CodeInvalidRuleIDNotFound, "The security group rule ID '%s' does not exist", id)
			}
			candidates = append(candidates, ru)
		}
		return candidates, nil
	})
	if err != nil {
		return nil, err
	}
	resp := &describeRulesResponse{NextToken: next}
	for _, ru := range items {
		resp.SecurityGroupRuleSet.Items = append(resp.SecurityGroupRuleSet.Items, s.xmlRule(r, ru))
	}
	return resp, nil
}
