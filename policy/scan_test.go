package policy_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/policy"
)

func TestWhatAScanReadsFromAPolicy(t *testing.T) {
	p, err := policy.Parse("scan.yaml", []byte(`
version: 1
rules:
  - name: ops
    targets: {tags: {env: prod}}
    who: {users: [alice]}
    ports: [tcp/22, tcp/5985-5986, udp/53, tcp/8000-9000]
    networks: [10.0.0.0/8, 192.0.2.0/24]
    duration: {default: 30m, max: 1h}
    approval: auto
  - name: one-box
    targets: {instances: [i-0123456789abcdef0]}
    who: {users: [bob]}
    ports: [tcp/22]
    networks: [10.0.0.0/8]
    duration: {default: 30m, max: 1h}
    approval: auto
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.TCPPorts(), []int{22, 5985, 5986, 8000}; !slices.Equal(got, want) {
		t.Errorf("TCPPorts = %v, want %v", got, want)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.0/24")}
	if got := p.Networks(); !slices.Equal(got, want) {
		t.Errorf("Networks = %v, want %v", got, want)
	}
	for _, tt := range []struct {
		target latch.Target
		rule   string
	}{
		{latch.Target{InstanceID: "i-0aaaaaaaaaaaaaaaa", Tags: map[string]string{"env": "prod"}}, "ops"},
		{latch.Target{InstanceID: "i-0123456789abcdef0", Tags: map[string]string{"env": "dev"}}, "one-box"},
		{latch.Target{InstanceID: "i-0bbbbbbbbbbbbbbbb", Tags: map[string]string{"env": "dev"}}, ""},
	} {
		rule, ok := p.Covering(tt.target)
		if rule != tt.rule || ok != (tt.rule != "") {
			t.Errorf("Covering(%v) = %q, %v; want %q", tt.target, rule, ok, tt.rule)
		}
	}
}
