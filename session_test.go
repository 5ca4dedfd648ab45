package latch_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

func TestRoleSessionName(t *testing.T) {
	valid := regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	cases := map[string]string{
		"alice@example.com": "alice@example.com",
		"arn:aws:sts::123456789012:assumed-role/dev/alice": "dev-alice-",
		"arn:aws:iam::123456789012:user/bob":               "bob-",
		"Zoë Müller":                                       "Zo--M-ller-",
		"x":                                                "x-",
		strings.Repeat("a", 80):                            strings.Repeat("a", 40),
	}
	seen := map[string]string{}
	for in, prefix := range cases {
		got := latch.RoleSessionName(in)
		if !valid.MatchString(got) || !strings.HasPrefix(got, prefix) {
			t.Errorf("RoleSessionName(%q) = %q; want a valid name starting %q", in, got, prefix)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("%q and %q both become %q", in, other, got)
		}
		seen[got] = in
	}
	// Names that differ only in what is replaced or cut stay apart.
	if a, b := latch.RoleSessionName("a/b"), latch.RoleSessionName("a:b"); a == b {
		t.Errorf("a/b and a:b are both %q", a)
	}
	if a, b := latch.RoleSessionName(strings.Repeat("x", 70)+"1"), latch.RoleSessionName(strings.Repeat("x", 70)+"2"); a == b {
		t.Errorf("two long names are both %q", a)
	}
}

func TestSessionReasonRoundTrips(t *testing.T) {
	g := latch.NewGrantID()
	at := time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)
	reason := latch.SessionReason(g, at)
	got, exp, ok := latch.ParseSessionReason(reason)
	if !ok || got != g || !exp.Equal(at) {
		t.Fatalf("ParseSessionReason(%q) = %s, %v, %v", reason, got, exp, ok)
	}
	for _, r := range []string{"", "debugging", "latch g-123 until 2026-12-04T21:00:00Z", "latch " + string(g) + " until soon"} {
		if _, _, ok := latch.ParseSessionReason(r); ok {
			t.Errorf("ParseSessionReason(%q) read a latch session", r)
		}
	}
}

func TestParseSSMDocument(t *testing.T) {
	for in, want := range map[string]latch.SSMDocument{"shell": latch.DocShell, "AWS-StartSSHSession": latch.DocSSH, "port-forward": latch.DocPortForward} {
		if got, err := latch.ParseSSMDocument(in); err != nil || got != want {
			t.Errorf("ParseSSMDocument(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := latch.ParseSSMDocument("AWS-RunShellScript"); latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(latch.ErrorMessage(err), "shell, port-forward or ssh") {
		t.Errorf("ParseSSMDocument of a document latch does not start = %v; want EINVALID naming the three", err)
	}
}

// Notifications about Session Manager access say what it is, not an
// empty address.
func TestEventMessageForSessions(t *testing.T) {
	e := latch.Event{Kind: latch.EventGrantOpened, Requester: "alice@example.com", InstanceID: "i-0123456789abcdef0", Protocol: latch.TCP,
		FromPort: 5432, ToPort: 5432, Access: latch.AccessSSM, Document: latch.DocPortForward, GrantID: "g-0123456789abcdef",
		ExpiresAt: time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)}
	want := "alice@example.com has port-forward sessions to port 5432 on i-0123456789abcdef0 through Session Manager, no port opened, until 2026-12-04T22:00:00Z (grant g-0123456789abcdef)"
	if got := e.Message(); got != want {
		t.Errorf("Message =\n%s\nwant\n%s", got, want)
	}
	e.Document, e.FromPort, e.ToPort = latch.DocShell, 0, 0
	if got := e.Message(); !strings.Contains(got, "has shell sessions on i-0123456789abcdef0 through Session Manager") {
		t.Errorf("shell: %s", got)
	}
}
