package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func hostKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyLine(k ssh.PublicKey) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) }

// Pinned keys replace every line for the host, hashed ones included, and
// ssh's own known_hosts matching then accepts only them.
func TestPinHostKeys(t *testing.T) {
	const host = "i-0b0c00000000000b1"
	real, tofu, other := hostKey(t), hostKey(t), hostKey(t)
	path := filepath.Join(t.TempDir(), "known_hosts")
	before := strings.Join([]string{
		"# latch's known hosts",
		"@cert-authority *.example.com " + keyLine(other),
		host + " " + keyLine(tofu),
		knownhosts.HashHostname(host) + " " + keyLine(tofu),
		"i-0ffff000000000001," + host + " " + keyLine(tofu),
		"i-0ffff000000000001 " + keyLine(other),
	}, "\n") + "\n"
	if err := os.WriteFile(path, []byte(before), 0o600); err != nil {
		t.Fatal(err)
	}
	ok, err := pinHostKeys(path, host, []string{"not a key", keyLine(real)})
	if err != nil || !ok {
		t.Fatalf("pin = %v, %v; want pinned", ok, err)
	}
	b, _ := os.ReadFile(path)
	want := "# latch's known hosts\n@cert-authority *.example.com " + keyLine(other) + "\n" +
		"i-0ffff000000000001 " + keyLine(other) + "\n" + host + " " + keyLine(real) + "\n"
	if string(b) != want {
		t.Errorf("known_hosts =\n%s\nwant\n%s", b, want)
	}

	check, err := knownhosts.New(path)
	if err != nil {
		t.Fatal(err)
	}
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	if err := check(host+":22", addr, real); err != nil {
		t.Errorf("the pinned key: %v", err)
	}
	if err := check(host+":22", addr, tofu); err == nil {
		t.Error("the key trusted on first use is still accepted")
	}

	// Nothing usable: the file is left as it was.
	ok, err = pinHostKeys(path, host, []string{"ssh-ed25519 !!!"})
	if after, _ := os.ReadFile(path); ok || err != nil || string(after) != want {
		t.Errorf("pin of no valid key = %v, %v and changed the file", ok, err)
	}
}

func TestPinHostKeysMakesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_hosts")
	k := hostKey(t)
	if ok, err := pinHostKeys(path, "[box-1.latch]:2222", []string{keyLine(k) + " root@ip-10-0-0-1"}); !ok || err != nil {
		t.Fatalf("pin = %v, %v", ok, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "[box-1.latch]:2222 "+keyLine(k)+"\n" {
		t.Errorf("known_hosts = %q", b)
	}
}
