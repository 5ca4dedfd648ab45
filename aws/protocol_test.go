package aws

import (
	"testing"

	"github.com/latchdev/latch"
)

// EC2 names a rule's protocol as given or by number, depending on the
// caller and the endpoint; both must read as the same latch protocol.
func TestProtocolFromEC2(t *testing.T) {
	for in, want := range map[string]latch.Protocol{
		"tcp": latch.TCP, "6": latch.TCP, "udp": latch.UDP, "17": latch.UDP,
		"icmp": latch.ICMP, "1": latch.ICMP, "icmpv6": latch.ICMPv6, "58": latch.ICMPv6, "ICMPv6": latch.ICMPv6,
	} {
		if got, ok := protocolFromEC2(in); !ok || got != want {
			t.Errorf("protocolFromEC2(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"-1", "47", "", "all"} {
		if got, ok := protocolFromEC2(in); ok {
			t.Errorf("protocolFromEC2(%q) = %q; want it skipped", in, got)
		}
	}
}
