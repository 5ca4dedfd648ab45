package latch

import (
	"context"
	"net/netip"
	"slices"
)

// Estate is what a scan reads of one region: every security group with its
// inbound rules, every instance, the launch templates, the roles of the
// instances' profiles, the trails, and what could not be read. It is read
// once and judged offline (package scan), so that a judgement never makes
// a call and a scan of thousands of instances makes a few paged calls.
type Estate struct {
	Region          string
	Groups          []EstateGroup
	Instances       []EstateInstance
	LaunchTemplates []LaunchTemplate
	Roles           []InstanceRole
	// Trails are the trails that apply to the region (its own and
	// multi-region ones), with their event selectors read.
	Trails []Trail
	// NotChecked lists what could not be read, and why: a check whose
	// reads were refused reports nothing else, and the scan goes on.
	NotChecked []NotChecked
}

// Checked reports whether check's reads succeeded in this estate.
func (e Estate) Checked(check Check) bool {
	return !slices.ContainsFunc(e.NotChecked, func(n NotChecked) bool { return n.Check == check && n.Resource == "" })
}

// Unread returns the first of checks whose reads failed as a whole, with
// what AWS said, and false when every one of them was read.
func (e Estate) Unread(checks ...Check) (NotChecked, bool) {
	for _, c := range checks {
		for _, n := range e.NotChecked {
			if n.Check == c && n.Resource == "" {
				return n, true
			}
		}
	}
	return NotChecked{}, false
}

// Check names a part of a scan that reads its own APIs, and so can be
// refused on its own.
type Check string

const (
	CheckGroups          Check = "security-groups"  // DescribeSecurityGroups, DescribeSecurityGroupRules
	CheckInstances       Check = "instances"        // DescribeInstances
	CheckLaunchTemplates Check = "launch-templates" // DescribeLaunchTemplates, DescribeLaunchTemplateVersions
	CheckRoles           Check = "instance-roles"   // IAM: instance profiles, roles, policies, SimulatePrincipalPolicy
	CheckTrails          Check = "trails"           // CloudTrail DescribeTrails, GetEventSelectors
	CheckSSM             Check = "ssm"              // DescribeInstanceInformation
)

// NotChecked is a check, or one resource of it, that a scan could not
// make: the API refused (AccessDenied) or missing, and what it said.
type NotChecked struct {
	Check    Check
	Region   string
	Resource string // the one resource that could not be read; "" for the whole check
	API      string // the refused call, as IAM names it: "iam:SimulatePrincipalPolicy"
	Reason   string // what AWS answered: "AccessDenied: …"
}

// EstateGroup is a security group with its inbound rules.
type EstateGroup struct {
	ID          GroupID
	Name        string
	Description string
	VPC         string
	Tags        map[string]string
	Ingress     []IngressRule
}

// Managed reports whether latch may open the group.
func (g EstateGroup) Managed() bool { return g.Tags[TagManaged] == "true" }

// IngressRule is one inbound rule as EC2 describes it: one protocol, one
// port range and one source, which is a CIDR, a security group or a
// managed prefix list.
type IngressRule struct {
	ID       RuleID
	GroupID  GroupID
	Protocol string // as EC2 names it: "tcp", "udp", "icmp", "icmpv6", "-1" (every protocol) or a number
	// FromPort and ToPort bound the ports; both are -1 for every protocol
	// ("-1"), and carry ICMP's type and code for icmp.
	FromPort, ToPort int
	CIDR             netip.Prefix // the source when it is an address range; zero otherwise
	SourceGroup      GroupID      // the source when it is a security group
	PrefixList       string       // the source when it is a managed prefix list (pl-…)
	Description      string
	Tags             map[string]string
}

// Latch reports whether latch opened the rule (it carries latch's expiry).
func (r IngressRule) Latch() bool { _, ok := r.Tags[TagExpiresAt]; return ok }

// LatchIn reports whether r is a rule latch opened in g, as far as AWS
// shows: it carries latch's expiry, readable, in a latch:managed group,
// from an address range that is not the whole internet. The tag alone
// proves nothing (anyone who may tag a rule can add it), so a rule that
// fails any of these is judged as standing access.
func (r IngressRule) LatchIn(g EstateGroup) bool {
	v, ok := r.Tags[TagExpiresAt]
	if !ok || !g.Managed() || !r.CIDR.IsValid() || r.CIDR.Bits() == 0 {
		return false
	}
	_, err := ParseExpiry(v)
	return err == nil
}

// Source is the rule's source as EC2 names it: a CIDR, a security group
// ID or a prefix list ID ("?" for none).
func (r IngressRule) Source() string {
	switch {
	case r.CIDR.IsValid():
		return r.CIDR.String()
	case r.SourceGroup != "":
		return string(r.SourceGroup)
	case r.PrefixList != "":
		return r.PrefixList
	}
	return "?"
}

// DefaultAdminPorts returns the TCP ports of remote administration: SSH,
// RDP and WinRM (HTTP and HTTPS). A scan adds the ports its policy names.
func DefaultAdminPorts() []int { return []int{22, 3389, 5985, 5986} }

// CoversPort reports whether the rule lets TCP traffic reach port.
func (r IngressRule) CoversPort(port int) bool {
	switch r.Protocol {
	case "-1", "all":
		return true
	case "tcp", "6":
		return r.FromPort <= port && port <= r.ToPort
	}
	return false
}

// EstateInstance is an instance as a scan needs to know it.
type EstateInstance struct {
	ID        InstanceID
	Name      string // its Name tag
	State     string
	VPC       string
	Subnet    string
	PrivateIP netip.Addr
	PublicIP  netip.Addr // zero when it has none
	// Groups are the groups of all its network interfaces, each once.
	Groups     []GroupID
	Interfaces []NetworkInterface
	KeyName    string // the EC2 key pair it was launched with; "" for none
	// InstanceProfile is the ARN of its instance profile; "" for none.
	InstanceProfile string
	Tags            map[string]string
	// SSM is its Session Manager agent's PingStatus ("Online",
	// "ConnectionLost", "Inactive"); "" when it has no agent, or when SSM
	// was not checked.
	SSM string
}

// Live reports whether the instance is neither terminated nor on its way
// there: what a scan judges and adopt may act on.
func (in EstateInstance) Live() bool { return in.State != "terminated" && in.State != "shutting-down" }

// Label names the instance for people: its ID, with its Name tag if any.
func (in EstateInstance) Label() string {
	if in.Name != "" {
		return string(in.ID) + " (" + in.Name + ")"
	}
	return string(in.ID)
}

// NetworkInterface is one of an instance's interfaces.
type NetworkInterface struct {
	ID          string
	DeviceIndex int
	Groups      []GroupID
}

// LaunchTemplate is one version of a launch template.
type LaunchTemplate struct {
	ID      string
	Name    string
	Version int64
	Default bool   // the template's default version
	KeyName string // the key pair its instances launch with; "" for none
}

// InstanceRole is the role of an instance profile, with what IAM decides
// for the actions a scan asks about.
type InstanceRole struct {
	Profile  string // the instance profile's ARN
	Role     string // the role's ARN; "" when the profile holds no role
	RoleName string
	// ManagedPolicies are the ARNs of the policies attached to the role.
	ManagedPolicies []string
	InlinePolicies  []string // names
	// Decisions is IAM's SimulatePrincipalPolicy decision per action asked
	// about ("allowed", "explicitDeny", "implicitDeny"), or
	// DecisionConditional.
	Decisions map[string]string
	// DecidedBy names, per allowed action, the policies whose statements
	// allowed it (SourcePolicyId of the matched statements).
	DecidedBy map[string][]string
}

// DecisionConditional is an InstanceRole decision: IAM denied the action
// only because a policy's condition keys had no value in the simulation
// (MissingContextValues). A statement allowing it under a condition
// (a tag on the instance's own group, say) is allowed at run time when
// the condition holds, so a scan counts it as allowed.
const DecisionConditional = "conditional"

// Trail is a CloudTrail trail that applies to a region.
type Trail struct {
	Name        string
	ARN         string
	HomeRegion  string
	MultiRegion bool
	// ManagementEvents is true when its event selectors (basic or
	// advanced) log management write events.
	ManagementEvents bool
}

// AdoptCloud makes the changes of an adoption plan in one region. Every
// method is idempotent where AWS allows: a rule already gone or already
// present, a group already attached, is not an error.
type AdoptCloud interface {
	// CreateGroup creates a security group in vpc with tags (set at
	// creation) and no inbound rules.
	CreateGroup(ctx context.Context, vpc, name, description string, tags map[string]string) (GroupID, error)
	// SetInstanceGroups sets the groups of an instance's only interface
	// (ModifyInstanceAttribute); SetInterfaceGroups those of one interface
	// (ModifyNetworkInterfaceAttribute), for instances with several.
	SetInstanceGroups(ctx context.Context, id InstanceID, groups []GroupID) error
	SetInterfaceGroups(ctx context.Context, eni string, groups []GroupID) error
	// RemoveRule revokes one inbound rule by ID; gone already is not an error.
	RemoveRule(ctx context.Context, group GroupID, id RuleID) error
	// RestoreRule authorizes r again exactly (protocol, ports, source,
	// description, tags) and returns its new ID; present already is not an
	// error.
	RestoreRule(ctx context.Context, r IngressRule) (RuleID, error)
	// DeleteGroup deletes a group; gone already is not an error.
	DeleteGroup(ctx context.Context, id GroupID) error
}
