package latch_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

// badReasons would forge a row in a table of reasons, reach a terminal raw,
// or say nothing at all.
var badReasons = map[string]string{
	"blank":                  "   ",
	"blank with a newline":   " \n ",
	"a newline forges a row": "deploy\n42  2026-11-23T10:00:00Z  latch  revoked",
	"carriage return":        "fix\rall clear",
	"tab":                    "a\tb",
	"escape sequence":        "\x1b[2Jclear",
	"nul":                    "a\x00b",
	"delete":                 "del\x7f",
	"C1 control":             "next line\u0085",
	"too long":               strings.Repeat("x", latch.MaxReasonLen+1),
}

func grantRequest(reason string) latch.GrantRequest {
	return latch.GrantRequest{Region: "us-east-1", GroupID: "sg-0123456789abcdef0", Protocol: latch.TCP,
		Ports: latch.PortRange{From: 22, To: 22}, Source: netip.MustParsePrefix("203.0.113.7/32"),
		Duration: 30 * time.Minute, Requester: "alice@example.com", Reason: reason}
}

func TestValidateRefusesBadReasons(t *testing.T) {
	for name, reason := range badReasons {
		err := grantRequest(reason).Validate(time.Hour)
		if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(latch.ErrorMessage(err), "reason") {
			t.Errorf("%s: Validate(reason %q) = %v; want EINVALID naming the reason", name, reason, err)
		}
	}
	for _, reason := range []string{"deploy 1.4", "INC-7: database down", "Zoë fixes the 🔑 rotation", " padded ", strings.Repeat("é", latch.MaxReasonLen)} {
		if err := grantRequest(reason).Validate(time.Hour); err != nil {
			t.Errorf("Validate(reason %q) = %v; want it accepted", reason, err)
		}
	}
}

func TestCheckReason(t *testing.T) {
	tests := []struct {
		reason string
		says   string // "" for accepted
	}{
		{"deploy 1.4", ""},
		{"INC-7: database down — Zoë's 🔑", ""},
		{strings.Repeat("é", latch.MaxReasonLen), ""},
		{"", "a reason is required"},
		{"   ", `the reason "   " is only spaces`},
		{"\u00a0\u3000", "only spaces"},
		{"\u200b\u200b", "only spaces"},
		{"deploy\nforged row", `the reason "deploy\nforged row" holds U+000A`},
		{"\x1b[2J", `"\x1b[2J" holds U+001B`},
		{"a\u2028b", "holds U+2028"},
		{"a\u2029b", "holds U+2029"},
		{"a\u009bb", "holds U+009B"},
		{"bad \xff byte", `"bad \xff byte" is not valid UTF-8`},
		{strings.Repeat("x", latch.MaxReasonLen+1) + "\n", "the reason is 258 characters; at most 256"},
	}
	for _, tt := range tests {
		err := latch.CheckReason("why", tt.reason)
		switch {
		case tt.says == "" && err != nil:
			t.Errorf("CheckReason(%q) = %v; want it accepted", tt.reason, err)
		case tt.says == "":
		case latch.ErrorCode(err) != latch.EINVALID || !strings.HasPrefix(latch.ErrorMessage(err), "why: ") || !strings.Contains(latch.ErrorMessage(err), tt.says):
			t.Errorf("CheckReason(%q) = %v; want EINVALID for field why, saying %q", tt.reason, err, tt.says)
		case strings.ContainsFunc(latch.ErrorMessage(err), func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0xfffd }):
			t.Errorf("CheckReason(%q)'s message %q holds the raw character; want it escaped", tt.reason, latch.ErrorMessage(err))
		}
	}
}
