package policy_test

import (
	"os"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/policy"
)

func TestRunTestsExample(t *testing.T) {
	p, err := policy.Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("testdata/example_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	results, err := policy.RunTests(p, "example_test.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 10 {
		t.Errorf("%d results, want every case of the file", len(results))
	}
	seen := map[string]bool{}
	for _, r := range results {
		seen[r.Got.Rule] = true
		if !r.Pass {
			t.Errorf("example_test.yaml:%d: %s: %s", r.Line, r.Name, r.Message)
		}
		if r.Message == "" || r.Message != r.Got.Why {
			t.Errorf("%s: Message = %q, want the decision's Why %q", r.Name, r.Message, r.Got.Why)
		}
	}
	for _, rule := range []string{"", "dev-ssh", "prod-ssh", "prod-db"} {
		if !seen[rule] {
			t.Errorf("no case is decided by rule %q", rule)
		}
	}
}

const failingTests = `tests:
  - name: prod ssh is not auto-approved
    who: {user: alice@example.com, groups: [developers]}
    target: {instance: i-0f0e0d0c0b0a00002, tags: {env: prod}}
    port: 22
    expect: allowed
  - name: the right outcome from the wrong rule
    who: {user: alice@example.com, groups: [developers]}
    target: {instance: i-0f0e0d0c0b0a00002, tags: {env: prod}}
    port: 22
    expect: needs-approval
    rule: prod-db
  - name: expecting no rule
    who: {user: alice@example.com, groups: [developers]}
    target: {instance: i-0f0e0d0c0b0a00002, tags: {env: prod}}
    port: 22
    expect: needs-approval
    rule: ""
  - name: this one passes
    who: {user: alice@example.com, groups: [developers]}
    target: {instance: i-0f0e0d0c0b0a00002, tags: {env: prod}}
    port: 22
    expect: needs-approval
`

func TestRunTestsReportsFailures(t *testing.T) {
	p, err := policy.Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	results, err := policy.RunTests(p, "failing_test.yaml", []byte(failingTests))
	if err != nil {
		t.Fatalf("RunTests err = %v; a failed expectation is a result, not an error", err)
	}
	want := []struct {
		line    int
		pass    bool
		message string
	}{
		{2, false, `want allowed, got needs-approval by rule "prod-ssh": rule "prod-ssh" allows tcp/22`},
		{7, false, `want needs-approval by rule "prod-db", got needs-approval by rule "prod-ssh": `},
		{13, false, `want needs-approval by no rule, got needs-approval by rule "prod-ssh": `},
		{19, true, `rule "prod-ssh" allows tcp/22 on i-0f0e0d0c0b0a00002 for 30m once it has 1 approval from sre within 30m`},
	}
	if len(results) != len(want) {
		t.Fatalf("%d results, want %d", len(results), len(want))
	}
	for i, w := range want {
		r := results[i]
		if r.Line != w.line || r.Pass != w.pass || !strings.HasPrefix(r.Message, w.message) {
			t.Errorf("result %d = line %d, pass %v, %q; want line %d, pass %v, %q…", i, r.Line, r.Pass, r.Message, w.line, w.pass, w.message)
		}
	}
	if r := results[1]; r.WantOutcome != policy.NeedsApproval || r.WantRule != "prod-db" || !r.RuleChecked || r.Got.Rule != "prod-ssh" {
		t.Errorf("result 1 = %+v", r)
	}
	if r := results[0]; r.RuleChecked {
		t.Errorf("result 0 checks a rule it does not name")
	}
}

// testCase is a valid case; bad cases below edit it.
const testCase = `tests:
  - name: dev ssh
    who: {user: alice@example.com, groups: [developers]}
    target: {instance: i-0a0b0c0d0e0f00001, tags: {env: dev}}
    port: 22
    expect: allowed
`

func TestRunTestsErrors(t *testing.T) {
	p, err := policy.Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) string {
		if !strings.Contains(testCase, old) {
			panic(old)
		}
		return strings.Replace(testCase, old, new, 1)
	}
	tests := []struct {
		name string
		in   string
		want string // a line of the error
	}{
		{"unknown key", testCase + "    expected: denied\n",
			`t.yaml:7: tests[0]: unknown key "expected" (did you mean "expect"?); want one of name, who, target, document, port, protocol, duration, source, reason, break_glass, active, expect, rule`},
		{"unknown top-level key", "test: []\n", `t.yaml:1: (document): unknown key "test" (did you mean "tests"?); want one of tests`},
		{"bad port", edit("port: 22", "port: 99999"),
			`t.yaml:5: tests[0].port: "99999" is not a port or range; want a number 1-65535 or FROM-TO with FROM <= TO`},
		{"missing port", edit("    port: 22\n", ""), `t.yaml:2: tests[0].port: required; want a port such as 22 or a range such as 8000-8080`},
		{"bad protocol", testCase + "    protocol: all\n", `t.yaml:7: tests[0].protocol: "all" is not allowed; want tcp, udp, icmp or icmpv6`},
		{"bad outcome", edit("expect: allowed", "expect: yes"), `t.yaml:6: tests[0].expect: "yes" is not an outcome; want allowed, needs-approval or denied`},
		{"missing outcome", edit("    expect: allowed\n", ""), `t.yaml:2: tests[0].expect: required; want allowed, needs-approval or denied`},
		{"unknown rule", testCase + "    rule: dev-shh\n", `t.yaml:7: tests[0].rule: the policy has no rule "dev-shh"`},
		{"bad instance", edit("i-0a0b0c0d0e0f00001", "web-1"),
			`t.yaml:4: tests[0].target.instance: "web-1" is not an instance ID; want i- followed by 8 or 17 lowercase hex digits`},
		{"no instance or group", edit("{instance: i-0a0b0c0d0e0f00001, tags: {env: dev}}", "{tags: {env: dev}}"),
			`t.yaml:4: tests[0].target: no instance or group; want at least one`},
		{"bad region", edit("tags: {env: dev}}", "region: mars}"), `t.yaml:4: tests[0].target.region: "mars" is not an AWS region; want a name like us-east-1`},
		{"user and principal", edit("groups: [developers]}", "aws_principal: \"arn:aws:iam::123456789012:role/dev\"}"),
			`t.yaml:3: tests[0].who: give user or aws_principal, not both`},
		{"principal not an ARN", edit("user: alice@example.com, groups: [developers]", "aws_principal: dev"),
			`t.yaml:3: tests[0].who.aws_principal: "dev" is not an ARN; want e.g. arn:aws:sts::123456789012:assumed-role/dev/alice`},
		{"principal with groups", edit("user: alice@example.com", "aws_principal: \"arn:aws:iam::123456789012:role/dev\""),
			`t.yaml:3: tests[0].who.groups: aws-iam identities have no groups; remove it`},
		{"bad source", testCase + "    source: 0.0.0.0/0\n", `t.yaml:7: tests[0].source: "0.0.0.0/0" opens to the whole internet, which latch never does`},
		{"bad duration", testCase + "    duration: forever\n", `t.yaml:7: tests[0].duration: "forever" is not a duration (want e.g. 30m or 2h)`},
		{"negative active", testCase + "    active: -1\n", `t.yaml:7: tests[0].active: -1 is too small; want 0 or more`},
		{"duplicate names", testCase + strings.TrimPrefix(testCase, "tests:\n"),
			`t.yaml:7: tests[1].name: "dev ssh" is already the name of the case at line 2; names must be unique`},
		{"no cases", "tests: []\n", `t.yaml:1: tests: empty list; name at least one item or remove the key`},
		{"not YAML", "tests: [\n", `t.yaml:1: did not find expected node content`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results, err := policy.RunTests(p, "t.yaml", []byte(tt.in))
			if err == nil {
				t.Fatalf("RunTests = %+v, want an error; input:\n%s", results, tt.in)
			}
			if latch.ErrorCode(err) != latch.EINVALID {
				t.Errorf("ErrorCode = %q, want %q", latch.ErrorCode(err), latch.EINVALID)
			}
			if got := strings.Split(latch.ErrorMessage(err), "\n"); !contains(got, tt.want) {
				t.Errorf("error lacks line\n\t%s\ngot:\n\t%s", tt.want, strings.Join(got, "\n\t"))
			}
		})
	}
}
