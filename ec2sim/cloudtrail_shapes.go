package ec2sim

// How CloudTrail writes EC2 calls. requestParameters echo the Query
// request with lowerCamel names: a list is {"items": [...]}, or {} when a
// permission leaves it empty; tag specifications hold a plain "tags"
// array; ports are numbers. responseElements echo the XML response the
// same way, with "return" spelled "_return". A failed call has
// errorCode "Client.<code>", errorMessage and null responseElements.
//
//	requestParameters  {"groupId": "sg-…", "ipPermissions": {"items": [{"ipProtocol": "tcp",
//	                    "fromPort": 22, "toPort": 22, "groups": {}, "ipRanges": {"items":
//	                    [{"cidrIp": "…", "description": "…"}]}, "ipv6Ranges": {}, "prefixListIds": {}}]},
//	                    "tagSpecificationSet": {"items": [{"resourceType": "security-group-rule",
//	                    "tags": [{"key": "…", "value": "…"}]}]}}
//	responseElements   {"requestId": "…", "_return": true, "securityGroupRuleSet": {"items":
//	                    [{"groupOwnerId", "groupId", "securityGroupRuleId", "isEgress", "ipProtocol",
//	                    "fromPort", "toPort", "cidrIpv4" or "cidrIpv6", "description"?, "tagSet"?}]}}
//
// A revoke by rule ID sends {"groupId", "securityGroupRuleIds": {"items":
// [{"securityGroupRuleId": "sgr-…"}]}} and answers revokedSecurityGroupRuleSet.

import (
	"strconv"
	"strings"
)

// jsonList renders a list as CloudTrail writes EC2 lists.
func jsonList(items []any) map[string]any {
	if len(items) == 0 {
		return map[string]any{}
	}
	return map[string]any{"items": items}
}

// jsonNumber renders a numeric parameter as a number when it is one, and
// as the string sent otherwise (the call then failed on it).
func jsonNumber(v string) any {
	if n, err := strconv.Atoi(v); err == nil {
		return n
	}
	return v
}

// setStr copies Query parameter name, when sent, to key.
func setStr(m map[string]any, p params, name, key string) {
	if v, ok := p.get(name); ok {
		m[key] = v
	}
}

func setNumber(m map[string]any, p params, name, key string) {
	if v, ok := p.get(name); ok {
		m[key] = jsonNumber(v)
	}
}

// trailRequest renders the requestParameters of an EC2 call.
func trailRequest(action string, p params) map[string]any {
	rp := map[string]any{}
	switch action {
	case "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress":
		setStr(rp, p, "GroupId", "groupId")
		setStr(rp, p, "GroupName", "groupName")
		if ids := p.list("SecurityGroupRuleId"); len(ids) > 0 {
			var items []any
			for _, id := range ids {
				items = append(items, map[string]any{"securityGroupRuleId": id})
			}
			rp["securityGroupRuleIds"] = jsonList(items)
		} else {
			var perms []any
			for _, m := range p.members("IpPermissions") {
				perms = append(perms, trailPermission(p, m+"."))
			}
			rp["ipPermissions"] = jsonList(perms)
			setStr(rp, p, "IpProtocol", "ipProtocol")
			setNumber(rp, p, "FromPort", "fromPort")
			setNumber(rp, p, "ToPort", "toPort")
			setStr(rp, p, "CidrIp", "cidrIp")
		}
		setTagSpecs(rp, p)
	case "CreateSecurityGroup":
		setStr(rp, p, "GroupName", "groupName")
		setStr(rp, p, "GroupDescription", "groupDescription")
		setStr(rp, p, "VpcId", "vpcId")
		setTagSpecs(rp, p)
	case "DeleteSecurityGroup":
		setStr(rp, p, "GroupId", "groupId")
		setStr(rp, p, "GroupName", "groupName")
	case "ModifyInstanceAttribute", "ModifyNetworkInterfaceAttribute":
		trailAttach(rp, action, p)
	case "CreateTags", "DeleteTags":
		var res, tags []any
		for _, id := range p.list("ResourceId") {
			res = append(res, map[string]any{"resourceId": id})
		}
		for _, t := range p.tags("Tag") {
			tag := map[string]any{"key": t.key}
			if t.hasValue {
				tag["value"] = t.value
			}
			tags = append(tags, tag)
		}
		rp["resourcesSet"] = jsonList(res)
		rp["tagSet"] = jsonList(tags)
	}
	return rp
}

// trailPermission renders the IpPermission at prefix as requested.
func trailPermission(p params, prefix string) map[string]any {
	perm := map[string]any{}
	setStr(perm, p, prefix+"IpProtocol", "ipProtocol")
	setNumber(perm, p, prefix+"FromPort", "fromPort")
	setNumber(perm, p, prefix+"ToPort", "toPort")
	sub := func(list string, fields ...string) map[string]any {
		var items []any
		for _, m := range p.members(prefix + list) {
			item := map[string]any{}
			for _, f := range fields {
				setStr(item, p, m+"."+f, lowerFirst(f))
			}
			items = append(items, item)
		}
		return jsonList(items)
	}
	perm["groups"] = sub("Groups", "GroupId", "GroupName", "UserId", "Description")
	perm["ipRanges"] = sub("IpRanges", "CidrIp", "Description")
	perm["ipv6Ranges"] = sub("Ipv6Ranges", "CidrIpv6", "Description")
	perm["prefixListIds"] = sub("PrefixListIds", "PrefixListId", "Description")
	return perm
}

// setTagSpecs renders TagSpecification.N, when sent.
func setTagSpecs(rp map[string]any, p params) {
	var specs []any
	for _, m := range p.members("TagSpecification") {
		tags := []any{}
		for _, t := range p.tags(m + ".Tag") {
			tags = append(tags, map[string]any{"key": t.key, "value": t.value})
		}
		specs = append(specs, map[string]any{"resourceType": p.str(m + ".ResourceType"), "tags": tags})
	}
	if len(specs) > 0 {
		rp["tagSpecificationSet"] = jsonList(specs)
	}
}

func lowerFirst(s string) string {
	return strings.ToLower(s[:1]) + s[1:]
}

// trailResponse renders the responseElements of a successful call.
func (s *Server) trailResponse(requestID string, resp response) map[string]any {
	re := map[string]any{"requestId": requestID, "_return": true}
	switch r := resp.(type) {
	case *authorizeResponse:
		var items []any
		for _, x := range r.SecurityGroupRuleSet.Items {
			item := trailRule(x.SecurityGroupRuleID, x.GroupID, x.IPProtocol, x.FromPort, x.ToPort, x.CidrIpv4, x.CidrIpv6, x.Description)
			item["groupOwnerId"] = x.GroupOwnerID
			if x.PrefixListID != "" {
				item["prefixListId"] = x.PrefixListID
			}
			if g := x.ReferencedGroupInfo; g != nil {
				item["referencedGroupInfo"] = map[string]any{"groupId": g.GroupID, "userId": g.UserID}
			}
			if len(x.TagSet.Items) > 0 {
				var tags []any
				for _, t := range x.TagSet.Items {
					tags = append(tags, map[string]any{"key": t.Key, "value": t.Value})
				}
				item["tagSet"] = jsonList(tags)
			}
			items = append(items, item)
		}
		re["securityGroupRuleSet"] = jsonList(items)
	case *revokeResponse:
		var items []any
		for _, x := range r.RevokedSecurityGroupRuleSet.Items {
			item := trailRule(x.SecurityGroupRuleID, x.GroupID, x.IPProtocol, x.FromPort, x.ToPort, x.CidrIpv4, x.CidrIpv6, x.Description)
			if x.PrefixListID != "" {
				item["prefixListId"] = x.PrefixListID
			}
			if x.ReferencedGroupID != "" {
				item["referencedGroupId"] = x.ReferencedGroupID
			}
			items = append(items, item)
		}
		re["revokedSecurityGroupRuleSet"] = jsonList(items)
		if r.UnknownIPPermissionSet != nil {
			var unknown []any
			for _, x := range r.UnknownIPPermissionSet.Items {
				unknown = append(unknown, trailXMLPermission(x))
			}
			re["unknownIpPermissionSet"] = jsonList(unknown)
		}
	case *createGroupResponse:
		re["groupId"] = r.GroupID
	}
	return re
}

// trailRule renders a SecurityGroupRule of a response.
func trailRule(id, groupID, protocol string, from, to int, v4, v6, desc string) map[string]any {
	item := map[string]any{
		"securityGroupRuleId": id, "groupId": groupID, "isEgress": false,
		"ipProtocol": protocol, "fromPort": from, "toPort": to,
	}
	if v4 != "" {
		item["cidrIpv4"] = v4
	}
	if v6 != "" {
		item["cidrIpv6"] = v6
	}
	if desc != "" {
		item["description"] = desc
	}
	return item
}

func trailXMLPermission(x xmlPermission) map[string]any {
	perm := map[string]any{"ipProtocol": x.IPProtocol, "groups": jsonList(nil), "prefixListIds": jsonList(nil)}
	if x.FromPort != nil {
		perm["fromPort"], perm["toPort"] = *x.FromPort, *x.ToPort
	}
	var v4, v6 []any
	for _, r := range x.IPRanges.Items {
		v4 = append(v4, rangeItem("cidrIp", r.CidrIP, r.Description))
	}
	for _, r := range x.IPv6Ranges.Items {
		v6 = append(v6, rangeItem("cidrIpv6", r.CidrIPv6, r.Description))
	}
	perm["ipRanges"], perm["ipv6Ranges"] = jsonList(v4), jsonList(v6)
	return perm
}

func rangeItem(key, cidr, desc string) map[string]any {
	item := map[string]any{key: cidr}
	if desc != "" {
		item["description"] = desc
	}
	return item
}

// trailResources lists the resources LookupEvents reports for a call and
// matches ResourceName and ResourceType against: the security group
// (AWS::EC2::SecurityGroup) for every group action, each rule added or
// revoked (AWS::EC2::SecurityGroupRule), and each resource tagged.
func trailResources(action string, p params, resp response) []trailResource {
	seen := map[trailResource]bool{}
	var out []trailResource
	add := func(typ, name string) {
		r := trailResource{typ, name}
		if typ != "" && name != "" && !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	switch action {
	case "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress", "DeleteSecurityGroup":
		add(resourceTypeGroup, p.str("GroupId"))
		for _, id := range p.list("SecurityGroupRuleId") {
			add(resourceTypeRule, id)
		}
	case "CreateTags", "DeleteTags":
		for _, id := range p.list("ResourceId") {
			add(resourceType(id), id)
		}
	case "ModifyInstanceAttribute":
		add(resourceTypeInstance, p.str("InstanceId"))
	case "ModifyNetworkInterfaceAttribute":
		add(resourceTypeENI, p.str("NetworkInterfaceId"))
	}
	switch r := resp.(type) {
	case *authorizeResponse:
		for _, x := range r.SecurityGroupRuleSet.Items {
			add(resourceTypeGroup, x.GroupID)
			add(resourceTypeRule, x.SecurityGroupRuleID)
		}
	case *revokeResponse:
		for _, x := range r.RevokedSecurityGroupRuleSet.Items {
			add(resourceTypeGroup, x.GroupID)
			add(resourceTypeRule, x.SecurityGroupRuleID)
		}
	case *createGroupResponse:
		add(resourceTypeGroup, r.GroupID)
	}
	return out
}

// resourceType names the CloudTrail resource type of an EC2 ID by its
// prefix.
func resourceType(id string) string {
	prefix, _, _ := strings.Cut(id, "-")
	types := map[string]string{
		"sg": resourceTypeGroup, "sgr": resourceTypeRule, "vpc": resourceTypeVPC, "i": resourceTypeInstance,
	}
	return types[prefix] // "" for an ID of no kind the simulator knows
}
