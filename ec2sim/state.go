package ec2sim

import (
	"maps"
	"net/netip"
	"time"
)

// DefaultRegion is the region of requests that carry no SigV4 credential
// scope.
const DefaultRegion = "us-east-1"

// defaultVPCCIDR is the block AWS gives every default VPC.
const defaultVPCCIDR = "172.31.0.0/16"

// region is one region's resources. Regions share nothing, as in EC2: a
// group ID from one region is unknown in another.
type region struct {
	name       string
	defaultVPC string
	vpcs       map[string]*vpc
	groups     map[string]*group
	rules      map[string]*rule
	instances  map[string]*instance
	// egress are the groups' outbound rules by ID (egress.go): apart from
	// rules, which every inbound reader walks.
	egress map[string]*rule
	// ruleLog is what DescribeLag hides, oldest first (consistency.go).
	ruleLog []ruleChange
	// keyPairs are EC2 key pairs by name (keypairs.go), launchTemplates
	// launch templates by ID (launchtemplates.go); both made on first use.
	keyPairs        map[string]*keyPair
	launchTemplates map[string]*launchTemplate
}

type vpc struct {
	id   string
	cidr netip.Prefix
	tags map[string]string
}

type group struct {
	id          string
	name        string
	description string
	vpcID       string
	seq         int64
	tags        map[string]string
}

// rule is one ingress rule: one protocol, one port range, one CIDR. EC2
// explodes an IpPermission with several ranges into one rule per range, and
// so does the simulator.
type rule struct {
	id          string
	groupID     string
	protocol    string // "tcp", "udp", "icmp", "icmpv6", "-1" or a protocol number
	fromPort    int
	toPort      int
	cidr        netip.Prefix
	description string
	seq         int64
	tags        map[string]string
	// sourceGroup or prefixList is the source when it is not a CIDR
	// (sources.go); cidr is then zero.
	sourceGroup string
	prefixList  string
	egress      bool
}

// key identifies a rule for duplicate detection and revoke-by-permission;
// the description is not part of it, as in EC2.
type ruleKey struct {
	groupID  string
	protocol string
	fromPort int
	toPort   int
	cidr     netip.Prefix
	// sourceGroup and prefixList are the other sources (sources.go).
	sourceGroup string
	prefixList  string
}

func (r *rule) key() ruleKey {
	return ruleKey{r.groupID, r.protocol, r.fromPort, r.toPort, r.cidr, r.sourceGroup, r.prefixList}
}

type instance struct {
	id           string
	eniID        string
	vpcID        string
	subnetID     string
	privateIP    netip.Addr
	publicIP     netip.Addr // zero when none; see publicAddr
	groupIDs     []string
	state        string
	instanceType string
	imageID      string
	launchTime   time.Time
	seq          int64
	tags         map[string]string
	hostKeys     []hostKey   // what GetConsoleOutput shows; see consoleoutput.go
	agent        *agentState // its SSM agent, nil when it has none; see ssm_agent.go
	keyName      string      // the key pair it was launched with; "" for none
	profileARN   string      // its instance profile's ARN; "" for none
	// extraENIs are its interfaces beyond the primary one (eniID,
	// groupIDs), by device index from 1 (attach.go).
	extraENIs []*eni
}

// Rule is a snapshot of one ingress rule, for tests and the admin endpoint.
type Rule struct {
	ID          string            `json:"id"`
	GroupID     string            `json:"group_id"`
	Protocol    string            `json:"protocol"`
	FromPort    int               `json:"from_port"`
	ToPort      int               `json:"to_port"`
	CIDR        string            `json:"cidr"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	// SourceGroup or PrefixList is the source when it is not a CIDR (CIDR
	// is then "").
	SourceGroup string `json:"source_group,omitempty"`
	PrefixList  string `json:"prefix_list,omitempty"`
}

func (r *rule) snapshot() Rule {
	return Rule{
		ID:          r.id,
		GroupID:     r.groupID,
		Protocol:    r.protocol,
		FromPort:    r.fromPort,
		ToPort:      r.toPort,
		CIDR:        r.cidrString(),
		Description: r.description,
		Tags:        maps.Clone(r.tags),
		SourceGroup: r.sourceGroup,
		PrefixList:  r.prefixList,
	}
}

func newRegion(name string) *region {
	return &region{
		name:      name,
		vpcs:      map[string]*vpc{},
		groups:    map[string]*group{},
		rules:     map[string]*rule{},
		instances: map[string]*instance{},
		egress:    map[string]*rule{},
	}
}

// groupByName finds a group by name within one VPC.
func (r *region) groupByName(vpcID, name string) *group {
	for _, g := range r.groups {
		if g.vpcID == vpcID && g.name == name {
			return g
		}
	}
	return nil
}

// rulesOf returns the ingress rules of one group.
func (r *region) rulesOf(groupID string) []*rule {
	var out []*rule
	for _, ru := range r.rules {
		if ru.groupID == groupID {
			out = append(out, ru)
		}
	}
	sortBySeq(out, func(ru *rule) int64 { return ru.seq })
	return out
}
