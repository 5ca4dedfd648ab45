package http_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
	at "github.com/latchdev/latch/internal/accesstest"
	"github.com/latchdev/latch/storetest"
)

// BenchmarkRequestAndEnd measures one auto-approved request through the
// API and its early end: authenticate, decode, resolve the target in EC2,
// decide, record, authorize the rule; then revoke it.
func BenchmarkRequestAndEnd(b *testing.B) {
	s := newServer(b, latchhttp.Options{RateLimit: 1e9, Burst: 1 << 30})
	for b.Loop() {
		st, body := s.call(b, "alice", "POST", "/v1/requests", latchhttp.RequestBody{Target: s.Fleet.Web1, Port: "22", Reason: "bench"})
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
	st, body := s.call(b, "alice", "POST", "/v1/requests", latchhttp.RequestBody{Target: s.Fleet.Web1, Port: "22", Reason: "bench"})
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

// BenchmarkListRequests20k measures GET /v1/requests with 20,000 requests
// in the store, for callers who may see none of them (dave by OIDC, frank
// by IAM, whose AWS principal is matched against every distinct approver
// pattern), a page of them as an approver, and every one as an admin (a
// page of 100). The store applies who may see what and the page, so the
// cost is the page's, not the history's.
func BenchmarkListRequests20k(b *testing.B) {
	s := newServer(b, latchhttp.Options{RateLimit: 1e9, Burst: 1 << 30, AddrRateLimit: 1e9, AddrBurst: 1 << 30})
	fill20k(b, s)
	people["frank-iam"] = latch.Identity{Kind: latch.KindIAM, Issuer: "111122223333", Subject: "arn:aws:iam::111122223333:user/frank"}
	for _, who := range []string{"dave", "frank-iam", "bob", "carol"} {
		b.Run(who, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if st, body := s.call(b, who, "GET", "/v1/requests", nil); st != 200 {
					b.Fatalf("list: %d %s", st, body)
				}
			}
		})
	}
}

// fill20k records 20,000 requests by 100 requesters, reviewed by 100
// groups other than sre or by 100 AWS principal patterns, and 100 more for
// sre: dave and frank see none, bob (sre) 100, carol (admin) all.
func fill20k(b *testing.B, s *server) {
	b.Helper()
	base := storetest.NewRequest(at.Start)
	for i := range 20_100 {
		r := base
		r.ID = latch.NewRequestID()
		r.Requester.Subject = fmt.Sprintf("u-requester-%d", i%100)
		r.Approvers = latch.Selector{Groups: []string{fmt.Sprintf("team-%d", i%100)}}
		if i%2 == 1 {
			r.Approvers = latch.Selector{AWSPrincipals: []string{fmt.Sprintf("arn:aws:iam::111122223333:user/team-%d-*", i%100)}}
		}
		if i >= 20_000 {
			r.Approvers.Groups = []string{"sre"}
		}
		r.CreatedAt = at.Start.Add(time.Duration(i) * time.Second)
		r.PendingUntil = r.CreatedAt.Add(1000 * time.Hour)
		if _, err := s.Store.CreateRequest(b.Context(), r); err != nil {
			b.Fatal(err)
		}
	}
}
