package ec2sim

// A new security group has one outbound rule, as in EC2: every protocol to
// 0.0.0.0/0. The simulator keeps outbound rules apart from inbound ones
// (region.egress), shows them in DescribeSecurityGroups'
// ipPermissionsEgress and in DescribeSecurityGroupRules with isEgress
// true, lets CreateTags reach them, and counts them against their own
// quota, as EC2 does. It does not model AuthorizeSecurityGroupEgress or
// RevokeSecurityGroupEgress: the default rule is the only outbound rule a
// group has. Server.Rules and the admin snapshot list inbound rules only.

import (
	"crypto/sha256"
	"encoding/hex"
)

// egressRuleID is the ID of a group's default outbound rule. It is derived
// from the group's ID rather than drawn from the ID generator, so that
// seeded IDs of everything else stay what they were before groups had one.
func egressRuleID(groupID string) string {
	sum := sha256.Sum256([]byte("egress:" + groupID))
	return "sgr-" + hex.EncodeToString(sum[:])[:17]
}

// addDefaultEgress gives g its default outbound rule. Caller holds s.mu.
func (s *Server) addDefaultEgress(r *region, g *group) {
	id := egressRuleID(g.id)
	r.egress[id] = &rule{
		id: id, groupID: g.id, protocol: "-1", fromPort: -1, toPort: -1,
		// The group's own seq, unique among rules too (one counter numbers
		// both), so that adding the rule shifts no other resource's.
		cidr: mustPrefix("0.0.0.0/0"), seq: g.seq, tags: map[string]string{}, egress: true,
	}
}

// deleteEgress drops the outbound rule of a deleted group: its default
// one, the only one a group has (addDefaultEgress).
func (r *region) deleteEgress(groupID string) {
	delete(r.egress, egressRuleID(groupID))
}

// addEgress lists the outbound ones of a group's rules in x's
// ipPermissionsEgress.
func (s *Server) addEgress(x *xmlGroup, rules []*rule) {
	for _, ru := range rules {
		if !ru.egress {
			continue
		}
		xp := &xmlPermission{IPProtocol: ru.protocol}
		if ru.protocol != "-1" {
			from, to := ru.fromPort, ru.toPort
			xp.FromPort, xp.ToPort = &from, &to
		}
		s.addToPermission(xp, ru)
		x.IPPermissionsEgress.Items = append(x.IPPermissionsEgress.Items, xp)
	}
}

// rulesByGroup indexes the rules DescribeSecurityGroups shows (inbound as
// a describe sees them now, and outbound) by group, in creation order.
func (s *Server) rulesByGroup(r *region) map[string][]*rule {
	out := map[string][]*rule{}
	for _, ru := range s.visibleRules(r) {
		out[ru.groupID] = append(out[ru.groupID], ru)
	}
	for _, ru := range r.egress {
		out[ru.groupID] = append(out[ru.groupID], ru)
	}
	for _, rules := range out {
		sortBySeq(rules, func(ru *rule) int64 { return ru.seq })
	}
	return out
}

// groupInUse reports whether a group is one of an interface's groups or
// the source of another group's rule, which EC2 refuses to delete it for
// (DependencyViolation).
func (r *region) groupInUse(groupID string) bool {
	for _, in := range r.instances {
		for _, nic := range in.interfaces() {
			for _, id := range nic.groupIDs {
				if id == groupID {
					return true
				}
			}
		}
	}
	for _, ru := range r.rules {
		if ru.sourceGroup == groupID && ru.groupID != groupID {
			return true
		}
	}
	return false
}
