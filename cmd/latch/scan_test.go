package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/awstest"
)

// scanPolicy expects access from the office network only, over SSH.
const scanPolicy = `version: 1
rules:
  - name: ops
    targets: {tags: {team: ops}}
    who: {aws_principals: ["arn:aws:iam::123456789012:user/AKIDLATCHTEST"]}
    ports: [tcp/22]
    networks: [10.0.0.0/8]
    duration: {default: 30m, max: 1h}
    approval: auto
`

const (
	ssmCore    = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
	ec2FullPol = "arn:aws:iam::aws:policy/AmazonEC2FullAccess"
)

// A fleet with one of each mistake: each appears once, with its severity,
// and nothing else does.
func TestScanFindsEachMistakeOnce(t *testing.T) {
	s := newScanWorld(t, "eu-south-2")
	pf := filepath.Join(s.dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(scanPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	okProfile, _ := s.role(t, []string{ssmCore}, nil)
	badProfile, badRole := s.role(t, []string{ssmCore}, map[string]string{"self-service": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:Authorize*","Resource":"*"}]}`})
	noSSMProfile, noSSMRole := s.role(t, nil, nil)

	managed := map[string]string{latch.TagManaged: "true"}
	world := s.group(t, nil, tcp(22, "0.0.0.0/0", "ssh from anywhere"))
	wide := s.group(t, nil, tcp(3389, "198.51.100.0/24", "rdp from a partner"))
	standing := s.group(t, managed, tcp(22, "10.1.2.3/32", "the old jump host"))
	clean := s.group(t, managed)
	clean2 := s.group(t, managed)
	peer := s.group(t, nil, types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
		UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(string(clean))}}})

	exposed := s.instance(t, launch{name: "exposed", groups: []latch.GroupID{world, clean}, public: true, profile: okProfile})
	unmanaged := s.instance(t, launch{name: "unmanaged", groups: []latch.GroupID{wide, peer}, profile: okProfile})
	twoManaged := s.instance(t, launch{name: "two-managed", groups: []latch.GroupID{clean, clean2}, profile: okProfile})
	keyed := s.instance(t, launch{name: "keyed", groups: []latch.GroupID{standing}, key: awstest.Unique("scan-key"), profile: badProfile})
	s.instance(t, launch{name: "no-ssm", groups: []latch.GroupID{clean}, profile: noSSMProfile})
	template := awstest.Unique("scan-template")
	lt, err := s.ec2.CreateLaunchTemplate(t.Context(), &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(template),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-0123456789abcdef0"), KeyName: aws.String("deploy")}})
	if err != nil {
		t.Fatal(err)
	}
	ltID := aws.ToString(lt.LaunchTemplate.LaunchTemplateId)
	t.Cleanup(func() {
		_, _ = s.ec2.DeleteLaunchTemplate(context.Background(), &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(ltID)})
	})

	r := s.latch(t, "scan", "--policy", pf, "--json")
	if r.code != exitFindings {
		t.Fatalf("scan: exit %d, want %d (a critical finding); stderr %s", r.code, exitFindings, r.stderr)
	}
	got := parseScan(t, r.stdout)
	var pairs []string
	for _, f := range got.Findings {
		pairs = append(pairs, f.Check+" "+f.Severity+" "+f.Resource)
	}
	want := []string{
		"LATCH001 critical " + ruleOf(t, s, world),
		"LATCH002 high " + ruleOf(t, s, wide),
		"LATCH003 high " + ruleOf(t, s, standing),
		"LATCH004 info " + ruleOf(t, s, peer),
		"LATCH005 critical " + string(exposed),
		"LATCH006 medium " + string(unmanaged),
		"LATCH007 low " + string(twoManaged),
		"LATCH008 high " + badRole,
		"LATCH009 medium " + noSSMRole,
		"LATCH011 medium " + string(keyed),
		"LATCH012 medium " + ltID,
	}
	if !s.foreignTrail(t) {
		want = append(want, "LATCH010 medium "+s.region)
	}
	slices.Sort(pairs)
	slices.Sort(want)
	if !slices.Equal(pairs, want) {
		t.Errorf("findings:\n  %s\nwant:\n  %s", strings.Join(pairs, "\n  "), strings.Join(want, "\n  "))
	}
	if len(got.NotChecked) != 0 {
		t.Errorf("not checked: %+v", got.NotChecked)
	}

	// The table says the same, and the exit status follows --fail-on.
	table := s.latch(t, "scan", "--policy", pf)
	if table.code != exitFindings || !strings.Contains(table.stdout, "LATCH001") || !strings.Contains(table.stdout, "What to do") {
		t.Errorf("table: exit %d\n%s", table.code, table.stdout)
	}
	if r := s.latch(t, "scan", "--policy", pf, "--fail-on", "none"); r.code != 0 {
		t.Errorf("--fail-on none: exit %d", r.code)
	}

	// Accepting today's findings by their IDs: a second scan passes, and
	// a new mistake fails it again.
	base := filepath.Join(s.dir, "baseline.json")
	if err := os.WriteFile(base, []byte(r.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := s.latch(t, "scan", "--policy", pf, "--baseline", base); r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("%d accepted by the baseline", len(got.Findings))) {
		t.Errorf("with the baseline: exit %d\n%s", r.code, r.stdout)
	}
	s.group(t, nil, tcp(5985, "0.0.0.0/0", "winrm"))
	r = s.latch(t, "scan", "--policy", pf, "--baseline", base, "--json")
	if after := parseScan(t, r.stdout); r.code != exitFindings || len(after.Findings) != 1 || after.Findings[0].Check != "LATCH001" {
		t.Errorf("a new world-open rule past the baseline: exit %d, %+v", r.code, after.Findings)
	}

	// SARIF validates against the SARIF 2.1.0 schema kept in the repo.
	sarif := s.latch(t, "scan", "--policy", pf, "--format", "sarif")
	if sarif.code != exitFindings {
		t.Fatalf("sarif: exit %d %s", sarif.code, sarif.stderr)
	}
	validateSARIF(t, sarif.stdout)
}

// ruleOf is the ID of a group's only inbound rule.
func ruleOf(t *testing.T, s *scanWorld, g latch.GroupID) string {
	t.Helper()
	out, err := s.ec2.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{Filters: []types.Filter{{Name: aws.String("group-id"), Values: []string{string(g)}}}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range out.SecurityGroupRules {
		if !aws.ToBool(r.IsEgress) {
			ids = append(ids, aws.ToString(r.SecurityGroupRuleId))
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%s has inbound rules %v, want one", g, ids)
	}
	return ids[0]
}

func validateSARIF(t *testing.T, doc string) {
	t.Helper()
	c := jsonschema.NewCompiler()
	sch, err := c.Compile(filepath.Join("..", "..", "scan", "testdata", "sarif-schema-2.1.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		t.Fatalf("sarif output is not JSON: %v", err)
	}
	if err := sch.Validate(v); err != nil {
		t.Errorf("sarif output does not validate: %v", err)
	}
	var log struct {
		Version string `json:"version"`
		Runs    []struct {
			Results []json.RawMessage `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal([]byte(doc), &log); err != nil || log.Version != "2.1.0" || len(log.Runs) != 1 || len(log.Runs[0].Results) == 0 {
		t.Errorf("sarif: version %q, %d runs, err %v", log.Version, len(log.Runs), err)
	}
}

// A fleet that follows the baseline has nothing to report: exit 0.
func TestScanOfACleanFleetFindsNothing(t *testing.T) {
	s := newScanWorld(t, "eu-north-1")
	profile, _ := s.role(t, []string{ssmCore}, nil)
	m := s.group(t, map[string]string{latch.TagManaged: "true"})
	s.instance(t, launch{name: "clean", groups: []latch.GroupID{m}, profile: profile})
	s.trail(t)
	r := s.latch(t, "scan")
	if r.code != 0 || !strings.Contains(r.stdout, "No findings.") || strings.Contains(r.stdout, "Not checked") {
		t.Errorf("clean fleet: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := s.latch(t, "scan", "--json"); r.code != 0 || len(parseScan(t, r.stdout).Findings) != 0 {
		t.Errorf("clean fleet --json: exit %d %s", r.code, r.stdout)
	}
}

// Teams scan with read-only roles: a check AWS refuses is reported as not
// checked, with why, and the rest of the scan goes on.
func TestScanReportsRefusedChecksAsNotChecked(t *testing.T) {
	s := newScanWorld(t, "eu-west-3")
	sim := s.env.RequireSim(t, "refusing an API to the caller (AccessDenied) is the simulator's Deny")
	profile, _ := s.role(t, []string{ec2FullPol}, nil)
	world := s.group(t, nil, tcp(22, "0.0.0.0/0", "ssh"))
	s.instance(t, launch{name: "i", groups: []latch.GroupID{world}, profile: profile})
	sim.Deny("iam:SimulatePrincipalPolicy", "cloudtrail:DescribeTrails", "ec2:DescribeLaunchTemplateVersions")
	defer sim.Allow("iam:SimulatePrincipalPolicy", "cloudtrail:DescribeTrails", "ec2:DescribeLaunchTemplateVersions")
	r := s.latch(t, "scan", "--json")
	got := parseScan(t, r.stdout)
	var refused, checks []string
	for _, n := range got.NotChecked {
		refused = append(refused, n.Check+" "+n.API)
		if !strings.Contains(n.Reason, "AccessDenied") && !strings.Contains(n.Reason, "UnauthorizedOperation") {
			t.Errorf("not checked %s says %q, not why", n.Check, n.Reason)
		}
	}
	for _, f := range got.Findings {
		checks = append(checks, f.Check)
	}
	slices.Sort(refused)
	wantRefused := []string{"instance-roles iam:SimulatePrincipalPolicy", "launch-templates ec2:DescribeLaunchTemplateVersions", "trails cloudtrail:DescribeTrails"}
	if !slices.Equal(refused, wantRefused) {
		t.Errorf("not checked %v, want %v", refused, wantRefused)
	}
	// The world-open rule is still found; nothing is judged on the
	// refused reads (no LATCH008/009 for the role, no LATCH010).
	if r.code != exitFindings || !slices.Contains(checks, "LATCH001") || slices.Contains(checks, "LATCH008") || slices.Contains(checks, "LATCH010") {
		t.Errorf("exit %d, findings %v", r.code, checks)
	}
	table := s.latch(t, "scan")
	if !strings.Contains(table.stdout, "Not checked:") || !strings.Contains(table.stdout, "iam:SimulatePrincipalPolicy") {
		t.Errorf("the table does not say what was not checked:\n%s", table.stdout)
	}

	// Without the groups, the world-open rule cannot be seen: the scan
	// has not looked, and fails rather than pass as clean, whatever
	// --fail-on says.
	sim.Deny("ec2:DescribeSecurityGroups")
	defer sim.Allow("ec2:DescribeSecurityGroups")
	for _, failOn := range []string{"high", "critical", "none"} {
		r := s.latch(t, "scan", "--fail-on", failOn)
		if r.code != exitRuntime || !strings.Contains(r.stderr, "security-groups in eu-west-3 could not be read") || !strings.Contains(r.stdout, "ec2:DescribeSecurityGroups") {
			t.Errorf("groups refused, --fail-on %s: exit %d\n%s%s", failOn, r.code, r.stdout, r.stderr)
		}
	}
}

func TestScanRefusesBadInput(t *testing.T) {
	w := newWorld(t)
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"--fail-on", "severe"}, `fail-on: "severe"`},
		{[]string{"--format", "xml"}, `format: "xml"`},
		{[]string{"--concurrency", "0"}, "concurrency: 0"},
		{[]string{"--max-managed-groups", "0"}, "max-managed-groups: 0"},
		{[]string{"--admin-port", "70000"}, "admin-port: 70000"},
		{[]string{"--baseline", "/nonexistent/b.json"}, "baseline: /nonexistent/b.json"},
		{[]string{"extra"}, "unknown command"},
	} {
		r := w.latch(t, append([]string{"scan"}, tt.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.says) {
			t.Errorf("scan %v: exit %d, stderr %q; want exit %d saying %q", tt.args, r.code, r.stderr, exitUsage, tt.says)
		}
	}
}
