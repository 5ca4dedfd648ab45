// Package adopt moves instances to latch's baseline: one latch:managed
// group per VPC, with no standing rules, attached to each instance, and the
// standing admin-port rules a scan found removed. It plans from an estate
// read once (NewPlan makes no call), applies a plan with its intent
// recorded in the audit log before any change and each change audited
// (Apply), and undoes an applied plan from the audit log alone (Undo).
//
// It never locks a team out: a removal that would leave a target with no
// way in (no admin-port rule left, Session Manager not online, no latch
// policy rule covering it) is refused unless forced.
package adopt

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

// StepKind names what a step changes.
type StepKind string

// The kinds of step, in the order a plan makes them: the managed group is
// in place on every target before any rule goes.
const (
	CreateGroup StepKind = "create-group"
	AttachGroup StepKind = "attach-group"
	RemoveRule  StepKind = "remove-rule"
)

// RefusalKind names why something was not planned.
type RefusalKind string

// The reasons a change is refused. Force turns lock-out, shared-group and
// wide-rule refusals into warnings; a full interface cannot be forced, as
// EC2 would refuse the attach anyway.
const (
	RefusedLockOut     RefusalKind = "lock-out"
	RefusedSharedGroup RefusalKind = "shared-group"
	RefusedFull        RefusalKind = "interface-full"
	// A standing rule that carries more than admin ports (every protocol,
	// or a port range past them): removing it cuts that traffic too.
	RefusedWideRule RefusalKind = "wide-rule"
)

// DefaultGroupName is the name of a managed group adopt creates.
const DefaultGroupName = "latch-managed"

// DefaultGroupsPerInterface is EC2's default quota of security groups per
// network interface.
const DefaultGroupsPerInterface = 5

// Input is what a plan is made from.
type Input struct {
	Estate  latch.Estate       // one region, read by the caller
	Targets []latch.InstanceID // instances to adopt (the CLI resolves --all in a VPC to these)
	// Standing reports whether a rule is a standing admin-port rule the
	// scan found (world, wide, or untagged in a managed group), with the
	// finding's ID. Only those rules are removed.
	Standing func(r latch.IngressRule) (findingID string, ok bool)
	// Covered reports whether a latch policy rule covers the instance (so
	// latch can open it later), naming the rule. nil means none does.
	Covered func(in latch.EstateInstance) (rule string, ok bool)
	Force   bool
	// GroupName names a group adopt creates; "" means DefaultGroupName. A
	// VPC that already has a group of that name that cannot be reused gets
	// GroupName-PLAN_ID, as names are unique in a VPC.
	GroupName string
	// AdminPorts are the TCP ports whose rules count as a way in for the
	// lock-out check; nil means latch.DefaultAdminPorts().
	AdminPorts []int
	// GroupsPerInterface is the account's quota of groups per interface;
	// 0 means DefaultGroupsPerInterface.
	GroupsPerInterface int
	Now                time.Time
	Actor              string
	// NewID returns the plan's ID; nil means "adopt-" + UTC date + "-" +
	// 8 random hex digits.
	NewID func() string
}

// Plan is every change of one adoption, in the order Apply makes them.
type Plan struct {
	ID        string    `json:"id"`
	Region    string    `json:"region"`
	Actor     string    `json:"actor"`
	CreatedAt time.Time `json:"created_at"`
	Steps     []Step    `json:"steps"`
	// Refused is what was not planned, and why. With Force, lock-out and
	// shared-group refusals are planned and listed in Warnings instead.
	Refused  []Refusal `json:"refused,omitempty"`
	Warnings []string  `json:"warnings,omitempty"`
}

// Step is one change.
type Step struct {
	Kind StepKind `json:"kind"`
	VPC  string   `json:"vpc"`
	// Group is the managed group (create, attach: a placeholder, see
	// Placeholder, when the plan creates it) or the rule's group (remove).
	Group    latch.GroupID    `json:"group"`
	Instance latch.InstanceID `json:"instance,omitempty"` // attach
	// Interface is the ENI an attach sets, when the instance has several
	// (the primary one, device index 0); "" means its only one.
	Interface string          `json:"interface,omitempty"`
	Before    []latch.GroupID `json:"before_groups,omitempty"` // attach: the interface's groups before, exactly
	After     []latch.GroupID `json:"after_groups,omitempty"`  // attach: and after
	// Rule is the rule a removal revokes, exactly as read, so that Undo
	// can authorize it again.
	Rule    *latch.IngressRule `json:"rule,omitempty"`
	Finding string             `json:"finding,omitempty"` // remove: the finding it ends
	// Tags are a created group's: latch:managed=true, latch:adopt-plan and
	// Name.
	Tags map[string]string `json:"tags,omitempty"`
}

// String describes the step on one line, as a dry run prints it.
func (s Step) String() string {
	switch s.Kind {
	case CreateGroup:
		return fmt.Sprintf("create group %s in %s (%s=true, %s=%s)", s.Tags["Name"], s.VPC, latch.TagManaged, latch.TagAdoptPlan, s.Tags[latch.TagAdoptPlan])
	case AttachGroup:
		return fmt.Sprintf("attach %s to %s%s: [%s] -> [%s]", s.Group, s.Instance, enisuffix(s.Interface), joinIDs(s.Before), joinIDs(s.After))
	case RemoveRule:
		if s.Rule == nil {
			return fmt.Sprintf("remove a rule from %s", s.Group)
		}
		d := "remove " + describeRule(s.Group, *s.Rule)
		if s.Rule.Description != "" {
			d += fmt.Sprintf(" %q", s.Rule.Description)
		}
		if s.Finding != "" {
			d += ", ending " + s.Finding
		}
		return d
	}
	return string(s.Kind)
}

// Refusal is a change not planned.
type Refusal struct {
	Kind     RefusalKind        `json:"kind"`
	Instance latch.InstanceID   `json:"instance,omitempty"`
	Group    latch.GroupID      `json:"group,omitempty"`
	Rules    []latch.RuleID     `json:"rules,omitempty"`  // the removals refused
	Others   []latch.InstanceID `json:"others,omitempty"` // shared group: the instances that are not targets
	Reason   string             `json:"reason"`
}

// Placeholder is the ID a plan gives the group it will create in vpc;
// Apply replaces it with the created group's ID.
func Placeholder(vpc string) latch.GroupID { return latch.GroupID("new:" + vpc) }

func isPlaceholder(g latch.GroupID) bool { return strings.HasPrefix(string(g), "new:") }

// NewID returns a plan ID for now: "adopt-20261205-1a2b3c4d".
func NewID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "adopt-" + now.UTC().Format("20060102") + "-" + hex.EncodeToString(b[:])
}

// NewPlan plans the adoption of in.Targets. It makes no call. It returns
// EINVALID for bad input (an unknown target names the ID), and
// EUNAVAILABLE when the estate's groups or instances could not be read.
//
// A lock-out refuses only that target's removals: the rest of the plan
// (attaching the managed group everywhere, other targets' removals) still
// moves toward the baseline, and the caller decides whether a plan with
// refusals is applied.
func NewPlan(in Input) (Plan, error) {
	if err := validate(in); err != nil {
		return Plan{}, err
	}
	p := Plan{Region: in.Estate.Region, Actor: in.Actor, CreatedAt: in.Now.UTC(), Steps: []Step{}}
	if in.NewID != nil {
		p.ID = in.NewID()
	} else {
		p.ID = NewID(in.Now)
	}
	groupName := cmp.Or(in.GroupName, DefaultGroupName)
	perIface := cmp.Or(in.GroupsPerInterface, DefaultGroupsPerInterface)
	adminPorts := in.AdminPorts
	if adminPorts == nil {
		adminPorts = latch.DefaultAdminPorts()
	}

	groups := map[latch.GroupID]*latch.EstateGroup{}
	for i := range in.Estate.Groups {
		groups[in.Estate.Groups[i].ID] = &in.Estate.Groups[i]
	}
	insts := map[latch.InstanceID]*latch.EstateInstance{}
	for i := range in.Estate.Instances {
		insts[in.Estate.Instances[i].ID] = &in.Estate.Instances[i]
	}
	var targets []*latch.EstateInstance
	isTarget := map[latch.InstanceID]bool{}
	for _, id := range in.Targets {
		inst, ok := insts[id]
		if !ok {
			return Plan{}, latch.Invalidf("targets", "no instance %s in region %s", id, in.Estate.Region)
		}
		if !inst.Live() {
			return Plan{}, latch.Invalidf("targets", "instance %s is %s: nothing to adopt", id, inst.State)
		}
		if inst.VPC == "" {
			return Plan{}, latch.Invalidf("targets", "instance %s is in no VPC: adopt manages VPC security groups only", id)
		}
		if !isTarget[id] {
			isTarget[id] = true
			targets = append(targets, inst)
		}
	}

	// One managed group per VPC: reuse one with nothing but latch's rules,
	// preferring the one most targets already carry, else create one.
	// Only a group a target carries, or one adopt made (its tag or its
	// name), is reused: a rule opened in a group reaches every instance
	// carrying it, so joining another team's group (the web servers')
	// would let each of their grants open the targets too. A
	// managed group every target of the VPC carries already is reused even
	// with standing rules (they are removed below, like any group's): a
	// second managed group would only add to the scan's findings, and
	// reusing it grants nobody anything new.
	managed := map[string]latch.GroupID{}
	var vpcs []string
	inVPC := map[string]int{}
	for _, t := range targets {
		if !slices.Contains(vpcs, t.VPC) {
			vpcs = append(vpcs, t.VPC)
		}
		inVPC[t.VPC]++
	}
	slices.Sort(vpcs)
	for _, vpc := range vpcs {
		var best *latch.EstateGroup
		bestN := -1
		nameTaken := false
		for i := range in.Estate.Groups {
			g := &in.Estate.Groups[i]
			if g.VPC != vpc {
				continue
			}
			if g.Name == groupName {
				nameTaken = true
			}
			if !g.Managed() {
				continue
			}
			n := 0
			for _, t := range targets {
				if slices.Contains(t.Groups, g.ID) {
					n++
				}
			}
			clean := !slices.ContainsFunc(g.Ingress, func(r latch.IngressRule) bool { return !r.LatchIn(*g) })
			carriedByAll := n == inVPC[vpc] && !slices.ContainsFunc(g.Ingress, func(r latch.IngressRule) bool {
				_, standing := in.Standing(r)
				return !r.LatchIn(*g) && !standing
			})
			if !clean && !carriedByAll {
				continue
			}
			if n == 0 && g.Tags[latch.TagAdoptPlan] == "" && g.Name != groupName {
				continue // another team's group: see above
			}
			if best == nil || n > bestN || (n == bestN && g.ID < best.ID) {
				best, bestN = g, n
			}
		}
		if best != nil {
			managed[vpc] = best.ID
			continue
		}
		name := groupName
		if nameTaken {
			name = groupName + "-" + p.ID
		}
		managed[vpc] = Placeholder(vpc)
		p.Steps = append(p.Steps, Step{Kind: CreateGroup, VPC: vpc, Group: Placeholder(vpc),
			Tags: map[string]string{latch.TagManaged: "true", latch.TagAdoptPlan: p.ID, "Name": name}})
	}

	// Attach it to each target that does not carry it, on the primary
	// interface, keeping the interface's groups.
	carries := map[latch.InstanceID]bool{}
	for _, t := range targets {
		mg := managed[t.VPC]
		if slices.Contains(t.Groups, mg) {
			carries[t.ID] = true
			continue
		}
		eni, before := primary(t)
		if len(before) >= perIface {
			p.Refused = append(p.Refused, Refusal{Kind: RefusedFull, Instance: t.ID, Group: mg,
				Reason: fmt.Sprintf("%s cannot take latch's group %s: its interface%s already has %d groups (%s), the most EC2 allows (%d); detach one or raise the quota",
					t.Label(), mg, enisuffix(eni), len(before), joinIDs(before), perIface)})
			continue
		}
		carries[t.ID] = true
		p.Steps = append(p.Steps, Step{Kind: AttachGroup, VPC: t.VPC, Group: mg, Instance: t.ID, Interface: eni,
			Before: slices.Clone(before), After: append(slices.Clone(before), mg)})
	}

	// The standing rules of the targets' groups, each once.
	var gids []latch.GroupID
	for _, t := range targets {
		for _, g := range t.Groups {
			if !slices.Contains(gids, g) {
				gids = append(gids, g)
			}
		}
	}
	slices.Sort(gids)
	type removal struct {
		step    Step
		refused bool
	}
	var removals []*removal
	for _, gid := range gids {
		g, ok := groups[gid]
		if !ok {
			continue // not read: nothing of it is known to be standing
		}
		var rules []Step
		for _, r := range g.Ingress {
			if r.LatchIn(*g) {
				continue // a grant's rule: the revoker closes it
			}
			fid, ok := in.Standing(r)
			if !ok {
				continue
			}
			if r.GroupID == "" {
				r.GroupID = g.ID // RestoreRule needs to know where it goes
			}
			if other := beyondAdmin(r, adminPorts); other != "" {
				ref := Refusal{Kind: RefusedWideRule, Group: g.ID, Rules: []latch.RuleID{r.ID},
					Reason: fmt.Sprintf("not removing %s from %s: it allows %s, not only admin ports, and removing it would cut that traffic too; narrow it to the admin ports first, or pass --force",
						r.ID, g.ID, other)}
				if refuse(&p, in.Force, ref) {
					continue
				}
			}
			rules = append(rules, Step{Kind: RemoveRule, VPC: g.VPC, Group: g.ID, Rule: &r, Finding: fid})
		}
		if len(rules) == 0 {
			continue
		}
		// Removing a shared group's rule cuts the others' access too.
		var others []latch.InstanceID
		for i := range in.Estate.Instances {
			o := &in.Estate.Instances[i]
			if !isTarget[o.ID] && o.Live() && slices.Contains(o.Groups, gid) {
				others = append(others, o.ID)
			}
		}
		refused := false
		if len(others) > 0 {
			ref := Refusal{Kind: RefusedSharedGroup, Group: gid, Rules: ruleIDs(rules), Others: others,
				Reason: fmt.Sprintf("not removing %s from %s: the group is also attached to %s, which %s not being adopted and would lose that access too; adopt %s as well, or pass --force",
					joinRules(rules), gid, joinIDs(others), isAre(len(others)), itThem(len(others)))}
			refused = refuse(&p, in.Force, ref)
		}
		for _, s := range rules {
			removals = append(removals, &removal{step: s, refused: refused})
		}
	}

	// Lock-out: a target whose last way in the plan removes keeps its
	// removals unless Session Manager or a policy rule still lets people in.
	// Refusing removals only adds ways in, so one pass over the targets
	// decides every one.
	removed := map[latch.RuleID]bool{}
	for _, r := range removals {
		if !r.refused {
			removed[r.step.Rule.ID] = true
		}
	}
	locked := map[latch.RuleID]bool{}
	for _, t := range targets {
		var mine []Step
		wayIn := false
		for _, gid := range t.Groups {
			g, ok := groups[gid]
			if !ok {
				continue
			}
			for _, r := range g.Ingress {
				switch {
				case removed[r.ID]:
					mine = append(mine, Step{Group: gid, Rule: &r})
				case !r.LatchIn(*g) && (r.CIDR.IsValid() || r.PrefixList != "") && slices.ContainsFunc(adminPorts, r.CoversPort):
					// People come in from addresses: a rule from a
					// group (the default group admits its own members)
					// lets in only what is already inside.
					wayIn = true
				}
			}
		}
		if len(mine) == 0 || wayIn || t.SSM == "Online" {
			continue
		}
		var rule string
		covered := false
		if in.Covered != nil {
			rule, covered = in.Covered(*t)
		}
		if covered && carries[t.ID] {
			continue
		}
		ssm := "Session Manager is not online for it"
		if t.SSM != "" {
			ssm += " (" + t.SSM + ")"
		}
		cover := "no latch policy rule covers it"
		if covered {
			cover = fmt.Sprintf("policy rule %q covers it but latch's group cannot be attached to it", rule)
		}
		ref := Refusal{Kind: RefusedLockOut, Instance: t.ID, Rules: ruleIDs(mine),
			Reason: fmt.Sprintf("not removing %s: %s would have no way in left: no admin-port rule remains in its groups, %s, and %s; to keep a way in, get Session Manager online on it, cover it with a latch policy rule, or pass --force",
				joinRules(mine), t.Label(), ssm, cover)}
		if refuse(&p, in.Force, ref) {
			for _, s := range mine {
				locked[s.Rule.ID] = true
			}
		}
	}
	for _, r := range removals {
		if !r.refused && !locked[r.step.Rule.ID] {
			p.Steps = append(p.Steps, r.step)
		}
	}
	return p, nil
}

func validate(in Input) error {
	switch {
	case in.Estate.Region == "":
		return latch.Invalidf("estate", "no region: plan from one region's estate")
	case len(in.Targets) == 0:
		return latch.Invalidf("targets", "no instances to adopt: name instances, or --all in a VPC")
	case in.Standing == nil:
		return latch.Invalidf("standing", "not given: adopt removes only the standing rules a scan found")
	case in.Actor == "":
		return latch.Invalidf("actor", "empty: a plan records who made it")
	case in.Now.IsZero():
		return latch.Invalidf("now", "zero: a plan records when it was made")
	case in.GroupsPerInterface < 0:
		return latch.Invalidf("groups-per-interface", "%d is negative; EC2 allows 1 to 16", in.GroupsPerInterface)
	}
	// Planning on a partial read could miss a way in, or a group's users.
	if n, unread := in.Estate.Unread(latch.CheckGroups, latch.CheckInstances); unread {
		return latch.Errorf(latch.EUNAVAILABLE, "cannot plan an adoption in %s: its %s could not be read (%s: %s)", in.Estate.Region, n.Check, n.API, n.Reason)
	}
	return nil
}

// refuse records ref as a refusal, or with force as a warning; it reports
// whether the change was refused.
func refuse(p *Plan, force bool, ref Refusal) bool {
	if force {
		p.Warnings = append(p.Warnings, "forced: "+ref.Reason)
		return false
	}
	p.Refused = append(p.Refused, ref)
	return true
}

// primary returns the interface an attach sets ("" when the instance has
// only one) and its groups.
func primary(in *latch.EstateInstance) (eni string, groups []latch.GroupID) {
	switch len(in.Interfaces) {
	case 0:
		return "", in.Groups
	case 1:
		return "", in.Interfaces[0].Groups
	}
	ni := slices.MinFunc(in.Interfaces, func(a, b latch.NetworkInterface) int { return cmp.Compare(a.DeviceIndex, b.DeviceIndex) })
	return ni.ID, ni.Groups
}

func enisuffix(eni string) string {
	if eni == "" {
		return ""
	}
	return " " + eni
}

func joinIDs[T ~string](ids []T) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ", ")
}

func ruleIDs(steps []Step) []latch.RuleID {
	out := make([]latch.RuleID, len(steps))
	for i, s := range steps {
		out[i] = s.Rule.ID
	}
	return out
}

func joinRules(steps []Step) string {
	s := make([]string, len(steps))
	for i, st := range steps {
		s[i] = describeRule(st.Group, *st.Rule)
	}
	return strings.Join(s, ", ")
}

// describeRule renders a rule as a person reads it: "sgr-1 (tcp 22 from
// 0.0.0.0/0 in sg-1)".
func describeRule(g latch.GroupID, r latch.IngressRule) string {
	ports := fmt.Sprint(r.FromPort)
	if r.ToPort != r.FromPort {
		ports += "-" + fmt.Sprint(r.ToPort)
	}
	proto := r.Protocol
	if proto == "-1" {
		proto, ports = "all", "ports"
	}
	return fmt.Sprintf("%s (%s %s from %s in %s)", r.ID, proto, ports, r.Source(), g)
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}

func itThem(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// beyondAdmin describes what r allows beyond adminPorts ("all traffic",
// "tcp 0-65535"), or "" when it allows admin ports only.
func beyondAdmin(r latch.IngressRule, adminPorts []int) string {
	switch r.Protocol {
	case "-1", "all":
		return "all traffic"
	case "tcp", "6":
		for port := r.FromPort; port <= r.ToPort; port++ {
			if !slices.Contains(adminPorts, port) {
				return fmt.Sprintf("tcp %d-%d", r.FromPort, r.ToPort)
			}
		}
	}
	return ""
}
