package ec2sim

import (
	"maps"
	"slices"
	"strings"
)

// lookupGroup finds the group a request names by GroupId, or by GroupName
// in the region's default VPC, as EC2 allows.
func (s *Server) lookupGroup(r *region, p params) (*group, *apiError) {
	if id, ok := p.get("GroupId"); ok && id != "" {
		return r.group(id)
	}
	if name, ok := p.get("GroupName"); ok && name != "" {
		if g := r.groupByName(r.defaultVPC, name); g != nil {
			return g, nil
		}
		return nil, errf(CodeInvalidGroupNotFound,
			"The security group '%s' does not exist in default VPC '%s'", name, r.defaultVPC)
	}
	return nil, missing("GroupId or GroupName")
}

// group finds a group by ID, distinguishing a malformed ID from an
// unknown one as EC2 does.
func (r *region) group(id string) (*group, *apiError) {
	if !validID(id, "sg") {
		return nil, errf(CodeInvalidGroupIDMalformed, "Invalid id: %q (expecting \"sg-...\")", id)
	}
	g, ok := r.groups[id]
	if !ok {
		return nil, errf(CodeInvalidGroupNotFound, "The security group '%s' does not exist", id)
	}
	return g, nil
}

type createGroupResponse struct {
	meta
	Return           bool        `xml:"return"`
	GroupID          string      `xml:"groupId"`
	TagSet           set[xmlTag] `xml:"tagSet"`
	SecurityGroupArn string      `xml:"securityGroupArn"`
}

func (s *Server) createSecurityGroup(r *region, p params) (response, *apiError) {
	name, ok := p.get("GroupName")
	if !ok || name == "" {
		return nil, missing("GroupName")
	}
	desc, ok := p.get("GroupDescription")
	if !ok || desc == "" {
		return nil, missing("GroupDescription")
	}
	switch {
	case len(name) > 255:
		return nil, invalidValue("GroupName", name, "It must be at most 255 characters.")
	case strings.HasPrefix(strings.ToLower(name), "sg-"):
		return nil, invalidValue("GroupName", name, "Group names may not be in the format sg-*.")
	case name == "default":
		return nil, errf(CodeInvalidGroupReserved, "The security group 'default' is reserved")
	case len(desc) > 255:
		return nil, invalidValue("GroupDescription", desc, "It must be at most 255 characters.")
	}
	vpcID := r.defaultVPC
	if v, ok := p.get("VpcId"); ok && v != "" {
		if _, ok := r.vpcs[v]; !ok {
			return nil, errf(CodeInvalidVpcIDNotFound, "The vpc ID '%s' does not exist", v)
		}
		vpcID = v
	}
	if r.groupByName(vpcID, name) != nil {
		return nil, errf(CodeInvalidGroupDuplicate, "The security group '%s' already exists for VPC '%s'", name, vpcID)
	}
	tags, err := p.tagSpecs("security-group")
	if err != nil {
		return nil, err
	}
	g := &group{
		id:          s.ids.resource("sg"),
		name:        name,
		description: desc,
		vpcID:       vpcID,
		seq:         s.nextSeq(),
		tags:        tags,
	}
	r.groups[g.id] = g
	s.addDefaultEgress(r, g)
	return &createGroupResponse{
		Return:           true,
		GroupID:          g.id,
		TagSet:           tagSet(g.tags),
		SecurityGroupArn: s.arn(r, "security-group", g.id),
	}, nil
}

func (s *Server) deleteSecurityGroup(r *region, p params) (response, *apiError) {
	g, err := s.lookupGroup(r, p)
	if err != nil {
		return nil, err
	}
	if r.groupInUse(g.id) {
		return nil, errf(CodeDependencyViolation, "resource %s has a dependent object", g.id)
	}
	for id, ru := range r.rules {
		if ru.groupID == g.id {
			s.noteRule(r, id)
			delete(r.rules, id)
		}
	}
	r.deleteEgress(g.id)
	delete(r.groups, g.id)
	return &returnResponse{Return: true}, nil
}

type xmlIPRange struct {
	CidrIP      string `xml:"cidrIp"`
	Description string `xml:"description,omitempty"`
}

type xmlIPv6Range struct {
	CidrIPv6    string `xml:"cidrIpv6"`
	Description string `xml:"description,omitempty"`
}

// xmlPermission is an IpPermission: the rules of one protocol and port
// range, with their CIDRs gathered. EC2 leaves out the ports of
// all-protocol permissions.
type xmlPermission struct {
	IPProtocol    string               `xml:"ipProtocol"`
	FromPort      *int                 `xml:"fromPort,omitempty"`
	ToPort        *int                 `xml:"toPort,omitempty"`
	Groups        set[xmlGroupPair]    `xml:"groups"`
	IPRanges      set[xmlIPRange]      `xml:"ipRanges"`
	IPv6Ranges    set[xmlIPv6Range]    `xml:"ipv6Ranges"`
	PrefixListIDs set[xmlPrefixListID] `xml:"prefixListIds"`
}

type xmlGroup struct {
	OwnerID             string              `xml:"ownerId"`
	GroupID             string              `xml:"groupId"`
	GroupName           string              `xml:"groupName"`
	GroupDescription    string              `xml:"groupDescription"`
	VpcID               string              `xml:"vpcId"`
	IPPermissions       set[*xmlPermission] `xml:"ipPermissions"`
	IPPermissionsEgress set[*xmlPermission] `xml:"ipPermissionsEgress"`
	TagSet              set[xmlTag]         `xml:"tagSet"`
	SecurityGroupArn    string              `xml:"securityGroupArn"`
}

// xmlGroup renders g with its rules, taken from byGroup (rulesByGroup's
// index: one pass over the region's rules per request, not per group).
func (s *Server) xmlGroup(r *region, g *group, byGroup map[string][]*rule) xmlGroup {
	x := xmlGroup{
		OwnerID:          s.accountID(),
		GroupID:          g.id,
		GroupName:        g.name,
		GroupDescription: g.description,
		VpcID:            g.vpcID,
		TagSet:           tagSet(g.tags),
		SecurityGroupArn: s.arn(r, "security-group", g.id),
	}
	type portKey struct {
		protocol string
		from, to int
	}
	byPorts := map[portKey]*xmlPermission{}
	for _, ru := range byGroup[g.id] {
		if ru.egress {
			continue // addEgress's
		}
		k := portKey{ru.protocol, ru.fromPort, ru.toPort}
		xp, ok := byPorts[k]
		if !ok {
			xp = &xmlPermission{IPProtocol: ru.protocol}
			if ru.protocol != "-1" {
				from, to := ru.fromPort, ru.toPort // copied: the response outlives the lock
				xp.FromPort, xp.ToPort = &from, &to
			}
			byPorts[k] = xp
			x.IPPermissions.Items = append(x.IPPermissions.Items, xp)
		}
		s.addToPermission(xp, ru)
	}
	s.addEgress(&x, byGroup[g.id])
	return x
}

type describeGroupsResponse struct {
	meta
	SecurityGroupInfo set[xmlGroup] `xml:"securityGroupInfo"`
	NextToken         string        `xml:"nextToken,omitempty"`
}

var groupListing = listing[*group]{
	fields: fields[*group]{
		"group-id":    func(g *group) []string { return []string{g.id} },
		"group-name":  func(g *group) []string { return []string{g.name} },
		"vpc-id":      func(g *group) []string { return []string{g.vpcID} },
		"description": func(g *group) []string { return []string{g.description} },
	},
	tags: func(g *group) map[string]string { return g.tags },
	key:  func(g *group) string { return seqKey(g.seq) },
}

func (s *Server) describeSecurityGroups(r *region, p params) (response, *apiError) {
	items, next, err := describe(p, groupListing, func(pg page) ([]*group, *apiError) {
		ids, names := p.list("GroupId"), p.list("GroupName")
		if len(ids)+len(names) == 0 {
			return slices.Collect(maps.Values(r.groups)), nil
		}
		if pg.max > 0 {
			return nil, errf(CodeInvalidParameterCombination,
				"The parameter GroupIds cannot be used with the parameter maxResults")
		}
		var candidates []*group
		for _, id := range ids {
			g, err := r.group(id)
			if err != nil {
				return nil, err
			}
			candidates = append(candidates, g)
		}
		for _, name := range names {
			g := r.groupByName(r.defaultVPC, name)
			if g == nil {
				return nil, errf(CodeInvalidGroupNotFound,
					"The security group '%s' does not exist in default VPC '%s'", name, r.defaultVPC)
			}
			candidates = append(candidates, g)
		}
		return candidates, nil
	})
	if err != nil {
		return nil, err
	}
	resp := &describeGroupsResponse{NextToken: next}
	byGroup := s.rulesByGroup(r)
	for _, g := range items {
		resp.SecurityGroupInfo.Items = append(resp.SecurityGroupInfo.Items, s.xmlGroup(r, g, byGroup))
	}
	return resp, nil
}
