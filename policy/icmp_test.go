package policy_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/policy"
)

const icmpPolicy = `version: 1
rules:
  - name: ping
    targets: {tags: {env: dev}}
    who: {groups: [developers]}
    ports: [icmp/8, icmpv6/all, icmp/3-4]
    duration: {default: 30m, max: 2h}
    approval: auto
  - name: ping6-echo
    targets: {tags: {env: lab}}
    who: {groups: [developers]}
    ports: [icmpv6/128]
    duration: {default: 30m, max: 2h}
    approval: auto
`

func TestICMPPortSpecsParseAndPrint(t *testing.T) {
	p := mustParse(t, icmpPolicy)
	var got []string
	for _, r := range p.Rules() {
		for _, s := range r.Ports {
			got = append(got, s.String())
		}
	}
	want := []string{"icmp/8", "icmpv6/all", "icmp/3-4", "icmpv6/128"}
	if !slices.Equal(got, want) {
		t.Fatalf("port specs print as %q, want %q", got, want)
	}
	// What is printed parses back to the same policy.
	again := mustParse(t, strings.NewReplacer("icmpv6/all", "icmpv6/-1").Replace(icmpPolicy))
	if !slices.EqualFunc(p.Rules(), again.Rules(), func(a, b policy.Rule) bool { return slices.Equal(a.Ports, b.Ports) }) {
		t.Errorf("icmpv6/-1 and icmpv6/all parse differently")
	}
	if r := p.Rules()[0]; r.Ports[1] != (policy.PortSpec{Protocol: latch.ICMPv6, Ports: latch.AllICMP}) {
		t.Errorf("icmpv6/all = %+v", r.Ports[1])
	}
}

func TestICMPPortSpecErrorsNameTheLine(t *testing.T) {
	tests := []struct{ ports, want string }{
		{"[tcp/22, icmpv6/300]", `policy.yaml:6: rules[0].ports[1]: "icmpv6/300": "300" is not an ICMP type; want TYPE or TYPE-CODE (0-255), or all`},
		{"[icmp6/128]", `policy.yaml:6: rules[0].ports[0]: "icmp6/128": protocol "icmp6" is not allowed; want tcp, udp, icmp or icmpv6`},
		{"[icmpv6/all, icmpv6/-1]", `policy.yaml:6: rules[0].ports[1]: "icmpv6/-1" is listed twice (as icmpv6/all)`},
		{"[icmp/-1-4]", `policy.yaml:6: rules[0].ports[0]: "icmp/-1-4": "-1-4" is not an ICMP type; want TYPE or TYPE-CODE (0-255), or all`},
	}
	for _, tt := range tests {
		_, err := policy.Parse("policy.yaml", []byte(withRule("    ports: "+tt.ports)))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ports %s: Parse = %v\nwant %s", tt.ports, err, tt.want)
		}
	}
}

func TestDecideICMPv6(t *testing.T) {
	p := mustParse(t, icmpPolicy)
	dev := latch.Target{Region: "us-east-1", InstanceID: "i-0a0b0c0d0e0f00001", Tags: map[string]string{"env": "dev"}}
	lab := latch.Target{Region: "us-east-1", InstanceID: "i-0c0c0c0c0c0c00003", Tags: map[string]string{"env": "lab"}}
	v6 := from("2001:db8::7/128")
	tests := []struct {
		name   string
		q      policy.Query
		want   policy.Outcome
		rule   string
		whyHas string
	}{
		{"icmpv6 all types covers echo", ask(alice, dev, "icmpv6/128", v6), policy.Allowed, "ping", ""},
		{"icmpv6 all types covers all", ask(alice, dev, "icmpv6/all", v6), policy.Allowed, "ping", ""},
		{"icmp echo from IPv4", ask(alice, dev, "icmp/8"), policy.Allowed, "ping", ""},
		{"icmp/8 does not cover icmpv6 type 8", ask(alice, lab, "icmpv6/8", v6), policy.Denied, "", "icmpv6 type 8 on"},
		{"icmpv6/128 does not cover all types", ask(alice, lab, "icmpv6/all", v6), policy.Denied, "", "open icmpv6 all types on"},
		{"icmpv6/128 covers echo, any code", ask(alice, lab, "icmpv6/128-0", v6), policy.Allowed, "ping6-echo", ""},
		{"icmpv6 all does not cover icmp", ask(alice, dev, "icmp/0"), policy.Denied, "", "icmp type 0 (echo reply) on"},
		{"icmp from IPv6 is refused", ask(alice, dev, "icmp/8", v6), policy.Denied, "", "use icmpv6"},
		{"icmpv6 from IPv4 is refused", ask(alice, dev, "icmpv6/128"), policy.Denied, "", "use icmp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(tt.q)
			if d.Outcome != tt.want || d.Rule != tt.rule || !strings.Contains(d.Why, tt.whyHas) {
				t.Errorf("Decide = %v by %q (%s); want %v by %q saying %q", d.Outcome, d.Rule, d.Why, tt.want, tt.rule, tt.whyHas)
			}
		})
	}
}
