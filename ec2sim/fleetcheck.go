package ec2sim

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// regionPlan is one region of a fleet after validation: values parsed and
// canonical, references resolved to indexes (IDs may not exist yet).
type regionPlan struct {
	name       string
	vpcs       []vpcPlan
	groups     []groupPlan
	instances  []instancePlan
	defaultVPC int // index into vpcs, or -1 for the region's own default VPC
	keys       keysPlan
}

type vpcPlan struct {
	FleetVPC
	cidr netip.Prefix
}

type groupPlan struct {
	FleetGroup
	path  string
	vpc   int // index into vpcs, or -1 for the default VPC
	perms []perm
	// sources are, per rule, the index into groups of its source group,
	// or -1 (fleet_net.go).
	sources []int
}

type instancePlan struct {
	FleetInstance
	path     string
	vpc      int
	groups   []int // indexes into groups
	ip       netip.Addr
	publicIP netip.Addr
	hostKeys []hostKey
	agent    *Agent
	// interfaces are its interfaces beyond the primary (fleet_net.go).
	interfaces []interfacePlan
}

// check validates f (its regions, then its trails, then its IAM) and
// resolves its references. It needs no server: all it knows of the region
// is what the fleet says.
func (f Fleet) check() ([]regionPlan, error) {
	var plans []regionPlan
	ids := map[string]string{} // ID → path of the item that declared it, across regions
	claim := func(id, path string, line int) error {
		if prev, ok := ids[id]; ok {
			return fleetErr(line, path+".id", "duplicate ID %s (also %s)", id, prev)
		}
		ids[id] = path
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(f.Regions)) {
		fr := f.Regions[name]
		rpath := "regions." + name
		if strings.TrimSpace(name) == "" {
			return nil, fleetErr(fr.line, rpath, "region name is empty")
		}
		p := regionPlan{name: name, defaultVPC: -1}

		for i, v := range fr.VPCs {
			path := fmt.Sprintf("%s.vpcs[%d]", rpath, i)
			if v.ID != "" {
				if !validID(v.ID, "vpc") {
					return nil, fleetErr(v.lineOf("id"), path+".id", "%q is not a VPC ID (vpc- and 8 or 17 hex digits)", v.ID)
				}
				if err := claim(v.ID, path, v.lineOf("id")); err != nil {
					return nil, err
				}
			}
			cidr, err := netip.ParsePrefix(v.CIDR)
			if err != nil || !cidr.Addr().Is4() {
				return nil, fleetErr(v.lineOf("cidr"), path+".cidr", "%q is not an IPv4 CIDR block", v.CIDR)
			}
			if v.Default {
				if p.defaultVPC >= 0 {
					return nil, fleetErr(v.lineOf("default"), path+".default", "only one VPC per region can be the default")
				}
				p.defaultVPC = i
			}
			if err := checkFleetTags(v.Tags, path, v.pos); err != nil {
				return nil, err
			}
			p.vpcs = append(p.vpcs, vpcPlan{v, cidr.Masked()})
		}

		findVPC := func(ref, path string, line int) (int, error) {
			if ref == "" {
				return p.defaultVPC, nil
			}
			for i, v := range p.vpcs {
				if v.ID == ref {
					return i, nil
				}
			}
			return 0, fleetErr(line, path, "unknown VPC %q (not in this region's vpcs)", ref)
		}

		for i, g := range fr.SecurityGroups {
			gp, err := checkGroup(g, fmt.Sprintf("%s.security_groups[%d]", rpath, i), claim, findVPC)
			if err != nil {
				return nil, err
			}
			for _, other := range p.groups {
				if other.vpc == gp.vpc && other.Name == gp.Name {
					return nil, fleetErr(g.lineOf("name"), gp.path+".name", "duplicate group name %q in one VPC (also %s)", g.Name, other.path)
				}
			}
			p.groups = append(p.groups, gp)
		}
		if err := p.resolveRuleSources(); err != nil {
			return nil, err
		}

		for i, in := range fr.Instances {
			ip, err := checkInstance(&p, in, fmt.Sprintf("%s.instances[%d]", rpath, i), claim, findVPC)
			if err != nil {
				return nil, err
			}
			p.instances = append(p.instances, ip)
		}
		keys, err := checkRegionKeys(fr, rpath, claim)
		if err != nil {
			return nil, err
		}
		p.keys = keys
		plans = append(plans, p)
	}
	if err := f.checkTrails(); err != nil {
		return nil, err
	}
	if err := f.IAM.check(); err != nil {
		return nil, err
	}
	return plans, nil
}

type claimFunc func(id, path string, line int) error
type findVPCFunc func(ref, path string, line int) (int, error)

func checkGroup(g FleetGroup, path string, claim claimFunc, findVPC findVPCFunc) (groupPlan, error) {
	gp := groupPlan{FleetGroup: g, path: path}
	if g.ID != "" {
		if !validID(g.ID, "sg") {
			return gp, fleetErr(g.lineOf("id"), path+".id", "%q is not a security group ID (sg- and 8 or 17 hex digits)", g.ID)
		}
		if err := claim(g.ID, path, g.lineOf("id")); err != nil {
			return gp, err
		}
	}
	switch {
	case g.Name == "":
		return gp, fleetErr(g.line, path+".name", "a security group needs a name")
	case strings.HasPrefix(strings.ToLower(g.Name), "sg-"):
		return gp, fleetErr(g.lineOf("name"), path+".name", "group names may not start with sg-")
	}
	if gp.Description == "" {
		gp.Description = g.Name
	}
	vpc, err := findVPC(g.VPC, path+".vpc", g.lineOf("vpc"))
	if err != nil {
		return gp, err
	}
	gp.vpc = vpc
	if err := checkFleetTags(g.Tags, path, g.pos); err != nil {
		return gp, err
	}
	seen := map[ruleKey]string{}
	for j, r := range g.Rules {
		rpath := fmt.Sprintf("%s.rules[%d]", path, j)
		pm, err := checkRule(r, rpath, claim)
		if err != nil {
			return gp, err
		}
		k := pm.key("")
		if prev, ok := seen[k]; ok {
			return gp, fleetErr(r.line, rpath, "duplicate rule (same as %s)", prev)
		}
		seen[k] = rpath
		gp.perms = append(gp.perms, pm)
	}
	return gp, nil
}

func checkRule(r FleetRule, path string, claim claimFunc) (perm, error) {
	if r.ID != "" {
		if !validRuleID(r.ID) {
			return perm{}, fleetErr(r.lineOf("id"), path+".id", "%q is not a rule ID (sgr- and 17 hex digits)", r.ID)
		}
		if err := claim(r.ID, path, r.lineOf("id")); err != nil {
			return perm{}, err
		}
	}
	if r.Protocol == "" {
		return perm{}, fleetErr(r.line, path+".protocol", "a rule needs a protocol (tcp, udp, icmp, icmpv6, -1 or a number)")
	}
	proto, aerr := canonicalProtocol(r.Protocol)
	if aerr != nil {
		return perm{}, fleetErr(r.lineOf("protocol"), path+".protocol", "%s", aerr.Message)
	}
	from, to, aerr := portRange(proto, r.FromPort, true, r.ToPort, true)
	if aerr != nil {
		return perm{}, fleetErr(r.lineOf("from_port"), path+".from_port", "%s", aerr.Message)
	}
	pm, err := checkRuleSource(r, path)
	if err != nil {
		return perm{}, err
	}
	if aerr := checkDescription(r.Description); aerr != nil {
		return perm{}, fleetErr(r.lineOf("description"), path+".description", "%s", aerr.Message)
	}
	if err := checkFleetTags(r.Tags, path, r.pos); err != nil {
		return perm{}, err
	}
	pm.protocol, pm.fromPort, pm.toPort, pm.description = proto, from, to, r.Description
	return pm, nil
}

func checkInstance(p *regionPlan, in FleetInstance, path string, claim claimFunc, findVPC findVPCFunc) (instancePlan, error) {
	ip := instancePlan{FleetInstance: in, path: path}
	if in.ID != "" {
		if !validID(in.ID, "i") {
			return ip, fleetErr(in.lineOf("id"), path+".id", "%q is not an instance ID (i- and 8 or 17 hex digits)", in.ID)
		}
		if err := claim(in.ID, path, in.lineOf("id")); err != nil {
			return ip, err
		}
	}
	if in.Subnet != "" && !validID(in.Subnet, "subnet") {
		return ip, fleetErr(in.lineOf("subnet"), path+".subnet", "%q is not a subnet ID (subnet- and 8 or 17 hex digits)", in.Subnet)
	}
	if len(in.SecurityGroups) == 0 {
		return ip, fleetErr(in.line, path+".security_groups", "an instance needs at least one security group")
	}
	vpc := -2 // unknown until the VPC or the first group says
	if in.VPC != "" {
		v, err := findVPC(in.VPC, path+".vpc", in.lineOf("vpc"))
		if err != nil {
			return ip, err
		}
		vpc = v
	}
	for j, ref := range in.SecurityGroups {
		gpath := fmt.Sprintf("%s.security_groups[%d]", path, j)
		gi := -1
		for k, g := range p.groups {
			if (g.ID != "" && g.ID == ref) || (g.Name == ref && (vpc == -2 || g.vpc == vpc)) {
				gi = k
				break
			}
		}
		if gi < 0 {
			return ip, fleetErr(in.lineOf("security_groups"), gpath, "unknown security group %q", ref)
		}
		if vpc == -2 {
			vpc = p.groups[gi].vpc
		}
		if p.groups[gi].vpc != vpc {
			return ip, fleetErr(in.lineOf("security_groups"), gpath, "security group %q is in another VPC", ref)
		}
		ip.groups = append(ip.groups, gi)
	}
	ip.vpc = vpc
	if in.PrivateIP != "" {
		addr, err := netip.ParseAddr(in.PrivateIP)
		if err != nil || !addr.Is4() {
			return ip, fleetErr(in.lineOf("private_ip"), path+".private_ip", "%q is not an IPv4 address", in.PrivateIP)
		}
		if vpc >= 0 && !p.vpcs[vpc].cidr.Contains(addr) {
			return ip, fleetErr(in.lineOf("private_ip"), path+".private_ip", "%s is outside the VPC's CIDR %s", addr, p.vpcs[vpc].cidr)
		}
		for _, other := range p.instances {
			if other.vpc == vpc && other.ip == addr {
				return ip, fleetErr(in.lineOf("private_ip"), path+".private_ip", "%s is also the address of %s", addr, other.path)
			}
		}
		ip.ip = addr
	}
	pub, err := checkPublicIP(p, in, path)
	if err != nil {
		return ip, err
	}
	ip.publicIP = pub
	if ip.State == "" {
		ip.State = "running"
	}
	if _, ok := instanceStates[ip.State]; !ok {
		return ip, fleetErr(in.lineOf("state"), path+".state", "unknown state %q (want one of pending, running, shutting-down, terminated, stopping, stopped)", in.State)
	}
	if ip.Type == "" {
		ip.Type = "t3.micro"
	}
	if ip.Image == "" {
		ip.Image = "ami-0abcdef1234567890"
	}
	if err := checkFleetTags(in.Tags, path, in.pos); err != nil {
		return ip, err
	}
	if ip.hostKeys, err = checkFleetHostKeys(in, path); err != nil {
		return ip, err
	}
	if err := checkInstanceKeys(in, path); err != nil {
		return ip, err
	}
	if ip.agent, err = checkFleetAgent(in.Agent, path+".agent"); err != nil {
		return ip, err
	}
	ip.interfaces, err = checkFleetInterfaces(p, &ip, path, claim)
	return ip, err
}

// fleetAgentStatuses maps a fleet's agent status to SSM's ping status.
var fleetAgentStatuses = map[string]string{"": PingOnline, "online": PingOnline, "offline": PingConnectionLost, "inactive": PingInactive}

// checkFleetAgent turns a fleet's agent into an Agent, nil for none.
func checkFleetAgent(fa *FleetAgent, path string) (*Agent, error) {
	if fa == nil {
		return nil, nil
	}
	status, ok := fleetAgentStatuses[fa.Status]
	if !ok {
		return nil, fleetErr(fa.lineOf("status"), path+".status", "unknown agent status %q (want online, offline or inactive)", fa.Status)
	}
	if _, ok := platforms[fa.Platform]; fa.Platform != "" && !ok {
		return nil, fleetErr(fa.lineOf("platform"), path+".platform", "unknown platform %q (want Linux, Windows or MacOS)", fa.Platform)
	}
	if fa.Version != "" && !agentVersionPattern.MatchString(fa.Version) {
		return nil, fleetErr(fa.lineOf("version"), path+".version", "%q is not an agent version (dotted numbers, as %s)", fa.Version, DefaultAgentVersion)
	}
	a, err := Agent{PingStatus: status, PlatformType: fa.Platform, Version: fa.Version}.normalize()
	if err != nil {
		return nil, fleetErr(fa.line, path, "%v", err)
	}
	return &a, nil
}

// checkPublicIP parses an instance's public_ip, if any. Public addresses
// are not tied to a VPC, so they must be unique across the region.
func checkPublicIP(p *regionPlan, in FleetInstance, path string) (netip.Addr, error) {
	if in.PublicIP == "" {
		return netip.Addr{}, nil
	}
	line, path := in.lineOf("public_ip"), path+".public_ip"
	addr, err := netip.ParseAddr(in.PublicIP)
	if err != nil || !addr.Is4() {
		return netip.Addr{}, fleetErr(line, path, "%q is not an IPv4 address", in.PublicIP)
	}
	for _, other := range p.instances {
		if other.publicIP == addr {
			return netip.Addr{}, fleetErr(line, path, "%s is also the public address of %s", addr, other.path)
		}
	}
	return addr, nil
}

func checkFleetTags(tags map[string]string, path string, p pos) error {
	if len(tags) > maxTags {
		return fleetErr(p.lineOf("tags"), path+".tags", "more than %d tags", maxTags)
	}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if aerr := checkTag(k, tags[k]); aerr != nil {
			return fleetErr(p.lineOf("tags"), path+".tags."+k, "%s", aerr.Message)
		}
	}
	return nil
}
