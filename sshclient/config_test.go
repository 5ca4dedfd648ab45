package sshclient_test

import (
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/sshclient"
)

// A block naming a latch that `go run` built stops working when that run
// ends: the executable is deleted with its go-build directory.
func TestCheckExecutable(t *testing.T) {
	tests := []struct {
		name, exe, gocache string
		ok                 bool
	}{
		{name: "go run in the temp directory", exe: "/tmp/go-build3114576/b001/exe/latch"},
		{name: "the default build cache", exe: "/home/dev/.cache/go-build/4f/4f0c-d/latch"},
		{name: "a build cache set by GOCACHE", exe: "/var/cache/gobuild/exe/ab/latch", gocache: "/var/cache/gobuild"},
		{name: "a relative path", exe: "bin/latch"},
		{name: "installed", exe: "/home/dev/go/bin/latch", gocache: "/var/cache/gobuild", ok: true},
		{name: "a name that only starts like the cache", exe: "/var/cache/gobuild2/latch", gocache: "/var/cache/gobuild", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sshclient.CheckExecutable(tt.exe, tt.gocache)
			if tt.ok {
				if err != nil {
					t.Fatalf("CheckExecutable(%q) = %v; want nil", tt.exe, err)
				}
				return
			}
			if latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(err.Error(), tt.exe) {
				t.Fatalf("CheckExecutable(%q) = %v; want EINVALID naming the path", tt.exe, err)
			}
			if strings.Contains(tt.exe, "go-build") || tt.gocache != "" {
				if !strings.Contains(err.Error(), "go install ./cmd/latch") {
					t.Errorf("CheckExecutable(%q) = %v; want the fix, go install ./cmd/latch", tt.exe, err)
				}
			}
		})
	}
}

func block() sshclient.ConfigBlock {
	return sshclient.ConfigBlock{Latch: "/usr/local/bin/latch", Args: []string{"--server", "https://latch.example.com:8443", "--server-ca", "/etc/latch/ca.pem"},
		Suffix: ".latch", Login: "ec2-user", CacheDir: "/home/dev/.cache/latch/ssh", KnownHosts: "/home/dev/.config/latch/known_hosts"}
}

// Both commands carry the server flags: an IDE's ssh runs them without
// the user's LATCH_ variables.
func TestConfigBlockCarriesTheServer(t *testing.T) {
	text, err := block().Render()
	if err != nil {
		t.Fatal(err)
	}
	const server = " --server https://latch.example.com:8443 --server-ca /etc/latch/ca.pem"
	want := []string{
		`exec "/usr/local/bin/latch ssh-config prepare` + server + ` --suffix .latch '%n' '%p' '%r'"`,
		`ProxyCommand /usr/local/bin/latch ssh-config proxy` + server + ` '%n' '%p'`,
		"IdentityFile /home/dev/.cache/latch/ssh/%n/id_ed25519\n",
		"User ec2-user\n",
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("block lacks %q:\n%s", w, text)
		}
	}
}

// ssh expands %-tokens in Match exec, ProxyCommand and file names: latch's
// own '%'s must reach the shell as they are.
func TestConfigBlockEscapesTokens(t *testing.T) {
	b := block()
	b.Args = []string{"--server", "https://latch.example.com/%7Ejit"}
	b.Reason = "on-call 100%r"
	text, err := b.Render()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "https://latch.example.com/%%7Ejit") || !strings.Contains(text, "'on-call 100%%r'") {
		t.Errorf("latch's own %% is not doubled:\n%s", text)
	}
}

func TestConfigBlockRefusesWhatSSHConfigCannotCarry(t *testing.T) {
	for _, tt := range []struct {
		name, field string
		change      func(b *sshclient.ConfigBlock)
	}{
		{"a line break in a flag", "ssh-config", func(b *sshclient.ConfigBlock) { b.Args = []string{"--server-ca", "/x\nProxyCommand sh"} }},
		{"a line break in the reason", "reason", func(b *sshclient.ConfigBlock) { b.Reason = "x\nProxyCommand sh" }},
		{"a bad suffix", "suffix", func(b *sshclient.ConfigBlock) { b.Suffix = ".la tch" }},
		{"a bad login", "login", func(b *sshclient.ConfigBlock) { b.Login = "u;sh" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := block()
			tt.change(&b)
			text, err := b.Render()
			if latch.ErrorCode(err) != latch.EINVALID || !strings.HasPrefix(err.Error(), tt.field+": ") || text != "" {
				t.Fatalf("Render = %q, %v; want nothing and EINVALID naming %s", text, err, tt.field)
			}
		})
	}
}

func TestSplitHost(t *testing.T) {
	dest, port, err := sshclient.SplitHost("web-1.latch", "2222", ".latch")
	if err != nil || dest != "web-1" || port != 2222 {
		t.Fatalf("SplitHost = %q, %d, %v; want web-1, 2222", dest, port, err)
	}
	for _, bad := range [][2]string{{"web-1.example", "22"}, {".latch", "22"}, {"a$(x).latch", "22"}, {"web-1.latch", "0"}, {"web-1.latch", "ssh"}} {
		if _, _, err := sshclient.SplitHost(bad[0], bad[1], ".latch"); latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("SplitHost(%q, %q) = %v; want EINVALID", bad[0], bad[1], err)
		}
	}
}
