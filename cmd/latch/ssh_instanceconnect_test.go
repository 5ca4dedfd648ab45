package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/latchdev/latch"
)

// A rule may name EC2 Instance Connect instead: the server pushes the
// session's key for 60 seconds and the instance's sshd accepts it.
func TestSSHLogsInWithInstanceConnect(t *testing.T) {
	w := startSSHWorldWith(t, latch.SSHInstanceConnect)
	before := w.userFiles(t)
	r := w.ssh(t, t.Context(), "echo", "eic via the server")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "eic via the server" {
		t.Fatalf("latch ssh: exit %d, stdout %q\nstderr: %s\nsshd: %s\nserver: %s", r.code, r.stdout, r.stderr, w.sshd.Log(), w.server.output())
	}
	w.checkPushedKeyLoggedIn(t, w.sshd.User)
	grant := grantIn(t, r.stderr)
	if n := w.openRules(); n != 0 || w.grantState(t, grant) != latch.StateRevoked {
		t.Errorf("after the session: %d rules open, grant %s; want it revoked", n, w.grantState(t, grant))
	}
	if after := w.userFiles(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the user's ssh files changed:\nbefore %v\nafter  %v", before, after)
	}
}

func TestSSHDirectWithInstanceConnect(t *testing.T) {
	w := startSSHWorld(t)
	r := w.latch(t, "ssh", "--direct", "--method", "instance-connect", "--ip", "127.0.0.1", "--login", w.sshd.User,
		"box-1", "--port", w.port, "--", "-F", filepath.Join(w.userDir, "config"), "echo", "eic")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "eic" || !strings.Contains(r.stderr, "instance-connect") {
		t.Fatalf("latch ssh --direct --method instance-connect: exit %d %q\n%s\nsshd: %s", r.code, r.stdout, r.stderr, w.sshd.Log())
	}
	w.checkPushedKeyLoggedIn(t, w.sshd.User)
	if n := w.openRules(); n != 0 {
		t.Errorf("%d rules open after the session", n)
	}
}

// checkPushedKeyLoggedIn checks that one key was pushed to box-1, for
// login, and that sshd accepted that very key (not a certificate).
func (w *sshWorld) checkPushedKeyLoggedIn(t *testing.T, login string) {
	t.Helper()
	pushed := w.env.Sim.PushedKeys("us-east-1", boxInstance)
	if len(pushed) != 1 || pushed[0].OSUser != login {
		t.Fatalf("pushed keys = %+v; want one session key for %s", pushed, login)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(pushed[0].PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if want := "Accepted publickey for " + login + " from 127.0.0.1 port "; !w.sshd.LogContains(want) ||
		!w.sshd.LogContains("ED25519 "+ssh.FingerprintSHA256(key)) {
		t.Errorf("sshd did not log accepting the pushed key %s:\n%s", ssh.FingerprintSHA256(key), w.sshd.Log())
	}
}
