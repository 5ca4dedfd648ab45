package policy

import (
	"net/netip"
	"slices"

	"github.com/latchdev/latch"
)

// maxPortsFromRange bounds how many ports one tcp range of a rule adds to
// the ports a scan treats as admin ports: a rule for tcp/22 or
// tcp/5985-5986 names admin ports; a rule for tcp/1024-65535 names an
// application, and only its first port is counted.
const maxPortsFromRange = 16

// Networks returns every network the policy's rules let requests come
// from, each once: the places from which access is expected. A scan
// reports a standing rule whose source is wider than all of them. A rule
// with no networks (anywhere) adds none.
func (p *Policy) Networks() []netip.Prefix {
	var out []netip.Prefix
	for _, r := range p.rules {
		for _, n := range r.Networks {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// TCPPorts returns the TCP ports the policy's rules give access to,
// sorted, each once (a wide range adds its first port only: see
// maxPortsFromRange).
func (p *Policy) TCPPorts() []int {
	var out []int
	for _, r := range p.rules {
		for _, s := range r.Ports {
			if s.Protocol != latch.TCP {
				continue
			}
			to := s.Ports.To
			if to-s.Ports.From >= maxPortsFromRange {
				to = s.Ports.From
			}
			for port := s.Ports.From; port <= to; port++ {
				out = append(out, port)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Covering returns the first rule whose targets name target, so that
// latch can open access to it on request: an instance with no standing
// way in is not locked out while a rule covers it.
func (p *Policy) Covering(target latch.Target) (rule string, ok bool) {
	for _, r := range p.rules {
		if r.Targets.match(target) {
			return r.Name, true
		}
	}
	return "", false
}
