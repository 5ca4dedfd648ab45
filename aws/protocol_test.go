package aws

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

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

// CloudTrail evidence names ICMP rules in words, as latch displays them.
func TestTrailEventICMPInWords(t *testing.T) {
	body := `{"eventID":"e1","eventName":"AuthorizeSecurityGroupIngress","requestParameters":{"groupId":"sg-0123456789abcdef0",
	"ipPermissions":{"items":[
	 {"ipProtocol":"icmp","fromPort":8,"toPort":-1,"ipRanges":{"items":[{"cidrIp":"203.0.113.7/32"}]}},
	 {"ipProtocol":"58","ipv6Ranges":{"items":[{"cidrIpv6":"2001:db8::7/128"}]}},
	 {"ipProtocol":"icmpv6","fromPort":128,"toPort":-1,"ipv6Ranges":{"items":[{"cidrIpv6":"2001:db8::7/128"}]}},
	 {"ipProtocol":"tcp","fromPort":22,"toPort":22,"ipRanges":{"items":[{"cidrIp":"203.0.113.7/32"}]}}]}}}`
	ev, err := parseEvent(types.Event{CloudTrailEvent: &body})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"icmp type 8 (echo request)", "icmpv6 all types", "icmpv6 type 128 (echo request)", "tcp 22"}
	if !slices.Equal(ev.Ports, want) {
		t.Errorf("Ports = %q, want %q", ev.Ports, want)
	}
}
