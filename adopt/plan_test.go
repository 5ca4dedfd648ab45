package adopt_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/adopt"
)

// steps renders a plan's steps one a line, for comparison.
func steps(p adopt.Plan) []string {
	var out []string
	for _, s := range p.Steps {
		switch s.Kind {
		case adopt.CreateGroup:
			out = append(out, fmt.Sprintf("create %s in %s named %s", s.Group, s.VPC, s.Tags["Name"]))
		case adopt.AttachGroup:
			out = append(out, fmt.Sprintf("attach %s to %s%s: %v -> %v", s.Group, s.Instance, strings.TrimSuffix(" "+s.Interface, " "), s.Before, s.After))
		case adopt.RemoveRule:
			out = append(out, fmt.Sprintf("remove %s from %s for %s", s.Rule.ID, s.Group, s.Finding))
		}
	}
	return out
}

func kinds(rs []adopt.Refusal) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s %s%s", r.Kind, r.Instance, r.Group))
	}
	return out
}

func TestPlanReusesAManagedGroupWithOnlyLatchsRules(t *testing.T) {
	in := input(fleet(), "i-web", "i-db")
	in.Estate.Instances[1].SSM = "Online"
	p := mustPlan(t, in)
	want := []string{
		"attach sg-m to i-web: [sg-web sg-shared] -> [sg-web sg-shared sg-m]",
		"attach sg-m to i-db: [sg-db] -> [sg-db sg-m]",
		"remove sgr-d22 from sg-db for F-sgr-d22",
		"remove sgr-w22 from sg-web for F-sgr-w22",
	}
	if got := steps(p); !slices.Equal(got, want) {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p.ID != planID || p.Region != "eu-west-1" || p.Actor != "alice@example.com" || !p.CreatedAt.Equal(epoch) {
		t.Errorf("plan header %q %q %q %v", p.ID, p.Region, p.Actor, p.CreatedAt)
	}
	// sg-shared's rule is refused: i-other is not a target.
	if got := kinds(p.Refused); !slices.Equal(got, []string{"shared-group sg-shared"}) {
		t.Errorf("refused %v", got)
	}
}

func TestPlanCreatesAGroupWhenNoneCanBeReused(t *testing.T) {
	e := fleet()
	// sg-m now holds a standing rule: it is not the clean group adopt wants.
	e.Groups[3].Ingress = append(e.Groups[3].Ingress, rule("sgr-m2", "sg-m", "tcp", 80, 80, "10.0.0.0/8"))
	in := input(e, "i-db")
	in.Estate.Instances[1].SSM = "Online"
	p := mustPlan(t, in)
	want := []string{
		"create new:vpc-1 in vpc-1 named latch-managed-" + planID, // "latch-managed" is sg-m's name
		"attach new:vpc-1 to i-db: [sg-db] -> [sg-db new:vpc-1]",
		"remove sgr-d22 from sg-db for F-sgr-d22",
	}
	if got := steps(p); !slices.Equal(got, want) {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	tags := p.Steps[0].Tags
	if tags[latch.TagManaged] != "true" || tags[latch.TagAdoptPlan] != planID {
		t.Errorf("created group's tags %v", tags)
	}

	// With the name free, the group gets it.
	e.Groups[3].Name = "old"
	in.Estate = e
	if p := mustPlan(t, in); p.Steps[0].Tags["Name"] != "latch-managed" {
		t.Errorf("name %q, want latch-managed", p.Steps[0].Tags["Name"])
	}
}

func TestPlanRemovesOnlyStandingRulesEachOnce(t *testing.T) {
	e := fleet()
	e.Instances = append(e.Instances, instance("i-web2", "web-2", "sg-web"))
	e.Instances[0].SSM, e.Instances[3].SSM = "Online", "Online" // sgr-wb, from a group, is no way in for people
	p := mustPlan(t, input(e, "i-web", "i-web2"))
	var removed []latch.RuleID
	for _, s := range p.Steps {
		if s.Kind == adopt.RemoveRule {
			removed = append(removed, s.Rule.ID)
			if s.Rule.Description != "ssh for the on-call" || s.Rule.Tags["ticket"] != "OPS-7" || s.Rule.CIDR.String() != "0.0.0.0/0" {
				t.Errorf("the rule is not kept as read: %+v", *s.Rule)
			}
		}
	}
	// sgr-w443 (not admin) and sgr-wb (from the bastion group) stay; two
	// targets share sg-web, and its rule goes once.
	if !slices.Equal(removed, []latch.RuleID{"sgr-w22"}) {
		t.Errorf("removes %v, want [sgr-w22] only", removed)
	}
}

func TestPlanRefusesASharedGroupsRuleUnlessForced(t *testing.T) {
	in := input(fleet(), "i-web")
	in.Estate.Instances[0].SSM = "Online"
	p := mustPlan(t, in)
	if len(p.Refused) != 1 || p.Refused[0].Kind != adopt.RefusedSharedGroup || !slices.Equal(p.Refused[0].Others, []latch.InstanceID{"i-other"}) {
		t.Fatalf("refused %+v, want sg-shared refused naming i-other", p.Refused)
	}
	if r := p.Refused[0].Reason; !strings.Contains(r, "sg-shared") || !strings.Contains(r, "i-other") || !strings.Contains(r, "--force") {
		t.Errorf("reason %q does not name the group, the other instance and --force", r)
	}
	for _, s := range p.Steps {
		if s.Kind == adopt.RemoveRule && s.Group == "sg-shared" {
			t.Errorf("plans %s although it is refused", s.Rule.ID)
		}
	}

	// Adopting i-other too leaves nobody behind.
	both := input(fleet(), "i-web", "i-other")
	both.Estate.Instances[0].SSM = "Online"
	both.Estate.Instances[2].SSM = "Online" // else sg-shared's rule is its last way in
	if p := mustPlan(t, both); len(p.Refused) != 0 {
		t.Errorf("refused %+v with every user of sg-shared a target", p.Refused)
	}

	in.Force = true
	p = mustPlan(t, in)
	if len(p.Refused) != 0 || len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "i-other") {
		t.Errorf("forced: refused %+v warnings %q", p.Refused, p.Warnings)
	}
	if !slices.ContainsFunc(p.Steps, func(s adopt.Step) bool { return s.Kind == adopt.RemoveRule && s.Rule.ID == "sgr-s3389" }) {
		t.Errorf("forced, but sgr-s3389 is not removed: %v", steps(p))
	}
}

func TestPlanNeverLocksATeamOut(t *testing.T) {
	// i-db's only way in is the world's ssh rule.
	removes := func(p adopt.Plan) bool {
		return slices.ContainsFunc(p.Steps, func(s adopt.Step) bool { return s.Kind == adopt.RemoveRule && s.Rule.ID == "sgr-d22" })
	}
	t.Run("Refused", func(t *testing.T) {
		in := input(fleet(), "i-db")
		in.Estate.Instances[1].SSM = "ConnectionLost"
		p := mustPlan(t, in)
		if removes(p) {
			t.Fatalf("plans removing i-db's last way in: %v", steps(p))
		}
		if len(p.Refused) != 1 || p.Refused[0].Kind != adopt.RefusedLockOut || p.Refused[0].Instance != "i-db" {
			t.Fatalf("refused %+v, want i-db's lock-out", p.Refused)
		}
		for _, w := range []string{"i-db", "sgr-d22", "Session Manager", "ConnectionLost", "policy rule", "--force"} {
			if !strings.Contains(p.Refused[0].Reason, w) {
				t.Errorf("reason %q does not say %q", p.Refused[0].Reason, w)
			}
		}
		// The managed group is still attached: the rest of the plan stands.
		if !slices.ContainsFunc(p.Steps, func(s adopt.Step) bool { return s.Kind == adopt.AttachGroup && s.Instance == "i-db" }) {
			t.Errorf("the attach is gone too: %v", steps(p))
		}
	})
	t.Run("SessionManagerOnline", func(t *testing.T) {
		in := input(fleet(), "i-db")
		in.Estate.Instances[1].SSM = "Online"
		if p := mustPlan(t, in); !removes(p) || len(p.Refused) != 0 {
			t.Errorf("steps %v refused %+v", steps(p), p.Refused)
		}
	})
	t.Run("Covered", func(t *testing.T) {
		in := input(fleet(), "i-db")
		in.Covered = func(i latch.EstateInstance) (string, bool) { return "db-oncall", i.ID == "i-db" }
		if p := mustPlan(t, in); !removes(p) || len(p.Refused) != 0 {
			t.Errorf("steps %v refused %+v", steps(p), p.Refused)
		}
	})
	t.Run("Forced", func(t *testing.T) {
		in := input(fleet(), "i-db")
		in.Force = true
		p := mustPlan(t, in)
		if !removes(p) || len(p.Refused) != 0 || len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "i-db") {
			t.Errorf("steps %v refused %+v warnings %q", steps(p), p.Refused, p.Warnings)
		}
	})
	t.Run("AnotherWayInRemains", func(t *testing.T) {
		// A rule from a prefix list on 22 is a way in that adopt keeps.
		e := fleet()
		e.Groups[1].Ingress = append(e.Groups[1].Ingress, rule("sgr-dpl", "sg-db", "tcp", 22, 22, "pl-0corp"))
		if p := mustPlan(t, input(e, "i-db")); !removes(p) || len(p.Refused) != 0 {
			t.Errorf("steps %v refused %+v", steps(p), p.Refused)
		}
		// A non-admin port is not one.
		e = fleet()
		e.Groups[1].Ingress = append(e.Groups[1].Ingress, rule("sgr-d443", "sg-db", "tcp", 443, 443, "pl-0corp"))
		if p := mustPlan(t, input(e, "i-db")); removes(p) {
			t.Errorf("a rule on 443 counted as a way in: %v", steps(p))
		}
	})
	t.Run("CoveredButLatchsGroupCannotBeAttached", func(t *testing.T) {
		e := fleet()
		e.Instances[1] = instance("i-db", "db-1", "sg-db", "sg-a", "sg-b", "sg-c", "sg-d")
		in := input(e, "i-db")
		in.Covered = func(latch.EstateInstance) (string, bool) { return "db-oncall", true }
		p := mustPlan(t, in)
		if removes(p) {
			t.Errorf("removes i-db's last way in although latch cannot open its group: %v", steps(p))
		}
		if got := kinds(p.Refused); !slices.Equal(got, []string{"interface-full i-dbsg-m", "lock-out i-db"}) {
			t.Errorf("refused %v", got)
		}
	})
}

func TestPlanRefusesAFullInterface(t *testing.T) {
	e := fleet()
	e.Instances[1] = instance("i-db", "db-1", "sg-db", "sg-a", "sg-b", "sg-c", "sg-d")
	e.Instances[1].SSM = "Online"
	for _, force := range []bool{false, true} {
		in := input(e, "i-db")
		in.Force = force
		p := mustPlan(t, in)
		if slices.ContainsFunc(p.Steps, func(s adopt.Step) bool { return s.Kind == adopt.AttachGroup }) {
			t.Errorf("force=%v: attaches a sixth group: %v", force, steps(p))
		}
		if len(p.Refused) != 1 || p.Refused[0].Kind != adopt.RefusedFull {
			t.Fatalf("force=%v: refused %+v", force, p.Refused)
		}
		for _, w := range []string{"i-db", "sg-db, sg-a, sg-b, sg-c, sg-d", "5"} {
			if !strings.Contains(p.Refused[0].Reason, w) {
				t.Errorf("reason %q does not say %q", p.Refused[0].Reason, w)
			}
		}
	}
	// A raised quota lets it in.
	in := input(e, "i-db")
	in.GroupsPerInterface = 16
	if p := mustPlan(t, in); len(p.Refused) != 0 {
		t.Errorf("refused %+v with a quota of 16", p.Refused)
	}
}

func TestPlanAttachesOnlyWhereMissing(t *testing.T) {
	e := fleet()
	e.Instances[1] = instance("i-db", "db-1", "sg-db", "sg-m")
	e.Instances[1].SSM = "Online"
	p := mustPlan(t, input(e, "i-db"))
	if slices.ContainsFunc(p.Steps, func(s adopt.Step) bool { return s.Kind == adopt.AttachGroup }) {
		t.Errorf("attaches sg-m to an instance that carries it: %v", steps(p))
	}
}

func TestPlanAttachesToThePrimaryOfSeveralInterfaces(t *testing.T) {
	e := fleet()
	e.Instances[1].SSM = "Online"
	e.Instances[1].Interfaces = []latch.NetworkInterface{iface("eni-b", 1, "sg-db"), iface("eni-a", 0, "sg-db", "sg-web")}
	e.Instances[1].Groups = []latch.GroupID{"sg-db", "sg-web"}
	p := mustPlan(t, input(e, "i-db"))
	if got := steps(p)[0]; got != "attach sg-m to i-db eni-a: [sg-db sg-web] -> [sg-db sg-web sg-m]" {
		t.Errorf("first step %q", got)
	}
}

func TestPlanRefusesBadInput(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*adopt.Input)
		code  string
		words string
	}{
		{"unknown target", func(in *adopt.Input) { in.Targets = []latch.InstanceID{"i-nope"} }, latch.EINVALID, "i-nope"},
		{"no targets", func(in *adopt.Input) { in.Targets = nil }, latch.EINVALID, "targets"},
		{"no standing", func(in *adopt.Input) { in.Standing = nil }, latch.EINVALID, "standing"},
		{"groups not read", func(in *adopt.Input) {
			in.Estate.NotChecked = []latch.NotChecked{{Check: latch.CheckGroups, API: "ec2:DescribeSecurityGroups", Reason: "UnauthorizedOperation"}}
		}, latch.EUNAVAILABLE, "ec2:DescribeSecurityGroups"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input(fleet(), "i-db")
			tt.edit(&in)
			_, err := adopt.NewPlan(in)
			if latch.ErrorCode(err) != tt.code || !strings.Contains(latch.ErrorMessage(err), tt.words) {
				t.Errorf("err %v (%s), want %s naming %q", err, latch.ErrorCode(err), tt.code, tt.words)
			}
		})
	}
}

func TestNewIDIsDatedAndRandom(t *testing.T) {
	a, b := adopt.NewID(epoch), adopt.NewID(epoch)
	if !strings.HasPrefix(a, "adopt-20261205-") || len(a) != len("adopt-20261205-")+8 || a == b {
		t.Errorf("ids %q %q", a, b)
	}
}

func TestPlanReusesAManagedGroupWithStandingRulesOnlyIfEveryTargetCarriesIt(t *testing.T) {
	e := fleet()
	e.Groups = append(e.Groups, latch.EstateGroup{ID: "sg-old", Name: "old-managed", VPC: "vpc-1", Tags: map[string]string{latch.TagManaged: "true"},
		Ingress: []latch.IngressRule{rule("sgr-o22", "sg-old", "tcp", 22, 22, "0.0.0.0/0")}})
	e.Instances[1] = instance("i-db", "db-1", "sg-db", "sg-old")
	e.Instances[1].SSM = "Online"
	e.Instances[0].SSM = "Online"
	in := input(e, "i-db")
	in.Standing = func(r latch.IngressRule) (string, bool) {
		if r.ID == "sgr-o22" {
			return "F-o22", true
		}
		return standing(r)
	}
	p := mustPlan(t, in)
	want := []string{"remove sgr-d22 from sg-db for F-sgr-d22", "remove sgr-o22 from sg-old for F-o22"}
	if got := steps(p); !slices.Equal(got, want) {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// i-web does not carry sg-old: attaching it would give i-web sg-old's
	// world rule, so the clean sg-m is used.
	in.Targets = []latch.InstanceID{"i-db", "i-web"}
	in.Force = true
	p = mustPlan(t, in)
	if p.Steps[0].Kind != adopt.AttachGroup || p.Steps[0].Group != "sg-m" {
		t.Errorf("steps %v, want sg-m attached", steps(p))
	}
}

func TestPlanRefusesATerminatedTarget(t *testing.T) {
	e := fleet()
	e.Instances[1].State = "terminated"
	_, err := adopt.NewPlan(input(e, "i-db"))
	if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), "terminated") {
		t.Errorf("err %v", err)
	}
}

// A rule opened in a group reaches every instance carrying it: adopt never
// puts its targets in another team's managed group, however clean.
func TestPlanDoesNotJoinAnotherTeamsGroup(t *testing.T) {
	e := fleet()
	e.Groups[3].Name = "web-latch" // not adopt's name, and no adopt tag
	e.Instances[2] = instance("i-other", "other", "sg-shared", "sg-m")
	in := input(e, "i-db")
	in.Estate.Instances[1].SSM = "Online"
	p := mustPlan(t, in)
	want := []string{
		"create new:vpc-1 in vpc-1 named latch-managed",
		"attach new:vpc-1 to i-db: [sg-db] -> [sg-db new:vpc-1]",
		"remove sgr-d22 from sg-db for F-sgr-d22",
	}
	if got := steps(p); !slices.Equal(got, want) {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A rule from a group lets in only what is already inside it (the
// default group admits its own members): it keeps nobody's way in, so
// removing the last rule from an address is refused all the same.
func TestPlanLockOutIgnoresGroupSourcedRules(t *testing.T) {
	e := fleet()
	e.Groups = append(e.Groups, latch.EstateGroup{ID: "sg-default", Name: "default", VPC: "vpc-1",
		Ingress: []latch.IngressRule{{ID: "sgr-self", GroupID: "sg-default", Protocol: "-1", FromPort: -1, ToPort: -1, SourceGroup: "sg-default"}}})
	e.Instances[1] = instance("i-db", "db-1", "sg-db", "sg-default")
	p := mustPlan(t, input(e, "i-db"))
	if got := kinds(p.Refused); !slices.Equal(got, []string{"lock-out i-db"}) {
		t.Errorf("refused %v, want db-1's lock-out", got)
	}
	if slices.ContainsFunc(p.Steps, func(s adopt.Step) bool { return s.Kind == adopt.RemoveRule }) {
		t.Errorf("removes a rule although it is db-1's last way in: %v", steps(p))
	}
}

// A standing rule that carries more than admin ports (every protocol, a
// wide port range) is not removed without --force: it would cut the
// rest of that traffic too.
func TestPlanRefusesToRemoveRulesWiderThanAdminPorts(t *testing.T) {
	e := fleet()
	e.Groups[1].Ingress = []latch.IngressRule{
		rule("sgr-all", "sg-db", "-1", -1, -1, "0.0.0.0/0"),
		rule("sgr-range", "sg-db", "tcp", 0, 65535, "0.0.0.0/0"),
		rule("sgr-d22", "sg-db", "tcp", 22, 22, "0.0.0.0/0"),
	}
	in := input(e, "i-db")
	in.Estate.Instances[1].SSM = "Online"
	in.Standing = func(r latch.IngressRule) (string, bool) { return "F-" + string(r.ID), r.GroupID == "sg-db" }
	p := mustPlan(t, in)
	if got := kinds(p.Refused); !slices.Equal(got, []string{"wide-rule sg-db", "wide-rule sg-db"}) {
		t.Errorf("refused %v, want both wide rules", got)
	}
	var removed []latch.RuleID
	for _, s := range p.Steps {
		if s.Kind == adopt.RemoveRule {
			removed = append(removed, s.Rule.ID)
		}
	}
	if !slices.Equal(removed, []latch.RuleID{"sgr-d22"}) {
		t.Errorf("removes %v, want sgr-d22 only", removed)
	}
	in.Force = true
	if p := mustPlan(t, in); len(p.Refused) != 0 || len(p.Warnings) != 2 {
		t.Errorf("forced: refused %v, warnings %q", kinds(p.Refused), p.Warnings)
	}
}
