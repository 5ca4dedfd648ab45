package policy

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/latchdev/latch"
)

// Defaults for a policy test case that does not say.
const (
	testSource = "203.0.113.1" // TEST-NET-3: outside any real corporate network
	testReason = "policy test"
)

// TestResult is the outcome of one case of a policy test file.
type TestResult struct {
	Name string
	Line int // where the case starts in the test file
	Pass bool
	Got  Decision

	WantOutcome Outcome
	WantRule    string // the rule expected to decide, if RuleChecked; "" then means no rule
	RuleChecked bool   // the case names the rule expected to decide

	// Message is for people: the decision's Why when the case passes, and
	// what was wanted and what happened when it fails.
	Message string
}

// RunTests runs the policy test file data (named name in messages) against
// p. A case whose expectation is not met is a result with Pass false; an
// error means the test file itself is wrong (bad YAML, an unknown key, a bad
// value, a rule the policy does not have) and is an EINVALID *latch.Error
// listing each problem as "name:line: field: message".
//
// The file is a list of cases:
//
//	tests:
//	  - name: dev can ssh to web-1
//	    who: {user: alice@example.com, groups: [developers]}  # or {aws_principal: ARN}
//	    target: {instance: i-0a0b0c0d0e0f00001, group: sg-0f00dcafe0000b001, tags: {env: dev}, region: us-east-1}
//	    port: 22                 # or "8000-8080"
//	    protocol: tcp            # the default
//	    duration: 30m            # default: the rule's default
//	    source: 198.51.100.7     # default: 203.0.113.1
//	    reason: deploy           # default: "policy test"; "" for none
//	    break_glass: false
//	    active: 0                # the requester's active grants under any rule
//	    expect: allowed          # allowed | needs-approval | denied
//	    rule: dev-ssh            # optional: the rule expected to decide; "" for none
//
// A case with document asks for a Session Manager session instead: the
// document is shell, port-forward or ssh (or its AWS name), port is the
// one port on the instance for port-forward and ssh (none for shell), and
// protocol and source are not given (a session carries tcp and opens no
// port, so it has no source address):
//
//	tests:
//	  - name: dev may forward to postgres
//	    who: {user: alice@example.com, groups: [developers]}
//	    target: {instance: i-0a0b0c0d0e0f00001, tags: {env: dev}}
//	    document: port-forward
//	    port: 5432
//	    expect: allowed
func RunTests(p *Policy, name string, data []byte) ([]TestResult, error) {
	d := &decoder{file: name}
	root := d.document(data)
	if root == nil {
		return nil, d.err()
	}
	m := d.mapping(root, "(document)", "tests")
	if m == nil {
		return nil, d.err()
	}
	type testCase struct {
		q      Query
		result TestResult
	}
	var cases []testCase
	seen := make(map[string]int) // name → line
	for i, item := range d.list(d.require(root, m, "", "tests", "a list of test cases"), "tests") {
		path := index("tests", i)
		q, r := d.testCase(p, item, path)
		if line, dup := seen[r.Name]; dup && r.Name != "" {
			d.failf(item, join(path, "name"), "%q is already the name of the case at line %d; names must be unique", r.Name, line)
		}
		seen[r.Name] = item.Line
		cases = append(cases, testCase{q, r})
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	results := make([]TestResult, len(cases))
	for i, c := range cases {
		results[i] = c.result.check(p.Decide(c.q))
	}
	return results, nil
}

// check completes r with the decision got.
func (r TestResult) check(got Decision) TestResult {
	r.Got = got
	r.Pass = got.Outcome == r.WantOutcome && (!r.RuleChecked || got.Rule == r.WantRule)
	if r.Pass {
		r.Message = got.Why
		return r
	}
	want := string(r.WantOutcome)
	if r.RuleChecked {
		want += " by " + ruleText(r.WantRule)
	}
	r.Message = fmt.Sprintf("want %s, got %s by %s: %s", want, got.Outcome, ruleText(got.Rule), got.Why)
	return r
}

func ruleText(name string) string {
	if name == "" {
		return "no rule"
	}
	return fmt.Sprintf("rule %q", name)
}

// testCase reads one case into a query and an unfinished result.
func (d *decoder) testCase(p *Policy, n *yaml.Node, path string) (Query, TestResult) {
	r := TestResult{Line: n.Line}
	q := Query{Reason: testReason}
	if isNull(n) {
		d.failf(n, path, "empty; want a case with name, who, target, port and expect")
		return q, r
	}
	m := d.mapping(n, path, "name", "who", "target", "document", "port", "protocol", "duration", "source", "reason",
		"break_glass", "active", "expect", "rule")
	if m == nil {
		return q, r
	}
	if v := d.require(n, m, path, "name", "a sentence saying what the case checks"); v != nil {
		r.Name = strings.TrimSpace(d.str(v, join(path, "name")))
		if r.Name == "" {
			d.failf(v, join(path, "name"), "empty; say what the case checks")
		}
	}
	q.Who = d.testWho(d.require(n, m, path, "who", "{user: alice@example.com} or {aws_principal: ARN}"), join(path, "who"))
	q.Target = d.testTarget(d.require(n, m, path, "target", "{instance: i-…} or {group: sg-…}"), join(path, "target"))
	if v := m["document"]; v != nil {
		q.Document, q.Protocol, q.Ports = d.testSession(v, m, path)
	} else {
		q.Protocol, q.Ports = d.testPorts(n, m, path)
		src, ok := testSource, true
		if v := m["source"]; v != nil {
			src, ok = d.scalar(v, join(path, "source"), "an address such as 198.51.100.7")
		}
		if s, err := latch.ParseWideSource(src); ok && err != nil {
			d.failf(m["source"], join(path, "source"), "%s", message(err))
		} else {
			q.Source = s
		}
	}
	if v := m["duration"]; v != nil {
		q.Duration = d.duration(v, join(path, "duration"))
	}
	if v := m["reason"]; v != nil {
		q.Reason = d.str(v, join(path, "reason"))
	}
	q.BreakGlass = d.boolean(m["break_glass"], join(path, "break_glass"), false)
	if active := d.integer(m["active"], join(path, "active"), 0); active > 0 {
		q.Active = func(string) int { return active }
	}
	r.WantOutcome, r.WantRule, r.RuleChecked = d.testExpect(p, n, m, path)
	return q, r
}

// testPorts reads a case's protocol (tcp by default) and port.
func (d *decoder) testPorts(n *yaml.Node, m map[string]*yaml.Node, path string) (latch.Protocol, latch.PortRange) {
	proto := latch.TCP
	if v := m["protocol"]; v != nil {
		if s, ok := d.scalar(v, join(path, "protocol"), "tcp, udp, icmp or icmpv6"); ok {
			p, err := latch.ParseProtocol(s)
			if err != nil {
				d.failf(v, join(path, "protocol"), "%s", message(err))
			}
			proto = p
		}
	}
	v := m["port"]
	switch {
	case v == nil && proto.IsICMP():
		return proto, latch.AllICMP // every ICMP type
	case v == nil:
		d.failf(n, join(path, "port"), "required; want a port such as 22 or a range such as 8000-8080")
	default:
		if s, ok := d.scalar(v, join(path, "port"), "a port or range"); ok {
			pr, err := latch.ParsePorts(proto, s)
			if err != nil {
				d.failf(v, join(path, "port"), "%s", message(err))
			}
			return proto, pr
		}
	}
	return proto, latch.PortRange{}
}

// testSession reads a Session Manager case's document and port; v is the
// document's node.
func (d *decoder) testSession(v *yaml.Node, m map[string]*yaml.Node, path string) (latch.SSMDocument, latch.Protocol, latch.PortRange) {
	for _, key := range []string{"protocol", "source"} {
		if n := m[key]; n != nil {
			d.failf(n, join(path, key), "not allowed with document: a Session Manager session carries tcp and opens no port, so it has no %s; remove it", key)
		}
	}
	s, ok := d.scalar(v, join(path, "document"), "shell, port-forward or ssh")
	if !ok {
		return "", latch.TCP, latch.PortRange{}
	}
	doc, err := latch.ParseSSMDocument(s)
	if err != nil {
		d.failf(v, join(path, "document"), "%s", message(err))
		return "", latch.TCP, latch.PortRange{}
	}
	port := m["port"]
	switch {
	case !doc.TakesPort() && port != nil:
		d.failf(port, join(path, "port"), "not allowed with document %s, which reaches no port; remove it", doc)
	case doc.TakesPort() && port == nil:
		d.failf(v, join(path, "port"), "required with document %s; want the port on the instance, such as 22", doc)
	case doc.TakesPort():
		if ps, ok := d.scalar(port, join(path, "port"), "a port such as 22"); ok {
			pr, err := latch.ParsePorts(latch.TCP, ps)
			switch {
			case err != nil:
				d.failf(port, join(path, "port"), "%s", message(err))
			case pr.From != pr.To:
				d.failf(port, join(path, "port"), "%q is a range; a %s session reaches one port", ps, doc)
			default:
				return doc, latch.TCP, pr
			}
		}
	}
	return doc, latch.TCP, latch.PortRange{}
}

// testExpect reads a case's expected outcome and, if it names one, rule.
func (d *decoder) testExpect(p *Policy, n *yaml.Node, m map[string]*yaml.Node, path string) (want Outcome, rule string, checked bool) {
	if v := d.require(n, m, path, "expect", "allowed, needs-approval or denied"); v != nil {
		switch o := Outcome(d.str(v, join(path, "expect"))); o {
		case Allowed, NeedsApproval, Denied:
			want = o
		default:
			d.failf(v, join(path, "expect"), "%s is not an outcome; want allowed, needs-approval or denied", describe(v))
		}
	}
	if v := m["rule"]; v != nil {
		rule, checked = d.str(v, join(path, "rule")), true
		if _, ok := p.Rule(rule); !ok && rule != "" {
			d.failf(v, join(path, "rule"), "the policy has no rule %q", rule)
		}
	}
	return want, rule, checked
}

// testWho reads who: {user, groups} or {aws_principal}.
func (d *decoder) testWho(n *yaml.Node, path string) latch.Identity {
	var id latch.Identity
	m := d.mapping(n, path, "user", "groups", "aws_principal")
	if m == nil {
		return id
	}
	user, arn := m["user"], m["aws_principal"]
	switch {
	case user != nil && arn != nil:
		d.failf(n, path, "give user or aws_principal, not both")
	case user != nil:
		id = latch.Identity{Kind: latch.KindOIDC, Subject: d.str(user, join(path, "user"))}
		id.Groups = d.strs(m["groups"], join(path, "groups"), nil)
	case arn != nil:
		id = latch.Identity{Kind: latch.KindIAM, Subject: d.str(arn, join(path, "aws_principal"))}
		if !strings.HasPrefix(id.Subject, "arn:") {
			d.failf(arn, join(path, "aws_principal"), "%s is not an ARN; want e.g. arn:aws:sts::123456789012:assumed-role/dev/alice", describe(arn))
		}
		if g := m["groups"]; g != nil {
			d.failf(g, join(path, "groups"), "aws-iam identities have no groups; remove it")
		}
	default:
		d.failf(n, path, "nobody; want user (with optional groups) or aws_principal")
	}
	if (user != nil || arn != nil) && strings.TrimSpace(id.Subject) == "" {
		d.failf(n, path, "the subject is empty")
	}
	return id
}

// testTarget reads target: {instance, group, tags, region}.
func (d *decoder) testTarget(n *yaml.Node, path string) latch.Target {
	var t latch.Target
	m := d.mapping(n, path, "instance", "group", "tags", "region")
	if m == nil {
		return t
	}
	if v := m["instance"]; v != nil {
		id, err := latch.ParseInstanceID(d.str(v, join(path, "instance")))
		if err != nil {
			d.failf(v, join(path, "instance"), "%s", message(err))
		}
		t.InstanceID = id
	}
	if v := m["group"]; v != nil {
		id, err := latch.ParseGroupID(d.str(v, join(path, "group")))
		if err != nil {
			d.failf(v, join(path, "group"), "%s", message(err))
		}
		t.GroupID = id
	}
	if v := m["region"]; v != nil {
		region, err := latch.ParseRegion(d.str(v, join(path, "region")))
		if err != nil {
			d.failf(v, join(path, "region"), "%s", message(err))
		}
		t.Region = region
	}
	if v := m["tags"]; v != nil && d.mapping(v, join(path, "tags")) != nil {
		t.Tags = make(map[string]string, len(v.Content)/2)
		for i := 0; i+1 < len(v.Content); i += 2 {
			k, tv := v.Content[i], v.Content[i+1]
			if s, ok := d.scalar(tv, join(join(path, "tags"), k.Value), "a tag value"); ok {
				t.Tags[k.Value] = s
			}
		}
	}
	if t.InstanceID == "" && t.GroupID == "" && m["instance"] == nil && m["group"] == nil {
		d.failf(n, path, "no instance or group; want at least one")
	}
	return t
}
