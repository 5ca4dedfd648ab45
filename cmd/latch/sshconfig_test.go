package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
