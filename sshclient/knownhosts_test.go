package sshclient_test

import (
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/latchdev/latch/internal/sshdtest"
	"github.com/latchdev/latch/sshclient"
)

func hostKey(t *testing.T) ssh.PublicKey { return sshdtest.UserKey(t).PublicKey() }

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
	if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	ok, err := sshclient.PinHostKeys(path, host, []string{"not a key", keyLine(real)})
	if err != nil || !ok {
		t.Fatalf("pin = %v, %v; want pinned", ok, err)
	}
	b, _ := os.ReadFile(path)
	want := "# latch's known hosts\n@cert-authority *.example.com " + keyLine(other) + "\n" +
		"i-0ffff000000000001 " + keyLine(tofu) + "\n" + // the other host on a shared line stays
		"i-0ffff000000000001 " + keyLine(other) + "\n" + host + " " + keyLine(real) + "\n"
	if string(b) != want {
		t.Errorf("known_hosts =\n%s\nwant\n%s", b, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode after pinning = %v, %v; want the file's own 0644", fi.Mode(), err)
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
	ok, err = sshclient.PinHostKeys(path, host, []string{"ssh-ed25519 !!!"})
	if after, _ := os.ReadFile(path); ok || err != nil || string(after) != want {
		t.Errorf("pin of no valid key = %v, %v and changed the file", ok, err)
	}
}

func TestPinHostKeysMakesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_hosts")
	k := hostKey(t)
	if ok, err := sshclient.PinHostKeys(path, "[box-1.latch]:2222", []string{keyLine(k) + " root@ip-10-0-0-1"}); !ok || err != nil {
		t.Fatalf("pin = %v, %v", ok, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "[box-1.latch]:2222 "+keyLine(k)+"\n" {
		t.Errorf("known_hosts = %q", b)
	}
}

// Only a plain host name, instance ID or [name]:port is written: a name
// ssh would read as a pattern, list or marker could vouch for every host.
// Certificates are not host keys and are dropped.
func TestPinHostKeysRefusesWhatIsNotAHostKeyForAHost(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "known_hosts")
	k := keyLine(hostKey(t))
	for _, host := range []string{"*", "@cert-authority *", "a,b", "i-1\n* ", "!x", "#", "|1|x|y", "", "[h]:", "host name"} {
		if ok, err := sshclient.PinHostKeys(path, host, []string{k}); ok || err == nil || !strings.Contains(err.Error(), "host") {
			t.Errorf("pin for %q = %v, %v; want refused naming the host", host, ok, err)
		}
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("a refused pin wrote the file")
	}

	cert := &ssh.Certificate{Key: hostKey(t), CertType: ssh.HostCert, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, sshdtest.UserKey(t)); err != nil {
		t.Fatal(err)
	}
	if ok, err := sshclient.PinHostKeys(path, "i-0b0c00000000000b1", []string{keyLine(cert)}); ok || err != nil {
		t.Errorf("pin of a certificate = %v, %v; want nothing pinned", ok, err)
	}
}

// A known_hosts that is a symlink (dotfiles repositories) stays one.
func TestPinHostKeysKeepsASymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "dotfiles-known_hosts")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "known_hosts")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	k := keyLine(hostKey(t))
	if ok, err := sshclient.PinHostKeys(link, "i-0b0c00000000000b1", []string{k}); !ok || err != nil {
		t.Fatalf("pin = %v, %v", ok, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("known_hosts is no longer a symlink: %v, %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(target); string(b) != "i-0b0c00000000000b1 "+k+"\n" {
		t.Errorf("the link's target = %q; want the pinned key", b)
	}
}
