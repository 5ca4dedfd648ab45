package policy

import (
	"errors"
	"net/netip"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/latchdev/latch"
)

// maxNameLen bounds rule and test names, which appear in records and
// command lines.
const maxNameLen = 64

// policy reads the top level of a policy file.
func (d *decoder) policy(root *yaml.Node) ([]Rule, []Person, []latch.Route) {
	m := d.mapping(root, "(document)", "version", "rules", "people", "notify")
	if m == nil {
		return nil, nil, nil
	}
	if v := d.require(root, m, "", "version", "version: 1"); v != nil {
		if v.Kind != yaml.ScalarNode || v.Value != "1" {
			d.failf(v, "version", "%s is not a version this latch reads; want 1", describe(v))
		}
	}
	items := d.list(d.require(root, m, "", "rules", "a list of rules"), "rules")
	rules := make([]Rule, 0, len(items))
	names := make(map[string]int) // lower-cased name → index, to refuse near-duplicates too
	for i, item := range items {
		path := index("rules", i)
		r := d.rule(item, path)
		if r.Name != "" {
			key := strings.ToLower(r.Name)
			if j, dup := names[key]; dup {
				d.failf(item, join(path, "name"), "%q is already the name of rules[%d] (line %d); names must be unique", r.Name, j, rules[j].Line)
			} else {
				names[key] = i
			}
		}
		rules = append(rules, r)
	}
	return rules, d.people(m["people"], "people"), d.notify(m["notify"], "notify")
}

// rule reads and checks one rule.
func (d *decoder) rule(n *yaml.Node, path string) Rule {
	r := Rule{Line: n.Line, ReasonRequired: true}
	if isNull(n) {
		d.failf(n, path, "empty; want a rule with name, targets, who, ports, duration and approval")
		return r
	}
	m := d.mapping(n, path, "name", "description", "targets", "who", "ports", "duration", "approval",
		"networks", "allow_prefix", "max_active", "reason_required", "pending_timeout", "break_glass", "ssh", "ssm", "notify")
	if m == nil {
		return r
	}
	if v := d.require(n, m, path, "name", "a short unique name such as dev-ssh"); v != nil {
		r.Name = d.name(v, join(path, "name"))
	}
	r.Description = d.str(m["description"], join(path, "description"))
	r.Targets = d.targets(d.require(n, m, path, "targets", "instances, groups or tags"), join(path, "targets"))
	r.Who = d.who(d.require(n, m, path, "who", "users, groups or aws_principals"), join(path, "who"))
	ports := m["ports"]
	if m["ssm"] == nil {
		// Without Session Manager, a rule that opens no port gives nothing.
		ports = d.require(n, m, path, "ports", "a list such as [tcp/22], or an ssm section")
	}
	d.strs(ports, join(path, "ports"), func(n *yaml.Node, p, s string) bool {
		spec, err := parsePortSpec(s)
		if err != nil {
			d.failf(n, p, "%s", err)
			return false
		}
		if i := slices.Index(r.Ports, spec); i >= 0 {
			d.failf(n, p, "%q is listed twice (as %s)", s, r.Ports[i])
			return false
		}
		r.Ports = append(r.Ports, spec)
		return true
	})
	d.durations(&r, d.require(n, m, path, "duration", "{default: 30m, max: 2h}"), join(path, "duration"))
	auto := d.approval(&r, d.require(n, m, path, "approval", "auto or {approvals: 1, from: [sre]}"), join(path, "approval"))

	d.strs(m["networks"], join(path, "networks"), func(n *yaml.Node, p, s string) bool {
		network, ok := d.network(n, p, s)
		if ok {
			r.Networks = append(r.Networks, network)
		}
		return ok
	})
	r.AllowPrefix = d.boolean(m["allow_prefix"], join(path, "allow_prefix"), false)
	if r.AllowPrefix && m["networks"] == nil {
		d.failf(m["allow_prefix"], join(path, "allow_prefix"), "needs networks: a prefix wider than one address is allowed only inside named networks")
	}
	r.MaxActive = d.integer(m["max_active"], join(path, "max_active"), 0)
	r.ReasonRequired = d.boolean(m["reason_required"], join(path, "reason_required"), true)
	r.BreakGlass = d.boolean(m["break_glass"], join(path, "break_glass"), false)

	if v := m["pending_timeout"]; v != nil {
		r.PendingTimeout = d.duration(v, join(path, "pending_timeout"))
		if auto {
			d.failf(v, join(path, "pending_timeout"), "has no effect with approval: auto; remove it")
		}
	}
	if r.Approvals > 0 && r.PendingTimeout == 0 {
		r.PendingTimeout = DefaultPendingTimeout
	}
	if v := m["ssh"]; v != nil {
		r.SSH = d.ssh(v, join(path, "ssh"))
	}
	if v := m["ssm"]; v != nil {
		r.SSM = d.ssm(v, join(path, "ssm"))
	}
	r.Notify = d.notify(m["notify"], join(path, "notify"))
	if r.BreakGlass && auto {
		d.failf(m["break_glass"], join(path, "break_glass"), "has no effect with approval: auto (there is no approval to skip); remove it")
	}
	return r
}

// ssh reads ssh: {method, principals}.
func (d *decoder) ssh(n *yaml.Node, path string) *SSH {
	s := &SSH{Method: latch.SSHCertificate}
	m := d.mapping(n, path, "method", "principals")
	if m == nil {
		return s
	}
	if v := m["method"]; v != nil {
		if str, ok := d.scalar(v, join(path, "method"), "an SSH method"); ok {
			if method, err := latch.ParseSSHMethod(str); err != nil {
				d.failf(v, join(path, "method"), "%q is not an SSH method; want certificate or instance-connect", str)
			} else {
				s.Method = method
			}
		}
	}
	s.Principals = d.strs(d.require(n, m, path, "principals", "the OS users to log in as, e.g. [ec2-user]"), join(path, "principals"),
		func(n *yaml.Node, p, str string) bool {
			if err := latch.CheckLogin("", str); err != nil {
				d.failf(n, p, "%s", message(err))
				return false
			}
			return true
		})
	return s
}

// ssm reads ssm: {documents, ports}.
func (d *decoder) ssm(n *yaml.Node, path string) *SSM {
	s := &SSM{}
	m := d.mapping(n, path, "documents", "ports")
	if m == nil {
		return s
	}
	docsPath := join(path, "documents")
	d.strs(d.require(n, m, path, "documents", "the sessions the rule gives: shell, port-forward or ssh, e.g. [shell]"), docsPath,
		func(n *yaml.Node, p, str string) bool {
			doc, err := latch.ParseSSMDocument(str)
			if err != nil {
				d.failf(n, p, "%s", message(err))
				return false
			}
			if slices.Contains(s.Documents, doc) {
				d.failf(n, p, "%q is listed twice (as %s)", str, doc)
				return false
			}
			s.Documents = append(s.Documents, doc)
			return true
		})
	takesPort := slices.ContainsFunc(s.Documents, latch.SSMDocument.TakesPort)
	portsPath := join(path, "ports")
	v := m["ports"]
	switch {
	case v == nil && slices.Contains(s.Documents, latch.DocPortForward):
		d.failf(n, portsPath, "required with port-forward; want the tcp ports on the instance it may reach, e.g. [5432] or [8000-8100]")
		return s
	case v == nil && slices.Contains(s.Documents, latch.DocSSH):
		s.Ports = []latch.PortRange{{From: 22, To: 22}}
		return s
	case v != nil && !takesPort && len(s.Documents) > 0:
		d.failf(v, portsPath, "not allowed with only shell, which reaches no port; remove it, or list port-forward or ssh")
		return s
	}
	for i, item := range d.list(v, portsPath) {
		p := index(portsPath, i)
		str, ok := d.scalar(item, p, "a tcp port such as 22 or a range such as 8000-8100")
		if !ok {
			continue
		}
		r, err := latch.ParsePorts(latch.TCP, str)
		if err != nil {
			d.failf(item, p, "%s", message(err))
			continue
		}
		if slices.Contains(s.Ports, r) {
			d.failf(item, p, "%q is listed twice", str)
			continue
		}
		s.Ports = append(s.Ports, r)
	}
	return s
}

// name checks a rule name.
func (d *decoder) name(n *yaml.Node, path string) string {
	s, ok := d.scalar(n, path, "a name")
	if !ok {
		return ""
	}
	if s == "" || len(s) > maxNameLen || strings.IndexFunc(s, func(c rune) bool {
		return !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.')
	}) >= 0 {
		d.failf(n, path, "%q is not a name; want 1-%d letters, digits, '-', '_' or '.'", s, maxNameLen)
		return ""
	}
	return s
}

// targets reads a rule's target selectors.
func (d *decoder) targets(n *yaml.Node, path string) Targets {
	var t Targets
	m := d.mapping(n, path, "instances", "groups", "tags")
	if m == nil {
		return t
	}
	d.strs(m["instances"], join(path, "instances"), func(n *yaml.Node, p, s string) bool {
		id, err := latch.ParseInstanceID(s)
		if err != nil {
			d.failf(n, p, "%s", message(err))
			return false
		}
		t.Instances = append(t.Instances, id)
		return true
	})
	d.strs(m["groups"], join(path, "groups"), func(n *yaml.Node, p, s string) bool {
		id, err := latch.ParseGroupID(s)
		if err != nil {
			d.failf(n, p, "%s", message(err))
			return false
		}
		t.Groups = append(t.Groups, id)
		return true
	})
	if tags := m["tags"]; tags != nil {
		if d.mapping(tags, join(path, "tags")) != nil && len(tags.Content) == 0 {
			d.failf(tags, join(path, "tags"), "empty; an empty tag selector would match every target, so name at least one tag")
		}
		for i := 0; tags.Kind == yaml.MappingNode && i+1 < len(tags.Content); i += 2 {
			k, v := tags.Content[i], tags.Content[i+1]
			p := join(join(path, "tags"), k.Value)
			switch val, ok := d.scalar(v, p, "a tag value"); {
			case k.Kind != yaml.ScalarNode: // reported by mapping
			case strings.TrimSpace(k.Value) == "":
				d.failf(k, join(path, "tags"), "a tag key cannot be empty")
			case isNull(v):
				d.failf(v, p, `no value; write "" to match an empty tag value`)
			case ok:
				if t.Tags == nil {
					t.Tags = make(map[string]string)
				}
				t.Tags[k.Value] = val
			}
		}
	}
	if len(m) == 0 {
		d.failf(n, path, "no selector; want at least one of instances, groups or tags")
	}
	return t
}

// who reads a rule's caller selectors.
func (d *decoder) who(n *yaml.Node, path string) Who {
	var w Who
	m := d.mapping(n, path, "users", "groups", "aws_principals")
	if m == nil {
		return w
	}
	w.Users = d.strs(m["users"], join(path, "users"), nil)
	w.Groups = d.strs(m["groups"], join(path, "groups"), nil)
	w.AWSPrincipals = d.strs(m["aws_principals"], join(path, "aws_principals"), d.arnPattern)
	if len(m) == 0 {
		d.failf(n, path, "nobody; want at least one of users, groups or aws_principals")
	}
	return w
}

// durations reads duration: {default, max}.
func (d *decoder) durations(r *Rule, n *yaml.Node, path string) {
	m := d.mapping(n, path, "default", "max")
	if m == nil {
		return
	}
	if v := d.require(n, m, path, "max", "the longest a grant may last, e.g. 2h"); v != nil {
		r.MaxDuration = d.duration(v, join(path, "max"))
		if r.MaxDuration > DurationCap {
			d.failf(v, join(path, "max"), "%s is longer than latch allows; want at most %s", formatDuration(r.MaxDuration), formatDuration(DurationCap))
			r.MaxDuration = 0
		}
	}
	if v := d.require(n, m, path, "default", "the duration used when a request gives none, e.g. 30m"); v != nil {
		r.DefaultDuration = d.duration(v, join(path, "default"))
		if r.MaxDuration > 0 && r.DefaultDuration > r.MaxDuration {
			d.failf(v, join(path, "default"), "%s is more than max (%s); want default <= max", formatDuration(r.DefaultDuration), formatDuration(r.MaxDuration))
		}
	}
}

// arnPattern checks one aws_principals entry: an ARN, with * and ? as
// wildcards and no other pattern characters (a store matches patterns
// with SQLite's GLOB, where [ opens a class).
func (d *decoder) arnPattern(n *yaml.Node, p, s string) bool {
	switch {
	case !strings.HasPrefix(s, "arn:"):
		d.failf(n, p, "%q is not an ARN pattern; want e.g. arn:aws:iam::123456789012:role/dev-*", s)
		return false
	case strings.ContainsAny(s, "[]"):
		d.failf(n, p, "%q has [ or ], which no ARN has; the only wildcards are * and ?", s)
		return false
	}
	return true
}

// approval reads approval: auto | {approvals: N, from: [groups]} |
// {approvals: N, from: {users, groups, aws_principals}}, and reports
// whether it is auto.
func (d *decoder) approval(r *Rule, n *yaml.Node, path string) (auto bool) {
	if n == nil {
		return false
	}
	if n.Kind == yaml.ScalarNode {
		if n.Value != "auto" {
			d.failf(n, path, "%s is not an approval; want auto or {approvals: 1, from: [sre]}", describe(n))
			return false
		}
		return true
	}
	m := d.mapping(n, path, "approvals", "from")
	if m == nil {
		return false
	}
	if v := d.require(n, m, path, "approvals", "how many approvals a request needs, 1 or more"); v != nil {
		r.Approvals = d.integer(v, join(path, "approvals"), 1)
	}
	from := d.require(n, m, path, "from", "who may approve: groups, e.g. [sre], or {users: [...], groups: [...], aws_principals: [...]}")
	switch {
	case from == nil:
	case from.Kind == yaml.MappingNode:
		r.Approvers = d.who(from, join(path, "from"))
	default:
		r.Approvers.Groups = d.strs(from, join(path, "from"), nil)
	}
	return false
}

// message returns what a latch error says without its field prefix, which
// the field path in a file error replaces.
func message(err error) string {
	if e, ok := errors.AsType[*latch.Error](err); ok {
		return e.Message
	}
	return err.Error()
}

// network reads one entry of networks: a CIDR, or one address.
func (d *decoder) network(n *yaml.Node, path, s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil || a.Zone() != "" {
			d.failf(n, path, "%q is not a network; want a CIDR such as 198.51.100.0/24 or 2001:db8::/48", s)
			return netip.Prefix{}, false
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	switch {
	case p.Bits() == 0:
		d.failf(n, path, "%q is the whole internet; networks narrow where requests may come from, and latch never opens to everyone. Name your own ranges", s)
	case p != p.Masked():
		d.failf(n, path, "%q has host bits set; did you mean %s?", s, p.Masked())
	case p.Addr().Is4In6():
		d.failf(n, path, "%q is an IPv4-mapped IPv6 network; write it as IPv4", s)
	default:
		return p, true
	}
	return netip.Prefix{}, false
}

// parsePortSpec reads PROTOCOL/PORTS, e.g. tcp/22, udp/60000-61000, icmp/8,
// icmpv6/all. The caller names the place (rules[0].ports[1]), so the
// error has no field of its own.
func parsePortSpec(s string) (PortSpec, error) {
	p, r, err := latch.ParsePortSpec("", s, "")
	return PortSpec{Protocol: p, Ports: r}, err
}
