package policy_test

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/policy"
)

// baseRule is a valid one-rule policy; withRule edits it line by line.
const baseRule = `version: 1
rules:
  - name: dev-ssh
    targets: {tags: {env: dev}}
    who: {groups: [developers]}
    ports: [tcp/22]
    duration: {default: 30m, max: 2h}
    approval: auto
`

// withRule returns baseRule with each edit applied: "    key: value"
// replaces the line with that key (or is appended as line 9, 10, …), and
// "-key" removes it.
func withRule(edits ...string) string {
	lines := strings.Split(strings.TrimSuffix(baseRule, "\n"), "\n")
	for _, e := range edits {
		if key, ok := strings.CutPrefix(e, "-"); ok {
			for i, l := range lines {
				if strings.HasPrefix(strings.TrimSpace(l), key+":") {
					lines = append(lines[:i], lines[i+1:]...)
					break
				}
			}
			continue
		}
		key, _, _ := strings.Cut(strings.TrimSpace(e), ":")
		replaced := false
		for i, l := range lines[2:] {
			if strings.HasPrefix(strings.TrimSpace(l), key+":") {
				lines[i+2], replaced = e, true
				break
			}
		}
		if !replaced {
			lines = append(lines, e)
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // each must be a line of the error
	}{
		{name: "bad duration", in: withRule("    duration: {default: 30m, max: 3x}"),
			want: []string{`policy.yaml:7: rules[0].duration.max: "3x" is not a duration (want e.g. 30m or 2h)`}},
		{name: "unknown key", in: withRule("    target: {tags: {env: dev}}"),
			want: []string{`policy.yaml:9: rules[0]: unknown key "target" (did you mean "targets"?); want one of name, description, targets, who, ports, duration, approval, networks, allow_prefix, max_active, reason_required, pending_timeout, break_glass, ssh, ssm, notify`}},
		{name: "unknown top-level key", in: "version: 1\nrule: []\n",
			want: []string{`policy.yaml:2: (document): unknown key "rule" (did you mean "rules"?); want one of version, rules, people, notify`, `policy.yaml:1: rules: required; want a list of rules`}},
		{name: "whole IPv4 internet in networks", in: withRule("    networks: [0.0.0.0/0]"),
			want: []string{`policy.yaml:9: rules[0].networks[0]: "0.0.0.0/0" is the whole internet; networks narrow where requests may come from, and latch never opens to everyone. Name your own ranges`}},
		{name: "whole IPv6 internet in networks", in: withRule("    networks:", "      - 198.51.100.0/24", "      - ::/0"),
			want: []string{`policy.yaml:11: rules[0].networks[1]: "::/0" is the whole internet; networks narrow where requests may come from, and latch never opens to everyone. Name your own ranges`}},
		{name: "network with host bits", in: withRule("    networks: [198.51.100.7/24]"),
			want: []string{`policy.yaml:9: rules[0].networks[0]: "198.51.100.7/24" has host bits set; did you mean 198.51.100.0/24?`}},
		{name: "not a network", in: withRule("    networks: [corp]"),
			want: []string{`policy.yaml:9: rules[0].networks[0]: "corp" is not a network; want a CIDR such as 198.51.100.0/24 or 2001:db8::/48`}},
		{name: "port out of range", in: withRule("    ports: [tcp/22, tcp/70000]"),
			want: []string{`policy.yaml:6: rules[0].ports[1]: "tcp/70000": "70000" is not a port or range; want 1-65535 or FROM-TO with FROM <= TO`}},
		{name: "port range backwards", in: withRule("    ports: [tcp/8080-8000]"),
			want: []string{`policy.yaml:6: rules[0].ports[0]: "tcp/8080-8000": "8080-8000" is not a port or range; want 1-65535 or FROM-TO with FROM <= TO`}},
		{name: "port without protocol", in: withRule("    ports: [22]"),
			want: []string{`policy.yaml:6: rules[0].ports[0]: "22" is not PROTOCOL/PORTS; want e.g. tcp/22, tcp/8000-8080, icmp/8 or icmpv6/all`}},
		{name: "all protocols", in: withRule("    ports: [all/22]"),
			want: []string{`policy.yaml:6: rules[0].ports[0]: "all/22": protocol "all" is not allowed; want tcp, udp, icmp or icmpv6`}},
		{name: "bad icmp type", in: withRule("    ports: [icmp/300]"),
			want: []string{`policy.yaml:6: rules[0].ports[0]: "icmp/300": "300" is not an ICMP type; want TYPE or TYPE-CODE (0-255), or all`}},
		{name: "port listed twice", in: withRule("    ports: [tcp/22, tcp/22]"),
			want: []string{`policy.yaml:6: rules[0].ports[1]: "tcp/22" is listed twice`}},
		{name: "ports not a list", in: withRule("    ports: tcp/22"),
			want: []string{`policy.yaml:6: rules[0].ports: want a list ([a, b] or lines starting with -), not "tcp/22"`}},
		{name: "default over max", in: withRule("    duration: {default: 3h, max: 2h}"),
			want: []string{`policy.yaml:7: rules[0].duration.default: 3h is more than max (2h); want default <= max`}},
		{name: "max over the cap", in: withRule("    duration: {default: 1h, max: 24h}"),
			want: []string{`policy.yaml:7: rules[0].duration.max: 24h is longer than latch allows; want at most 12h`}},
		{name: "zero max", in: withRule("    duration: {default: 30m, max: 0s}"),
			want: []string{`policy.yaml:7: rules[0].duration.max: "0s" is not positive; want e.g. 30m or 2h`}},
		{name: "missing default", in: withRule("    duration: {max: 2h}"),
			want: []string{`policy.yaml:7: rules[0].duration.default: required; want the duration used when a request gives none, e.g. 30m`}},
		{name: "zero approvals", in: withRule("    approval: {approvals: 0, from: [sre]}"),
			want: []string{`policy.yaml:8: rules[0].approval.approvals: 0 is too small; want 1 or more`}},
		{name: "approvals from nobody", in: withRule("    approval: {approvals: 1}"),
			want: []string{`policy.yaml:8: rules[0].approval.from: required; want who may approve: groups, e.g. [sre], or {users: [...], groups: [...], aws_principals: [...]}`}},
		{name: "approvals from an empty list", in: withRule("    approval: {approvals: 1, from: []}"),
			want: []string{`policy.yaml:8: rules[0].approval.from: empty list; name at least one item or remove the key`}},
		{name: "approval word", in: withRule("    approval: manual"),
			want: []string{`policy.yaml:8: rules[0].approval: "manual" is not an approval; want auto or {approvals: 1, from: [sre]}`}},
		{name: "allow_prefix without networks", in: withRule("    allow_prefix: true"),
			want: []string{`policy.yaml:9: rules[0].allow_prefix: needs networks: a prefix wider than one address is allowed only inside named networks`}},
		{name: "pending_timeout with auto", in: withRule("    pending_timeout: 2h"),
			want: []string{`policy.yaml:9: rules[0].pending_timeout: has no effect with approval: auto; remove it`}},
		{name: "break_glass with auto", in: withRule("    break_glass: true"),
			want: []string{`policy.yaml:9: rules[0].break_glass: has no effect with approval: auto (there is no approval to skip); remove it`}},
		{name: "not a boolean", in: withRule("    reason_required: yes"),
			want: []string{`policy.yaml:9: rules[0].reason_required: want true or false, not "yes"`}},
		{name: "negative max_active", in: withRule("    max_active: -1"),
			want: []string{`policy.yaml:9: rules[0].max_active: -1 is too small; want 0 or more`}},
		{name: "bad instance ID", in: withRule("    targets: {instances: [i-web1]}"),
			want: []string{`policy.yaml:4: rules[0].targets.instances[0]: "i-web1" is not an instance ID; want i- followed by 8 or 17 lowercase hex digits`}},
		{name: "bad group ID", in: withRule("    targets: {groups: [sg-XYZ]}"),
			want: []string{`policy.yaml:4: rules[0].targets.groups[0]: "sg-XYZ" is not a security group ID; want sg- followed by 8 or 17 lowercase hex digits, e.g. sg-0123456789abcdef0`}},
		{name: "empty tag selector", in: withRule("    targets: {tags: {}}"),
			want: []string{`policy.yaml:4: rules[0].targets.tags: empty; an empty tag selector would match every target, so name at least one tag`}},
		{name: "no target selector", in: withRule("    targets: {}"),
			want: []string{`policy.yaml:4: rules[0].targets: no selector; want at least one of instances, groups or tags`}},
		{name: "principal not an ARN", in: withRule("    who: {aws_principals: [dev-*]}"),
			want: []string{`policy.yaml:5: rules[0].who.aws_principals[0]: "dev-*" is not an ARN pattern; want e.g. arn:aws:iam::123456789012:role/dev-*`}},
		{name: "user listed twice", in: withRule("    who: {users: [a@example.com, a@example.com]}"),
			want: []string{`policy.yaml:5: rules[0].who.users[1]: "a@example.com" is listed twice`}},
		{name: "missing who", in: withRule("-who"),
			want: []string{`policy.yaml:3: rules[0].who: required; want users, groups or aws_principals`}},
		{name: "ssh method unknown", in: withRule("    ssh: {method: password, principals: [ec2-user]}"),
			want: []string{`policy.yaml:9: rules[0].ssh.method: "password" is not an SSH method; want certificate or instance-connect`}},
		{name: "ssh without principals", in: withRule("    ssh: {method: certificate}"),
			want: []string{`policy.yaml:9: rules[0].ssh.principals: required; want the OS users to log in as, e.g. [ec2-user]`}},
		{name: "ssh principal not a login", in: withRule("    ssh: {principals: [ec2-user, \"root;rm\"]}"),
			want: []string{`policy.yaml:9: rules[0].ssh.principals[1]: "root;rm" is not a login name; want 1-32 letters, digits, '_', '-' or '.', not starting with '-'`}},
		{name: "ssh principals empty", in: withRule("    ssh: {principals: []}"),
			want: []string{`policy.yaml:9: rules[0].ssh.principals: empty list; name at least one item or remove the key`}},
		{name: "ssh unknown key", in: withRule("    ssh: {principal: [ec2-user]}"),
			want: []string{`policy.yaml:9: rules[0].ssh: unknown key "principal" (did you mean "principals"?); want one of method, principals`}},
		{name: "bad name", in: withRule("  - name: dev ssh"),
			want: []string{`policy.yaml:3: rules[0].name: "dev ssh" is not a name; want 1-64 letters, digits, '-', '_' or '.'`}},
		{name: "duplicate names", in: withRule() + strings.Replace(baseRule[strings.Index(baseRule, "  - name"):], "dev-ssh", "DEV-ssh", 1),
			want: []string{`policy.yaml:9: rules[1].name: "DEV-ssh" is already the name of rules[0] (line 3); names must be unique`}},
		{name: "repeated key", in: withRule() + "    max_active: 1\n    max_active: 2\n",
			want: []string{`policy.yaml:10: rules[0].max_active: repeated; give each key once`}},
		{name: "version 2", in: strings.Replace(withRule(), "version: 1", "version: 2", 1),
			want: []string{`policy.yaml:1: version: "2" is not a version this latch reads; want 1`}},
		{name: "missing version", in: strings.Replace(withRule(), "version: 1", "# no version", 1),
			want: []string{`policy.yaml:2: version: required; want version: 1`}},
		{name: "no rules", in: "version: 1\nrules: []\n",
			want: []string{`policy.yaml:2: rules: empty list; name at least one item or remove the key`}},
		{name: "empty file", in: "# nothing\n",
			want: []string{`policy.yaml: the file is empty`}},
		{name: "not a mapping", in: "- version: 1\n",
			want: []string{`policy.yaml:1: (document): want a mapping (key: value lines), not a list`}},
		{name: "syntax error", in: "version: 1\nrules:\n\t- name: dev\n",
			want: []string{`policy.yaml:3: found character that cannot start any token`}},
		{name: "alias", in: withRule("    networks: &corp [198.51.100.0/24]") + "  - name: b\n    networks: *corp\n",
			want: []string{`policy.yaml:11: (document): YAML aliases (*name) are not supported; write the value out`}},
		{name: "two documents", in: withRule() + "---\nversion: 1\n",
			want: []string{`policy.yaml:9: (document): only one YAML document is allowed; remove the second ---`}},
		{name: "every problem at once", in: withRule("    duration: {default: 30m, max: 3x}", "    ports: [tcp/0]", "    colour: blue"),
			want: []string{
				`policy.yaml:6: rules[0].ports[0]: "tcp/0": "0" is not a port or range; want 1-65535 or FROM-TO with FROM <= TO`,
				`policy.yaml:7: rules[0].duration.max: "3x" is not a duration (want e.g. 30m or 2h)`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.Parse("policy.yaml", []byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded (%d rules), want error; input:\n%s", len(p.Rules()), tt.in)
			}
			if latch.ErrorCode(err) != latch.EINVALID {
				t.Errorf("ErrorCode = %q, want %q", latch.ErrorCode(err), latch.EINVALID)
			}
			got := strings.Split(latch.ErrorMessage(err), "\n")
			for _, w := range tt.want {
				if !contains(got, w) {
					t.Errorf("error lacks line\n\t%s\ngot:\n\t%s", w, strings.Join(got, "\n\t"))
				}
			}
		})
	}
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func TestParseDefaults(t *testing.T) {
	p := mustParse(t, withRule("    approval: {approvals: 2, from: [sre, security]}"))
	r := p.Rules()[0]
	if !r.ReasonRequired || r.PendingTimeout != policy.DefaultPendingTimeout || r.MaxActive != 0 || r.BreakGlass || r.AllowPrefix {
		t.Errorf("defaults = reason %v, pending %v, max_active %d, break-glass %v, allow_prefix %v; want true, 1h, 0, false, false",
			r.ReasonRequired, r.PendingTimeout, r.MaxActive, r.BreakGlass, r.AllowPrefix)
	}
	if r.DefaultDuration != 30*time.Minute || r.MaxDuration != 2*time.Hour || r.Approvals != 2 || r.Line != 3 {
		t.Errorf("rule = %+v", r)
	}
}

func TestParseSSH(t *testing.T) {
	if r := mustParse(t, baseRule).Rules()[0]; r.SSH != nil {
		t.Errorf("a rule without ssh: SSH = %+v; want nil (no SSH login)", r.SSH)
	}
	r := mustParse(t, withRule("    ssh: {principals: [ec2-user, ubuntu]}")).Rules()[0]
	if r.SSH == nil || r.SSH.Method != latch.SSHCertificate || strings.Join(r.SSH.Principals, ",") != "ec2-user,ubuntu" {
		t.Errorf("SSH = %+v; want certificate for ec2-user, ubuntu", r.SSH)
	}
	p := mustParse(t, withRule("    ssh: {method: instance-connect, principals: [ec2-user]}"))
	if r := p.Rules()[0]; r.SSH.Method != latch.SSHInstanceConnect {
		t.Errorf("method = %q; want instance-connect", r.SSH.Method)
	}
	r = p.Rules()[0]
	r.SSH.Principals[0] = "root"
	if again, _ := p.Rule("dev-ssh"); again.SSH.Principals[0] != "ec2-user" {
		t.Errorf("changing a returned rule's principals changed the policy: %v", again.SSH.Principals)
	}
}

func TestRulesReturnsACopy(t *testing.T) {
	p := mustParse(t, withRule("    networks: [198.51.100.0/24]"))
	r := p.Rules()
	r[0].Who.Groups[0] = "everyone"
	r[0].Targets.Tags["env"] = "prod"
	r[0].Name = "changed"
	if again := p.Rules()[0]; again.Who.Groups[0] != "developers" || again.Targets.Tags["env"] != "dev" || again.Name != "dev-ssh" {
		t.Errorf("changing Rules() changed the policy: %+v", again)
	}
}

func TestLoad(t *testing.T) {
	p, err := policy.Load("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range p.Rules() {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, ","); got != "dev-ssh,prod-ssh,prod-db" {
		t.Errorf("rules = %s", got)
	}
	if r, ok := p.Rule("prod-db"); !ok || r.Approvals != 2 || r.Line != 32 {
		t.Errorf("Rule(prod-db) = %+v, %v; want 2 approvals, line 32", r, ok)
	}
	if _, ok := p.Rule("nope"); ok {
		t.Errorf("Rule(nope) found a rule")
	}
	if _, err := policy.Load("testdata/missing.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) err = %v, want not-exist", err)
	}
}

func mustParse(t *testing.T, yaml string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("policy.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("Parse: %v\ninput:\n%s", err, yaml)
	}
	return p
}
