package sshca_test

import (
	"errors"
	"net"
	"net/netip"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/latchdev/latch/internal/sshdtest"
	"github.com/latchdev/latch/sshca"
	"golang.org/x/crypto/ssh"
)

// newCA generates a CA key in a temporary directory and loads it.
func newCA(t testing.TB) (*sshca.CA, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca")
	if err := sshca.GenerateKey(path); err != nil {
		t.Fatal(err)
	}
	ca, err := sshca.LoadCA(path)
	if err != nil {
		t.Fatal(err)
	}
	return ca, path
}

func currentUser(t testing.TB) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// request returns a CertRequest for the current user, valid for the next
// ten minutes from 127.0.0.1.
func request(t testing.TB) sshca.CertRequest {
	now := time.Now()
	return sshca.CertRequest{
		KeyID:         "grant=g-test;requester=alice@example.com",
		Principals:    []string{currentUser(t)},
		ValidAfter:    now,
		ValidBefore:   now.Add(10 * time.Minute),
		SourceAddress: netip.MustParsePrefix("127.0.0.1/32"),
	}
}

// certSigner signs a fresh user key with ca and returns the key with its
// certificate.
func certSigner(t *testing.T, ca *sshca.CA, req sshca.CertRequest) ssh.Signer {
	t.Helper()
	key := sshdtest.UserKey(t)
	cert, err := ca.Sign(key.PublicKey(), req)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run logs in to srv from localIP (127.0.0.1 if empty) and runs "echo ok".
func run(t *testing.T, srv *sshdtest.Server, signer ssh.Signer, localIP string) (string, error) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second}
	if localIP != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(localIP)}
	}
	conn, err := d.Dial("tcp", srv.Addr)
	if err != nil {
		if localIP != "" && errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Skipf("cannot connect from %s on this system: %v", localIP, err)
		}
		t.Fatal(err)
	}
	cfg := &ssh.ClientConfig{
		User:            srv.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(srv.HostKey),
		Timeout:         10 * time.Second,
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, srv.Addr, cfg)
	if err != nil {
		conn.Close()
		return "", err
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.Output("echo ok")
	return string(out), err
}

func mustLogIn(t *testing.T, srv *sshdtest.Server, signer ssh.Signer, localIP string) {
	t.Helper()
	out, err := run(t, srv, signer, localIP)
	if err != nil {
		t.Fatalf("login failed: %v\nsshd log:\n%s", err, srv.Log())
	}
	if strings.TrimSpace(out) != "ok" {
		t.Fatalf("echo ok printed %q\nsshd log:\n%s", out, srv.Log())
	}
}

// mustBeRefused checks that sshd refuses the login and logs why.
func mustBeRefused(t *testing.T, srv *sshdtest.Server, signer ssh.Signer, localIP, why string) {
	t.Helper()
	out, err := run(t, srv, signer, localIP)
	if err == nil {
		t.Fatalf("login succeeded (printed %q); want it refused\nsshd log:\n%s", out, srv.Log())
	}
	if !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("login failed, but not at authentication: %v\nsshd log:\n%s", err, srv.Log())
	}
	if !srv.LogContains(why) {
		t.Fatalf("sshd did not log %q\nsshd log:\n%s", why, srv.Log())
	}
}

// failedWithCA is how sshd logs a refused certificate signed by ca.
func failedWithCA(ca *sshca.CA) string {
	return "CA ED25519 " + ssh.FingerprintSHA256(ca.PublicKeys()[0])
}

func TestSSHDLogsInWithCertificate(t *testing.T) {
	ca, _ := newCA(t)
	srv := sshdtest.Start(t, ca.TrustedUserCAKeys(), sshdtest.Options{})
	mustLogIn(t, srv, certSigner(t, ca, request(t)), "")
	if !strings.Contains(srv.Log(), "grant=g-test;requester=alice@example.com") {
		t.Errorf("sshd did not log the certificate's key ID:\n%s", srv.Log())
	}
}

func TestSSHDRefusesExpiredCertificate(t *testing.T) {
	ca, _ := newCA(t)
	srv := sshdtest.Start(t, ca.TrustedUserCAKeys(), sshdtest.Options{})
	req := request(t)
	req.ValidAfter = time.Now().Add(-2 * time.Hour)
	req.ValidBefore = time.Now().Add(-time.Hour)
	mustBeRefused(t, srv, certSigner(t, ca, req), "", "Certificate invalid: expired")
}

func TestSSHDRefusesCertificateNotYetValid(t *testing.T) {
	ca, _ := newCA(t)
	srv := sshdtest.Start(t, ca.TrustedUserCAKeys(), sshdtest.Options{})
	req := request(t)
	req.ValidAfter = time.Now().Add(time.Hour)
	req.ValidBefore = time.Now().Add(2 * time.Hour)
	mustBeRefused(t, srv, certSigner(t, ca, req), "", "Certificate invalid: not yet valid")
}

func TestSSHDRefusesOtherPrincipal(t *testing.T) {
	ca, _ := newCA(t)
	srv := sshdtest.Start(t, ca.TrustedUserCAKeys(), sshdtest.Options{})
	req := request(t)
	req.Principals = []string{"not-" + srv.User}
	mustBeRefused(t, srv, certSigner(t, ca, req), "", "name is not a listed principal")
}

func TestSSHDEnforcesSourceAddress(t *testing.T) {
	ca, _ := newCA(t)
	srv := sshdtest.Start(t, ca.TrustedUserCAKeys(), sshdtest.Options{})

	// Bound to 127.0.0.1: refused from 127.0.0.2.
	mustBeRefused(t, srv, certSigner(t, ca, request(t)), "127.0.0.2", "not from a permitted source address (127.0.0.2)")

	// Bound to 127.0.0.2: allowed from there.
	req := request(t)
	req.SourceAddress = netip.MustParsePrefix("127.0.0.2/32")
	mustLogIn(t, srv, certSigner(t, ca, req), "127.0.0.2")
}

func TestSSHDRefusesOtherCA(t *testing.T) {
	ca, _ := newCA(t)
	other, _ := newCA(t)
	srv := sshdtest.Start(t, ca.TrustedUserCAKeys(), sshdtest.Options{})
	mustBeRefused(t, srv, certSigner(t, other, request(t)), "", failedWithCA(other))
}

func TestSSHDRotation(t *testing.T) {
	oldCA, oldPath := newCA(t)
	_, newPath := newCA(t)

	// During the rotation the new key signs and both are trusted.
	both, err := sshca.LoadCA(newPath, oldPath)
	if err != nil {
		t.Fatal(err)
	}
	srv := sshdtest.Start(t, both.TrustedUserCAKeys(), sshdtest.Options{})
	oldCert := certSigner(t, oldCA, request(t))
	newCert := certSigner(t, both, request(t))
	mustLogIn(t, srv, oldCert, "")
	mustLogIn(t, srv, newCert, "")

	// Once the old key is dropped, its certificates no longer log in.
	newCA, err := sshca.LoadCA(newPath)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetTrustedUserCAKeys(t, newCA.TrustedUserCAKeys())
	mustBeRefused(t, srv, oldCert, "", failedWithCA(oldCA))
	mustLogIn(t, srv, newCert, "")
}
