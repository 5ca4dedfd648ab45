package scan_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/scan"
)

// BenchmarkJudge judges one region of 4,000 groups (two rules each, one
// in ten open to the world) and 2,000 instances, the size of the issue's
// scan benchmark: the judgement is a small part of a scan.
func BenchmarkJudge(b *testing.B) {
	e := latch.Estate{Region: "us-east-1", Trails: []latch.Trail{goodTrail()}}
	for i := range 4000 {
		g := group(fmt.Sprintf("sg-%017x", i), i%4 == 0,
			tcp(fmt.Sprintf("sgr-%017x", 2*i), 443, 443, "0.0.0.0/0"),
			tcp(fmt.Sprintf("sgr-%017x", 2*i+1), 22, 22, "10.0.0.0/8"))
		if i%10 == 0 {
			g.Ingress[1].CIDR = netip.MustParsePrefix("0.0.0.0/0")
		}
		e.Groups = append(e.Groups, g)
	}
	for i := range 2000 {
		in := instance(fmt.Sprintf("i-%017x", i), fmt.Sprintf("sg-%017x", 2*i), fmt.Sprintf("sg-%017x", 2*i+1))
		in.PublicIP = netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		e.Instances = append(e.Instances, in)
	}
	e.Roles = []latch.InstanceRole{goodRole()}
	var n int
	for b.Loop() {
		n = len(scan.Judge([]latch.Estate{e}, scan.Options{}).Findings)
	}
	b.ReportMetric(float64(n), "findings")
}
