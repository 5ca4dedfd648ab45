package sshdtest_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"os/user"
	"strings"
	"testing"

	"github.com/latchdev/latch/internal/sshdtest"
	"golang.org/x/crypto/ssh"
)

// TestStart checks the server's user and host key, and that a plain key
// does not log in: sshd accepts certificates only, even when the key
// itself is listed as a CA.
func TestStart(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	srv := sshdtest.Start(t, ssh.MarshalAuthorizedKey(key.PublicKey()), sshdtest.Options{})
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if srv.User != u.Username {
		t.Errorf("User = %q, want %q", srv.User, u.Username)
	}

	// A wrong host key is caught before authentication.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherKey, _ := ssh.NewSignerFromKey(other)
	_, err = ssh.Dial("tcp", srv.Addr, &ssh.ClientConfig{
		User:            srv.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(otherKey.PublicKey()),
	})
	if err == nil || !strings.Contains(err.Error(), "host key mismatch") {
		t.Errorf("with a wrong host key: err = %v, want a host key mismatch", err)
	}

	_, err = ssh.Dial("tcp", srv.Addr, &ssh.ClientConfig{
		User:            srv.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.FixedHostKey(srv.HostKey),
	})
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("a plain key: err = %v, want an authentication failure\n%s", err, srv.Log())
	}
	if !srv.LogContains("Failed publickey for " + srv.User) {
		t.Errorf("sshd did not log the failure:\n%s", srv.Log())
	}
}
