package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// `latch ssh-config` writes a.serverCA, a.serverID and
// a.authMethod into the block (serverArgs), and once registered only --server,
// so LATCH_SERVER_CA, LATCH_SERVER_ID and LATCH_AUTH never reach it and
// the block silently leaves them out; an IDE's ssh then runs the
// ProxyCommand without the CA or the auth method.
func TestSSHConfigCarriesServerFlagsFromEnv(t *testing.T) {
	env := map[string]string{
		"LATCH_SERVER":    "https://latch.example.com:8443",
		"LATCH_SERVER_CA": "/etc/latch/ca.pem",
		"LATCH_SERVER_ID": "https://latch.internal",
		"LATCH_AUTH":      "aws",
	}
	a, _, err := withEnv(t, env, "ssh-config")
	if err != nil {
		t.Fatal(err)
	}
	args, err := a.serverArgs()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--server-ca", "--server-id", "--auth"} {
		if !slices.Contains(args, want) {
			t.Errorf("the block's server args %q lack %s though its LATCH_ variable is set", args, want)
		}
	}
}

// Review: the same flags typed on the command line are refused outright.
func TestSSHConfigAcceptsServerCAFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := map[string]string{"HOME": t.TempDir()}
	run(t.Context(), []string{"ssh-config", "--server", "https://latch.example.com", "--server-ca", "/etc/latch/ca.pem", "--auth", "aws"},
		func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	if strings.Contains(stderr.String(), "unknown flag") {
		t.Errorf("ssh-config refuses the server flags it writes into the block: %s", stderr.String())
	}
}
