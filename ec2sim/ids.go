package ec2sim

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
)

// idGen makes resource and request IDs. With a seed it is a deterministic
// sequence, so golden files and fleets without IDs are reproducible; the
// caller serialises access (it is guarded by Server.mu).
type idGen struct {
	rng *rand.Rand
}

func newIDGen(seed int64) *idGen {
	if seed == 0 {
		return &idGen{rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	}
	return &idGen{rng: rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))}
}

// resource returns prefix-xxxxxxxxxxxxxxxxx: the 17 lowercase hex digits
// EC2 has used for new IDs since 2016.
func (g *idGen) resource(prefix string) string {
	return fmt.Sprintf("%s-%01x%016x", prefix, g.rng.Uint64N(16), g.rng.Uint64())
}

// request returns a UUID-shaped request ID, as EC2 sends.
func (g *idGen) request() string {
	hi, lo := g.rng.Uint64(), g.rng.Uint64()
	hi = hi&^0xf000 | 0x4000     // version 4
	lo = lo&^(0xc<<60) | 0x8<<60 // RFC 4122 variant
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x",
		hi>>32, (hi>>16)&0xffff, hi&0xffff, lo>>48, lo&0xffffffffffff)
}

// validID reports whether id is prefix- followed by 8 or 17 lowercase hex
// digits, the two lengths EC2 has issued.
func validID(id, prefix string) bool {
	hex, ok := strings.CutPrefix(id, prefix+"-")
	if !ok || (len(hex) != 8 && len(hex) != 17) {
		return false
	}
	for _, c := range hex {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validRuleID reports whether id looks like a security group rule ID, which
// EC2 only ever issued with 17 digits.
func validRuleID(id string) bool {
	return validID(id, "sgr") && len(id) == len("sgr-")+17
}

// token returns n random bytes, base64-encoded: an opaque secret such as a
// session's TokenValue.
func (g *idGen) token(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return base64.StdEncoding.EncodeToString(b)
}
