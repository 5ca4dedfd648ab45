package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A host key other than the one EC2's console shows is an impostor's:
// latch pins the console's key and makes ssh strict, even where the user's
// own config would let a changed key through.
func TestSSHRefusesAHostKeyTheConsoleDoesNotShow(t *testing.T) {
	w := startSSHWorld(t)
	if err := w.env.Sim.SetHostKeys("us-east-1", boxInstance, []string{keyLine(hostKey(t))}); err != nil {
		t.Fatal(err)
	}
	lax := "Host *\n  UserKnownHostsFile " + filepath.Join(w.userDir, "known_hosts") + "\n  StrictHostKeyChecking no\n  BatchMode yes\n"
	if err := os.WriteFile(filepath.Join(w.userDir, "config"), []byte(lax), 0o600); err != nil {
		t.Fatal(err)
	}
	r := w.ssh(t, t.Context(), "echo", "in")
	if r.code != 255 || strings.Contains(r.stdout, "in") || !strings.Contains(r.stderr, "REMOTE HOST IDENTIFICATION HAS CHANGED") {
		t.Fatalf("exit %d stdout %q; want ssh's 255 for a changed host key\n%s", r.code, r.stdout, r.stderr)
	}
	if w.sshd.LogContains("Accepted ") {
		t.Errorf("sshd accepted a login from a client that should have refused its key:\n%s", w.sshd.Log())
	}
	if n := w.openRules(); n != 0 {
		t.Errorf("%d rules open after the refused session", n)
	}
}

// Without keys on the console, ssh trusts the first key it sees (here the
// user's config says accept-new), and latch says so.
func TestSSHWithoutConsoleHostKeysTrustsOnFirstUse(t *testing.T) {
	w := startSSHWorld(t)
	if err := w.env.Sim.SetHostKeys("us-east-1", boxInstance, nil); err != nil {
		t.Fatal(err)
	}
	r := w.ssh(t, t.Context(), "echo", "in")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "in" || !strings.Contains(r.stderr, "no host keys for "+boxInstance+" could be read") {
		t.Fatalf("exit %d stdout %q; want a login and a warning\n%s", r.code, r.stdout, r.stderr)
	}
	if kh := w.latchKnownHosts(t); kh != boxInstance+" "+keyLine(w.sshd.HostKey)+"\n" {
		t.Errorf("latch's known_hosts = %q; want the key ssh accepted, under %s", kh, boxInstance)
	}
	// Known now: no warning the second time.
	if r := w.ssh(t, t.Context(), "echo", "again"); r.code != 0 || strings.Contains(r.stderr, "no host keys") {
		t.Errorf("second session: exit %d, stderr %q; want no warning", r.code, r.stderr)
	}
}
