package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
)

// latchEnv runs latch with env as its whole environment.
func latchEnv(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr strings.Builder
	code := run(t.Context(), args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// A file to write is --out everywhere; audit export's --output still
// works, saying it is deprecated, on stderr only.
func TestAuditExportOut(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"LATCH_DB": filepath.Join(dir, "latch.db"), "HOME": dir}
	for _, tt := range []struct {
		flag       string
		deprecated bool
	}{{"--out", false}, {"--output", true}} {
		file := filepath.Join(dir, strings.TrimLeft(tt.flag, "-")+".jsonl")
		r := latchEnv(t, env, "audit", "export", tt.flag, file)
		if r.code != 0 || r.stdout != "" {
			t.Fatalf("audit export %s: exit %d, stdout %q, stderr %s", tt.flag, r.code, r.stdout, r.stderr)
		}
		if _, err := os.Stat(file); err != nil {
			t.Errorf("audit export %s %s wrote nothing: %v", tt.flag, file, err)
		}
		if said := strings.Contains(r.stderr, "--output is deprecated; use --out"); said != tt.deprecated {
			t.Errorf("audit export %s: stderr %q; want a deprecation notice: %v", tt.flag, r.stderr, tt.deprecated)
		}
	}
	// The old variable too; the new name on the command line wins over it.
	env["LATCH_OUTPUT"] = filepath.Join(dir, "env.jsonl")
	if r := latchEnv(t, env, "audit", "export"); r.code != 0 || !strings.Contains(r.stderr, "LATCH_OUTPUT is deprecated; use LATCH_OUT") {
		t.Fatalf("LATCH_OUTPUT: exit %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(env["LATCH_OUTPUT"]); err != nil {
		t.Errorf("LATCH_OUTPUT wrote nothing: %v", err)
	}
	won := filepath.Join(dir, "won.jsonl")
	if r := latchEnv(t, env, "audit", "export", "--out", won); r.code != 0 || strings.Contains(r.stderr, "deprecated") {
		t.Fatalf("--out with LATCH_OUTPUT set: exit %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(won); err != nil {
		t.Errorf("--out lost to LATCH_OUTPUT: %v", err)
	}
	// Both names typed, naming different files: refused, nothing written.
	a, b := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	r := latchEnv(t, env, "audit", "export", "--out", a, "--output", b)
	if r.code != exitUsage || !strings.Contains(r.stderr, "--output") || !strings.Contains(r.stderr, "--out") {
		t.Errorf("--out and --output disagreeing: exit %d %s; want 2 naming both", r.code, r.stderr)
	}
	for _, f := range []string{a, b} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("refused export wrote %s", f)
		}
	}
}

// ssh-ca keygen writes --out, as audit keygen does; the file as an
// argument still works, deprecated.
func TestSSHCAKeygenOut(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"HOME": dir}
	key := filepath.Join(dir, "ca")
	if r := latchEnv(t, env, "ssh-ca", "keygen", "--out", key); r.code != 0 || strings.Contains(r.stderr, "deprecated") {
		t.Fatalf("keygen --out: exit %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(key); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "old-ca")
	if r := latchEnv(t, env, "ssh-ca", "keygen", old); r.code != 0 || !strings.Contains(r.stderr, "deprecated") {
		t.Fatalf("keygen FILE: exit %d %s; want 0 and a deprecation notice", r.code, r.stderr)
	}
	if _, err := os.Stat(old); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	if r := latchEnv(t, env, "ssh-ca", "keygen", "--out", other, key); r.code != exitUsage || !strings.Contains(r.stderr, "out:") {
		t.Errorf("--out and FILE disagreeing: exit %d %s; want 2 naming out", r.code, r.stderr)
	}
	if r := latchEnv(t, env, "ssh-ca", "keygen"); r.code != exitUsage || !strings.Contains(r.stderr, "--out FILE") {
		t.Errorf("keygen without --out: exit %d %s; want 2 asking for --out", r.code, r.stderr)
	}
	if r := latchEnv(t, env, "ssh-ca", "keygen", "--out", key); r.code != exitUsage || !strings.Contains(r.stderr, "out: "+key) {
		t.Errorf("keygen over a key: exit %d %s; want 2 naming --out's file", r.code, r.stderr)
	}
}

// request takes the source address as --ip, as grant and ssh do; --source
// still works, deprecated. A bad address is refused before the server is
// asked.
func TestRequestIP(t *testing.T) {
	var mu sync.Mutex
	var sources []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Source *string `json:"source"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		if body.Source != nil {
			sources = append(sources, *body.Source)
		} else {
			sources = append(sources, "")
		}
		mu.Unlock()
		http.Error(w, `{"error":{"code":"internal","message":"test server"}}`, http.StatusInternalServerError)
	}))
	defer srv.Close()
	dir := t.TempDir()
	env := map[string]string{"LATCH_SERVER": srv.URL, "HOME": dir, "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret", "LATCH_AUTH": "aws"}
	asked := func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(sources) == 0 {
			return "(not asked)"
		}
		s := sources[len(sources)-1]
		sources = nil
		return s
	}
	for _, tt := range []struct {
		args       []string
		want       string
		deprecated bool
	}{
		{[]string{"--ip", "198.51.100.20"}, "198.51.100.20/32", false},
		{[]string{"--source", "198.51.100.21"}, "198.51.100.21/32", true},
		{[]string{"--ip", "auto"}, "", false},
		{nil, "", false},
	} {
		r := latchEnv(t, env, append([]string{"request", "i-0a0b0c0d0e0f00001", "--reason", "x"}, tt.args...)...)
		if got := asked(); got != tt.want {
			t.Errorf("request %v: the server was asked for source %q; want %q (exit %d %s)", tt.args, got, tt.want, r.code, r.stderr)
		}
		if said := strings.Contains(r.stderr, "--source is deprecated; use --ip"); said != tt.deprecated {
			t.Errorf("request %v: stderr %q; want a deprecation notice: %v", tt.args, r.stderr, tt.deprecated)
		}
	}
	for _, flag := range []string{"--ip", "--source"} {
		r := latchEnv(t, env, "request", "i-0a0b0c0d0e0f00001", "--reason", "x", flag, "0.0.0.0/0")
		if r.code != exitUsage || !strings.Contains(r.stderr, "ip:") || !strings.Contains(r.stderr, "0.0.0.0/0") {
			t.Errorf("request %s 0.0.0.0/0: exit %d %s; want 2 naming ip and the value", flag, r.code, r.stderr)
		}
		if got := asked(); got != "(not asked)" {
			t.Errorf("request %s 0.0.0.0/0 asked the server", flag)
		}
	}
}

// ssh's --port is a string, parsed as grant's: one port only, a bad one
// refused with exit 2 naming the flag, the value and what is allowed.
func TestSSHPort(t *testing.T) {
	if p, err := sshPort("2222"); err != nil || p != 2222 {
		t.Errorf("sshPort(2222) = %d, %v", p, err)
	}
	env := map[string]string{"HOME": t.TempDir(), "LATCH_SERVER": "http://127.0.0.1:1"}
	for _, v := range []string{"2200-2300", "70000", "ssh", "0"} {
		r := latchEnv(t, env, "ssh", "web-1", "--port", v)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--port") || !strings.Contains(r.stderr, `"`+v+`"`) || !strings.Contains(r.stderr, "1-65535") {
			t.Errorf("ssh --port %s: exit %d %s; want 2 naming --port, %q and 1-65535", v, r.code, r.stderr, v)
		}
	}
	// From the environment too, as grant's is.
	env["LATCH_PORT"] = "8000-8080"
	if r := latchEnv(t, env, "ssh", "web-1"); r.code != exitUsage || !strings.Contains(r.stderr, "range") {
		t.Errorf("LATCH_PORT=8000-8080 ssh: exit %d %s; want 2 refusing the range", r.code, r.stderr)
	}
}

// LATCH_SERVER, a URL for the other commands, does not turn on demo's
// --server switch (it made 'latch demo' fail to parse it as a boolean).
func TestDemoIgnoresLatchServer(t *testing.T) {
	_, cmd, err := withEnv(t, map[string]string{"LATCH_SERVER": "https://latch.example.com"}, "demo")
	if err != nil {
		t.Fatalf("demo with LATCH_SERVER set: %v", err)
	}
	if cmd.Flags().Lookup("server").Changed {
		t.Error("LATCH_SERVER set demo's --server")
	}
}

// withEnv finds the command at path in a fresh latch whose environment is
// env, and applies env to its flags as a run would: the app, the command,
// and applyEnv's error.
func withEnv(t *testing.T, env map[string]string, path ...string) (*app, *cobra.Command, error) {
	t.Helper()
	a := &app{getenv: func(k string) string { return env[k] }, stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	cmd, _, err := a.rootCommand().Find(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	return a, cmd, a.applyEnv(cmd, nil)
}
