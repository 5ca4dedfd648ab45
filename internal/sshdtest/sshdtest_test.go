package sshdtest_test

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os/user"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/latchdev/latch/internal/sshdtest"
	"golang.org/x/crypto/ssh"
)

// TestStart checks the server's user and host key, and that a plain key
// does not log in: sshd accepts certificates only, even when the key
// itself is listed as a CA.
func TestStart(t *testing.T) {
	key := sshdtest.UserKey(t)
	srv := sshdtest.Start(t, ssh.MarshalAuthorizedKey(key.PublicKey()), sshdtest.Options{})
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if srv.User != u.Username {
		t.Errorf("User = %q, want %q", srv.User, u.Username)
	}

	// A wrong host key is caught before authentication.
	otherKey := sshdtest.UserKey(t)
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

// With AuthorizedKeysURL, sshd asks the URL for the user's keys at each
// login: a listed key logs in, an unlisted one does not.
func TestAuthorizedKeysURL(t *testing.T) {
	listed, unlisted := sshdtest.UserKey(t), sshdtest.UserKey(t)
	var asked atomic.Value
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Store(r.URL.Query().Get("user"))
		_, _ = w.Write(ssh.MarshalAuthorizedKey(listed.PublicKey()))
	}))
	t.Cleanup(keys.Close)
	srv := sshdtest.Start(t, nil, sshdtest.Options{AuthorizedKeysURL: keys.URL + "/keys?user=%u"})

	dial := func(key ssh.Signer) error {
		c, err := ssh.Dial("tcp", srv.Addr, &ssh.ClientConfig{
			User: srv.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)}, HostKeyCallback: ssh.FixedHostKey(srv.HostKey),
		})
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(listed); err != nil {
		t.Fatalf("listed key: %v\n%s", err, srv.Log())
	}
	if got, _ := asked.Load().(string); got != srv.User {
		t.Errorf("sshd asked for the keys of %q, want %q", got, srv.User)
	}
	if err := dial(unlisted); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("unlisted key: err = %v, want an authentication failure", err)
	}
}

// With Instance, sshd accepts a certificate only for "User@Instance": not
// for the bare user name, and not for another instance. The certificates
// are signed here directly, so the harness is checked apart from latch.
func TestInstancePrincipals(t *testing.T) {
	ca := sshdtest.UserKey(t)
	const instance = "i-0a0b0c0d0e0f0000a"
	srv := sshdtest.Start(t, ssh.MarshalAuthorizedKey(ca.PublicKey()), sshdtest.Options{Instance: instance})
	login := func(principal string) error {
		key := sshdtest.UserKey(t)
		cert := &ssh.Certificate{Key: key.PublicKey(), CertType: ssh.UserCert, KeyId: principal,
			ValidPrincipals: []string{principal}, ValidBefore: ssh.CertTimeInfinity}
		if err := cert.SignCert(rand.Reader, ca); err != nil {
			t.Fatal(err)
		}
		signer, err := ssh.NewCertSigner(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		_, err = srv.Run(t, signer, "true")
		return err
	}
	if err := login(srv.User + "@" + instance); err != nil {
		t.Fatalf("the instance's own principal: %v\n%s", err, srv.Log())
	}
	for _, p := range []string{srv.User, srv.User + "@i-0a0b0c0d0e0f0000b"} {
		if err := login(p); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Errorf("principal %q: err = %v; want refused", p, err)
		}
	}
	if !srv.LogContains("Certificate does not contain an authorized principal") {
		t.Errorf("sshd did not log why:\n%s", srv.Log())
	}
}
