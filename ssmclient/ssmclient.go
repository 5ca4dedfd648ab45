// Package ssmclient is the client side of Session Manager access: it runs
// the standard session-manager-plugin with a session the latch server
// started, as `aws ssm start-session` does, alone or as ssh's
// ProxyCommand.
//
// The requester holds no Session Manager permission, so the plugin is
// told not to look for AWS credentials (SSM_PLUGIN_SKIP_CLIENT_CONFIGURE):
// its own ssm:ResumeSession after a dropped connection fails, and the
// session ends; the server terminates sessions, never the plugin. The
// session's token reaches the plugin in an environment variable, never on
// a command line, which other users of the machine can read.
package ssmclient

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/latchdev/latch"
)

// PluginName is the plugin's executable, found on PATH.
const PluginName = "session-manager-plugin"

// responseEnv names the variable the plugin reads its StartSession
// response from when given the name instead of the JSON: it must begin
// AWS_SSM_START_SESSION_RESPONSE.
const responseEnv = "AWS_SSM_START_SESSION_RESPONSE_LATCH"

// FindPlugin returns path if it names an executable, else the plugin
// found on PATH, with an error that says how to install it.
func FindPlugin(path string) (string, error) {
	if path == "" {
		p, err := exec.LookPath(PluginName)
		if err != nil {
			return "", latch.Errorf(latch.ENOTFOUND, "%s is not on your PATH; install AWS's Session Manager plugin (https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html) or give --plugin PATH", PluginName)
		}
		return p, nil
	}
	p, err := exec.LookPath(path)
	if err != nil {
		return "", latch.Invalidf("plugin", "%q is not an executable session-manager-plugin: %v", path, err)
	}
	return p, nil
}

// Session is a started session, as the server hands it over.
type Session struct {
	SessionID    latch.SSMSessionID
	TokenValue   string // a secret
	StreamURL    string
	Region       string
	Target       latch.InstanceID
	DocumentName string
	Parameters   map[string][]string
}

// Command is how to run the plugin for s: its arguments (no secret among
// them) and the environment entries to add to the caller's.
func (s Session) Command(plugin string) (argv, env []string, err error) {
	if s.SessionID == "" || s.TokenValue == "" || s.StreamURL == "" {
		return nil, nil, latch.Errorf(latch.EINTERNAL, "the server's session answer lacks its ID, token or stream URL")
	}
	resp, err := json.Marshal(map[string]string{"SessionId": string(s.SessionID), "TokenValue": s.TokenValue, "StreamUrl": s.StreamURL})
	if err != nil {
		return nil, nil, err
	}
	params, err := json.Marshal(map[string]any{"Target": s.Target, "DocumentName": s.DocumentName, "Parameters": s.Parameters})
	if err != nil {
		return nil, nil, err
	}
	// The plugin's arguments, as the AWS CLI passes them: the response,
	// region, operation, profile, the StartSession parameters, and the
	// endpoint its own (here unused) API calls would go to.
	argv = []string{plugin, responseEnv, s.Region, "StartSession", "", string(params), "https://ssm." + s.Region + ".amazonaws.com"}
	env = []string{responseEnv + "=" + string(resp), "SSM_PLUGIN_SKIP_CLIENT_CONFIGURE=true"}
	return argv, env, nil
}

// Environ is the caller's environment with env added, replacing any entry
// of the same name.
func Environ(env []string) []string {
	out := make([]string, 0, len(os.Environ())+len(env))
	names := map[string]bool{}
	for _, e := range env {
		name, _, _ := strings.Cut(e, "=")
		names[name] = true
	}
	for _, e := range os.Environ() {
		if name, _, _ := strings.Cut(e, "="); !names[name] {
			out = append(out, e)
		}
	}
	return append(out, env...)
}

// ProxyCommand is ssh's ProxyCommand option that runs the plugin for s.
// The session's answer, with its token, goes in a file of its own in dir,
// which must be private to the user (latch's per-session key directory,
// removed after the session): when ssh runs the command, /bin/sh reads
// the file into the plugin's environment alone. So the token is neither
// on a command line nor in ssh's own environment, which ssh may send to
// the server (SendEnv). ssh expands % in the command and hands it to the
// shell; both are escaped.
func (s Session) ProxyCommand(plugin, dir string) (string, error) {
	argv, env, err := s.Command(plugin)
	if err != nil {
		return "", err
	}
	file := filepath.Join(dir, "ssm-session.json")
	_, resp, _ := strings.Cut(env[0], "=")
	if err := os.WriteFile(file, []byte(resp), 0o600); err != nil {
		return "", fmt.Errorf("write the session for ssh's ProxyCommand: %w", err)
	}
	script := responseEnv + `="$(cat "$1")"; export ` + responseEnv + `; ` + env[1] + `; export SSM_PLUGIN_SKIP_CLIENT_CONFIGURE; shift; exec "$@"`
	words := append([]string{"/bin/sh", "-c", script, "sh", file}, argv...)
	quoted := make([]string, len(words))
	for i, a := range words {
		quoted[i] = strings.ReplaceAll(shellQuote(a), "%", "%%")
	}
	return strings.Join(quoted, " "), nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
