package policy_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/policy"
)

// ssmPolicy has a rule with only ssm, a rule with only ports, and one with
// both, each on its own instances so that each query meets one rule.
const ssmPolicy = `version: 1
rules:
  - name: dev-ssm
    targets: {instances: [i-0a0b0c0d0e0f00001]}
    who: {groups: [developers]}
    ssm:
      documents: [shell, AWS-StartPortForwardingSession]
      ports: [5432, 8000-8100]
    duration: {default: 30m, max: 2h}
    approval: auto
    networks: [198.51.100.0/24]
    max_active: 1
  - name: web-ports
    targets: {instances: [i-0a0b0c0d0e0f00002]}
    who: {groups: [developers]}
    ports: [tcp/22, tcp/5432]
    duration: {default: 30m, max: 2h}
    approval: auto
  - name: prod-both
    targets: {instances: [i-0a0b0c0d0e0f00003]}
    who: {groups: [developers]}
    ports: [tcp/443]
    ssm: {documents: [ssh]}
    duration: {default: 15m, max: 1h}
    approval: {approvals: 1, from: [sre]}
    break_glass: true
`

var developer = latch.Identity{Kind: latch.KindOIDC, Subject: "alice@example.com", Groups: []string{"developers"}}

func instance(n string) latch.Target {
	return latch.Target{InstanceID: latch.InstanceID("i-0a0b0c0d0e0f0000" + n), Region: "us-east-1"}
}

func session(target latch.Target, doc latch.SSMDocument, port int) policy.Query {
	q := policy.Query{Who: developer, Target: target, Protocol: latch.TCP, Document: doc, Reason: "debug"}
	if doc.TakesPort() {
		q.Ports = latch.PortRange{From: port, To: port}
	}
	return q
}

func network(target latch.Target, port int) policy.Query {
	return policy.Query{Who: developer, Target: target, Protocol: latch.TCP, Reason: "debug",
		Ports: latch.PortRange{From: port, To: port}, Source: netip.MustParsePrefix("203.0.113.9/32")}
}

func TestParseSSM(t *testing.T) {
	p := mustParse(t, ssmPolicy)
	r, _ := p.Rule("dev-ssm")
	if r.SSM == nil || !slices.Equal(r.SSM.Documents, []latch.SSMDocument{latch.DocShell, latch.DocPortForward}) ||
		!slices.Equal(r.SSM.Ports, []latch.PortRange{{From: 5432, To: 5432}, {From: 8000, To: 8100}}) || len(r.Ports) != 0 {
		t.Errorf("dev-ssm: ssm %+v, ports %v", r.SSM, r.Ports)
	}
	// ssh without ports reaches port 22 only.
	r, _ = p.Rule("prod-both")
	if r.SSM == nil || !slices.Equal(r.SSM.Ports, []latch.PortRange{{From: 22, To: 22}}) {
		t.Fatalf("prod-both: ssh without ports: %+v, want ports [22]", r.SSM)
	}
	// Rules hands out copies.
	r.SSM.Documents[0], r.SSM.Ports[0] = latch.DocShell, latch.PortRange{From: 1, To: 65535}
	if again, _ := p.Rule("prod-both"); again.SSM.Documents[0] != latch.DocSSH || again.SSM.Ports[0].From != 22 {
		t.Errorf("changing a copy changed the policy: %+v", again.SSM)
	}
	shell := mustParse(t, withRule("-ports", "    ssm: {documents: [shell]}"))
	if r := shell.Rules()[0]; r.SSM == nil || len(r.SSM.Ports) != 0 {
		t.Errorf("shell only: %+v", r.SSM)
	}
}

func TestParseSSMErrors(t *testing.T) {
	tests := []struct {
		name  string
		edits []string
		want  string
	}{
		{"neither ports nor ssm", []string{"-ports"},
			"policy.yaml:3: rules[0].ports: required; want a list such as [tcp/22], or an ssm section"},
		{"unknown document", []string{"    ssm: {documents: [rdp]}"},
			`policy.yaml:9: rules[0].ssm.documents[0]: "rdp" is not a Session Manager document latch starts; want shell, port-forward or ssh`},
		{"no documents", []string{"    ssm: {ports: [22]}"},
			"policy.yaml:9: rules[0].ssm.documents: required; want the sessions the rule gives: shell, port-forward or ssh, e.g. [shell]"},
		{"a document twice, by two names", []string{"    ssm: {documents: [ssh, AWS-StartSSHSession]}"},
			`policy.yaml:9: rules[0].ssm.documents[1]: "AWS-StartSSHSession" is listed twice (as ssh)`},
		{"port-forward needs ports", []string{"    ssm: {documents: [port-forward]}"},
			"policy.yaml:9: rules[0].ssm.ports: required with port-forward; want the tcp ports on the instance it may reach, e.g. [5432] or [8000-8100]"},
		{"shell takes no ports", []string{"    ssm: {documents: [shell], ports: [22]}"},
			"policy.yaml:9: rules[0].ssm.ports: not allowed with only shell, which reaches no port; remove it, or list port-forward or ssh"},
		{"bad port", []string{"    ssm: {documents: [ssh], ports: [22, 70000]}"},
			`policy.yaml:9: rules[0].ssm.ports[1]: "70000" is not a port or range; want a number 1-65535 or FROM-TO with FROM <= TO`},
		{"port twice", []string{"    ssm: {documents: [ssh], ports: [22, 22]}"},
			`policy.yaml:9: rules[0].ssm.ports[1]: "22" is listed twice`},
		{"unknown key", []string{"    ssm: {documents: [ssh], port: [22]}"},
			`policy.yaml:9: rules[0].ssm: unknown key "port" (did you mean "ports"?); want one of documents, ports`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Parse("policy.yaml", []byte(withRule(tt.edits...)))
			if err == nil {
				t.Fatalf("parsed; want %s", tt.want)
			}
			if e, ok := errors.AsType[*latch.Error](err); !ok || e.Code != latch.EINVALID {
				t.Errorf("error %v is not EINVALID", err)
			}
			if !slices.Contains(strings.Split(err.Error(), "\n"), tt.want) {
				t.Errorf("error lacks line\n\t%s\ngot:\n\t%s", tt.want, err)
			}
		})
	}
}

// TestDecideSSM tries to break the promises of the ssm section.
func TestDecideSSM(t *testing.T) {
	p := mustParse(t, ssmPolicy)
	tests := []struct {
		name    string
		q       policy.Query
		outcome policy.Outcome
		rule    string
		why     string
	}{
		{"a shell the rule lists", session(instance("1"), latch.DocShell, 0), policy.Allowed, "dev-ssm",
			`rule "dev-ssm" allows a shell session on i-0a0b0c0d0e0f00001 in us-east-1 for 30m without approval`},
		{"a port-forward to a listed port", session(instance("1"), latch.DocPortForward, 5432), policy.Allowed, "dev-ssm",
			`rule "dev-ssm" allows a port-forward session to port 5432 on i-0a0b0c0d0e0f00001 in us-east-1 for 30m without approval`},
		{"a port-forward inside a listed range", session(instance("1"), latch.DocPortForward, 8100), policy.Allowed, "dev-ssm", ""},
		{"a document the rule does not list", session(instance("1"), latch.DocSSH, 22), policy.Denied, "",
			"no policy rule lets alice@example.com start an ssh session to port 22 on i-0a0b0c0d0e0f00001 in us-east-1"},
		{"a document the rule does not list, to a port it does", session(instance("1"), latch.DocSSH, 5432), policy.Denied, "",
			"no policy rule lets alice@example.com start an ssh session to port 5432 on i-0a0b0c0d0e0f00001 in us-east-1"},
		{"a shell where only ssh is listed", session(instance("3"), latch.DocShell, 0), policy.Denied, "",
			"no policy rule lets alice@example.com start a shell session on i-0a0b0c0d0e0f00003 in us-east-1"},
		{"a port outside ssm.ports", session(instance("1"), latch.DocPortForward, 5433), policy.Denied, "",
			"no policy rule lets alice@example.com start a port-forward session to port 5433 on i-0a0b0c0d0e0f00001 in us-east-1"},
		{"a port just past a range", session(instance("1"), latch.DocPortForward, 8101), policy.Denied, "", ""},
		{"a session never matches a rule's ports", session(instance("2"), latch.DocPortForward, 5432), policy.Denied, "",
			"no policy rule lets alice@example.com start a port-forward session to port 5432 on i-0a0b0c0d0e0f00002 in us-east-1"},
		{"an opening never matches a rule's ssm section", network(instance("1"), 5432), policy.Denied, "",
			"no policy rule lets alice@example.com open tcp/5432 on i-0a0b0c0d0e0f00001 in us-east-1"},
		{"ssh without ports reaches 22", session(instance("3"), latch.DocSSH, 22), policy.NeedsApproval, "prod-both", ""},
		{"ssh without ports reaches nothing else", session(instance("3"), latch.DocSSH, 2222), policy.Denied, "", ""},
		{"both: the opening is its ports", network(instance("3"), 443), policy.NeedsApproval, "prod-both", ""},
		{"both: an opening of the ssm port is not allowed", network(instance("3"), 22), policy.Denied, "", ""},
		{"a session with no instance", session(latch.Target{GroupID: "sg-0a0b0c0d0e0f00001"}, latch.DocShell, 0), policy.Denied, "",
			"Session Manager sessions start on an instance, and sg-0a0b0c0d0e0f00001 names none"},
		{"port-forward with no port", session(instance("1"), latch.DocPortForward, 0), policy.Denied, "",
			"port-forward sessions reach one port on the instance; 0 is not a port"},
		{"an unknown document", func() policy.Query {
			q := session(instance("1"), latch.DocShell, 0)
			q.Document = "AWS-RunShellScript"
			return q
		}(), policy.Denied, "", `document "AWS-RunShellScript" is not a Session Manager document latch starts; want shell, port-forward or ssh`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(tt.q)
			if d.Outcome != tt.outcome || d.Rule != tt.rule || (tt.why != "" && d.Why != tt.why) {
				t.Errorf("got %s by %q: %s\nwant %s by %q: %s", d.Outcome, d.Rule, d.Why, tt.outcome, tt.rule, tt.why)
			}
		})
	}
}

// TestDecideSSMConditions: a rule's networks hold the address a session
// request comes from (and are skipped when there is none, as in explain);
// everything else applies too.
func TestDecideSSMConditions(t *testing.T) {
	p := mustParse(t, ssmPolicy)
	q := session(instance("1"), latch.DocShell, 0) // dev-ssm has networks, and q no source
	if d := p.Decide(q); d.Outcome != policy.Allowed {
		t.Errorf("a session with no request address was held to the rule's networks: %s", d.Why)
	}
	q.Source = netip.MustParsePrefix("203.0.113.9/32")
	if d := p.Decide(q); d.Outcome != policy.Denied || !strings.Contains(d.Why, "requests must come from 198.51.100.0/24; 203.0.113.9/32 is outside") {
		t.Errorf("a session asked from outside the rule's networks: %s %s", d.Outcome, d.Why)
	}
	q.Source = netip.MustParsePrefix("198.51.100.7/32")
	if d := p.Decide(q); d.Outcome != policy.Allowed {
		t.Errorf("a session asked from inside the rule's networks: %s %s", d.Outcome, d.Why)
	}
	q.Duration = 3 * 60 * 60e9
	if d := p.Decide(q); d.Outcome != policy.Denied || !strings.Contains(d.Why, "allows at most 2h") {
		t.Errorf("a session over max: %s %s", d.Outcome, d.Why)
	}
	q = session(instance("1"), latch.DocShell, 0)
	q.Reason = ""
	if d := p.Decide(q); d.Outcome != policy.Denied || !strings.Contains(d.Why, "a reason is required") {
		t.Errorf("a session without a reason: %s %s", d.Outcome, d.Why)
	}
	q = session(instance("1"), latch.DocShell, 0)
	q.Active = func(string) int { return 1 }
	if d := p.Decide(q); d.Outcome != policy.Denied || !strings.Contains(d.Why, "allows 1 active grants") {
		t.Errorf("a session past max_active: %s %s", d.Outcome, d.Why)
	}
	q = session(instance("3"), latch.DocSSH, 22)
	q.BreakGlass = true
	if d := p.Decide(q); d.Outcome != policy.Allowed || !d.BreakGlass ||
		d.Why != `rule "prod-both" allows an ssh session to port 22 on i-0a0b0c0d0e0f00003 in us-east-1 for 15m by break-glass, skipping 1 approval from sre; this is flagged for review` {
		t.Errorf("break-glass session: %s %s", d.Outcome, d.Why)
	}
}

func TestExplainSSM(t *testing.T) {
	p := mustParse(t, ssmPolicy)
	tests := []struct {
		name string
		got  []policy.Explanation
		want []line
	}{
		{"the document is not in the section", p.ExplainSession(developer, instance("1"), latch.DocSSH, 22), []line{
			{"dev-ssm", false, "skipped: its ssm section does not allow ssh sessions (it allows shell, port-forward)"},
			{"web-ports", false, "does not apply: i-0a0b0c0d0e0f00001 in us-east-1 is not among its targets (instances i-0a0b0c0d0e0f00002)"},
			{"prod-both", false, "does not apply: i-0a0b0c0d0e0f00001 in us-east-1 is not among its targets (instances i-0a0b0c0d0e0f00003)"},
		}},
		{"the port is not in the section", p.ExplainSession(developer, instance("1"), latch.DocPortForward, 22), []line{
			{"dev-ssm", false, "skipped: its ssm section does not allow port-forward sessions to port 22 (it allows ports 5432, 8000-8100)"},
			{"web-ports", false, "does not apply: i-0a0b0c0d0e0f00001 in us-east-1 is not among its targets (instances i-0a0b0c0d0e0f00002)"},
			{"prod-both", false, "does not apply: i-0a0b0c0d0e0f00001 in us-east-1 is not among its targets (instances i-0a0b0c0d0e0f00003)"},
		}},
		{"the section allows it; networks do not apply", p.ExplainSession(developer, instance("1"), latch.DocPortForward, 5432), []line{
			{"dev-ssm", true, "allows a port-forward session to port 5432 for 30m by default, at most 2h; auto-approved; only from 198.51.100.0/24; reason required; at most 1 active grants per requester"},
			{"web-ports", false, "does not apply: i-0a0b0c0d0e0f00001 in us-east-1 is not among its targets (instances i-0a0b0c0d0e0f00002)"},
			{"prod-both", false, "does not apply: i-0a0b0c0d0e0f00001 in us-east-1 is not among its targets (instances i-0a0b0c0d0e0f00003)"},
		}},
		{"a rule with only ports", p.ExplainSession(developer, instance("2"), latch.DocShell, 0), []line{
			{"dev-ssm", false, "does not apply: i-0a0b0c0d0e0f00002 in us-east-1 is not among its targets (instances i-0a0b0c0d0e0f00001)"},
			{"web-ports", false, "skipped: it has no ssm section, so it gives no Session Manager sessions"},
			{"prod-both", false, "does not apply: i-0a0b0c0d0e0f00002 in us-east-1 is not among its targets (instances i-0a0b0c0d0e0f00003)"},
		}},
		{"no instance", p.ExplainSession(developer, latch.Target{GroupID: "sg-0a0b0c0d0e0f00001"}, latch.DocShell, 0)[:1], []line{
			{"dev-ssm", false, "does not apply: Session Manager sessions start on an instance, and sg-0a0b0c0d0e0f00001 names none"},
		}},
		{"the network explanation names the sessions", p.Explain(developer, instance("3"))[2:], []line{
			{"prod-both", true, "allows tcp/443, Session Manager ssh sessions (to port 22) for 15m by default, at most 1h; needs 1 approval from sre within 1h; break-glass allowed with a reason; reason required"},
		}},
		{"a rule with only ssm", p.Explain(developer, instance("1"))[:1], []line{
			{"dev-ssm", true, "allows Session Manager shell and port-forward sessions (to ports 5432, 8000-8100) for 30m by default, at most 2h; auto-approved; only from 198.51.100.0/24; reason required; at most 1 active grants per requester"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := explainLines(tt.got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got\n%s\nwant\n%s", formatLines(got), formatLines(tt.want))
			}
		})
	}
}

func formatLines(ls []line) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString("\t" + l.rule + " ")
		if l.applies {
			b.WriteString("✓ ")
		}
		b.WriteString(l.why + "\n")
	}
	return b.String()
}

const ssmTests = `tests:
  - name: dev may forward to postgres
    who: {user: alice@example.com, groups: [developers]}
    target: {instance: i-0a0b0c0d0e0f00001}
    document: port-forward
    port: 5432
    expect: allowed
    rule: dev-ssm
  - name: dev may not ssh by Session Manager
    who: {user: alice@example.com, groups: [developers]}
    target: {instance: i-0a0b0c0d0e0f00001}
    document: AWS-StartSSHSession
    port: 22
    expect: denied
    rule: ""
  - name: a shell on prod is not in its ssm section
    who: {user: alice@example.com, groups: [developers]}
    target: {instance: i-0a0b0c0d0e0f00003}
    document: shell
    expect: denied
`

func TestRunTestsSSM(t *testing.T) {
	p := mustParse(t, ssmPolicy)
	results, err := policy.RunTests(p, "ssm_test.yaml", []byte(ssmTests))
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		if !r.Pass {
			t.Errorf("%s: %s", r.Name, r.Message)
		}
	}
	if results[0].Got.Why != `rule "dev-ssm" allows a port-forward session to port 5432 on i-0a0b0c0d0e0f00001 for 30m without approval` {
		t.Errorf("why: %s", results[0].Got.Why)
	}

	bad := []struct{ edit, want string }{
		{"    port: 8000-8080\n", `ssm_test.yaml:6: tests[0].port: "8000-8080" is a range; a port-forward session reaches one port`},
		{"    port: 5432\n    source: 198.51.100.7\n", "ssm_test.yaml:7: tests[0].source: not allowed with document: a Session Manager session carries tcp and opens no port, so it has no source; remove it"},
		{"    port: 5432\n    protocol: udp\n", "ssm_test.yaml:7: tests[0].protocol: not allowed with document: a Session Manager session carries tcp and opens no port, so it has no protocol; remove it"},
		{"", "ssm_test.yaml:5: tests[0].port: required with document port-forward; want the port on the instance, such as 22"},
	}
	for _, b := range bad {
		data := strings.Replace(ssmTests, "    port: 5432\n", b.edit, 1)
		_, err := policy.RunTests(p, "ssm_test.yaml", []byte(data))
		if err == nil || !slices.Contains(strings.Split(err.Error(), "\n"), b.want) {
			t.Errorf("error %v\nwant line %s", err, b.want)
		}
	}
	data := strings.Replace(ssmTests, "    document: shell\n", "    document: shell\n    port: 22\n", 1)
	if _, err := policy.RunTests(p, "ssm_test.yaml", []byte(data)); err == nil ||
		!strings.Contains(err.Error(), "ssm_test.yaml:20: tests[2].port: not allowed with document shell, which reaches no port; remove it") {
		t.Errorf("shell with a port: %v", err)
	}
	data = strings.Replace(ssmTests, "document: shell", "document: rdp", 1)
	if _, err := policy.RunTests(p, "ssm_test.yaml", []byte(data)); err == nil ||
		!strings.Contains(err.Error(), `ssm_test.yaml:19: tests[2].document: "rdp" is not a Session Manager document latch starts; want shell, port-forward or ssh`) {
		t.Errorf("an unknown document: %v", err)
	}
}

// A grant's rule is checked again before each session: a policy that no
// longer names the requester, the target or the document refuses it.
func TestAllowsSession(t *testing.T) {
	p := mustParse(t, ssmPolicy)
	if !p.AllowsSession("dev-ssm", developer, instance("1"), latch.DocShell, 0) {
		t.Fatal("dev-ssm does not allow the shell it was written for")
	}
	other := developer
	other.Groups = []string{"contractors"}
	for name, ok := range map[string]bool{
		"someone else":     p.AllowsSession("dev-ssm", other, instance("1"), latch.DocShell, 0),
		"another target":   p.AllowsSession("dev-ssm", developer, instance("3"), latch.DocShell, 0),
		"another document": p.AllowsSession("dev-ssm", developer, instance("1"), latch.DocSSH, 22),
		"a rule not in it": p.AllowsSession("gone", developer, instance("1"), latch.DocShell, 0),
	} {
		if ok {
			t.Errorf("%s: allowed", name)
		}
	}
}
