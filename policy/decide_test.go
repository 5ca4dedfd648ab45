package policy_test

import (
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/policy"
)

// decidePolicy exercises each branch of Decide. Rule order matters: see
// prod-ssh and oncall-ssh.
const decidePolicy = `version: 1
rules:
  - name: dev-ssh
    targets: {tags: {env: dev, team: web}}
    who:
      users: [Carol@Example.com]
      groups: [developers]
      aws_principals: ["arn:aws:iam::123456789012:role/dev-*", "arn:aws:sts::123456789012:assumed-role/ops/?ob"]
    ports: [tcp/22, tcp/8000-8080, icmp/8]
    duration: {default: 30m, max: 2h}
    approval: auto
    networks: [198.51.100.0/24, 2001:db8::/48]
    max_active: 2
  - name: office-rdp
    targets: {groups: [sg-0f00dcafe0000b001]}
    who: {groups: [developers]}
    ports: [tcp/3389]
    duration: {default: 1h, max: 1h}
    approval: auto
    networks: [192.0.2.0/24]
    allow_prefix: true
    reason_required: false
  - name: prod-ssh
    targets: {instances: [i-0f0e0d0c0b0a00002], tags: {env: prod}}
    who: {groups: [developers, sre]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: {approvals: 1, from: [sre]}
    pending_timeout: 15m
    break_glass: true
  - name: oncall-ssh
    targets: {tags: {env: prod}}
    who: {groups: [oncall]}
    ports: [tcp/22]
    duration: {default: 1h, max: 4h}
    approval: auto
  - name: prod-db
    targets: {tags: {env: prod}}
    who: {groups: [dba]}
    ports: [tcp/5432]
    duration: {default: 15m, max: 1h}
    approval: {approvals: 2, from: [sre, security]}
  - name: lab-ssh
    targets: {tags: {env: lab}}
    who: {groups: [developers]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: {approvals: 1, from: [sre]}
    reason_required: false
    break_glass: true
`

// Fixtures, never modified.
var (
	alice   = latch.Identity{Kind: latch.KindOIDC, Subject: "alice@example.com", Groups: []string{"developers"}}
	both    = latch.Identity{Kind: latch.KindOIDC, Subject: "alice@example.com", Groups: []string{"developers", "oncall"}}
	bob     = latch.Identity{Kind: latch.KindOIDC, Subject: "bob@example.com", Groups: []string{"oncall"}}
	carol   = latch.Identity{Kind: latch.KindOIDC, Subject: "carol@example.com"}
	dana    = latch.Identity{Kind: latch.KindOIDC, Subject: "dana@example.com", Groups: []string{"dba"}}
	mallory = latch.Identity{Kind: latch.KindOIDC, Subject: "mallory@example.net", Groups: []string{"contractors"}}

	devBox  = latch.Target{Region: "us-east-1", InstanceID: "i-0a0b0c0d0e0f00001", GroupID: "sg-0a0b0c0d0e0f00001", Tags: map[string]string{"env": "dev", "team": "web"}}
	prodBox = latch.Target{Region: "us-east-1", InstanceID: "i-0f0e0d0c0b0a00002", GroupID: "sg-0f0e0d0c0b0a00002", Tags: map[string]string{"env": "prod"}}
	labBox  = latch.Target{InstanceID: "i-0c0c0c0c0c0c00003", Tags: map[string]string{"env": "lab"}}
	office  = latch.Target{GroupID: "sg-0f00dcafe0000b001"}
)

func iam(arn string) latch.Identity { return latch.Identity{Kind: latch.KindIAM, Subject: arn} }

func withTags(t latch.Target, tags map[string]string) latch.Target { t.Tags = tags; return t }

// ask builds a query for ports ("tcp/22", "icmp/8-0") from an address in
// the dev networks, with a reason.
func ask(who latch.Identity, target latch.Target, ports string, opts ...func(*policy.Query)) policy.Query {
	proto, r, _ := strings.Cut(ports, "/")
	p, _ := latch.ParseProtocol(proto)
	pr, err := latch.ParsePorts(p, r)
	if err != nil {
		panic(err)
	}
	q := policy.Query{Who: who, Target: target, Protocol: p, Ports: pr, Source: netip.MustParsePrefix("198.51.100.7/32"), Reason: "deploy"}
	for _, o := range opts {
		o(&q)
	}
	return q
}

func from(src string) func(*policy.Query) {
	return func(q *policy.Query) { q.Source = netip.MustParsePrefix(src) }
}
func lasting(d time.Duration) func(*policy.Query) { return func(q *policy.Query) { q.Duration = d } }
func because(r string) func(*policy.Query)        { return func(q *policy.Query) { q.Reason = r } }
func breakGlass(q *policy.Query)                  { q.BreakGlass = true }
func active(rule string, n int) func(*policy.Query) {
	return func(q *policy.Query) {
		q.Active = func(r string) int {
			if r == rule {
				return n
			}
			return 0
		}
	}
}

func TestDecide(t *testing.T) {
	p := mustParse(t, decidePolicy)
	allowed := func(rule string, d time.Duration) policy.Decision {
		return policy.Decision{Outcome: policy.Allowed, Rule: rule, Duration: d}
	}
	denied := func(rule string, d time.Duration) policy.Decision {
		return policy.Decision{Outcome: policy.Denied, Rule: rule, Duration: d}
	}
	tests := []struct {
		name string
		q    policy.Query
		want policy.Decision // compared whole, except Why
		why  string          // part of Why
	}{
		// Each branch, in the order the deciding rule checks them.
		{"auto with the default duration", ask(alice, devBox, "tcp/22"), allowed("dev-ssh", 30*time.Minute),
			`rule "dev-ssh" allows tcp/22 on i-0a0b0c0d0e0f00001 (sg-0a0b0c0d0e0f00001) in us-east-1 for 30m without approval`},
		{"auto with a duration asked for", ask(alice, devBox, "tcp/22", lasting(2*time.Hour)), allowed("dev-ssh", 2*time.Hour), "for 2h"},
		{"duration over max", ask(alice, devBox, "tcp/22", lasting(3*time.Hour)), denied("dev-ssh", 0),
			`rule "dev-ssh": allows at most 2h; 3h was asked for`},
		{"no reason", ask(alice, devBox, "tcp/22", because("")), denied("dev-ssh", 30*time.Minute), "a reason is required"},
		{"a blank reason", ask(alice, devBox, "tcp/22", because("  ")), denied("dev-ssh", 30*time.Minute), "a reason is required"},
		{"source outside networks", ask(alice, devBox, "tcp/22", from("203.0.113.9/32")), denied("dev-ssh", 30*time.Minute),
			"requests must come from 198.51.100.0/24 or 2001:db8::/48; 203.0.113.9/32 is outside"},
		{"IPv6 source inside networks", ask(alice, devBox, "tcp/22", from("2001:db8::7/128")), allowed("dev-ssh", 30*time.Minute), ""},
		{"IPv4-mapped source inside networks", ask(alice, devBox, "tcp/22", from("::ffff:198.51.100.7/128")), allowed("dev-ssh", 30*time.Minute), ""},
		{"wide source without allow_prefix", ask(alice, devBox, "tcp/22", from("198.51.100.0/28")), denied("dev-ssh", 30*time.Minute),
			"opens to one address only (/32); 198.51.100.0/28 is a network"},
		{"wide source with allow_prefix", ask(alice, office, "tcp/3389", from("192.0.2.0/26"), because("")),
			policy.Decision{Outcome: policy.Allowed, Rule: "office-rdp", Duration: time.Hour, Wide: true}, ""},
		{"wide source wider than networks", ask(alice, office, "tcp/3389", from("192.0.0.0/16")), denied("office-rdp", time.Hour), "192.0.0.0/16 is outside"},
		{"max_active reached", ask(alice, devBox, "tcp/22", active("dev-ssh", 2)), denied("dev-ssh", 30*time.Minute),
			"allows 2 active grants per requester and alice@example.com has 2; end one first"},
		{"max_active counts only its rule", ask(alice, devBox, "tcp/22", active("prod-ssh", 5)), allowed("dev-ssh", 30*time.Minute), ""},
		{"below max_active", ask(alice, devBox, "tcp/22", active("dev-ssh", 1)), allowed("dev-ssh", 30*time.Minute), ""},
		{"needs approval", ask(alice, prodBox, "tcp/22"),
			policy.Decision{Outcome: policy.NeedsApproval, Rule: "prod-ssh", Duration: 30 * time.Minute, ApprovalsNeeded: 1, Approvers: latch.Selector{Groups: []string{"sre"}}, PendingTimeout: 15 * time.Minute},
			"once it has 1 approval from sre within 15m"},
		{"needs two approvals", ask(dana, prodBox, "tcp/5432"),
			policy.Decision{Outcome: policy.NeedsApproval, Rule: "prod-db", Duration: 15 * time.Minute, ApprovalsNeeded: 2, Approvers: latch.Selector{Groups: []string{"sre", "security"}}, PendingTimeout: time.Hour},
			"2 approvals from sre or security within 1h"},
		{"break-glass", ask(alice, prodBox, "tcp/22", breakGlass),
			policy.Decision{Outcome: policy.Allowed, Rule: "prod-ssh", Duration: 30 * time.Minute, BreakGlass: true}, "by break-glass, skipping 1 approval from sre"},
		{"break-glass still needs the reason the rule requires", ask(alice, prodBox, "tcp/22", breakGlass, because("")), denied("prod-ssh", 30*time.Minute), "a reason is required"},
		{"break-glass needs a reason even where others do not", ask(alice, labBox, "tcp/22", breakGlass, because("")), denied("lab-ssh", 30*time.Minute),
			"break-glass needs a reason"},
		{"no reason where none is required", ask(alice, labBox, "tcp/22", because("")),
			policy.Decision{Outcome: policy.NeedsApproval, Rule: "lab-ssh", Duration: 30 * time.Minute, ApprovalsNeeded: 1, Approvers: latch.Selector{Groups: []string{"sre"}}, PendingTimeout: time.Hour}, ""},
		{"break-glass where the rule has none", ask(dana, prodBox, "tcp/5432", breakGlass), denied("prod-db", 15*time.Minute),
			`rule "prod-db": does not allow break-glass; ask without it and get 2 approvals from sre or security`},
		{"break-glass on an auto rule", ask(alice, devBox, "tcp/22", breakGlass), allowed("dev-ssh", 30*time.Minute), "(break-glass was not needed)"},

		// Rule order: the first applicable rule decides, even when it denies.
		{"first rule wins over a laxer later one", ask(both, prodBox, "tcp/22"),
			policy.Decision{Outcome: policy.NeedsApproval, Rule: "prod-ssh", Duration: 30 * time.Minute, ApprovalsNeeded: 1, Approvers: latch.Selector{Groups: []string{"sre"}}, PendingTimeout: 15 * time.Minute}, ""},
		{"first rule denies though a later one allows", ask(both, prodBox, "tcp/22", lasting(3*time.Hour)), denied("prod-ssh", 0), "allows at most 1h"},
		{"later rule for someone the first does not name", ask(bob, prodBox, "tcp/22", lasting(3*time.Hour)), allowed("oncall-ssh", 3*time.Hour), ""},

		// Who.
		{"user, case-insensitively", ask(carol, devBox, "tcp/22"), allowed("dev-ssh", 30*time.Minute), ""},
		{"role ARN by wildcard", ask(iam("arn:aws:iam::123456789012:role/dev-web"), devBox, "tcp/22"), allowed("dev-ssh", 30*time.Minute), ""},
		{"assumed role by its role ARN", ask(iam("arn:aws:sts::123456789012:assumed-role/dev-web/alice"), devBox, "tcp/22"), allowed("dev-ssh", 30*time.Minute), ""},
		{"role in another account", ask(iam("arn:aws:iam::999999999999:role/dev-web"), devBox, "tcp/22"), denied("", 0), "no policy rule lets arn:aws:iam::999999999999:role/dev-web"},
		{"role that is not dev-", ask(iam("arn:aws:iam::123456789012:role/devops"), devBox, "tcp/22"), denied("", 0), "no policy rule"},
		{"session by ? wildcard", ask(iam("arn:aws:sts::123456789012:assumed-role/ops/rob"), devBox, "tcp/22"), allowed("dev-ssh", 30*time.Minute), ""},
		{"? matches one character only", ask(iam("arn:aws:sts::123456789012:assumed-role/ops/bobby"), devBox, "tcp/22"), denied("", 0), "no policy rule"},
		{"an ARN subject that is not aws-iam", ask(latch.Identity{Kind: latch.KindOIDC, Subject: "arn:aws:iam::123456789012:role/dev-web"}, devBox, "tcp/22"), denied("", 0), "no policy rule"},
		{"a group nobody named", ask(mallory, prodBox, "tcp/22"), denied("", 0),
			"no policy rule lets mallory@example.net open tcp/22 on i-0f0e0d0c0b0a00002 (sg-0f0e0d0c0b0a00002) in us-east-1"},

		// Targets.
		{"tags must all match", ask(alice, withTags(devBox, map[string]string{"env": "dev"}), "tcp/22"), denied("", 0), "no policy rule"},
		{"extra tags do not matter", ask(alice, withTags(devBox, map[string]string{"env": "dev", "team": "web", "owner": "x"}), "tcp/22"), allowed("dev-ssh", 30*time.Minute), ""},
		{"instance selector without tags", ask(alice, withTags(prodBox, nil), "tcp/22"), policy.Decision{Outcome: policy.NeedsApproval, Rule: "prod-ssh", Duration: 30 * time.Minute, ApprovalsNeeded: 1, Approvers: latch.Selector{Groups: []string{"sre"}}, PendingTimeout: 15 * time.Minute}, ""},
		{"group selector", ask(alice, office, "tcp/3389", from("192.0.2.1/32")), policy.Decision{Outcome: policy.Allowed, Rule: "office-rdp", Duration: time.Hour}, ""},
		{"group named directly", ask(alice, office, "tcp/22"), denied("", 0), "no policy rule lets alice@example.com open tcp/22 on sg-0f00dcafe0000b001"},

		// Ports.
		{"range inside a range", ask(alice, devBox, "tcp/8000-8080"), allowed("dev-ssh", 30*time.Minute), ""},
		{"one port of a range", ask(alice, devBox, "tcp/8080"), allowed("dev-ssh", 30*time.Minute), ""},
		{"range past a range", ask(alice, devBox, "tcp/8000-8081"), denied("", 0), "open tcp/8000-8081"},
		{"range spanning two entries", ask(alice, devBox, "tcp/22-8000"), denied("", 0), "no policy rule"},
		{"other protocol", ask(alice, devBox, "udp/22"), denied("", 0), "open udp/22"},
		{"icmp type, any code", ask(alice, devBox, "icmp/8"), allowed("dev-ssh", 30*time.Minute), ""},
		{"icmp type and code", ask(alice, devBox, "icmp/8-0"), allowed("dev-ssh", 30*time.Minute), ""},
		{"icmp all types", ask(alice, devBox, "icmp/-1"), denied("", 0), "open icmp all types on"},
		{"icmp other type", ask(alice, devBox, "icmp/0"), denied("", 0), "open icmp type 0 (echo reply) on"},

		// Queries that cannot be decided.
		{"no identity", ask(latch.Identity{}, devBox, "tcp/22"), denied("", 0), "no identity"},
		{"all protocols", policy.Query{Who: alice, Target: devBox, Protocol: "-1", Source: netip.MustParsePrefix("198.51.100.7/32")}, denied("", 0), `protocol "-1" is not allowed`},
		{"port 0", policy.Query{Who: alice, Target: devBox, Protocol: latch.TCP, Source: netip.MustParsePrefix("198.51.100.7/32")}, denied("", 0), "ports 0 are not a valid tcp range"},
		{"no source", ask(alice, devBox, "tcp/22", func(q *policy.Query) { q.Source = netip.Prefix{} }), denied("", 0), "no source address"},
		{"whole internet", ask(alice, devBox, "tcp/22", from("0.0.0.0/0")), denied("", 0), "whole internet"},
		{"negative duration", ask(alice, devBox, "tcp/22", lasting(-time.Minute)), denied("", 0), "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Decide(tt.q)
			if !strings.Contains(got.Why, tt.why) {
				t.Errorf("Why = %q, want it to contain %q", got.Why, tt.why)
			}
			if got.Why == "" {
				t.Errorf("Why is empty")
			}
			why := got.Why
			got.Why = ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide =\n\t%+v\nwant\n\t%+v\n(why: %s)", got, tt.want, why)
			}
		})
	}
}

func TestDecideDoesNotShareApproverGroups(t *testing.T) {
	p := mustParse(t, decidePolicy)
	d := p.Decide(ask(alice, prodBox, "tcp/22"))
	d.Approvers.Groups[0] = "everyone"
	if again := p.Decide(ask(alice, prodBox, "tcp/22")); again.Approvers.Groups[0] != "sre" {
		t.Errorf("changing a decision changed the policy: %v", again.Approvers)
	}
}

func TestDecideConcurrently(t *testing.T) {
	p := mustParse(t, decidePolicy)
	want := p.Decide(ask(alice, prodBox, "tcp/22"))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if got := p.Decide(ask(alice, prodBox, "tcp/22")); !reflect.DeepEqual(got, want) {
					t.Errorf("Decide = %+v, want %+v", got, want)
					return
				}
				_ = p.Explain(alice, prodBox)
				_ = p.Rules()
			}
		})
	}
	wg.Wait()
}
