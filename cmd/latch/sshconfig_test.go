package main

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/sshclient"
)

// sshConfigCommands prints the block with the built latch and returns its
// Match exec command and its ProxyCommand, as ssh reads them from the file
// (before it expands %n, %p and %r).
func sshConfigCommands(t *testing.T, env []string) (block, match, proxy string) {
	t.Helper()
	gen := exec.Command(latchBinary(t), "ssh-config", "--login", "ec2-user")
	gen.Env = env
	out, err := gen.Output()
	if err != nil {
		t.Fatalf("ssh-config: %v\n%s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if _, cmd, ok := strings.Cut(line, ` exec "`); ok && strings.HasPrefix(line, "Match ") {
			match = strings.ReplaceAll(strings.TrimSuffix(cmd, `"`), `\"`, `"`)
		}
		if cmd, ok := strings.CutPrefix(line, "ProxyCommand "); ok {
			proxy = cmd
		}
	}
	if match == "" || proxy == "" {
		t.Fatalf("no Match exec or ProxyCommand in\n%s", out)
	}
	return string(out), match, proxy
}

// expand does what ssh does to a command before it hands it to the shell:
// substitute the tokens, with no quoting of its own.
func expand(cmd, host, user string) string {
	return strings.NewReplacer("%%", "%", "%n", host, "%p", "22", "%r", user).Replace(cmd)
}

// sshConfigEnv is an environment for the block's commands: a server that
// does not answer (latch must refuse a bad name before it calls one) and
// a home of the test's own.
func sshConfigEnv(t *testing.T) []string {
	home := t.TempDir()
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "LATCH_SERVER=http://127.0.0.1:1", "USER=tester",
		// Credentials of its own, so nothing looks for a metadata service.
		"AWS_ACCESS_KEY_ID=AKIDLATCHTEST", "AWS_SECRET_ACCESS_KEY=secret", "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true"}
}

// A host name or user given to ssh is attacker-controlled wherever a link
// or repository URL chooses it (ssh://a$(touch x).latch/repo), and ssh
// before 9.6 hands %n and %r to the shell as they are. Run through the
// shell as ssh would, the block's commands must not execute any of it, and
// latch must refuse the name itself (exit 2, naming the field) before it
// uses it.
func TestSSHConfigNamesNeverReachTheShell(t *testing.T) {
	env := sshConfigEnv(t)
	block, match, proxy := sshConfigCommands(t, env)
	// Single quotes stop everything but a single quote; a name holding one
	// must not match the block at all, so ssh runs neither command.
	if !strings.Contains(block, `Match host "*.latch,!*'*" user "*,!*'*" exec "`) {
		t.Errorf("the Match line does not leave out names with a single quote:\n%s", block)
	}
	for _, tt := range []struct {
		name, host, user, field string
	}{
		{"command substitution in the host", "a$(touch x).latch", "ec2-user", "host"},
		{"backquotes in the host", "a`touch x`.latch", "ec2-user", "host"},
		{"a command list in the host", "a;touch x;b.latch", "ec2-user", "host"},
		{"a pipe in the host", "a|touch x|b.latch", "ec2-user", "host"},
		{"a space and a glob in the host", "a * .latch", "ec2-user", "host"},
		{"command substitution in the user", "web-1.latch", "u$(touch x)", "user"},
		{"a command list in the user", "web-1.latch", "u;touch x", "user"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct{ what, cmd string }{{"Match exec", match}, {"ProxyCommand", proxy}} {
				if c.what == "ProxyCommand" && tt.field == "user" {
					continue // the ProxyCommand is not given the user
				}
				dir := t.TempDir()
				sh := exec.Command("/bin/sh", "-c", expand(c.cmd, tt.host, tt.user))
				sh.Dir, sh.Env = dir, env
				out, err := sh.CombinedOutput()
				if _, serr := os.Stat(filepath.Join(dir, "x")); serr == nil {
					t.Errorf("%s ran the name's command: x was created", c.what)
				}
				code := -1
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				}
				if code != exitUsage || !strings.Contains(string(out), tt.field+": ") {
					t.Errorf("%s: exit %d %q; want latch to refuse the %s (exit 2)", c.what, code, out, tt.field)
				}
			}
		})
	}
}

func TestSSHConfigRefusesABadSuffix(t *testing.T) {
	w := newWorld(t)
	for _, suffix := range []string{"latch", ".", ".la'tch", ".la tch", ".a,b", ".la$(x)"} {
		if r := w.latch(t, "ssh-config", "--suffix", suffix); r.code != exitUsage || !strings.Contains(r.stderr, "suffix: ") {
			t.Errorf("--suffix %q: exit %d %q; want 2 naming suffix", suffix, r.code, r.stderr)
		}
	}
}

// `go run ./cmd/latch ssh-config` runs latch from a go-build directory
// that is removed when it exits: a block naming it would break every
// later ssh. It is refused (exit 2: how latch was run is the mistake, and
// nothing was tried), naming the path and the fix, and nothing is printed
// for the shell to append to ~/.ssh/config.
func TestSSHConfigRefusesAnExecutableInTheBuildCache(t *testing.T) {
	home := t.TempDir()
	env := map[string]string{"HOME": home, "GOCACHE": filepath.Join(home, "gocache")}
	for _, exe := range []string{"/tmp/go-build2750152/b001/exe/latch", filepath.Join(home, "gocache", "7f", "exe", "latch")} {
		var out bytes.Buffer
		a := &app{getenv: func(k string) string { return env[k] }, stdout: &out, stderr: &out, server: "https://latch.example.com"}
		err := a.writeSSHConfig(exe, ".latch", "ec2-user", "")
		if exitCode(err) != exitUsage || !strings.Contains(latch.ErrorMessage(err), exe) || !strings.Contains(latch.ErrorMessage(err), "go install ./cmd/latch") {
			t.Errorf("%s: exit %d, %v; want 2 naming the path and the fix", exe, exitCode(err), err)
		}
		if out.Len() != 0 {
			t.Errorf("%s: printed %q; want nothing", exe, out.String())
		}
	}
}

// An IDE runs ssh, and so the block's commands, without the user's
// LATCH_ variables: the block must carry the server, its CA (as an
// absolute path: ssh runs it from anywhere) and the way to authenticate,
// and the ProxyCommand must reach the server with them alone.
func TestSSHConfigRecordsTheServer(t *testing.T) {
	revoked := make(chan string, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/revoke") {
			revoked <- r.URL.Path
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, "{}")
	}))
	defer srv.Close()
	srvDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(srvDir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	gen := exec.Command(latchBinary(t), "ssh-config")
	gen.Dir = srvDir
	gen.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LATCH_SERVER=" + srv.URL, "LATCH_SERVER_CA=ca.pem", "LATCH_AUTH=aws"}
	out, err := gen.Output()
	if err != nil {
		t.Fatalf("ssh-config: %v\n%s", err, out)
	}
	server := " --server " + srv.URL + " --server-ca " + filepath.Join(srvDir, "ca.pem") + " --auth aws"
	if !strings.Contains(string(out), "ssh-config prepare"+server+" --suffix") || !strings.Contains(string(out), "ssh-config proxy"+server+" '%n'") {
		t.Fatalf("the block does not carry%s on both commands:\n%s", server, out)
	}
	var proxy string
	for line := range strings.Lines(string(out)) {
		if cmd, ok := strings.CutPrefix(strings.TrimSpace(line), "ProxyCommand "); ok {
			proxy = cmd
		}
	}

	// What prepare would have left: a grant and an instance (here, an echo).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			_, _ = io.Copy(c, c)
			c.Close()
		}
	}()
	dir := filepath.Join(home, ".cache", "latch", "ssh", "web-1.latch")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	const grant = "g-00000000000000aa"
	if err := sshclient.WriteConnState(dir, sshclient.ConnState{Grant: grant, Address: ln.Addr().String(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// The user's AWS credentials, as an IDE finds them: in ~/.aws, not the environment.
	if err := os.MkdirAll(filepath.Join(home, ".aws"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".aws", "credentials"), []byte("[default]\naws_access_key_id = AKIDLATCHTEST\naws_secret_access_key = secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	sh := exec.Command("/bin/sh", "-c", expand(proxy, "web-1.latch", ""))
	sh.Dir, sh.Env = t.TempDir(), []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
	var stderr bytes.Buffer
	sh.Stderr = &stderr
	stdin, _ := sh.StdinPipe()
	stdout, _ := sh.StdoutPipe()
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(stdin, "SSH-2.0-test\r\n")
	echo := make([]byte, len("SSH-2.0-test\r\n"))
	if _, err := io.ReadFull(stdout, echo); err != nil {
		t.Fatalf("no echo through the proxy: %v\n%s", err, stderr.String())
	}
	stdin.Close()
	if err := sh.Wait(); err != nil {
		t.Fatalf("proxy: %v\n%s", err, stderr.String())
	}
	select {
	case path := <-revoked:
		if path != "/v1/grants/"+grant+"/revoke" {
			t.Errorf("revoked %s; want grant %s", path, grant)
		}
	default:
		t.Fatalf("the proxy did not revoke the grant at the server given in the block\n%s", stderr.String())
	}
}
