package ssmclient_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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
// space, a quote or a percent sign still runs that path, and the plugin
// gets the session's answer in its environment, while the token is
// neither in the command nor in ssh's environment (which SendEnv may
// send to the server): it waits in a file only the user may read.
func TestProxyCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "it's 100%")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(dir, "session manager plugin")
	script := "#!/bin/sh\nprintf '%s\\n' \"$SSM_PLUGIN_SKIP_CLIENT_CONFIGURE\" \"$AWS_SSM_START_SESSION_RESPONSE_LATCH\" \"$@\"\n"
	if err := os.WriteFile(plugin, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd, err := session.ProxyCommand(plugin, dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cmd, session.TokenValue) {
		t.Fatalf("the command %q holds the token", cmd)
	}
	// Undo ssh's % expansion, then run it as ssh does, with a clean
	// environment: nothing of the session comes from ssh's.
	run := exec.Command("/bin/sh", "-c", "exec "+strings.ReplaceAll(cmd, "%%", "%"))
	run.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := run.Output()
	if err != nil {
		t.Fatalf("%v running %q", err, cmd)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != 8 || lines[0] != "true" || !strings.Contains(lines[1], session.TokenValue) || !strings.HasPrefix(lines[2], "AWS_SSM_START_SESSION_RESPONSE") {
		t.Fatalf("the plugin saw %q", lines)
	}
	info, err := os.Stat(filepath.Join(dir, "ssm-session.json"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the session file: %v, %v; want mode 0600", info, err)
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
