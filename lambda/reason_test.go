package lambda_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/latchdev/latch"
)

// Reasons reach the audit log from direct invokes and function URL
// requests alike; both refuse blank ones and control characters.
func TestBadReasonsAreRefused(t *testing.T) {
	h, f := newHandler(t)
	for _, reason := range []string{"   ", "deploy\nforged", "\x1b[2Jclear", "c1\u0085"} {
		r, _ := json.Marshal(reason)
		if _, err := invoke(t, h, `{"reason":`+string(r)+`}`); latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(latch.ErrorMessage(err), "reason") {
			t.Errorf("direct invoke with reason %q: %v; want EINVALID naming the reason", reason, err)
		}
		body := `{"target":"` + f.Fleet.Web1 + `","port":"22","reason":` + string(r) + `}`
		out, err := invoke(t, h, urlRequest("arn:aws:sts::123456789012:assumed-role/dev/alice", body))
		if resp := out.(events.LambdaFunctionURLResponse); err != nil || resp.StatusCode != 400 || !strings.Contains(resp.Body, "reason") {
			t.Errorf("URL request with reason %q: %+v %v; want 400 naming the reason", reason, out, err)
		}
	}
	if n := len(f.Rules(f.Fleet.WebGroup)); n != 0 {
		t.Fatalf("bad reasons opened %d rules", n)
	}
}
