// Package scan judges estates (what aws.EstateReader read of each
// region) into findings: standing access to admin ports, instances it
// exposes, instances latch cannot manage, instance roles that could open
// their own doors or lack Session Manager, regions without a management
// trail, and long-lived key pairs. It makes no call: everything it judges
// was read before, so a judgement is fast, repeatable and testable.
//
// It also writes the findings as JSON (`latch scan --json`) and SARIF
// 2.1.0 (`--format sarif`), and reads a baseline of accepted findings.
package scan

import (
	"cmp"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/latchdev/latch"
)

// Finding is one problem on one resource.
type Finding struct {
	// ID is stable across runs: the same problem on the same resource
	// gives the same ID, whatever the order of the estate, the time or the
	// other findings. It is CHECK/REGION/RESOURCE (LATCH001/us-east-1/sgr-…);
	// CHECK/RESOURCE for roles, which IAM holds for every region
	// (LATCH008/arn:aws:iam::…:role/…); CHECK/REGION for a region's own
	// findings (LATCH010/us-east-1); and CHECK/REGION/TEMPLATE/KEY for a
	// launch template's key (one ID per key it names; the key's name
	// path-escaped, so that an ID never holds a space).
	ID       string
	Check    string // the check's code (LATCH001…): SARIF's ruleId
	Name     string // the check's short name
	Severity Severity
	Region   string // "" for IAM roles, which are global
	// Resource is what the finding is about: the rule, instance, template,
	// role ARN, or region.
	Resource  string
	Title     string // one line
	Detail    string // what was seen, with the values
	Fix       string // what to do
	Rule      *latch.IngressRule
	Group     latch.GroupID
	Instances []latch.InstanceID // the instances it is about or exposes, sorted
}

// Options tune the judgement to a policy.
type Options struct {
	// AdminPorts are the TCP ports whose exposure is judged; empty means
	// latch.DefaultAdminPorts. The caller appends the ports its policy names.
	AdminPorts []int
	// Networks are the policy's networks: a rule whose source lies inside
	// one of them is not "wide" (LATCH002). With none, every CIDR is.
	Networks []netip.Prefix
	// MaxManagedGroups is how many latch:managed groups an instance may
	// have before LATCH007; 0 means 1.
	MaxManagedGroups int
}

// Validate checks o, naming the field at fault.
func (o Options) Validate() error {
	for _, p := range o.AdminPorts {
		if p < 0 || p > 65535 {
			return latch.Invalidf("admin_ports", "%d is not a port; want 0-65535", p)
		}
	}
	for _, n := range o.Networks {
		if !n.IsValid() {
			return latch.Invalidf("networks", "%v is not a network; want a CIDR such as 10.0.0.0/8", n)
		}
	}
	if o.MaxManagedGroups < 0 {
		return latch.Invalidf("max_managed_groups", "%d is negative; want 1 or more (0 for the default, 1)", o.MaxManagedGroups)
	}
	return nil
}

// Counts is how much a scan judged.
type Counts struct {
	Groups    int // security groups
	Rules     int // their inbound rules
	Instances int // instances judged (not terminated or shutting down)
	Templates int // launch templates (not versions)
	Roles     int // distinct instance roles
	Trails    int // distinct trails
}

// Report is the judgement of some estates.
type Report struct {
	Findings   []Finding // by severity, highest first, then ID
	NotChecked []latch.NotChecked
	Regions    []string
	Scanned    Counts
}

// Worst returns the highest severity found, and false when nothing was.
func (r Report) Worst() (Severity, bool) {
	if len(r.Findings) == 0 {
		return 0, false
	}
	w := r.Findings[0].Severity
	for _, f := range r.Findings[1:] {
		w = max(w, f.Severity)
	}
	return w, true
}

// Reaches reports whether a finding is at or above s: a scan's exit 3.
func (r Report) Reaches(s Severity) bool {
	w, ok := r.Worst()
	return ok && w >= s
}

// Count returns how many findings have severity s.
func (r Report) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// ssmPolicy is Session Manager's managed policy, by name: its ARN's
// partition differs in China and GovCloud.
const ssmPolicy = ":iam::aws:policy/AmazonSSMManagedInstanceCore"

// SecurityGroupActions are the IAM actions that let a role change what
// reaches an instance: open ingress, change a rule's source, or attach
// other groups. The estate reader should ask SimulatePrincipalPolicy
// about these; LATCH008 judges these and ignores any other decision.
var SecurityGroupActions = []string{
	"ec2:AuthorizeSecurityGroupIngress",
	"ec2:ModifySecurityGroupRules",
	"ec2:ModifyInstanceAttribute",
	"ec2:ModifyNetworkInterfaceAttribute",
}

// Judge judges estates into a report. It makes no call and never fails:
// what could not be read is in the estates' NotChecked, carried into the
// report, and the checks that need it report nothing.
//
// One problem gives one finding. An admin-port rule is judged once, by the
// first of these that applies:
//   - its source is 0.0.0.0/0 or ::/0: LATCH001 (critical);
//   - it is not latch's and its CIDR lies outside the policy's networks:
//     LATCH002 (high);
//   - it is not latch's and stands in a latch:managed group: LATCH003
//     (high), whatever its source;
//   - its source is a security group or a prefix list: LATCH004 (not for
//     a group that admits its own members).
//
// So a standing rule open to the world or a wide range in a managed group
// is LATCH001 or LATCH002, whose detail also says it stands in a managed
// group: the exposure is the worse problem (or as bad), and removing the
// rule fixes both.
func Judge(estates []latch.Estate, opt Options) Report {
	j := judge{opt: opt}
	if len(j.opt.AdminPorts) == 0 {
		j.opt.AdminPorts = latch.DefaultAdminPorts()
	}
	j.opt.AdminPorts = slices.Clone(j.opt.AdminPorts)
	slices.Sort(j.opt.AdminPorts)
	j.opt.AdminPorts = slices.Compact(j.opt.AdminPorts)
	if j.opt.MaxManagedGroups <= 0 {
		j.opt.MaxManagedGroups = 1
	}
	j.byID = map[string]int{}
	j.trails = map[string]bool{}
	j.roles = map[string]*roleUse{}

	// Judge regions in name order, so that anything merged across regions
	// (roles) is merged the same way whatever order they came in.
	estates = slices.Clone(estates)
	slices.SortStableFunc(estates, func(a, b latch.Estate) int { return cmp.Compare(a.Region, b.Region) })
	var rep Report
	for _, e := range estates {
		if len(rep.Regions) == 0 || rep.Regions[len(rep.Regions)-1] != e.Region {
			rep.Regions = append(rep.Regions, e.Region)
		}
		rep.NotChecked = append(rep.NotChecked, e.NotChecked...)
		j.region(e)
	}
	j.judgeRoles()

	rep.Findings = j.findings
	for i := range rep.Findings {
		slices.Sort(rep.Findings[i].Instances)
		rep.Findings[i].Instances = slices.Compact(rep.Findings[i].Instances)
	}
	sortFindings(rep.Findings)
	slices.SortFunc(rep.NotChecked, func(a, b latch.NotChecked) int {
		return cmp.Or(cmp.Compare(a.Region, b.Region), cmp.Compare(a.Check, b.Check),
			cmp.Compare(a.Resource, b.Resource), cmp.Compare(a.API, b.API), cmp.Compare(a.Reason, b.Reason))
	})
	rep.NotChecked = slices.Compact(rep.NotChecked)
	j.counts.Roles = len(j.roles)
	j.counts.Trails = len(j.trails)
	rep.Scanned = j.counts
	return rep
}

func sortFindings(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(b.Severity, a.Severity), cmp.Compare(a.ID, b.ID))
	})
}

type judge struct {
	opt      Options
	findings []Finding
	byID     map[string]int // index in findings, so a problem seen twice is one finding
	counts   Counts
	trails   map[string]bool
	roles    map[string]*roleUse // by role ARN
}

// roleUse is a role as every region saw it.
type roleUse struct {
	role      latch.InstanceRole
	allowed   map[string]bool
	decidedBy map[string][]string
	managed   map[string]bool
	// noPolicies is set when a region could not read the role's attached
	// policies: LATCH009 is then not judged, rather than judged on nothing.
	noPolicies bool
	instances  []string // "i-… (region)"
	ids        []latch.InstanceID
}

// add records f, merging it into a finding with the same ID: an estate
// that lists a resource twice still gives one finding.
func (j *judge) add(f Finding) {
	info := checkInfo(f.Check)
	f.Name = info.Name
	if f.Severity == 0 {
		f.Severity = info.Severity
	}
	if f.Fix == "" {
		f.Fix = info.Help
	}
	if i, ok := j.byID[f.ID]; ok {
		j.findings[i].Instances = append(j.findings[i].Instances, f.Instances...)
		return
	}
	j.byID[f.ID] = len(j.findings)
	j.findings = append(j.findings, f)
}

func findingID(check, region, resource string) string {
	id := check
	for _, part := range []string{region, resource} {
		if part != "" {
			id += "/" + part
		}
	}
	return id
}

func describeRule(r latch.IngressRule) string {
	proto := r.Protocol
	switch proto {
	case "-1", "all":
		return "every protocol and port from " + r.Source()
	case "6":
		proto = "tcp"
	}
	ports := fmt.Sprint(r.FromPort)
	if r.ToPort != r.FromPort {
		ports = fmt.Sprintf("%d-%d", r.FromPort, r.ToPort)
	}
	return fmt.Sprintf("%s %s from %s", proto, ports, r.Source())
}

func isWorld(p netip.Prefix) bool { return p.IsValid() && p.Bits() == 0 }

// inside reports whether p lies within one of the networks.
func inside(p netip.Prefix, networks []netip.Prefix) bool {
	p = p.Masked()
	for _, n := range networks {
		if n.Bits() <= p.Bits() && n.Masked().Contains(p.Addr()) { // Contains is false across families
			return true
		}
	}
	return false
}

func joinPorts(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, ", ")
}

func (j *judge) adminPorts(r latch.IngressRule) []int {
	var out []int
	for _, p := range j.opt.AdminPorts {
		if r.CoversPort(p) {
			out = append(out, p)
		}
	}
	return out
}

func (j *judge) region(e latch.Estate) {
	groupsOK := e.Checked(latch.CheckGroups)
	instancesOK := e.Checked(latch.CheckInstances)

	groups := map[latch.GroupID]latch.EstateGroup{}
	if groupsOK {
		for _, g := range e.Groups {
			groups[g.ID] = g
		}
	}
	var instances []latch.EstateInstance
	if instancesOK {
		seen := map[latch.InstanceID]bool{}
		for _, in := range e.Instances {
			if in.Live() && !seen[in.ID] {
				seen[in.ID] = true
				in.Groups = slices.Clone(in.Groups)
				slices.Sort(in.Groups)
				in.Groups = slices.Compact(in.Groups)
				instances = append(instances, in)
			}
		}
	}
	j.counts.Instances += len(instances)

	// Who is in each group, and which of them has a public address: the
	// rules' findings name the instances they expose.
	members := map[latch.GroupID][]latch.EstateInstance{}
	for _, in := range instances {
		for _, g := range in.Groups {
			members[g] = append(members[g], in)
		}
	}

	worldRules := map[latch.GroupID][]latch.IngressRule{}
	for _, g := range groups {
		j.counts.Groups++
		j.counts.Rules += len(g.Ingress)
		for _, r := range g.Ingress {
			if r.GroupID == "" {
				r.GroupID = g.ID
			}
			if j.judgeRule(e.Region, g, r, members[g.ID]) {
				worldRules[g.ID] = append(worldRules[g.ID], r)
			}
		}
	}

	for _, in := range instances {
		if groupsOK {
			j.judgeInstanceGroups(e.Region, in, groups, worldRules)
		}
		if in.KeyName != "" {
			j.add(Finding{
				ID: findingID(InstanceKeyPair, e.Region, string(in.ID)), Check: InstanceKeyPair,
				Region: e.Region, Resource: string(in.ID),
				Title:     fmt.Sprintf("instance %s was launched with key pair %q", in.Label(), in.KeyName),
				Detail:    fmt.Sprintf("instance %s (%s) names EC2 key pair %q: whoever holds its private key can log in whenever port 22 is reachable.", in.ID, in.State, in.KeyName),
				Instances: []latch.InstanceID{in.ID},
			})
		}
	}

	if e.Checked(latch.CheckLaunchTemplates) {
		j.judgeTemplates(e.Region, e.LaunchTemplates)
	}

	if e.Checked(latch.CheckRoles) {
		byProfile := map[string][]latch.EstateInstance{}
		for _, in := range instances {
			if in.InstanceProfile != "" {
				byProfile[in.InstanceProfile] = append(byProfile[in.InstanceProfile], in)
			}
		}
		refused := map[string][]string{} // profile or role ARN → the APIs refused for it
		for _, n := range e.NotChecked {
			if n.Check == latch.CheckRoles && n.Resource != "" {
				refused[n.Resource] = append(refused[n.Resource], n.API)
			}
		}
		for _, r := range e.Roles {
			j.useRole(e.Region, r, byProfile[r.Profile], append(refused[r.Profile], refused[r.Role]...))
		}
	}

	if e.Checked(latch.CheckTrails) {
		logged := false
		for _, t := range e.Trails {
			j.trails[cmp.Or(t.ARN, t.Name)] = true
			logged = logged || t.ManagementEvents
		}
		if !logged {
			detail := fmt.Sprintf("no trail applies to %s", e.Region)
			if len(e.Trails) > 0 {
				var names []string
				for _, t := range e.Trails {
					names = append(names, t.Name)
				}
				slices.Sort(names)
				detail = fmt.Sprintf("trails %s apply to %s, but none logs management write events", strings.Join(names, ", "), e.Region)
			}
			j.add(Finding{
				ID: findingID(RegionWithoutTrail, e.Region, ""), Check: RegionWithoutTrail,
				Region: e.Region, Resource: e.Region,
				Title:  fmt.Sprintf("no CloudTrail trail logs management events in %s", e.Region),
				Detail: detail + ": security group changes there leave no record.",
			})
		}
	}
}

// judgeRule judges one inbound rule and reports whether it is open to
// the world on an admin port (LATCH001), for LATCH005.
func (j *judge) judgeRule(region string, g latch.EstateGroup, r latch.IngressRule, members []latch.EstateInstance) bool {
	ports := j.adminPorts(r)
	if len(ports) == 0 {
		return false
	}
	standing := !r.LatchIn(g)
	inManaged := g.Managed() && standing
	what := fmt.Sprintf("rule %s in group %s", r.ID, groupLabel(g))
	covers := fmt.Sprintf("It allows %s: admin port %s", describeRule(r), joinPorts(ports))
	if len(ports) > 1 {
		covers = fmt.Sprintf("It allows %s: admin ports %s", describeRule(r), joinPorts(ports))
	}
	alsoManaged := ""
	if inManaged {
		alsoManaged = fmt.Sprintf(" It is also a standing rule (no %s tag) in a latch:managed group, which latch opens on demand.", latch.TagExpiresAt)
	}
	var exposed, attached []latch.InstanceID
	for _, in := range members {
		attached = append(attached, in.ID)
		if in.PublicIP.IsValid() {
			exposed = append(exposed, in.ID)
		}
	}
	slices.Sort(attached)
	base := Finding{Region: region, Resource: string(r.ID), Rule: &r, Group: g.ID}
	adoptFix := ""
	if standing && len(attached) > 0 {
		adoptFix = fmt.Sprintf("Remove the rule, and open access per person with latch: %s attaches a latch:managed group and removes the standing admin rules (dry run first, then --apply; --undo restores them).", adoptCommand(attached))
	}

	switch {
	case isWorld(r.CIDR):
		f := base
		f.ID, f.Check = findingID(AdminPortWorld, region, string(r.ID)), AdminPortWorld
		f.Fix = adoptFix
		f.Title = fmt.Sprintf("%s opens admin port %s to the world (%s)", what, joinPorts(ports), r.CIDR)
		f.Detail = covers + "." + alsoManaged
		if len(exposed) > 0 {
			f.Detail += fmt.Sprintf(" Instances with a public address in the group: %s.", joinIDs(exposed))
		}
		if n := len(attached) - len(exposed); n > 0 {
			f.Detail += fmt.Sprintf(" %d instance(s) in the group have no public address (reachable only through a path not evaluated: load balancer, NAT, VPN, peering).", n)
		}
		f.Instances = exposed
		j.add(f)
		return true
	case standing && r.CIDR.IsValid() && !inside(r.CIDR, j.opt.Networks):
		f := base
		f.ID, f.Check = findingID(AdminPortWide, region, string(r.ID)), AdminPortWide
		f.Fix = adoptFix
		f.Title = fmt.Sprintf("%s opens admin port %s to %s, outside the policy's networks", what, joinPorts(ports), r.CIDR)
		if len(j.opt.Networks) == 0 {
			f.Title = fmt.Sprintf("%s opens admin port %s to %s, standing", what, joinPorts(ports), r.CIDR)
		}
		f.Detail = covers + "; " + networksNote(j.opt.Networks) + "." + alsoManaged
		f.Instances = attached
		j.add(f)
	case r.SourceGroup == g.ID:
		// A group that admits itself (every default VPC group does) lets
		// its members reach each other: nobody outside it gains a way in,
		// and removing it would cut a cluster's own traffic, so it is
		// never reported, managed group or not.
	case inManaged:
		f := base
		f.ID, f.Check = findingID(StandingInManaged, region, string(r.ID)), StandingInManaged
		f.Fix = adoptFix
		f.Title = fmt.Sprintf("%s is a standing admin rule in a latch:managed group", what)
		f.Detail = fmt.Sprintf("%s, and carries no %s tag: it stays open whatever latch grants or revokes.", covers, latch.TagExpiresAt)
		f.Instances = attached
		j.add(f)
	case r.SourceGroup != "" || r.PrefixList != "":
		f := base
		f.ID, f.Check = findingID(AdminPortFromGroup, region, string(r.ID)), AdminPortFromGroup
		if r.SourceGroup != "" {
			f.Severity = Info
			f.Title = fmt.Sprintf("%s opens admin port %s to members of security group %s", what, joinPorts(ports), r.SourceGroup)
			f.Detail = covers + ": any instance in that group can reach it, at all times."
		} else {
			f.Severity = Low
			f.Title = fmt.Sprintf("%s opens admin port %s to prefix list %s", what, joinPorts(ports), r.PrefixList)
			f.Detail = covers + ": the addresses the prefix list holds (not read by the scan) can reach it, at all times."
		}
		f.Instances = attached
		j.add(f)
	}
	return false
}

// adoptCommand is the `latch adopt` line for some instances, or a
// pointer to the finding's list when it would be too long to read.
func adoptCommand(ids []latch.InstanceID) string {
	if len(ids) > 5 {
		return fmt.Sprintf("`latch adopt INSTANCE...` for its %d instances (the finding's instances)", len(ids))
	}
	return "`latch adopt " + strings.Join(strings.Split(joinIDs(ids), ", "), " ") + "`"
}

func groupLabel(g latch.EstateGroup) string {
	if g.Name != "" {
		return fmt.Sprintf("%s (%s)", g.ID, g.Name)
	}
	return string(g.ID)
}

func networksNote(networks []netip.Prefix) string {
	if len(networks) == 0 {
		return "the policy names no networks, so any standing CIDR is judged wide"
	}
	s := make([]string, len(networks))
	for i, n := range networks {
		s[i] = n.String()
	}
	return "the policy's networks are " + strings.Join(s, ", ")
}

func joinIDs(ids []latch.InstanceID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	slices.Sort(s)
	return strings.Join(s, ", ")
}

// judgeInstanceGroups makes LATCH005, LATCH006 and LATCH007 for one
// instance.
//
// LATCH005 is about a public IPv4 address and a world rule on a group the
// instance is in. It does not evaluate other internet-facing paths: load
// balancers (ALB/NLB/CLB) forwarding to the instance, NAT or port
// forwarding through another instance, VPNs, peering or Transit Gateway,
// Global Accelerator; nor route tables (a public address in a subnet
// without an internet gateway route), network ACLs, or IPv6 addresses
// (the estate holds none: a ::/0 rule still makes LATCH001).
func (j *judge) judgeInstanceGroups(region string, in latch.EstateInstance, groups map[latch.GroupID]latch.EstateGroup, worldRules map[latch.GroupID][]latch.IngressRule) {
	var managed []latch.GroupID
	all := in.Groups // sorted and compacted by region
	unknown := false
	var rules []string
	for _, id := range all {
		g, ok := groups[id]
		if !ok {
			unknown = true
			continue
		}
		if g.Managed() {
			managed = append(managed, id)
		}
		for _, r := range worldRules[id] {
			rules = append(rules, fmt.Sprintf("%s in %s (%s)", r.ID, id, describeRule(r)))
		}
	}
	slices.Sort(managed)
	managed = slices.Compact(managed)
	slices.Sort(rules)
	rules = slices.Compact(rules)

	if in.PublicIP.IsValid() && len(rules) > 0 {
		j.add(Finding{
			ID: findingID(InstanceExposed, region, string(in.ID)), Check: InstanceExposed,
			Region: region, Resource: string(in.ID),
			Title:     fmt.Sprintf("instance %s at public address %s has an admin port open to the world", in.Label(), in.PublicIP),
			Detail:    fmt.Sprintf("instance %s (%s) has public address %s and is in groups whose rules open admin ports to the world: %s.", in.ID, in.State, in.PublicIP, strings.Join(rules, "; ")),
			Fix:       fmt.Sprintf("Remove the world rules (their LATCH001 findings), or the public address; %s moves the instance to a latch:managed group and removes the standing admin rules.", adoptCommand([]latch.InstanceID{in.ID})),
			Instances: []latch.InstanceID{in.ID},
		})
	}
	switch {
	case len(managed) == 0 && !unknown:
		j.add(Finding{
			ID: findingID(InstanceUnmanaged, region, string(in.ID)), Check: InstanceUnmanaged,
			Region: region, Resource: string(in.ID),
			Title:     fmt.Sprintf("instance %s has no latch:managed security group", in.Label()),
			Detail:    fmt.Sprintf("instance %s (%s, VPC %s) is in groups %s, none tagged %s=true: latch cannot open access to it.", in.ID, in.State, in.VPC, joinGroups(all), latch.TagManaged),
			Fix:       fmt.Sprintf("`latch adopt %s` creates or reuses a latch:managed group in %s and attaches it (dry run first, then --apply).", in.ID, cmp.Or(in.VPC, "its VPC")),
			Instances: []latch.InstanceID{in.ID},
		})
	case len(managed) > j.opt.MaxManagedGroups:
		j.add(Finding{
			ID: findingID(InstanceManyManaged, region, string(in.ID)), Check: InstanceManyManaged,
			Region: region, Resource: string(in.ID),
			Title:     fmt.Sprintf("instance %s has %d latch:managed groups; latch expects at most %d", in.Label(), len(managed), j.opt.MaxManagedGroups),
			Detail:    fmt.Sprintf("instance %s (%s) is in latch:managed groups %s.", in.ID, in.State, joinGroups(managed)),
			Instances: []latch.InstanceID{in.ID},
		})
	}
}

func joinGroups(ids []latch.GroupID) string {
	if len(ids) == 0 {
		return "(none)"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ", ")
}

// judgeTemplates makes LATCH012: the default and the latest version of
// each template, one finding per key pair they name (so one when both
// name the same key). Older versions are not judged: nothing launches from
// them unless asked by number.
func (j *judge) judgeTemplates(region string, versions []latch.LaunchTemplate) {
	byTemplate := map[string][]latch.LaunchTemplate{}
	var ids []string
	for _, v := range versions {
		if _, ok := byTemplate[v.ID]; !ok {
			ids = append(ids, v.ID)
		}
		byTemplate[v.ID] = append(byTemplate[v.ID], v)
	}
	j.counts.Templates += len(ids)
	slices.Sort(ids)
	for _, id := range ids {
		vs := byTemplate[id]
		latest := slices.MaxFunc(vs, func(a, b latch.LaunchTemplate) int { return cmp.Compare(a.Version, b.Version) }).Version
		keys := map[string][]string{} // key name → how its versions are known
		for _, v := range vs {
			var as []string
			if v.Default {
				as = append(as, "default")
			}
			if v.Version == latest {
				as = append(as, "latest")
			}
			if len(as) == 0 || v.KeyName == "" {
				continue
			}
			keys[v.KeyName] = append(keys[v.KeyName], fmt.Sprintf("version %d (%s)", v.Version, strings.Join(as, ", ")))
		}
		name := cmp.Or(vs[0].Name, id)
		for key, where := range keys {
			slices.Sort(where)
			where = slices.Compact(where)
			verb := "names"
			if len(where) > 1 {
				verb = "name"
			}
			j.add(Finding{
				ID: findingID(TemplateKeyPair, region, id+"/"+url.PathEscape(key)), Check: TemplateKeyPair,
				Region: region, Resource: id,
				Title:  fmt.Sprintf("launch template %s (%s) names key pair %q", id, name, key),
				Detail: fmt.Sprintf("launch template %s (%s) %s %s EC2 key pair %q: every instance launched from it gets that long-lived key.", id, name, strings.Join(where, " and "), verb, key),
			})
		}
	}
}

// useRole records what one region saw of an instance profile's role; the
// role is judged once, after every region (judgeRoles).
//
// refused are the IAM APIs refused for this profile or role. Any refusal
// but SimulatePrincipalPolicy's leaves LATCH009 unjudged (the attached
// policies may be unknown); LATCH008 needs no such care, as a refused
// simulation decides nothing and an allow seen is evidence enough.
func (j *judge) useRole(region string, r latch.InstanceRole, instances []latch.EstateInstance, refused []string) {
	if r.Role == "" {
		return // a profile without a role: nothing to judge
	}
	u, ok := j.roles[r.Role]
	if !ok {
		u = &roleUse{role: r, allowed: map[string]bool{}, decidedBy: map[string][]string{}, managed: map[string]bool{}}
		j.roles[r.Role] = u
	}
	for _, api := range refused {
		if !strings.EqualFold(api, "iam:SimulatePrincipalPolicy") {
			u.noPolicies = true
		}
	}
	for _, p := range r.ManagedPolicies {
		u.managed[p] = true
	}
	for _, a := range SecurityGroupActions {
		if d := decision(r.Decisions, a); d == "allowed" || d == latch.DecisionConditional {
			u.allowed[a] = true
			u.decidedBy[a] = append(u.decidedBy[a], decidedBy(r.DecidedBy, a)...)
		}
	}
	for _, in := range instances {
		u.instances = append(u.instances, fmt.Sprintf("%s (%s)", in.ID, region))
		u.ids = append(u.ids, in.ID)
	}
}

// decision looks an action up as IAM spells it, or in any case: IAM's
// action names are case-insensitive.
func decision(m map[string]string, action string) string {
	if d, ok := m[action]; ok {
		return d
	}
	for k, d := range m {
		if strings.EqualFold(k, action) {
			return d
		}
	}
	return ""
}

func decidedBy(m map[string][]string, action string) []string {
	if d, ok := m[action]; ok {
		return d
	}
	for k, d := range m {
		if strings.EqualFold(k, action) {
			return d
		}
	}
	return nil
}

func (j *judge) judgeRoles() {
	arns := make([]string, 0, len(j.roles))
	for arn := range j.roles {
		arns = append(arns, arn)
	}
	slices.Sort(arns)
	for _, arn := range arns {
		u := j.roles[arn]
		slices.Sort(u.instances)
		u.instances = slices.Compact(u.instances)
		used := "no running or stopped instance uses it"
		if len(u.instances) > 0 {
			used = "used by " + strings.Join(u.instances, ", ")
		}
		name := cmp.Or(u.role.RoleName, arn)
		if len(u.allowed) > 0 {
			var parts []string
			for _, a := range SecurityGroupActions {
				if !u.allowed[a] {
					continue
				}
				by := slices.Clone(u.decidedBy[a])
				slices.Sort(by)
				by = slices.Compact(by)
				if len(by) > 0 {
					parts = append(parts, fmt.Sprintf("%s (allowed by %s)", a, strings.Join(by, ", ")))
				} else {
					parts = append(parts, a)
				}
			}
			j.add(Finding{
				ID: findingID(RoleChangesGroups, "", arn), Check: RoleChangesGroups, Resource: arn,
				Title:     fmt.Sprintf("instance role %s may change security groups", name),
				Detail:    fmt.Sprintf("IAM allows role %s %s; %s.", arn, strings.Join(parts, "; "), used),
				Instances: slices.Clone(u.ids),
			})
		}
		hasSSM := false
		for p := range u.managed {
			hasSSM = hasSSM || (strings.HasPrefix(p, "arn:") && strings.HasSuffix(p, ssmPolicy))
		}
		if !hasSSM && !u.noPolicies {
			attached := make([]string, 0, len(u.managed))
			for p := range u.managed {
				attached = append(attached, p)
			}
			slices.Sort(attached)
			j.add(Finding{
				ID: findingID(RoleWithoutSSM, "", arn), Check: RoleWithoutSSM, Resource: arn,
				Title:     fmt.Sprintf("instance role %s lacks AmazonSSMManagedInstanceCore", name),
				Detail:    fmt.Sprintf("role %s has managed policies [%s]: Session Manager needs AmazonSSMManagedInstanceCore (a custom policy granting the same is not evaluated); %s.", arn, strings.Join(attached, ", "), used),
				Instances: slices.Clone(u.ids),
			})
		}
	}
}
