package ec2sim

import (
	"fmt"
	"net/netip"
	"strings"

	"gopkg.in/yaml.v3"
)

// FleetInterface is a network interface of an instance beyond its primary
// one, attached at the next device index (1, 2, …) in the instance's
// subnet. YAML keys: id, private_ip, security_groups. SecurityGroups holds
// group IDs or names of the instance's VPC; an empty private_ip is picked
// from the VPC's CIDR.
type FleetInterface struct {
	ID             string
	PrivateIP      string
	SecurityGroups []string
	pos
}

type interfacePlan struct {
	FleetInterface
	ip     netip.Addr
	groups []int // indexes into the region plan's groups
}

func decodeInterfaces(in *FleetInstance) decodeFunc {
	return func(n *yaml.Node, path string) error {
		return decodeSeq(n, path, func(n *yaml.Node, path string) error {
			fi := FleetInterface{pos: pos{line: n.Line, fields: map[string]int{}}}
			err := decodeMapping(n, path, fi.fields, map[string]decodeFunc{
				"id": scalar(&fi.ID), "private_ip": scalar(&fi.PrivateIP), "security_groups": scalar(&fi.SecurityGroups),
			})
			in.Interfaces = append(in.Interfaces, fi)
			return err
		})
	}
}

// checkRuleSource reads a fleet rule's one source. A source group is kept
// as the fleet's reference in sourceGroup until resolveRuleSources finds
// the group it names.
func checkRuleSource(r FleetRule, path string) (perm, error) {
	n := 0
	for _, v := range []string{r.CIDR, r.SourceGroup, r.PrefixList} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return perm{}, fleetErr(r.line, path, "a rule needs exactly one source: cidr, source_group or prefix_list")
	}
	switch {
	case r.SourceGroup != "":
		return perm{sourceGroup: r.SourceGroup}, nil
	case r.PrefixList != "":
		if !validID(r.PrefixList, "pl") {
			return perm{}, fleetErr(r.lineOf("prefix_list"), path+".prefix_list", "%q is not a prefix list ID (pl- and 8 or 17 hex digits)", r.PrefixList)
		}
		return perm{prefixList: r.PrefixList}, nil
	}
	pfx, err := netip.ParsePrefix(strings.TrimSpace(r.CIDR))
	if err != nil || pfx.Addr().Zone() != "" || pfx.Addr().Is4In6() {
		return perm{}, fleetErr(r.lineOf("cidr"), path+".cidr", "%q is not a CIDR block", r.CIDR)
	}
	return perm{cidr: pfx.Masked()}, nil
}

// resolveRuleSources finds the group each source_group names, by ID or by
// name in the rule's VPC, among the region's fleet groups.
func (p *regionPlan) resolveRuleSources() error {
	for gi := range p.groups {
		g := &p.groups[gi]
		g.sources = make([]int, len(g.perms))
		for j, pm := range g.perms {
			g.sources[j] = -1
			ref := pm.sourceGroup
			if ref == "" {
				continue
			}
			found := -1
			for k, other := range p.groups {
				if (other.ID != "" && other.ID == ref) || (other.Name == ref && other.vpc == g.vpc) {
					found = k
					break
				}
			}
			if found < 0 {
				r := g.Rules[j]
				return fleetErr(r.lineOf("source_group"), fmt.Sprintf("%s.rules[%d].source_group", g.path, j),
					"unknown security group %q (not a group of this region's fleet in the rule's VPC)", ref)
			}
			g.sources[j] = found
		}
	}
	return nil
}

// checkFleetInterfaces validates an instance's extra interfaces; ip is
// the instance as checked so far (its VPC is known).
func checkFleetInterfaces(p *regionPlan, ip *instancePlan, path string, claim claimFunc) ([]interfacePlan, error) {
	var out []interfacePlan
	for i, fi := range ip.Interfaces {
		ipath := fmt.Sprintf("%s.interfaces[%d]", path, i)
		plan := interfacePlan{FleetInterface: fi}
		if fi.ID != "" && !validID(fi.ID, "eni") {
			return nil, fleetErr(fi.lineOf("id"), ipath+".id", "%q is not a network interface ID (eni- and 8 or 17 hex digits)", fi.ID)
		}
		if fi.ID != "" && fi.ID == "eni-"+strings.TrimPrefix(ip.ID, "i-") {
			return nil, fleetErr(fi.lineOf("id"), ipath+".id", "%s is the instance's primary interface", fi.ID)
		}
		if fi.ID != "" {
			if err := claim(fi.ID, ipath, fi.lineOf("id")); err != nil {
				return nil, err
			}
		}
		if len(fi.SecurityGroups) == 0 {
			return nil, fleetErr(fi.line, ipath+".security_groups", "an interface needs at least one security group")
		}
		if len(fi.SecurityGroups) > maxGroupsPerInterface {
			return nil, fleetErr(fi.lineOf("security_groups"), ipath+".security_groups", "more than %d security groups", maxGroupsPerInterface)
		}
		for j, ref := range fi.SecurityGroups {
			gi := -1
			for k, g := range p.groups {
				if g.vpc == ip.vpc && ((g.ID != "" && g.ID == ref) || g.Name == ref) {
					gi = k
					break
				}
			}
			if gi < 0 {
				return nil, fleetErr(fi.lineOf("security_groups"), fmt.Sprintf("%s.security_groups[%d]", ipath, j),
					"unknown security group %q in the instance's VPC", ref)
			}
			plan.groups = append(plan.groups, gi)
		}
		if fi.PrivateIP != "" {
			addr, err := netip.ParseAddr(fi.PrivateIP)
			if err != nil || !addr.Is4() {
				return nil, fleetErr(fi.lineOf("private_ip"), ipath+".private_ip", "%q is not an IPv4 address", fi.PrivateIP)
			}
			if ip.vpc >= 0 && !p.vpcs[ip.vpc].cidr.Contains(addr) {
				return nil, fleetErr(fi.lineOf("private_ip"), ipath+".private_ip", "%s is outside the VPC's CIDR %s", addr, p.vpcs[ip.vpc].cidr)
			}
			plan.ip = addr
		}
		out = append(out, plan)
	}
	return out, nil
}

// applyInterfaces attaches a fleet instance's extra interfaces. Caller
// holds s.mu.
func (s *Server) applyInterfaces(reg *region, in *instance, plans []interfacePlan, groupIDs []string, reserved map[netip.Addr]bool) {
	for _, ip := range plans {
		reserved[in.privateIP] = true
		id := ip.ID
		if id == "" {
			id = s.ids.resource("eni")
		}
		addr := ip.ip
		if !addr.IsValid() {
			addr = reg.freeAddress(reg.vpcs[in.vpcID], reserved)
		}
		reserved[addr] = true
		groups := make([]string, len(ip.groups))
		for j, gi := range ip.groups {
			groups[j] = groupIDs[gi]
		}
		in.extraENIs = append(in.extraENIs, &eni{id: id, deviceIndex: len(in.extraENIs) + 1, privateIP: addr, groupIDs: groups})
	}
}
