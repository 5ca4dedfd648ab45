package http_test

import (
	"testing"

	"github.com/latchdev/latch/ec2sim"
	latchhttp "github.com/latchdev/latch/http"
)

// BenchmarkRequestAndEnd measures one auto-approved request through the
// API and its early end: authenticate, decode, resolve the target in EC2,
// decide, record, authorize the rule; then revoke it.
func BenchmarkRequestAndEnd(b *testing.B) {
	s := newServer(b, latchhttp.Options{RateLimit: 1e9, Burst: 1 << 30})
	for b.Loop() {
		st, body := s.call(b, "alice", "POST", "/v1/requests", latchhttp.RequestBody{Target: ec2sim.DemoWeb1, Port: "22", Reason: "bench"})
		if st != 201 {
			b.Fatalf("request: %d %s", st, body)
		}
		g := decodeAs[latchhttp.RequestJSON](b, body).GrantID
		if st, body := s.call(b, "alice", "POST", "/v1/grants/"+string(g)+"/revoke", nil); st != 200 {
			b.Fatalf("revoke: %d %s", st, body)
		}
	}
}

// BenchmarkWhoAmI measures the API's fixed cost per call: request ID,
// client address, authentication, rate limit, a JSON answer, over HTTP.
func BenchmarkWhoAmI(b *testing.B) {
	s := newServer(b, latchhttp.Options{RateLimit: 1e9, Burst: 1 << 30})
	for b.Loop() {
		if st, _ := s.call(b, "alice", "GET", "/v1/whoami", nil); st != 200 {
			b.Fatalf("whoami: %d", st)
		}
	}
}

// BenchmarkSSHLogin measures issuing a certificate for an active grant over
// HTTP: the grant, request and rule lookups, one EC2 DescribeInstances for
// the address, one GetConsoleOutput for the host keys, the signature, and
// one audit append (an fsync).
func BenchmarkSSHLogin(b *testing.B) {
	s := newServer(b, latchhttp.Options{RateLimit: 1e9, Burst: 1 << 30})
	st, body := s.call(b, "alice", "POST", "/v1/requests", latchhttp.RequestBody{Target: ec2sim.DemoWeb1, Port: "22", Reason: "bench"})
	if st != 201 {
		b.Fatalf("request: %d %s", st, body)
	}
	path := "/v1/grants/" + string(decodeAs[latchhttp.RequestJSON](b, body).GrantID) + "/ssh"
	for b.Loop() {
		if st, body := s.call(b, "alice", "POST", path, latchhttp.SSHBody{PublicKey: testPublicKey}); st != 200 {
			b.Fatalf("ssh: %d %s", st, body)
		}
	}
}
