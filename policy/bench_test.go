package policy_test

import (
	"net/netip"
	"os"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/policy"
)

// BenchmarkDecide measures one decision against the example policy, for a
// request its third rule decides (so two rules are passed over first).
func BenchmarkDecide(b *testing.B) {
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		b.Fatal(err)
	}
	p, err := policy.Parse("example.yaml", data)
	if err != nil {
		b.Fatal(err)
	}
	q := policy.Query{
		Who:      latch.Identity{Kind: latch.KindOIDC, Subject: "dana@example.com", Groups: []string{"dba"}},
		Target:   latch.Target{Region: "us-east-1", InstanceID: "i-0d0b0000000000001", GroupID: "sg-0db00000000000001", Tags: map[string]string{"env": "prod"}},
		Protocol: latch.TCP, Ports: latch.PortRange{From: 5432, To: 5432},
		Source: netip.MustParsePrefix("198.51.100.7/32"), Reason: "bench",
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Decide(q); d.Rule == "" {
			b.Fatalf("no rule decided: %s", d.Why)
		}
	}
}
