package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
)

// adoptFleet is a bastion with SSH open to the world, tagged for the ops
// rule of scanPolicy, beside another instance that is not adopted.
type adoptFleet struct {
	*scanWorld
	policy   string
	legacy   latch.GroupID // the bastion's group with the standing SSH rule
	rdp      latch.GroupID // and with RDP open to the world
	base     latch.GroupID // a group it keeps
	bastion  latch.InstanceID
	ruleDesc string
}

func newAdoptFleet(t *testing.T, region string, opsTag bool) *adoptFleet {
	t.Helper()
	s := newScanWorld(t, region)
	f := &adoptFleet{scanWorld: s, policy: filepath.Join(s.dir, "policy.yaml"), ruleDesc: "SSH from anywhere (temporary)"}
	if err := os.WriteFile(f.policy, []byte(scanPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	f.base = s.group(t, nil)
	f.legacy = s.group(t, nil, tcp(22, "0.0.0.0/0", f.ruleDesc))
	f.rdp = s.group(t, nil, tcp(3389, "::/0", "rdp"))
	tags := map[string]string{}
	if opsTag {
		tags["team"] = "ops"
	}
	// A tag on the rule, which undo must put back too.
	if _, err := s.ec2.CreateTags(context.Background(), &ec2.CreateTagsInput{Resources: []string{ruleOf(t, s, f.legacy)},
		Tags: []types.Tag{{Key: aws.String("ticket"), Value: aws.String("OPS-7")}}}); err != nil {
		t.Fatal(err)
	}
	f.bastion = s.instance(t, launch{name: "bastion", groups: []latch.GroupID{f.base, f.legacy, f.rdp}, public: true, tags: tags})
	return f
}

// state is what adopt may change, read through the SDK: every inbound
// rule of the region (protocol, ports, source, description) and every
// live instance's groups, and the groups' IDs.
func (f *adoptFleet) state(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	var lines []string
	rules, err := f.ec2.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{MaxResults: aws.Int32(1000)})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules.SecurityGroupRules {
		if aws.ToBool(r.IsEgress) {
			continue
		}
		lines = append(lines, "rule "+aws.ToString(r.GroupId)+" "+aws.ToString(r.IpProtocol)+" "+
			strings.Join([]string{itoa(aws.ToInt32(r.FromPort)), itoa(aws.ToInt32(r.ToPort)), aws.ToString(r.CidrIpv4), aws.ToString(r.CidrIpv6)}, " ")+
			" "+aws.ToString(r.Description)+" "+fmt.Sprint(tagsOf(r.Tags)))
	}
	groups, err := f.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.SecurityGroups {
		lines = append(lines, "group "+aws.ToString(g.GroupId))
	}
	ins, err := f.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"running"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range ins.Reservations {
		for _, in := range res.Instances {
			var gs []string
			for _, g := range in.SecurityGroups {
				gs = append(gs, aws.ToString(g.GroupId))
			}
			lines = append(lines, "instance "+aws.ToString(in.InstanceId)+" "+strings.Join(gs, ","))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func tagsOf(tags []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// auditActions lists the actions of the audit log, oldest first.
func auditActions(t *testing.T, w *world) []string {
	t.Helper()
	var out []string
	for _, e := range decodeLines[latchhttp.AuditEntryJSON](t, w.latch(t, "audit", "ls", "--json").stdout) {
		out = append(out, string(e.Action))
	}
	return out
}

// The dry run reads and prints, and changes nothing: AWS's state is the
// same after it, no mutating call reached the simulator, and nothing is
// audited.
func TestAdoptDryRunChangesNothing(t *testing.T) {
	f := newAdoptFleet(t, "ca-central-1", true)
	mutating := []string{"CreateSecurityGroup", "DeleteSecurityGroup", "ModifyInstanceAttribute", "ModifyNetworkInterfaceAttribute",
		"AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress", "CreateTags", "DeleteTags", "ModifySecurityGroupRules"}
	sim := f.env.Sim
	calls := func() []int {
		if sim == nil {
			return nil
		}
		var n []int
		for _, a := range mutating {
			n = append(n, sim.Calls(a))
		}
		return n
	}
	before, callsBefore := f.state(t), calls()
	r := f.latch(t, "adopt", "bastion", "--policy", f.policy)
	if r.code != 0 || !strings.Contains(r.stdout, "Dry run: nothing was changed") || !strings.Contains(r.stdout, "4 change(s)") ||
		strings.Count(r.stdout, "remove ") != 2 {
		t.Fatalf("dry run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if after := f.state(t); after != before {
		t.Errorf("the dry run changed AWS:\nbefore\n%s\nafter\n%s", before, after)
	}
	if got := calls(); !slices.Equal(got, callsBefore) {
		t.Errorf("mutating calls %v before the dry run, %v after (%v)", callsBefore, got, mutating)
	}
	if acts := auditActions(t, f.world); len(acts) != 0 {
		t.Errorf("the dry run audited %v", acts)
	}
	j := f.latch(t, "adopt", "bastion", "--policy", f.policy, "--json")
	if j.code != 0 || !strings.Contains(j.stdout, `"dry_run":true`) || !strings.Contains(j.stdout, `"kind":"remove-rule"`) {
		t.Errorf("dry run --json: exit %d %s", j.code, j.stdout)
	}
}

// --apply moves the bastion to a managed group and removes its standing
// rules, audited; a scan finds nothing about it any more; --undo restores
// exactly what was there.
func TestAdoptApplyThenUndoRestoresExactly(t *testing.T) {
	f := newAdoptFleet(t, "ap-southeast-4", true)
	before := f.state(t)
	r := f.latch(t, "adopt", "bastion", "--policy", f.policy, "--apply")
	if r.code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	planID := planIDIn(r.stdout)
	if !strings.HasPrefix(planID, "adopt-") || !strings.Contains(r.stdout, "latch adopt --undo "+planID) {
		t.Fatalf("apply printed no plan ID:\n%s", r.stdout)
	}
	if got := append(f.env.Rules(t, f.legacy), f.env.Rules(t, f.rdp)...); len(got) != 0 {
		t.Errorf("the standing rules are still there: %+v", got)
	}
	// Intent before effect: the plan is the first entry, then each change.
	if acts := auditActions(t, f.world); !slices.Equal(acts, []string{"adopt-planned", "adopt-changed", "adopt-changed", "adopt-changed", "adopt-changed"}) {
		t.Errorf("audit log %v", acts)
	}
	scan := parseScan(t, f.latch(t, "scan", "--policy", f.policy, "--json").stdout)
	for _, fd := range scan.Findings {
		if slices.Contains(fd.Instances, string(f.bastion)) || fd.Resource == string(f.bastion) {
			switch fd.Check {
			case "LATCH001", "LATCH002", "LATCH003", "LATCH005", "LATCH006":
				t.Errorf("after adopt the scan still finds %s %s", fd.Check, fd.Resource)
			}
		}
	}
	if r := f.latch(t, "adopt", "bastion", "--policy", f.policy); r.code != 0 || !strings.Contains(r.stdout, "0 change(s)") {
		t.Errorf("a second plan after apply: exit %d\n%s", r.code, r.stdout)
	}

	u := f.latch(t, "adopt", "--undo", planID)
	if u.code != 0 || !strings.Contains(u.stdout, "Undid plan "+planID) {
		t.Fatalf("undo: exit %d\n%s%s", u.code, u.stdout, u.stderr)
	}
	// The same rules (protocol, ports, source, description) in the same
	// groups, the same groups on each instance, and adopt's group gone.
	if after := f.state(t); after != before {
		t.Errorf("undo did not restore what was there:\nbefore\n%s\nafter\n%s", before, after)
	}
	if r := f.latch(t, "adopt", "--undo", planID); r.code != exitRuntime || !strings.Contains(r.stderr, "undone") {
		t.Errorf("a second undo: exit %d %s", r.code, r.stderr)
	}
}

// adopt never locks a team out: without Session Manager online and with
// no policy rule covering it, the bastion's last way in is not removed
// unless --force, and the refusal says which instance and why.
func TestAdoptRefusesToLockATeamOut(t *testing.T) {
	f := newAdoptFleet(t, "me-central-1", false) // not tagged team=ops: no rule covers it
	before := f.state(t)
	r := f.latch(t, "adopt", string(f.bastion), "--policy", f.policy, "--apply")
	if r.code != exitRuntime || !strings.Contains(r.stdout, "lock-out") || !strings.Contains(r.stdout, string(f.bastion)) ||
		!strings.Contains(r.stderr, "nothing was changed") {
		t.Fatalf("lock-out: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if after := f.state(t); after != before {
		t.Errorf("a refused plan changed AWS:\n%s\n---\n%s", before, after)
	}
	if acts := auditActions(t, f.world); len(acts) != 0 {
		t.Errorf("a refused plan audited %v", acts)
	}
	r = f.latch(t, "adopt", string(f.bastion), "--policy", f.policy, "--apply", "--force")
	if r.code != 0 || len(f.env.Rules(t, f.legacy)) != 0 {
		t.Errorf("--force: exit %d, rules left %v\n%s%s", r.code, f.env.Rules(t, f.legacy), r.stdout, r.stderr)
	}
}

func TestAdoptRefusesBadInput(t *testing.T) {
	f := newAdoptFleet(t, "il-central-1", true)
	for _, tt := range []struct {
		args []string
		code int
		says string
	}{
		{nil, exitUsage, "name the instances"},
		{[]string{"--all"}, exitUsage, "--all needs --vpc"},
		{[]string{"bastion", "--all", "--vpc", "vpc-1"}, exitUsage, "not both"},
		{[]string{"bastion", "--vpc", "vpc-1"}, exitUsage, "--vpc goes with --all"},
		{[]string{"nosuch"}, exitUsage, `"nosuch": no instance`},
		{[]string{"--all", "--vpc", "vpc-0123456789abcdef0"}, exitUsage, "has no instances"},
		{[]string{"--undo", "adopt-20261205-00000000", "bastion"}, exitUsage, "--undo takes only"},
		{[]string{"--undo", "adopt-20261205-00000000"}, exitRuntime, "adopt-20261205-00000000"},
	} {
		r := f.latch(t, append([]string{"adopt"}, tt.args...)...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.says) {
			t.Errorf("adopt %v: exit %d, stderr %q; want %d saying %q", tt.args, r.code, r.stderr, tt.code, tt.says)
		}
	}
}
