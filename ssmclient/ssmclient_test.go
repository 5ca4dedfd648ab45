package ssmclient_test

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/ssmclient"
)

var session = ssmclient.Session{SessionID: "alice@example.com-0123456789abcdef0", TokenValue: "s3cret-token",
	StreamURL: "wss://ssmmessages.us-east-1.amazonaws.com/v1/data-channel/alice@example.com-0123456789abcdef0?role=publish_subscribe",
	Region:    "us-east-1", Target: "i-0123456789abcdef0", DocumentName: "AWS-StartSSHSession", Parameters: map[string][]string{"portNumber": {"22"}}}

// The token never reaches a command line, which every user of the
// machine can read in ps; the plugin reads it from its environment.
func TestCommandKeepsTheTokenOffTheCommandLine(t *testing.T) {
	argv, env, err := session.Command("/usr/bin/session-manager-plugin")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(argv, " "), session.TokenValue) {
		t.Fatalf("argv %q holds the token", argv)
	}
	if len(argv) != 7 || argv[3] != "StartSession" || !strings.HasPrefix(argv[1], "AWS_SSM_START_SESSION_RESPONSE") {
		t.Fatalf("argv %q is not what the plugin reads (response variable, region, StartSession, profile, parameters, endpoint)", argv)
	}
	var params struct{ Target string }
	if err := json.Unmarshal([]byte(argv[5]), &params); err != nil || params.Target != string(session.Target) {
		t.Errorf("parameters %q: target %q, %v", argv[5], params.Target, err)
	}
	var resp map[string]string
	i := slices.IndexFunc(env, func(e string) bool { return strings.HasPrefix(e, argv[1]+"=") })
	if i < 0 || json.Unmarshal([]byte(strings.TrimPrefix(env[i], argv[1]+"=")), &resp) != nil || resp["TokenValue"] != session.TokenValue {
		t.Errorf("env %q does not carry the response in %s", env, argv[1])
	}
	if !slices.Contains(env, "SSM_PLUGIN_SKIP_CLIENT_CONFIGURE=true") {
		t.Errorf("env %q lets the plugin look for AWS credentials the requester does not have", env)
	}
}

// ssh expands % and hands ProxyCommand to a shell: a plugin path with a
// space, a quote or a percent sign still runs that path.
func TestProxyCommandQuotes(t *testing.T) {
	cmd, _, err := session.ProxyCommand("/opt/my plugins/it's 100%/session-manager-plugin")
	if err != nil {
		t.Fatal(err)
	}
	// Undo ssh's % expansion, then let a shell split the words.
	out, err := exec.Command("sh", "-c", "printf '%s\\n' "+strings.ReplaceAll(cmd, "%%", "%")).Output()
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(words) != 7 || words[0] != "/opt/my plugins/it's 100%/session-manager-plugin" {
		t.Fatalf("the shell read %q from %q", words, cmd)
	}
}

func TestFindPlugin(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := ssmclient.FindPlugin(""); latch.ErrorCode(err) != latch.ENOTFOUND || !strings.Contains(latch.ErrorMessage(err), "--plugin") {
		t.Errorf("FindPlugin with none on PATH = %v; want ENOTFOUND saying how to install or give --plugin", err)
	}
	if _, err := ssmclient.FindPlugin("/nonexistent/session-manager-plugin"); latch.ErrorCode(err) != latch.EINVALID {
		t.Errorf("FindPlugin of a missing file = %v; want EINVALID", err)
	}
}

func TestCommandRefusesAnIncompleteSession(t *testing.T) {
	s := session
	s.TokenValue = ""
	if _, _, err := s.Command("plugin"); err == nil {
		t.Error("Command without a token succeeded")
	}
}
