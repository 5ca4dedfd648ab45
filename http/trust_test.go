package http_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
	at "github.com/latchdev/latch/internal/accesstest"
)

// Identities that differ from alice only in kind, issuer or case: the
// first two are other people, whatever their subject says; the last is
// alice herself.
func TestIdentitiesThatDifferOnlyInKindIssuerOrCase(t *testing.T) {
	s := newServer(t, latchhttp.Options{RateLimit: 1000, Burst: 1000})
	people["alice-other-issuer"] = latch.Identity{Kind: latch.KindOIDC, Issuer: "https://evil.test", Subject: at.Alice.Subject, Groups: at.Alice.Groups}
	people["alice-upper"] = latch.Identity{Kind: at.Alice.Kind, Issuer: at.Alice.Issuer, Subject: strings.ToUpper(at.Alice.Subject), Groups: at.Alice.Groups}
	people["named-like-admins"] = latch.Identity{Kind: latch.KindOIDC, Issuer: at.Alice.Issuer, Subject: "admins"}
	t.Cleanup(func() {
		delete(people, "alice-other-issuer")
		delete(people, "alice-upper")
		delete(people, "named-like-admins")
	})
	grant := s.activeGrant(t)

	if st, body := s.call(t, "alice-other-issuer", "GET", "/v1/grants/"+grant, nil); st != http.StatusForbidden || strings.Contains(string(body), grant+`"`) && strings.Contains(string(body), "requester") {
		t.Errorf("another issuer's alice@example.com reads alice's grant: %d %s", st, body)
	}
	if st, body := s.call(t, "alice-other-issuer", "GET", "/v1/grants", nil); strings.Contains(string(body), grant) {
		t.Errorf("another issuer's alice@example.com lists alice's grant: %d %s", st, body)
	}
	if st, body := s.call(t, "alice-upper", "GET", "/v1/grants/"+grant, nil); st != http.StatusOK {
		t.Errorf("ALICE@EXAMPLE.COM, alice in another case, cannot read her grant: %d %s", st, body)
	}
	if st, body := s.call(t, "named-like-admins", "GET", "/v1/grants?all=true", nil); st != http.StatusForbidden || strings.Contains(string(body), grant) {
		t.Errorf("a user named like the admin group lists every grant: %d %s", st, body)
	}
}

// Approving or denying a request one may not review says nothing of it,
// whatever its state.
func TestReviewOfAnotherRequestLeaksNothing(t *testing.T) {
	s := newServer(t, latchhttp.Options{RateLimit: 1000, Burst: 1000})
	id := s.pendingRequest(t)
	if st, body := s.call(t, "alice", "POST", "/v1/requests/"+id+"/withdraw", nil); st != http.StatusOK {
		t.Fatalf("withdraw: %d %s", st, body)
	}
	for _, who := range []string{"dave", "alice"} {
		for _, verb := range []string{"approve", "deny"} {
			st, body := s.call(t, who, "POST", "/v1/requests/"+id+"/"+verb, latchhttp.ReviewBody{Reason: "x"})
			if st != http.StatusForbidden && who == "dave" || st == http.StatusOK || strings.Contains(string(body), "198.51") || strings.Contains(string(body), "requester") {
				t.Errorf("%s %s a withdrawn request: %d %s", who, verb, st, body)
			}
		}
	}
}
