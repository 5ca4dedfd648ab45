package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// keygen never replaces a key: an audit key overwritten by mistake makes
// every signature made with it unverifiable.
func TestAuditKeygenRefusesToOverwrite(t *testing.T) {
	w := newWorld(t)
	key := filepath.Join(w.dir, "audit.pem")
	if r := w.latch(t, "audit", "keygen", "--out", key); r.code != 0 {
		t.Fatalf("keygen: %d %s", r.code, r.stderr)
	}
	priv, _ := os.ReadFile(key)
	pub, _ := os.ReadFile(key + ".pub")
	r := w.latch(t, "audit", "keygen", "--out", key)
	if r.code != exitUsage || !strings.Contains(r.stderr, key) || !strings.Contains(r.stderr, "remove") {
		t.Fatalf("keygen over an existing key: exit %d %q; want %d naming %s and how to go on", r.code, r.stderr, exitUsage, key)
	}
	if p, _ := os.ReadFile(key); string(p) != string(priv) {
		t.Fatal("keygen replaced the private key")
	}
	if p, _ := os.ReadFile(key + ".pub"); string(p) != string(pub) {
		t.Fatal("keygen replaced the public key")
	}

	// A public key alone in the way: refused too, and no private key left.
	lone := filepath.Join(w.dir, "lone.pem")
	if err := os.WriteFile(lone+".pub", []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := w.latch(t, "audit", "keygen", "--out", lone); r.code != exitUsage || !strings.Contains(r.stderr, lone+".pub") {
		t.Fatalf("keygen with FILE.pub in the way: exit %d %q; want %d naming %s.pub", r.code, r.stderr, exitUsage, lone)
	}
	if _, err := os.Stat(lone); !os.IsNotExist(err) {
		t.Fatalf("keygen left %s behind: %v", lone, err)
	}
	if p, _ := os.ReadFile(lone + ".pub"); string(p) != "keep me" {
		t.Fatal("keygen replaced the lone public key")
	}
}

// ssh-ca keygen refuses an existing file the same way: exit 2, naming it.
func TestSSHCAKeygenRefusalExitsTwo(t *testing.T) {
	w := newWorld(t)
	ca := filepath.Join(w.dir, "ca")
	if r := w.latch(t, "ssh-ca", "keygen", ca); r.code != 0 {
		t.Fatalf("ssh-ca keygen: exit %d %s", r.code, r.stderr)
	}
	if r := w.latch(t, "ssh-ca", "keygen", ca); r.code != exitUsage || !strings.Contains(r.stderr, ca) || !strings.Contains(r.stderr, "remove") {
		t.Fatalf("ssh-ca keygen over an existing key: exit %d %q; want %d naming the file and how to go on", r.code, r.stderr, exitUsage)
	}
}
