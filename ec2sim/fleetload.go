package ec2sim

import (
	"fmt"
	"maps"
	"net/netip"
)

// LoadFleet adds a fleet's resources to the server. It is all or nothing:
// a fleet that is invalid, reuses an ID the server already has, or would
// put more rules in a group than the rule limit allows changes nothing.
// Errors are *FleetError values.
func (s *Server) LoadFleet(f Fleet) error {
	plans, err := f.check()
	if err != nil {
		return err
	}
	s.lock()
	defer s.unlock()
	for _, p := range plans {
		if err := s.conflicts(p); err != nil {
			return err
		}
	}
	if err := s.trailsConflicts(f); err != nil {
		return err
	}
	if err := s.iamConflicts(f.IAM); err != nil {
		return err
	}
	s.applyIAM(f.IAM) // first, so that instances may name its profiles
	for _, p := range plans {
		s.apply(p)
	}
	s.applyTrails(f)
	return nil
}

// conflicts reports what in p clashes with the server's existing state.
// Caller holds s.mu.
func (s *Server) conflicts(p regionPlan) error {
	reg := s.regions[p.name]
	if reg == nil {
		reg = newRegion(p.name)
	}
	exists := func(id string) bool {
		_, v := reg.vpcs[id]
		_, g := reg.groups[id]
		_, r := reg.rules[id]
		_, i := reg.instances[id]
		return v || g || r || i
	}
	for i, v := range p.vpcs {
		path := fmt.Sprintf("regions.%s.vpcs[%d]", p.name, i)
		if v.ID != "" && exists(v.ID) {
			return fleetErr(v.lineOf("id"), path+".id", "%s already exists", v.ID)
		}
		if v.Default && reg.defaultVPC != "" {
			return fleetErr(v.lineOf("default"), path+".default", "region already has default VPC %s", reg.defaultVPC)
		}
	}
	limit := s.ruleLimit()
	for _, g := range p.groups {
		if g.ID != "" && exists(g.ID) {
			return fleetErr(g.lineOf("id"), g.path+".id", "%s already exists", g.ID)
		}
		if g.vpc < 0 && reg.defaultVPC != "" && reg.groupByName(reg.defaultVPC, g.Name) != nil {
			return fleetErr(g.lineOf("name"), g.path+".name", "group %q already exists in the default VPC", g.Name)
		}
		var v4, v6 int
		for i, pm := range g.perms {
			if id := g.Rules[i].ID; id != "" && exists(id) {
				return fleetErr(g.Rules[i].lineOf("id"), fmt.Sprintf("%s.rules[%d].id", g.path, i), "%s already exists", id)
			}
			a, b := familiesOf(pm.cidr)
			v4, v6 = v4+a, v6+b
		}
		if v4 > limit || v6 > limit {
			return fleetErr(g.lineOf("rules"), g.path+".rules", "more than %d rules of one address family (the rule limit)", limit)
		}
	}
	defaultCIDR := mustPrefix(defaultVPCCIDR)
	if v, ok := reg.vpcs[reg.defaultVPC]; ok {
		defaultCIDR = v.cidr
	}
	for _, in := range p.instances {
		if in.ID != "" && exists(in.ID) {
			return fleetErr(in.lineOf("id"), in.path+".id", "%s already exists", in.ID)
		}
		if in.vpc < 0 && in.ip.IsValid() && !defaultCIDR.Contains(in.ip) {
			return fleetErr(in.lineOf("private_ip"), in.path+".private_ip", "%s is outside the default VPC's CIDR %s", in.ip, defaultCIDR)
		}
		if other := reg.instanceWithPublicIP(in.publicIP); other != nil {
			return fleetErr(in.lineOf("public_ip"), in.path+".public_ip", "%s is already the public address of %s", in.publicIP, other.id)
		}
	}
	return keysConflicts(reg, p.keys)
}

// instanceWithPublicIP finds the instance that holds addr, stopped or not,
// or nil (always nil for the zero Addr).
func (r *region) instanceWithPublicIP(addr netip.Addr) *instance {
	if !addr.IsValid() {
		return nil
	}
	for _, in := range r.instances {
		if in.publicIP == addr {
			return in
		}
	}
	return nil
}

// apply adds a checked, conflict-free plan. Caller holds s.mu.
func (s *Server) apply(p regionPlan) {
	reg := s.region(p.name)
	vpcIDs := make([]string, len(p.vpcs))
	for i, v := range p.vpcs {
		id := v.ID
		if id == "" {
			id = s.ids.resource("vpc")
		}
		vpcIDs[i] = id
		reg.vpcs[id] = &vpc{id: id, cidr: v.cidr, tags: cloneTags(v.Tags)}
		if v.Default {
			reg.defaultVPC = id
		}
	}
	s.ensureDefaultVPC(reg)
	vpcID := func(i int) string {
		if i < 0 {
			return reg.defaultVPC
		}
		return vpcIDs[i]
	}

	groupIDs := make([]string, len(p.groups))
	type pending struct {
		ru  *rule
		src int
	}
	var sourced []pending // rules whose source group may not have its ID yet
	for i, g := range p.groups {
		id := g.ID
		if id == "" {
			id = s.ids.resource("sg")
		}
		groupIDs[i] = id
		reg.groups[id] = &group{
			id: id, name: g.Name, description: g.Description, vpcID: vpcID(g.vpc),
			seq: s.nextSeq(), tags: cloneTags(g.Tags),
		}
		s.addDefaultEgress(reg, reg.groups[id])
		for j, pm := range g.perms {
			rid := g.Rules[j].ID
			if rid == "" {
				rid = s.ids.resource("sgr")
			}
			reg.rules[rid] = &rule{
				id: rid, groupID: id, protocol: pm.protocol, fromPort: pm.fromPort, toPort: pm.toPort,
				cidr: pm.cidr, description: pm.description, seq: s.nextSeq(), tags: cloneTags(g.Rules[j].Tags),
				prefixList: pm.prefixList,
			}
			if j < len(g.sources) && g.sources[j] >= 0 {
				sourced = append(sourced, pending{reg.rules[rid], g.sources[j]})
			}
		}
	}
	for _, sr := range sourced {
		sr.ru.sourceGroup = groupIDs[sr.src]
	}

	launched := s.now().UTC().Truncate(1e9)
	reserved := map[netip.Addr]bool{} // addresses the fleet names, kept from generated ones
	for _, in := range p.instances {
		if in.ip.IsValid() {
			reserved[in.ip] = true
		}
	}
	for _, in := range p.instances {
		id := in.ID
		if id == "" {
			id = s.ids.resource("i")
		}
		subnet := in.Subnet
		if subnet == "" {
			subnet = s.ids.resource("subnet")
		}
		vid := vpcID(in.vpc)
		addr := in.ip
		if !addr.IsValid() {
			addr = reg.freeAddress(reg.vpcs[vid], reserved)
		}
		groups := make([]string, len(in.groups))
		for j, gi := range in.groups {
			groups[j] = groupIDs[gi]
		}
		var agent *agentState
		if in.agent != nil {
			agent = &agentState{Agent: *in.agent, since: launched}
		}
		reg.instances[id] = &instance{
			id: id, eniID: "eni-" + id[len("i-"):], vpcID: vid, subnetID: subnet, privateIP: addr, publicIP: in.publicIP,
			groupIDs: groups, state: in.State, instanceType: in.Type, imageID: in.Image,
			launchTime: launched, seq: s.nextSeq(), tags: cloneTags(in.Tags), hostKeys: in.hostKeys,
			agent: agent, keyName: in.KeyName, profileARN: s.instanceProfileARN(in.InstanceProfile),
		}
		s.applyInterfaces(reg, reg.instances[id], in.interfaces, groupIDs, reserved)
	}
	s.applyKeys(reg, p.keys)
}

// freeAddress picks the first address from .10 up in v that no instance
// uses, the way a subnet hands out addresses.
func (r *region) freeAddress(v *vpc, reserved map[netip.Addr]bool) netip.Addr {
	used := maps.Clone(reserved)
	for _, in := range r.instances {
		if in.vpcID == v.id {
			for _, nic := range in.interfaces() {
				used[nic.privateIP] = true
			}
		}
	}
	a := v.cidr.Addr()
	for range 10 {
		a = a.Next()
	}
	for used[a] && v.cidr.Contains(a.Next()) {
		a = a.Next()
	}
	return a
}

func cloneTags(t map[string]string) map[string]string {
	if t == nil {
		return map[string]string{}
	}
	return maps.Clone(t)
}
