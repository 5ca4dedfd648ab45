package http_test

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	latchhttp "github.com/latchdev/latch/http"
)

var badReasons = []string{"   ", "deploy\n42  2026-11-23T10:00:00Z  latch  approved", "fix\r", "a\tb", "\x1b[2Jclear", "del\x7f", "c1\u0085"}

func TestDecodeRequestRefusesBadReasons(t *testing.T) {
	for _, reason := range badReasons {
		body := `{"target":"i-0a0b0c0d0e0f00001","port":"22","reason":` + string(mustJSON(reason)) + `}`
		_, err := latchhttp.DecodeRequest([]byte(body), netip.MustParseAddr("203.0.113.7"))
		if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(latch.ErrorMessage(err), "reason") {
			t.Errorf("DecodeRequest(reason %q) = %v; want EINVALID naming the reason", reason, err)
		}
	}
}

// A reviewer's reason is shown to the requester and kept in the audit log:
// the same rules hold for it, on approval and denial, and a refused review
// leaves the request pending.
func TestReviewRefusesBadReasons(t *testing.T) {
	s := newServer(t, latchhttp.Options{RateLimit: 1000, Burst: 1000})
	id := s.pendingRequest(t)
	for _, verb := range []string{"approve", "deny"} {
		for _, reason := range badReasons {
			st, body := s.call(t, "bob", "POST", "/v1/requests/"+id+"/"+verb, latchhttp.ReviewBody{Reason: reason})
			if st != http.StatusBadRequest || !strings.Contains(string(body), "reason") {
				t.Errorf("%s with reason %q: %d %s; want 400 naming the reason", verb, reason, st, body)
			}
		}
	}
	st, body := s.call(t, "bob", "GET", "/v1/requests/"+id, nil)
	if r := decodeAs[latchhttp.RequestJSON](t, body); st != http.StatusOK || r.State != latch.RequestPending || len(r.Reviews) != 0 {
		t.Fatalf("after refused reviews: %d %+v; want the request pending, unreviewed", st, r)
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
