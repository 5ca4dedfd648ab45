package scan_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/scan"
)

const (
	ssmARN   = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
	acct     = "123456789012"
	profGood = "arn:aws:iam::" + acct + ":instance-profile/good"
	profA    = "arn:aws:iam::" + acct + ":instance-profile/opener"
	profB    = "arn:aws:iam::" + acct + ":instance-profile/nossm"
	profGone = "arn:aws:iam::" + acct + ":instance-profile/unread"
	roleGood = "arn:aws:iam::" + acct + ":role/good"
	roleA    = "arn:aws:iam::" + acct + ":role/opener"
	roleB    = "arn:aws:iam::" + acct + ":role/nossm"
)

var managedTags = map[string]string{latch.TagManaged: "true"}

func latchTags() map[string]string {
	return map[string]string{latch.TagExpiresAt: "2026-12-05T03:00:00Z", latch.TagGrantID: "g-1"}
}

func tcp(id string, from, to int, cidr string) latch.IngressRule {
	r := latch.IngressRule{ID: latch.RuleID(id), Protocol: "tcp", FromPort: from, ToPort: to}
	if cidr != "" {
		r.CIDR = netip.MustParsePrefix(cidr)
	}
	return r
}

func fromGroup(id string, port int, src latch.GroupID) latch.IngressRule {
	r := tcp(id, port, port, "")
	r.SourceGroup = src
	return r
}

func fromPrefixList(id string, port int, pl string) latch.IngressRule {
	r := tcp(id, port, port, "")
	r.PrefixList = pl
	return r
}

func tagged(r latch.IngressRule, tags map[string]string) latch.IngressRule { r.Tags = tags; return r }

func group(id string, managed bool, rules ...latch.IngressRule) latch.EstateGroup {
	g := latch.EstateGroup{ID: latch.GroupID(id), Name: id + "-name", VPC: "vpc-1"}
	if managed {
		g.Tags = managedTags
	}
	for _, r := range rules {
		r.GroupID = g.ID
		g.Ingress = append(g.Ingress, r)
	}
	return g
}

func instance(id string, groups ...string) latch.EstateInstance {
	in := latch.EstateInstance{ID: latch.InstanceID(id), State: "running", VPC: "vpc-1", PrivateIP: netip.MustParseAddr("10.0.0.9"), InstanceProfile: profGood}
	for _, g := range groups {
		in.Groups = append(in.Groups, latch.GroupID(g))
	}
	return in
}

func goodRole() latch.InstanceRole {
	return latch.InstanceRole{Profile: profGood, Role: roleGood, RoleName: "good", ManagedPolicies: []string{ssmARN},
		Decisions: map[string]string{"ec2:AuthorizeSecurityGroupIngress": "implicitDeny"}}
}

func goodTrail() latch.Trail {
	return latch.Trail{Name: "org", ARN: "arn:aws:cloudtrail:us-east-1:" + acct + ":trail/org", HomeRegion: "us-east-1", MultiRegion: true, ManagementEvents: true}
}

// est is a region with a trail, so that only what a test sets up is found.
func est(groups ...latch.EstateGroup) latch.Estate {
	return latch.Estate{Region: "us-east-1", Groups: groups, Trails: []latch.Trail{goodTrail()}}
}

type pair struct{ check, resource string }

func pairs(r scan.Report) []pair {
	var out []pair
	for _, f := range r.Findings {
		out = append(out, pair{f.Check, f.Resource})
	}
	slices.SortFunc(out, func(a, b pair) int { return strings.Compare(a.check+a.resource, b.check+b.resource) })
	return out
}

// oneOfEach is a fleet with exactly one problem of each kind, and a few
// things that look like problems but are not.
func oneOfEach() []latch.Estate {
	east := latch.Estate{
		Region: "us-east-1",
		Groups: []latch.EstateGroup{
			group("sg-managed", true,
				tagged(tcp("sgr-latch", 22, 22, "203.0.113.7/32"), latchTags()), // latch's own, outside the networks: fine
				tcp("sgr-standing", 22, 22, "10.1.0.0/16"),                      // inside the networks, but standing in a managed group: LATCH003
			),
			group("sg-managed2", true),
			group("sg-world", false,
				tcp("sgr-world", 22, 22, "0.0.0.0/0"),   // LATCH001
				tcp("sgr-https", 443, 443, "0.0.0.0/0"), // not an admin port
			),
			group("sg-wide", false, tcp("sgr-wide", 3389, 3389, "198.51.100.0/24")), // LATCH002
			group("sg-peer", false,
				fromGroup("sgr-fromsg", 22, "sg-bastion"), // LATCH004
				tcp("sgr-inside", 22, 22, "10.2.0.0/16"),  // inside the networks, unmanaged group: fine
			),
		},
		Instances: []latch.EstateInstance{
			func() latch.EstateInstance { // LATCH005
				in := instance("i-web", "sg-managed", "sg-world")
				in.PublicIP = netip.MustParseAddr("198.51.100.80")
				return in
			}(),
			instance("i-private", "sg-managed", "sg-world"), // in the world rule's group, but no public address: no LATCH005
			instance("i-bare", "sg-wide", "sg-peer"),        // LATCH006
			instance("i-many", "sg-managed", "sg-managed2"), // LATCH007
			func() latch.EstateInstance { // LATCH011
				in := instance("i-key", "sg-managed")
				in.KeyName = "ops"
				return in
			}(),
			func() latch.EstateInstance { // gone: judged for nothing
				in := instance("i-gone")
				in.State = "terminated"
				in.KeyName = "ops"
				return in
			}(),
			func() latch.EstateInstance { // LATCH008 (role A)
				in := instance("i-opener", "sg-managed")
				in.InstanceProfile = profA
				return in
			}(),
			func() latch.EstateInstance { // LATCH009 (role B)
				in := instance("i-nossm", "sg-managed")
				in.InstanceProfile = profB
				return in
			}(),
			func() latch.EstateInstance { // its role was not read: not judged
				in := instance("i-unread", "sg-managed")
				in.InstanceProfile = profGone
				return in
			}(),
		},
		LaunchTemplates: []latch.LaunchTemplate{
			{ID: "lt-1", Name: "web", Version: 1, KeyName: "old"},                // neither default nor latest
			{ID: "lt-1", Name: "web", Version: 2, Default: true, KeyName: "ops"}, // LATCH012, once with v3
			{ID: "lt-1", Name: "web", Version: 3, KeyName: "ops"},
			{ID: "lt-2", Name: "clean", Version: 1, Default: true},
		},
		Roles: []latch.InstanceRole{
			goodRole(),
			{Profile: profA, Role: roleA, RoleName: "opener", ManagedPolicies: []string{ssmARN},
				Decisions: map[string]string{"ec2:AuthorizeSecurityGroupIngress": "allowed", "ec2:ModifyInstanceAttribute": "implicitDeny"},
				DecidedBy: map[string][]string{"ec2:AuthorizeSecurityGroupIngress": {"arn:aws:iam::" + acct + ":policy/ec2-all"}}},
			{Profile: profB, Role: roleB, RoleName: "nossm", ManagedPolicies: []string{"arn:aws:iam::aws:policy/ReadOnlyAccess"},
				Decisions: map[string]string{"ec2:AuthorizeSecurityGroupIngress": "explicitDeny"}},
		},
		Trails: []latch.Trail{goodTrail()},
		NotChecked: []latch.NotChecked{{Check: latch.CheckRoles, Region: "us-east-1", Resource: profGone,
			API: "iam:GetInstanceProfile", Reason: "AccessDenied: not authorized"}},
	}
	west := latch.Estate{
		Region: "us-west-2",
		Trails: []latch.Trail{{Name: "data-only", ARN: "arn:aws:cloudtrail:us-west-2:" + acct + ":trail/data-only", HomeRegion: "us-west-2"}}, // LATCH010
	}
	eu := latch.Estate{
		Region: "eu-west-1",
		NotChecked: []latch.NotChecked{{Check: latch.CheckTrails, Region: "eu-west-1", API: "cloudtrail:DescribeTrails",
			Reason: "AccessDeniedException: no"}},
	}
	return []latch.Estate{east, west, eu}
}

var oneOfEachOptions = scan.Options{Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}

func TestOneOfEach(t *testing.T) {
	rep := scan.Judge(oneOfEach(), oneOfEachOptions)
	want := []pair{
		{"LATCH001", "sgr-world"},
		{"LATCH002", "sgr-wide"},
		{"LATCH003", "sgr-standing"},
		{"LATCH004", "sgr-fromsg"},
		{"LATCH005", "i-web"},
		{"LATCH006", "i-bare"},
		{"LATCH007", "i-many"},
		{"LATCH008", roleA},
		{"LATCH009", roleB},
		{"LATCH010", "us-west-2"},
		{"LATCH011", "i-key"},
		{"LATCH012", "lt-1"},
	}
	if got := pairs(rep); !reflect.DeepEqual(got, want) {
		t.Fatalf("findings (check, resource):\n got %v\nwant %v", got, want)
	}
	severity := map[string]scan.Severity{
		"LATCH001": scan.Critical, "LATCH002": scan.High, "LATCH003": scan.High, "LATCH004": scan.Info,
		"LATCH005": scan.Critical, "LATCH006": scan.Medium, "LATCH007": scan.Low, "LATCH008": scan.High,
		"LATCH009": scan.Medium, "LATCH010": scan.Medium, "LATCH011": scan.Medium, "LATCH012": scan.Medium,
	}
	ids := map[string]bool{}
	for i, f := range rep.Findings {
		if f.Severity != severity[f.Check] {
			t.Errorf("%s: severity %v, want %v", f.ID, f.Severity, severity[f.Check])
		}
		if ids[f.ID] {
			t.Errorf("ID %s twice", f.ID)
		}
		ids[f.ID] = true
		if f.Name == "" || f.Title == "" || f.Detail == "" || f.Fix == "" {
			t.Errorf("%s: name %q, title %q, detail %q, fix %q: want all", f.ID, f.Name, f.Title, f.Detail, f.Fix)
		}
		if i > 0 {
			p := rep.Findings[i-1]
			if p.Severity < f.Severity || (p.Severity == f.Severity && p.ID > f.ID) {
				t.Errorf("findings out of order: %s (%v) before %s (%v)", p.ID, p.Severity, f.ID, f.Severity)
			}
		}
	}
	byCheck := map[string]scan.Finding{}
	for _, f := range rep.Findings {
		byCheck[f.Check] = f
	}
	// The world rule's finding names the instance it exposes; the exposed
	// instance's finding names the rule.
	if f := byCheck["LATCH001"]; !slices.Equal(f.Instances, []latch.InstanceID{"i-web"}) || f.Rule == nil || f.Group != "sg-world" || f.ID != "LATCH001/us-east-1/sgr-world" {
		t.Errorf("LATCH001: instances %v, rule %v, group %q, ID %q", f.Instances, f.Rule, f.Group, f.ID)
	}
	if f := byCheck["LATCH001"]; !strings.Contains(f.Detail, "1 instance(s) in the group have no public address") {
		t.Errorf("LATCH001 detail does not count the private instance: %s", f.Detail)
	}
	if f := byCheck["LATCH005"]; !strings.Contains(f.Detail, "sgr-world") || !strings.Contains(f.Detail, "198.51.100.80") {
		t.Errorf("LATCH005 detail does not name the rule and address: %s", f.Detail)
	}
	if f := byCheck["LATCH008"]; !strings.Contains(f.Detail, "ec2:AuthorizeSecurityGroupIngress") || !strings.Contains(f.Detail, "policy/ec2-all") ||
		!slices.Equal(f.Instances, []latch.InstanceID{"i-opener"}) || strings.Contains(f.Detail, "ModifyInstanceAttribute") || f.ID != "LATCH008/"+roleA {
		t.Errorf("LATCH008: ID %s, instances %v, detail %s", f.ID, f.Instances, f.Detail)
	}
	if f := byCheck["LATCH012"]; !strings.Contains(f.Detail, "version 2 (default)") || !strings.Contains(f.Detail, "version 3 (latest)") {
		t.Errorf("LATCH012 detail: %s", f.Detail)
	}
	if f := byCheck["LATCH010"]; f.ID != "LATCH010/us-west-2" {
		t.Errorf("LATCH010 ID %q", f.ID)
	}
	if !slices.Equal(rep.Regions, []string{"eu-west-1", "us-east-1", "us-west-2"}) {
		t.Errorf("regions %v", rep.Regions)
	}
	if len(rep.NotChecked) != 2 {
		t.Errorf("not checked: %v, want the two given", rep.NotChecked)
	}
	want2 := scan.Counts{Groups: 5, Rules: 7, Instances: 8, Templates: 2, Roles: 3, Trails: 2}
	if rep.Scanned != want2 {
		t.Errorf("scanned %+v, want %+v", rep.Scanned, want2)
	}
}

func TestCleanEstateHasNoFindings(t *testing.T) {
	in := instance("i-1", "sg-managed")
	e := latch.Estate{
		Region:          "us-east-1",
		Groups:          []latch.EstateGroup{group("sg-managed", true, tagged(tcp("sgr-1", 22, 22, "203.0.113.7/32"), latchTags()))},
		Instances:       []latch.EstateInstance{in},
		LaunchTemplates: []latch.LaunchTemplate{{ID: "lt-1", Version: 1, Default: true}},
		Roles:           []latch.InstanceRole{goodRole()},
		Trails:          []latch.Trail{goodTrail()},
	}
	rep := scan.Judge([]latch.Estate{e}, scan.Options{})
	if len(rep.Findings) != 0 {
		t.Fatalf("clean estate: %v", pairs(rep))
	}
	if _, ok := rep.Worst(); ok || rep.Reaches(scan.Info) || rep.Fails(scan.FailOn{}) {
		t.Error("a clean report reaches a severity")
	}
}

func TestStandingWorldRuleInManagedGroupIsOneFinding(t *testing.T) {
	for _, tc := range []struct {
		cidr  string
		check string
		sev   scan.Severity
	}{
		{"0.0.0.0/0", "LATCH001", scan.Critical},
		{"::/0", "LATCH001", scan.Critical},
		{"198.51.100.0/24", "LATCH002", scan.High},
		{"10.3.0.0/16", "LATCH003", scan.High},
	} {
		e := est(group("sg-m", true, tcp("sgr-1", 22, 22, tc.cidr)))
		rep := scan.Judge([]latch.Estate{e}, oneOfEachOptions)
		if len(rep.Findings) != 1 || rep.Findings[0].Check != tc.check || rep.Findings[0].Severity != tc.sev {
			t.Errorf("%s standing in a managed group: %v, want one %s (%v)", tc.cidr, pairs(rep), tc.check, tc.sev)
			continue
		}
		if f := rep.Findings[0]; tc.check != "LATCH003" && !strings.Contains(f.Detail, "latch:managed") {
			t.Errorf("%s: the one finding does not say the rule stands in a managed group: %s", tc.cidr, f.Detail)
		}
	}
}

func TestGroupAndPrefixListSourcesAreWhatTheyAre(t *testing.T) {
	e := est(group("sg-a", false, fromGroup("sgr-sg", 22, "sg-bastion"), fromPrefixList("sgr-pl", 3389, "pl-0123")))
	rep := scan.Judge([]latch.Estate{e}, scan.Options{}) // no networks: any CIDR would be wide
	want := []pair{{"LATCH004", "sgr-pl"}, {"LATCH004", "sgr-sg"}}
	if got := pairs(rep); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, f := range rep.Findings {
		wantSev, src := scan.Info, "sg-bastion"
		if f.Resource == "sgr-pl" {
			wantSev, src = scan.Low, "pl-0123"
		}
		if f.Severity != wantSev || !strings.Contains(f.Title, src) {
			t.Errorf("%s: severity %v, title %q; want %v naming %s", f.ID, f.Severity, f.Title, wantSev, src)
		}
	}
	// A group admitting its own members (as every default group does)
	// gives nothing, managed or not: nobody outside gains a way in, and
	// removing it (adopt would) cuts a cluster's own traffic.
	for _, managed := range []bool{false, true} {
		self := est(group("sg-default", managed, latch.IngressRule{ID: "sgr-self", Protocol: "-1", FromPort: -1, ToPort: -1, SourceGroup: "sg-default"}))
		if got := pairs(scan.Judge([]latch.Estate{self}, scan.Options{})); len(got) != 0 {
			t.Errorf("self-referencing group (managed %v): %v", managed, got)
		}
	}
	// In a managed group, a standing group-sourced rule is still standing: LATCH003, once.
	e.Groups[0].Tags = managedTags
	rep = scan.Judge([]latch.Estate{e}, scan.Options{})
	if got, want := pairs(rep), []pair{{"LATCH003", "sgr-pl"}, {"LATCH003", "sgr-sg"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("managed: got %v, want %v", got, want)
	}
	if !strings.Contains(rep.Findings[0].Detail+rep.Findings[1].Detail, "sg-bastion") {
		t.Error("LATCH003 does not name the source group")
	}
}

func TestPortsAndProtocols(t *testing.T) {
	all := latch.IngressRule{ID: "sgr-all", Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: netip.MustParsePrefix("0.0.0.0/0")}
	udp := tcp("sgr-udp", 22, 22, "0.0.0.0/0")
	udp.Protocol = "udp"
	num := tcp("sgr-six", 3389, 3389, "0.0.0.0/0")
	num.Protocol = "6"
	icmp := latch.IngressRule{ID: "sgr-icmp", Protocol: "icmp", FromPort: 8, ToPort: 22, CIDR: netip.MustParsePrefix("0.0.0.0/0")}
	for _, tc := range []struct {
		rule latch.IngressRule
		opt  scan.Options
		want bool
	}{
		{tcp("sgr-range", 20, 25, "0.0.0.0/0"), scan.Options{}, true},
		{tcp("sgr-edge", 22, 22, "0.0.0.0/0"), scan.Options{}, true},
		{all, scan.Options{}, true},
		{udp, scan.Options{}, false},
		{icmp, scan.Options{}, false},
		{num, scan.Options{}, true},
		{tcp("sgr-between", 23, 3388, "0.0.0.0/0"), scan.Options{}, false},
		{tcp("sgr-winrm", 5986, 5986, "::/0"), scan.Options{}, true},
		{tcp("sgr-policy", 8022, 8022, "0.0.0.0/0"), scan.Options{}, false},
		{tcp("sgr-policy", 8022, 8022, "0.0.0.0/0"), scan.Options{AdminPorts: append(latch.DefaultAdminPorts(), 8022)}, true},
	} {
		e := est(group("sg-a", false, tc.rule))
		rep := scan.Judge([]latch.Estate{e}, tc.opt)
		got := len(rep.Findings) == 1 && rep.Findings[0].Check == "LATCH001"
		if got != tc.want || len(rep.Findings) > 1 {
			t.Errorf("%s %d-%d (ports %v): findings %v, want LATCH001: %v", tc.rule.Protocol, tc.rule.FromPort, tc.rule.ToPort, tc.opt.AdminPorts, pairs(rep), tc.want)
		}
	}
	// One rule covering two admin ports is one finding naming both.
	e := est(group("sg-a", false, tcp("sgr-w", 5985, 5986, "0.0.0.0/0")))
	rep := scan.Judge([]latch.Estate{e}, scan.Options{})
	if len(rep.Findings) != 1 || !strings.Contains(rep.Findings[0].Title, "5985, 5986") {
		t.Errorf("5985-5986: %v", rep.Findings)
	}
}

func TestNetworks(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	for _, tc := range []struct {
		cidr string
		nets []netip.Prefix
		want []string
	}{
		{"10.1.2.0/24", nets, nil},
		{"10.0.0.0/8", nets, nil},
		{"10.0.0.0/7", nets, []string{"LATCH002"}}, // wider than the network
		{"11.0.0.1/32", nets, []string{"LATCH002"}},
		{"2001:db8:1::/48", nets, nil},
		{"2001:db9::/48", nets, []string{"LATCH002"}},
		{"10.1.2.0/24", nil, []string{"LATCH002"}}, // no networks: any CIDR is wide
		{"::/0", nets, []string{"LATCH001"}},
	} {
		e := est(group("sg-a", false, tcp("sgr-1", 22, 22, tc.cidr)))
		rep := scan.Judge([]latch.Estate{e}, scan.Options{Networks: tc.nets})
		var got []string
		for _, f := range rep.Findings {
			got = append(got, f.Check)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s with networks %v: %v, want %v", tc.cidr, tc.nets, got, tc.want)
		}
	}
	// latch's own rules are never wide: the policy let them in.
	e := est(group("sg-a", true, tagged(tcp("sgr-1", 22, 22, "198.51.100.7/32"), latchTags())))
	if rep := scan.Judge([]latch.Estate{e}, scan.Options{}); len(rep.Findings) != 0 {
		t.Errorf("latch's rule: %v", pairs(rep))
	}
	// The tag proves nothing by itself: anyone who may tag a rule can add
	// it. In a group latch does not manage, or with an unreadable expiry,
	// the rule is judged as anyone's.
	forged := []latch.EstateGroup{
		group("sg-a", false, tagged(tcp("sgr-1", 22, 22, "0.0.0.0/1"), latchTags())),
		group("sg-a", true, tagged(tcp("sgr-1", 22, 22, "198.51.100.0/24"), map[string]string{latch.TagExpiresAt: "forever"})),
	}
	for _, g := range forged {
		if rep := scan.Judge([]latch.Estate{est(g)}, scan.Options{}); len(rep.Findings) != 1 || rep.Findings[0].Check != "LATCH002" {
			t.Errorf("a latch-tagged rule in %s (managed %v): %v, want LATCH002", g.ID, g.Managed(), pairs(rep))
		}
	}
}

func TestManagedGroupCount(t *testing.T) {
	e := est(group("sg-m1", true), group("sg-m2", true), group("sg-m3", true))
	e.Instances = []latch.EstateInstance{instance("i-two", "sg-m1", "sg-m2"), instance("i-three", "sg-m1", "sg-m2", "sg-m3")}
	e.Instances[1].State = "stopped"
	if got := pairs(scan.Judge([]latch.Estate{e}, scan.Options{})); !reflect.DeepEqual(got, []pair{{"LATCH007", "i-three"}, {"LATCH007", "i-two"}}) {
		t.Errorf("max 1: %v", got)
	}
	if got := pairs(scan.Judge([]latch.Estate{e}, scan.Options{MaxManagedGroups: 2})); !reflect.DeepEqual(got, []pair{{"LATCH007", "i-three"}}) {
		t.Errorf("max 2: %v", got)
	}
	e.Instances[1].State = "shutting-down"
	if got := pairs(scan.Judge([]latch.Estate{e}, scan.Options{MaxManagedGroups: 2})); len(got) != 0 {
		t.Errorf("shutting-down instance judged: %v", got)
	}
}

func TestRoleSharedByProfilesAndRegionsIsOneFinding(t *testing.T) {
	bad := latch.InstanceRole{Profile: profA, Role: roleA, RoleName: "opener",
		Decisions: map[string]string{"ec2:ModifySecurityGroupRules": "allowed"}}
	other := bad
	other.Profile = profB
	mk := func(region string, in ...latch.EstateInstance) latch.Estate {
		return latch.Estate{Region: region, Instances: in, Roles: []latch.InstanceRole{bad, other}, Trails: []latch.Trail{goodTrail()},
			NotChecked: []latch.NotChecked{{Check: latch.CheckGroups, Region: region, API: "ec2:DescribeSecurityGroups", Reason: "x"}}}
	}
	a := instance("i-a")
	a.InstanceProfile = profA
	b := instance("i-b")
	b.InstanceProfile = profB
	rep := scan.Judge([]latch.Estate{mk("us-east-1", a), mk("eu-west-1", b)}, scan.Options{})
	if got := pairs(rep); !reflect.DeepEqual(got, []pair{{"LATCH008", roleA}, {"LATCH009", roleA}}) {
		t.Fatalf("got %v", got)
	}
	for _, f := range rep.Findings {
		if !slices.Equal(f.Instances, []latch.InstanceID{"i-a", "i-b"}) || f.Region != "" {
			t.Errorf("%s: instances %v, region %q; want both instances, no region", f.ID, f.Instances, f.Region)
		}
	}
}

func TestRoleReadsRefused(t *testing.T) {
	// A role whose attached policies could not be read is not judged for
	// SSM; one whose simulation was refused still is.
	for _, tc := range []struct {
		api  string
		want []pair
	}{
		{"iam:ListAttachedRolePolicies", nil},
		{"iam:GetRole", nil},
		{"iam:SimulatePrincipalPolicy", []pair{{"LATCH009", roleB}}},
	} {
		e := est()
		in := instance("i-b")
		in.InstanceProfile = profB
		e.Instances = []latch.EstateInstance{in}
		e.Roles = []latch.InstanceRole{{Profile: profB, Role: roleB}}
		e.NotChecked = []latch.NotChecked{{Check: latch.CheckRoles, Region: "us-east-1", Resource: roleB, API: tc.api, Reason: "AccessDenied"}}
		e.NotChecked = append(e.NotChecked, latch.NotChecked{Check: latch.CheckGroups, Region: "us-east-1", API: "ec2:DescribeSecurityGroups", Reason: "x"})
		if got := pairs(scan.Judge([]latch.Estate{e}, scan.Options{})); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s refused: %v, want %v", tc.api, got, tc.want)
		}
	}
}

// shuffled returns a deep copy of es with every list in a random order.
func shuffled(es []latch.Estate, r *rand.Rand) []latch.Estate {
	out := make([]latch.Estate, len(es))
	for i, e := range es {
		e.Groups = slices.Clone(e.Groups)
		for k := range e.Groups {
			e.Groups[k].Ingress = slices.Clone(e.Groups[k].Ingress)
			r.Shuffle(len(e.Groups[k].Ingress), func(a, b int) {
				e.Groups[k].Ingress[a], e.Groups[k].Ingress[b] = e.Groups[k].Ingress[b], e.Groups[k].Ingress[a]
			})
		}
		r.Shuffle(len(e.Groups), func(a, b int) { e.Groups[a], e.Groups[b] = e.Groups[b], e.Groups[a] })
		e.Instances = slices.Clone(e.Instances)
		for k := range e.Instances {
			e.Instances[k].Groups = slices.Clone(e.Instances[k].Groups)
			g := e.Instances[k].Groups
			r.Shuffle(len(g), func(a, b int) { g[a], g[b] = g[b], g[a] })
		}
		r.Shuffle(len(e.Instances), func(a, b int) { e.Instances[a], e.Instances[b] = e.Instances[b], e.Instances[a] })
		e.LaunchTemplates = slices.Clone(e.LaunchTemplates)
		r.Shuffle(len(e.LaunchTemplates), func(a, b int) {
			e.LaunchTemplates[a], e.LaunchTemplates[b] = e.LaunchTemplates[b], e.LaunchTemplates[a]
		})
		e.Roles = slices.Clone(e.Roles)
		r.Shuffle(len(e.Roles), func(a, b int) { e.Roles[a], e.Roles[b] = e.Roles[b], e.Roles[a] })
		out[i] = e
	}
	r.Shuffle(len(out), func(a, b int) { out[a], out[b] = out[b], out[a] })
	return out
}

func TestStableWhenShuffled(t *testing.T) {
	base := scan.Judge(oneOfEach(), oneOfEachOptions)
	for seed := range uint64(50) {
		got := scan.Judge(shuffled(oneOfEach(), rand.New(rand.NewPCG(seed, 1))), oneOfEachOptions)
		if !reflect.DeepEqual(got, base) {
			for i := range min(len(got.Findings), len(base.Findings)) {
				if !reflect.DeepEqual(got.Findings[i], base.Findings[i]) {
					t.Fatalf("seed %d: finding %d differs:\n got %+v\nwant %+v", seed, i, got.Findings[i], base.Findings[i])
				}
			}
			t.Fatalf("seed %d: report differs:\n got %+v\nwant %+v", seed, got, base)
		}
	}
	// An estate listing the same rule twice still gives one finding.
	es := oneOfEach()
	es[0].Groups = append(es[0].Groups, es[0].Groups...)
	es[0].Instances = append(es[0].Instances, es[0].Instances...)
	for i := range es[0].Instances {
		es[0].Instances[i].Groups = append(es[0].Instances[i].Groups, es[0].Instances[i].Groups...)
	}
	if got := scan.Judge(es, oneOfEachOptions); !reflect.DeepEqual(got.Findings, base.Findings) {
		t.Errorf("duplicated estate:\n got %+v\nwant %+v", got.Findings, base.Findings)
	}
}

func TestReaches(t *testing.T) {
	rep := scan.Report{Findings: []scan.Finding{{ID: "a", Severity: scan.Low}, {ID: "b", Severity: scan.Medium}}}
	for _, s := range scan.Severities() {
		want := s <= scan.Medium
		if rep.Reaches(s) != want {
			t.Errorf("worst medium: Reaches(%v) = %v", s, !want)
		}
		if rep.Fails(scan.FailAt(s)) != want {
			t.Errorf("worst medium: Fails(%v) = %v", s, !want)
		}
	}
	if w, ok := rep.Worst(); !ok || w != scan.Medium {
		t.Errorf("Worst = %v, %v", w, ok)
	}
	if rep.Fails(scan.FailNever) || !rep.Fails(scan.FailOn{}) || rep.Fails(scan.DefaultFailOn) {
		t.Error("FailNever fails, the zero FailOn does not, or the default (high) fails on medium")
	}
	full := scan.Judge(oneOfEach(), oneOfEachOptions)
	for _, s := range scan.Severities() {
		if !full.Reaches(s) {
			t.Errorf("one of each: Reaches(%v) false", s)
		}
	}
	if !full.Fails(scan.DefaultFailOn) {
		t.Error("one of each does not fail at the default threshold")
	}
}

func TestParseSeverityAndFailOn(t *testing.T) {
	for _, s := range scan.Severities() {
		got, err := scan.ParseSeverity(strings.ToUpper(s.String()))
		if err != nil || got != s {
			t.Errorf("ParseSeverity(%q) = %v, %v", s, got, err)
		}
		var f scan.FailOn
		if err := f.Set(s.String()); err != nil || f.String() != s.String() {
			t.Errorf("FailOn.Set(%q) = %v, %v", s, f, err)
		}
	}
	if _, err := scan.ParseSeverity("severe"); err == nil || !strings.Contains(err.Error(), "severity") || !strings.Contains(err.Error(), "critical") {
		t.Errorf("ParseSeverity(severe) error %v: want one naming the field and the allowed values", err)
	}
	for _, s := range []string{"none", "never", "NONE"} {
		if f, err := scan.ParseFailOn(s); err != nil || f != scan.FailNever {
			t.Errorf("ParseFailOn(%q) = %v, %v", s, f, err)
		}
	}
	if _, err := scan.ParseFailOn("always"); err == nil || !strings.Contains(err.Error(), "fail-on") || !strings.Contains(err.Error(), "none") {
		t.Errorf("ParseFailOn(always) error %v", err)
	}
	if err := (scan.Options{AdminPorts: []int{70000}}).Validate(); err == nil || !strings.Contains(err.Error(), "admin_ports") {
		t.Errorf("Validate: %v", err)
	}
}

func TestNotCheckedMakesNoFinding(t *testing.T) {
	refuse := func(e latch.Estate, c latch.Check) latch.Estate {
		e.NotChecked = append(slices.Clone(e.NotChecked), latch.NotChecked{Check: c, Region: e.Region, API: "x:Y", Reason: "AccessDenied"})
		return e
	}
	for _, tc := range []struct {
		check latch.Check
		gone  []string // checks that must report nothing
	}{
		{latch.CheckGroups, []string{"LATCH001", "LATCH002", "LATCH003", "LATCH004", "LATCH005", "LATCH006", "LATCH007"}},
		{latch.CheckInstances, []string{"LATCH005", "LATCH006", "LATCH007", "LATCH011"}},
		{latch.CheckLaunchTemplates, []string{"LATCH012"}},
		{latch.CheckRoles, []string{"LATCH008", "LATCH009"}},
	} {
		es := oneOfEach()
		es[0] = refuse(es[0], tc.check)
		rep := scan.Judge(es, oneOfEachOptions)
		for _, f := range rep.Findings {
			if slices.Contains(tc.gone, f.Check) && f.Region != "us-west-2" {
				t.Errorf("%s refused: finding %s", tc.check, f.ID)
			}
		}
		if !slices.ContainsFunc(rep.NotChecked, func(n latch.NotChecked) bool { return n.Check == tc.check && n.Region == "us-east-1" }) {
			t.Errorf("%s refused: not carried into NotChecked: %v", tc.check, rep.NotChecked)
		}
		// The rest of the scan goes on.
		if !slices.ContainsFunc(rep.Findings, func(f scan.Finding) bool { return f.Check == "LATCH010" }) {
			t.Errorf("%s refused: the other checks stopped too", tc.check)
		}
	}
	// Trails refused in a region with no trail: no LATCH010 there (eu-west-1 in the fixture).
	rep := scan.Judge(oneOfEach(), oneOfEachOptions)
	for _, f := range rep.Findings {
		if f.Region == "eu-west-1" {
			t.Errorf("eu-west-1, trails not checked: %s", f.ID)
		}
	}
	es := oneOfEach()
	es[1] = refuse(es[1], latch.CheckTrails)
	for _, f := range scan.Judge(es, oneOfEachOptions).Findings {
		if f.Check == "LATCH010" {
			t.Errorf("trails refused: %s", f.ID)
		}
	}
}

// TestNeedsMatchesJudgement checks each check's Needs against what Judge
// does: refusing a read silences exactly the checks that need it.
func TestNeedsMatchesJudgement(t *testing.T) {
	for _, refused := range []latch.Check{latch.CheckGroups, latch.CheckInstances, latch.CheckLaunchTemplates, latch.CheckRoles, latch.CheckTrails, latch.CheckSSM} {
		es := oneOfEach()
		for i := range es {
			es[i].NotChecked = append(es[i].NotChecked, latch.NotChecked{Check: refused, Region: es[i].Region, API: "x:Y", Reason: "AccessDenied"})
		}
		rep := scan.Judge(es, oneOfEachOptions)
		for _, c := range scan.Checks() {
			found := slices.ContainsFunc(rep.Findings, func(f scan.Finding) bool { return f.Check == c.Code })
			if want := !slices.Contains(c.Needs, refused); found != want {
				t.Errorf("%s refused: %s found %v, want %v (needs %v)", refused, c.Code, found, want, c.Needs)
			}
		}
	}
}

func TestKeyNameInIDIsEscaped(t *testing.T) {
	e := est()
	e.LaunchTemplates = []latch.LaunchTemplate{{ID: "lt-9", Version: 1, Default: true, KeyName: "ops key/2"}}
	rep := scan.Judge([]latch.Estate{e}, scan.Options{})
	if len(rep.Findings) != 1 || rep.Findings[0].ID != "LATCH012/us-east-1/lt-9/ops%20key%2F2" {
		t.Fatalf("findings %v", rep.Findings)
	}
	b, err := scan.ReadBaseline(strings.NewReader(rep.Findings[0].ID + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, n := rep.Without(b); n != 1 {
		t.Errorf("baseline of the escaped ID accepted %d", n)
	}
}

func ExampleJudge() {
	e := latch.Estate{Region: "us-east-1", Groups: []latch.EstateGroup{{
		ID: "sg-0123456789abcdef0", Ingress: []latch.IngressRule{{
			ID: "sgr-0123456789abcdef0", Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix("0.0.0.0/0"),
		}},
	}}}
	e.NotChecked = []latch.NotChecked{{Check: latch.CheckTrails, Region: "us-east-1", API: "cloudtrail:DescribeTrails", Reason: "AccessDeniedException"}}
	for _, f := range scan.Judge([]latch.Estate{e}, scan.Options{}).Findings {
		fmt.Println(f.Severity, f.ID)
	}
	// Output: critical LATCH001/us-east-1/sgr-0123456789abcdef0
}

// An allow under a condition the simulation could not test (a tag on the
// instance's own group, say) holds at run time: LATCH008 all the same.
func TestConditionalAllowIsReported(t *testing.T) {
	r := latch.InstanceRole{Profile: profA, Role: roleA, RoleName: "own-group", ManagedPolicies: []string{"arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"},
		Decisions: map[string]string{"ec2:AuthorizeSecurityGroupIngress": latch.DecisionConditional},
		DecidedBy: map[string][]string{"ec2:AuthorizeSecurityGroupIngress": {"a condition on ec2:ResourceTag/team"}}}
	in := instance("i-a")
	in.InstanceProfile = profA
	e := latch.Estate{Region: "us-east-1", Instances: []latch.EstateInstance{in}, Roles: []latch.InstanceRole{r}, Trails: []latch.Trail{goodTrail()},
		NotChecked: []latch.NotChecked{{Check: latch.CheckGroups, Region: "us-east-1", API: "ec2:DescribeSecurityGroups", Reason: "x"}}}
	rep := scan.Judge([]latch.Estate{e}, scan.Options{})
	if got := pairs(rep); !reflect.DeepEqual(got, []pair{{"LATCH008", roleA}}) {
		t.Fatalf("got %v", got)
	}
	if d := rep.Findings[0].Detail; !strings.Contains(d, "ec2:ResourceTag/team") {
		t.Errorf("detail %q does not name the condition", d)
	}
}
