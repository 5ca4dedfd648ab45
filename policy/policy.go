package policy

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

// DurationCap is the longest any rule may let a grant last.
const DurationCap = 12 * time.Hour

// DefaultPendingTimeout is how long a request waits for its approvals when
// a rule does not say.
const DefaultPendingTimeout = time.Hour

// Policy is a loaded, validated policy file. It is immutable once loaded
// and safe for concurrent use.
type Policy struct {
	file     string
	rules    []Rule
	people   []Person
	notify   []latch.Route // routes for events no rule decided
	webhooks []webhookRef  // every webhook named, for the server to check
	slacks   []slackRef    // every Slack channel named, for warnings
}

// Rule is one rule of a policy, as its file states it, with defaults
// applied.
type Rule struct {
	Name        string
	Description string
	Line        int // the line in the policy file where the rule starts

	Targets Targets    // which targets the rule is about
	Who     Who        // who may ask under it
	Ports   []PortSpec // what may be opened; empty only when SSM is set

	DefaultDuration time.Duration // used when a request gives none
	MaxDuration     time.Duration // at most DurationCap

	Approvals      int           // approvals a request needs; 0 means auto-approved
	Approvers      Who           // who may approve; empty when Approvals is 0
	PendingTimeout time.Duration // how long a request may wait for approval; 0 when Approvals is 0
	BreakGlass     bool          // a requester may skip approval by asking for break-glass with a reason

	Networks       []netip.Prefix // the requester's source must fall inside one; empty means anywhere
	AllowPrefix    bool           // the source may be wider than one address (still inside Networks)
	MaxActive      int            // concurrent active grants per requester under this rule; 0 means no limit
	ReasonRequired bool           // a request must say why (true unless the file says false)

	SSH *SSH // how `latch ssh` logs in under the rule; nil means it gives no SSH login
	SSM *SSM // the Session Manager sessions the rule gives; nil means none

	Notify []latch.Route // where events about requests and grants under the rule go; nil means nowhere
}

// SSH is a rule's ssh section: which credential latch hands out for a
// grant under the rule, and as which users.
type SSH struct {
	Method latch.SSHMethod // certificate (the default) or instance-connect
	// Principals are the OS users a login may use: a certificate's
	// principals, or the users Instance Connect may push a key for.
	Principals []string
}

// SSM is a rule's ssm section: the Session Manager sessions a grant under
// the rule may start, which open no port at all. Networks and allow_prefix
// do not apply to them: there is no source address.
type SSM struct {
	Documents []latch.SSMDocument // at least one, each once, in file order
	// Ports are the tcp ports on the instance that port-forward and ssh
	// sessions may reach; [22] when the documents include ssh and the
	// file gives none; empty when the only document is shell.
	Ports []latch.PortRange
}

// Allows reports whether the section lets a session with doc start, to
// port on the instance for documents that reach one (port is ignored for
// a shell).
func (s *SSM) Allows(doc latch.SSMDocument, port int) bool {
	if s == nil || !slices.Contains(s.Documents, doc) {
		return false
	}
	return !doc.TakesPort() || s.allowsPort(port)
}

// allowsPort reports whether one of the section's ranges holds port.
func (s *SSM) allowsPort(port int) bool {
	return slices.ContainsFunc(s.Ports, func(r latch.PortRange) bool { return r.From <= port && port <= r.To })
}

// Targets selects targets. A target matches if any non-empty selector does.
type Targets struct {
	Instances []latch.InstanceID
	Groups    []latch.GroupID
	Tags      map[string]string // every tag listed must be on the target, with this value
}

// Who selects callers, or approvers. A caller matches if any entry does.
type Who = latch.Selector

// PortSpec is one protocol and port range a rule may open. For icmp and
// icmpv6, Ports holds type and code as latch.PortRange does, -1 meaning all.
type PortSpec struct {
	Protocol latch.Protocol
	Ports    latch.PortRange
}

// String returns the spec as a policy file writes it, e.g. tcp/22, icmp/8,
// icmpv6/all.
func (s PortSpec) String() string { return formatPorts(s.Protocol, s.Ports) }

// Describe returns the spec for people: as the file writes it for tcp and
// udp (tcp/22), in words for ICMP (icmp type 8 (echo request), icmpv6 all
// types).
func (s PortSpec) Describe() string { return describePorts(s.Protocol, s.Ports) }

// formatPorts writes a protocol and range so that parsePortSpec reads it
// back: ICMP's "any code" is left off, so type 8 is icmp/8, not icmp/8--1,
// and every type is icmp/all.
func formatPorts(proto latch.Protocol, r latch.PortRange) string {
	if proto.IsICMP() {
		switch {
		case r.From == -1:
			return fmt.Sprintf("%s/all", proto)
		case r.To == -1:
			return fmt.Sprintf("%s/%d", proto, r.From)
		}
	}
	return fmt.Sprintf("%s/%s", proto, r)
}

// describePorts is formatPorts for people: ICMP in words.
func describePorts(proto latch.Protocol, r latch.PortRange) string {
	if proto.IsICMP() {
		return latch.DescribePorts(proto, r)
	}
	return formatPorts(proto, r)
}

// Load reads and parses the policy file at path. Problems with its content
// are an EINVALID *latch.Error listing each as "path:line: field: message".
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load policy: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates a policy file's content. name is the file's
// name for messages. Problems are an EINVALID *latch.Error listing each as
// "name:line: field: message", e.g.
//
//	policy.yaml:14: rules[1].duration.max: "3x" is not a duration (want e.g. 30m or 2h)
func Parse(name string, data []byte) (*Policy, error) {
	d := &decoder{file: name}
	root := d.document(data)
	if root == nil {
		return nil, d.err()
	}
	rules, people, notify := d.policy(root)
	if err := d.err(); err != nil {
		return nil, err
	}
	return &Policy{file: name, rules: rules, people: people, notify: notify, webhooks: d.webhooks, slacks: d.slacks}, nil
}

// Rules returns a copy of the policy's rules, in file order.
func (p *Policy) Rules() []Rule {
	out := make([]Rule, len(p.rules))
	for i, r := range p.rules {
		out[i] = r.clone()
	}
	return out
}

// Rule returns a copy of the rule named name, and whether there is one.
func (p *Policy) Rule(name string) (Rule, bool) {
	for _, r := range p.rules {
		if r.Name == name {
			return r.clone(), true
		}
	}
	return Rule{}, false
}

// clone returns a deep copy of r, so callers cannot change a loaded policy.
func (r Rule) clone() Rule {
	r.Targets.Instances = slices.Clone(r.Targets.Instances)
	r.Targets.Groups = slices.Clone(r.Targets.Groups)
	r.Targets.Tags = maps.Clone(r.Targets.Tags)
	r.Who = r.Who.Clone()
	r.Ports = slices.Clone(r.Ports)
	r.Approvers = r.Approvers.Clone()
	r.Networks = slices.Clone(r.Networks)
	r.Notify = slices.Clone(r.Notify)
	if r.SSH != nil {
		ssh := *r.SSH
		ssh.Principals = slices.Clone(ssh.Principals)
		r.SSH = &ssh
	}
	if r.SSM != nil {
		ssm := *r.SSM
		ssm.Documents = slices.Clone(ssm.Documents)
		ssm.Ports = slices.Clone(ssm.Ports)
		r.SSM = &ssm
	}
	return r
}

// formatDuration writes d as a policy file would: 2h, 30m, 1h30m, 45s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
