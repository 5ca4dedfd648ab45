package main

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/latchdev/latch"
)

// grantArgs is a detached JSON grant on w's group from ip, with extra flags.
func (w *world) grantArgs(ip string, extra ...string) []string {
	return append([]string{"grant", "--sg", string(w.group), "--ip", ip, "--for", "5m", "--reason", "ping", "--detach", "--json"}, extra...)
}

// TestICMPGrantOpensWhatWasAskedFor: icmp without --type is every type
// (-1/-1), never the tcp default port read as a type.
func TestICMPGrantOpensWhatWasAskedFor(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		name     string
		ip       string
		flags    []string
		proto    string
		from, to int32
		words    string
	}{
		{"all types by default", "203.0.113.7", []string{"--protocol", "icmp"}, "icmp", -1, -1, "icmp all types"},
		{"echo request", "203.0.113.8", []string{"--protocol", "icmp", "--type", "8"}, "icmp", 8, -1, "icmp type 8 (echo request)"},
		{"type and code", "203.0.113.9", []string{"--protocol", "ICMP", "--type", "3", "--code", "4"}, "icmp", 3, 4, "icmp type 3 code 4"},
		{"icmpv6 all types", "2001:db8::7", []string{"--protocol", "icmpv6"}, "icmpv6", -1, -1, "icmpv6 all types"},
		{"icmpv6 echo request", "2001:db8::8", []string{"--protocol", "icmpv6", "--type", "128"}, "icmpv6", 128, -1, "icmpv6 type 128 (echo request)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.latch(t, w.grantArgs(tt.ip, tt.flags...)...)
			if r.code != 0 {
				t.Fatalf("grant exit %d: %s", r.code, r.stderr)
			}
			g := grantOut(t, r.stdout)
			var found bool
			for _, rule := range w.env.Ingress(t, w.group) {
				if latch.RuleID(aws.ToString(rule.SecurityGroupRuleId)) != g.RuleID {
					continue
				}
				found = true
				if got := aws.ToString(rule.IpProtocol); got != tt.proto && !(tt.proto == "icmpv6" && got == "58") {
					t.Errorf("rule protocol %q, want %q", got, tt.proto)
				}
				if aws.ToInt32(rule.FromPort) != tt.from || aws.ToInt32(rule.ToPort) != tt.to {
					t.Errorf("rule opens %d/%d, want type/code %d/%d", aws.ToInt32(rule.FromPort), aws.ToInt32(rule.ToPort), tt.from, tt.to)
				}
			}
			if !found {
				t.Fatalf("no rule %s in %s", g.RuleID, w.group)
			}
			if out := w.latch(t, "ls").stdout; !strings.Contains(out, tt.words+" from") {
				t.Errorf("ls does not say %q:\n%s", tt.words, out)
			}
		})
	}
}

// TestICMPBadInputExitsTwoAndChangesNothing: the tcp default port is not an
// ICMP type, and each ICMP protocol reaches only its own address family.
func TestICMPBadInputExitsTwoAndChangesNothing(t *testing.T) {
	w := newWorld(t)
	tests := []struct {
		name  string
		ip    string
		flags []string
		want  []string
	}{
		{"port with icmp", "203.0.113.7", []string{"--protocol", "icmp", "--port", "22"}, []string{"port:", "--type"}},
		{"icmp from IPv6", "2001:db8::7", []string{"--protocol", "icmp"}, []string{"protocol:", "icmpv6"}},
		{"icmp type from IPv6", "2001:db8::7", []string{"--protocol", "icmp", "--type", "8"}, []string{"protocol:", "icmpv6"}},
		{"icmpv6 from IPv4", "203.0.113.7", []string{"--protocol", "icmpv6"}, []string{"protocol:", "use icmp"}},
		{"type with tcp", "203.0.113.7", []string{"--type", "8"}, []string{"type:", "icmp"}},
		{"code without type", "203.0.113.7", []string{"--protocol", "icmp", "--code", "4"}, []string{"code:", "--type"}},
		{"type too big", "203.0.113.7", []string{"--protocol", "icmp", "--type", "256"}, []string{"type:", "0-255"}},
		{"type not a number", "203.0.113.7", []string{"--protocol", "icmp", "--type", "echo"}, []string{"type:", "0-255"}},
		{"code too big", "203.0.113.7", []string{"--protocol", "icmp", "--type", "3", "--code", "300"}, []string{"code:", "0-255"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := w.latch(t, w.grantArgs(tt.ip, tt.flags...)...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d; stdout %s stderr: %s", r.code, exitUsage, r.stdout, r.stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr %q does not say %q", r.stderr, want)
				}
			}
		})
	}
	if n := len(w.rules(t)); n != 0 {
		t.Errorf("bad input opened %d rules", n)
	}
}

// TestICMPv6GrantIsSweptAfterExpiry: an icmpv6 rule for one /128 opens
// through the SDK, carries latch's tags, and a sweep with an empty database
// revokes it once the clock passes its expiry.
func TestICMPv6GrantIsSweptAfterExpiry(t *testing.T) {
	w := newWorld(t)
	r := w.latch(t, w.grantArgs("2001:db8::7", "--protocol", "icmpv6", "--type", "128")...)
	if r.code != 0 {
		t.Fatalf("grant exit %d: %s", r.code, r.stderr)
	}
	g := grantOut(t, r.stdout)
	if g.Protocol != "icmpv6" || g.Source != "2001:db8::7/128" {
		t.Fatalf("grant = %+v, want icmpv6 from 2001:db8::7/128", g)
	}
	rules := w.env.Ingress(t, w.group)
	if len(rules) != 1 {
		t.Fatalf("%d rules, want 1", len(rules))
	}
	rule := rules[0]
	if p := aws.ToString(rule.IpProtocol); p != "icmpv6" && p != "58" {
		t.Errorf("IpProtocol %q, want icmpv6 (or 58)", p)
	}
	if c := aws.ToString(rule.CidrIpv6); c != "2001:db8::7/128" || rule.CidrIpv4 != nil {
		t.Errorf("rule source v6 %q v4 %v, want only 2001:db8::7/128", c, rule.CidrIpv4)
	}
	delete(w.vars, "LATCH_DB") // sweep needs no database: it revokes by the rules' tags
	if r := w.latch(t, "sweep", "--json"); r.code != 0 || len(decode[sweepJSON](t, r.stdout).Swept) != 0 {
		t.Fatalf("sweep before expiry: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
	w.setClock(t, start.Add(5*time.Minute))
	r = w.latch(t, "sweep")
	if r.code != 0 || !strings.Contains(r.stdout, "revoked "+string(g.RuleID)) {
		t.Fatalf("sweep: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if n := len(w.rules(t)); n != 0 {
		t.Fatalf("sweep left %d rules", n)
	}
}
