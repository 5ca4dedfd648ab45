package ec2sim

// Rule sources other than a CIDR: a security group (UserIdGroupPairs,
// Groups.N in the Query API) and a managed prefix list (PrefixListIds.N).
// A referenced group must exist in the region; a prefix list ID must be
// well formed (pl- and 8 or 17 hex digits), as the simulator has no prefix
// lists to look it up in.

import "net/netip"

// CodeInvalidPrefixListIDMalformed is EC2's code for a prefix list ID
// that is not pl-….
const CodeInvalidPrefixListIDMalformed = "InvalidPrefixListId.Malformed"

// xmlGroupPair is a UserIdGroupPair, as DescribeSecurityGroups lists it in
// an IpPermission's groups.
type xmlGroupPair struct {
	UserID      string `xml:"userId,omitempty"`
	GroupID     string `xml:"groupId,omitempty"`
	GroupName   string `xml:"groupName,omitempty"`
	Description string `xml:"description,omitempty"`
}

// xmlPrefixListID is a PrefixListId of an IpPermission.
type xmlPrefixListID struct {
	PrefixListID string `xml:"prefixListId"`
	Description  string `xml:"description,omitempty"`
}

// xmlReferencedGroup is a SecurityGroupRule's referencedGroupInfo.
type xmlReferencedGroup struct {
	GroupID string `xml:"groupId"`
	UserID  string `xml:"userId"`
}

// otherSources parses the group and prefix list sources of the
// IpPermission at prefix; their ports are the caller's to fill.
func (p params) otherSources(prefix string) ([]perm, *apiError) {
	var out []perm
	for _, m := range p.members(prefix + "Groups") {
		pm := perm{
			sourceGroup: p.str(m + ".GroupId"), groupName: p.str(m + ".GroupName"),
			userID: p.str(m + ".UserId"), description: p.str(m + ".Description"),
		}
		switch {
		case pm.sourceGroup == "" && pm.groupName == "":
			return nil, missing(m + ".GroupId")
		case pm.sourceGroup != "" && !validID(pm.sourceGroup, "sg"):
			return nil, errf(CodeInvalidGroupIDMalformed, "Invalid id: %q (expecting \"sg-...\")", pm.sourceGroup)
		}
		if pm.sourceGroup != "" {
			pm.groupName = "" // the ID names it
		}
		if err := checkDescription(pm.description); err != nil {
			return nil, err
		}
		out = append(out, pm)
	}
	for _, m := range p.members(prefix + "PrefixListIds") {
		pm := perm{prefixList: p.str(m + ".PrefixListId"), description: p.str(m + ".Description")}
		switch {
		case pm.prefixList == "":
			return nil, missing(m + ".PrefixListId")
		case !validID(pm.prefixList, "pl"):
			return nil, errf(CodeInvalidPrefixListIDMalformed, "Invalid id: %q (expecting \"pl-...\")", pm.prefixList)
		}
		if err := checkDescription(pm.description); err != nil {
			return nil, err
		}
		out = append(out, pm)
	}
	return out, nil
}

// resolveSources checks that every referenced group exists, naming it by
// ID (a GroupName names a group of the default VPC, as EC2 allows). It
// changes perms in place, nothing else.
func (s *Server) resolveSources(r *region, perms []perm) *apiError {
	for i := range perms {
		pm := &perms[i]
		switch {
		case pm.sourceGroup != "":
			if _, err := r.group(pm.sourceGroup); err != nil {
				return err
			}
		case pm.groupName != "":
			g := r.groupByName(r.defaultVPC, pm.groupName)
			if g == nil {
				return errf(CodeInvalidGroupNotFound,
					"The security group '%s' does not exist in default VPC '%s'", pm.groupName, r.defaultVPC)
			}
			pm.sourceGroup, pm.groupName = g.id, ""
		default:
			continue
		}
		if pm.userID == "" {
			pm.userID = s.accountID()
		}
	}
	return nil
}

// cidrString is the rule's CIDR, or "" when its source is not one.
func (r *rule) cidrString() string {
	if !r.cidr.IsValid() {
		return ""
	}
	return r.cidr.String()
}

// familiesOf is how many rules of each address family a rule with cidr
// counts for in the rule quota: a group or prefix list source (no cidr)
// counts in both.
func familiesOf(cidr netip.Prefix) (v4, v6 int) {
	switch {
	case !cidr.IsValid():
		return 1, 1
	case cidr.Addr().Is4():
		return 1, 0
	default:
		return 0, 1
	}
}

// setSource fills the source fields of a SecurityGroupRule.
func (s *Server) setSource(x *xmlRule, ru *rule) {
	switch {
	case ru.sourceGroup != "":
		x.ReferencedGroupInfo = &xmlReferencedGroup{GroupID: ru.sourceGroup, UserID: s.accountID()}
	case ru.prefixList != "":
		x.PrefixListID = ru.prefixList
	case ru.cidr.Addr().Is4():
		x.CidrIpv4 = ru.cidr.String()
	default:
		x.CidrIpv6 = ru.cidr.String()
	}
}

// addToPermission adds a rule's source to the IpPermission that gathers
// its protocol and ports.
func (s *Server) addToPermission(xp *xmlPermission, ru *rule) {
	switch {
	case ru.sourceGroup != "":
		xp.Groups.Items = append(xp.Groups.Items, xmlGroupPair{UserID: s.accountID(), GroupID: ru.sourceGroup, Description: ru.description})
	case ru.prefixList != "":
		xp.PrefixListIDs.Items = append(xp.PrefixListIDs.Items, xmlPrefixListID{ru.prefixList, ru.description})
	case ru.cidr.Addr().Is4():
		xp.IPRanges.Items = append(xp.IPRanges.Items, xmlIPRange{ru.cidr.String(), ru.description})
	default:
		xp.IPv6Ranges.Items = append(xp.IPv6Ranges.Items, xmlIPv6Range{ru.cidr.String(), ru.description})
	}
}
