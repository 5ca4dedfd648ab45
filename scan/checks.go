package scan

import "github.com/latchdev/latch"

// CheckInfo describes one of the scan's checks: the code findings carry
// (SARIF's ruleId), a short name, the severity its findings usually have,
// and what it is about.
type CheckInfo struct {
	Code     string
	Name     string
	Severity Severity // the default; LATCH004 is info or low by source
	Short    string   // one line
	Full     string   // what it looks at
	Help     string   // why it matters and what to do
	// Needs are the reads it judges: when any is not checked in a region,
	// the check finds nothing there.
	Needs []latch.Check
}

// The checks' codes. They never change meaning: finding IDs, baselines
// and code-scanning alerts hold them.
const (
	AdminPortWorld      = "LATCH001"
	AdminPortWide       = "LATCH002"
	StandingInManaged   = "LATCH003"
	AdminPortFromGroup  = "LATCH004"
	InstanceExposed     = "LATCH005"
	InstanceUnmanaged   = "LATCH006"
	InstanceManyManaged = "LATCH007"
	RoleChangesGroups   = "LATCH008"
	RoleWithoutSSM      = "LATCH009"
	RegionWithoutTrail  = "LATCH010"
	InstanceKeyPair     = "LATCH011"
	TemplateKeyPair     = "LATCH012"
)

var checks = []CheckInfo{
	{
		Code: AdminPortWorld, Needs: []latch.Check{latch.CheckGroups}, Name: "admin-port-open-to-world", Severity: Critical,
		Short: "An admin port is open to the whole internet (0.0.0.0/0 or ::/0).",
		Full:  "A security group rule lets anyone reach an admin port (SSH, RDP, WinRM or a port the policy names) over TCP, or every protocol, from 0.0.0.0/0 or ::/0.",
		Help:  "Remove the rule and open access per person, per address and for a bounded time with latch. `latch adopt INSTANCE...` attaches a latch:managed group and removes the standing admin rules (dry run first, then --apply).",
	},
	{
		Code: AdminPortWide, Needs: []latch.Check{latch.CheckGroups}, Name: "admin-port-open-to-wide-network", Severity: High,
		Short: "An admin port is open to an address range outside the policy's networks.",
		Full:  "A standing security group rule lets a CIDR that lies outside every network the policy names (any CIDR when it names none) reach an admin port.",
		Help:  "Remove the rule (`latch adopt` does) and let people ask latch for their own address, or narrow it to a network the policy names.",
	},
	{
		Code: StandingInManaged, Needs: []latch.Check{latch.CheckGroups}, Name: "standing-rule-in-managed-group", Severity: High,
		Short: "A rule latch did not open stands on an admin port in a latch:managed group.",
		Full:  "A latch:managed security group holds an admin-port rule without latch's expiry tag: it stays open whatever latch grants or revokes.",
		Help:  "Remove the rule (`latch adopt` removes it and can undo); latch opens this group on demand.",
	},
	{
		Code: AdminPortFromGroup, Needs: []latch.Check{latch.CheckGroups}, Name: "admin-port-open-to-group-or-prefix-list", Severity: Low,
		Short: "An admin port is open to a security group or a managed prefix list.",
		Full:  "A standing rule lets members of a security group (info), or the addresses of a managed prefix list (low: its entries are not read), reach an admin port.",
		Help:  "Keep it if that source should reach admin ports at all times (a bastion, a VPN's group); otherwise remove it and use latch. Check what the prefix list holds.",
	},
	{
		Code: InstanceExposed, Needs: []latch.Check{latch.CheckGroups, latch.CheckInstances}, Name: "instance-exposed-to-internet", Severity: Critical,
		Short: "An instance with a public address has an admin port open to the world.",
		Full:  "An instance with a public IPv4 address is in a security group that opens an admin port to 0.0.0.0/0 or ::/0. Paths through load balancers, NAT or VPNs are not evaluated.",
		Help:  "Remove the world rules (see their LATCH001 findings), or the public address; `latch adopt INSTANCE` moves the instance to a latch:managed group.",
	},
	{
		Code: InstanceUnmanaged, Needs: []latch.Check{latch.CheckGroups, latch.CheckInstances}, Name: "instance-without-managed-group", Severity: Medium,
		Short: "An instance has no latch:managed security group.",
		Full:  "A running or stopped instance is in no security group tagged latch:managed=true, so latch cannot open access to it.",
		Help:  "`latch adopt INSTANCE` creates or reuses one latch:managed group per VPC and attaches it.",
	},
	{
		Code: InstanceManyManaged, Needs: []latch.Check{latch.CheckGroups, latch.CheckInstances}, Name: "instance-with-several-managed-groups", Severity: Low,
		Short: "An instance has more latch:managed groups than latch expects.",
		Full:  "A running or stopped instance is in more latch:managed security groups than expected (one by default), so access opened in one group is not the whole picture.",
		Help:  "Detach the extra latch:managed groups, keeping one per instance.",
	},
	{
		Code: RoleChangesGroups, Needs: []latch.Check{latch.CheckRoles}, Name: "instance-role-can-change-security-groups", Severity: High,
		Short: "An instance role may change security groups.",
		Full:  "IAM allows an instance's role actions that open ingress or change which groups an instance is in (SimulatePrincipalPolicy, attached and inline policies, wildcards included), so anything running on the instance can open its own door.",
		Help:  "Remove those actions from the role's policies: an instance needs none of them. `latch iam-policy` prints the permissions latch itself needs, for the roles that need them.",
	},
	{
		Code: RoleWithoutSSM, Needs: []latch.Check{latch.CheckRoles}, Name: "instance-role-without-ssm", Severity: Medium,
		Short: "An instance role lacks Session Manager's managed policy.",
		Full:  "The role of an instance profile does not have AmazonSSMManagedInstanceCore attached, so Session Manager cannot reach its instances without an open port.",
		Help:  "Attach arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore, so sessions need no inbound rule at all.",
	},
	{
		Code: RegionWithoutTrail, Needs: []latch.Check{latch.CheckTrails}, Name: "region-without-management-trail", Severity: Medium,
		Short: "No CloudTrail trail logs management events in a region.",
		Full:  "No trail that applies to the region (its own or a multi-region one) logs management write events, so security group changes leave no record.",
		Help:  "Create a multi-region trail logging management events; latch's audit is cross-checked against it.",
	},
	{
		Code: InstanceKeyPair, Needs: []latch.Check{latch.CheckInstances}, Name: "instance-launched-with-key-pair", Severity: Medium,
		Short: "An instance was launched with an EC2 key pair.",
		Full:  "A running or stopped instance names an EC2 key pair: a long-lived SSH key that whoever holds it can use whenever port 22 is open.",
		Help:  "Remove the key from the instance's authorized_keys and use short-lived access (latch's SSH certificates or Instance Connect, or Session Manager); launch replacements without a key pair.",
	},
	{
		Code: TemplateKeyPair, Needs: []latch.Check{latch.CheckLaunchTemplates}, Name: "launch-template-names-key-pair", Severity: Medium,
		Short: "A launch template names an EC2 key pair.",
		Full:  "The default or latest version of a launch template names an EC2 key pair, so every instance launched from it gets a long-lived SSH key.",
		Help:  "Create a version without KeyName and make it the default.",
	},
}

// Checks lists every check, in code order.
func Checks() []CheckInfo { return append([]CheckInfo(nil), checks...) }

func checkInfo(code string) CheckInfo {
	for _, c := range checks {
		if c.Code == code {
			return c
		}
	}
	panic("scan: unknown check " + code)
}
