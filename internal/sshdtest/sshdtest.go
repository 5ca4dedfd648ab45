// Package sshdtest runs a real OpenSSH sshd for tests: on 127.0.0.1 and a
// free port, as whoever runs the test, accepting only user certificates
// signed by the CA keys it is given (no passwords, no authorized_keys),
// and, if asked, the keys a URL lists, as EC2 Instance Connect does.
// Everything it writes lives in the test's temporary directory; it never
// reads or changes the user's own ~/.ssh.
package sshdtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// startTimeout bounds how long Start waits for sshd to accept connections.
const startTimeout = 15 * time.Second

// Options tunes the server. The zero value is ready to use.
type Options struct {
	// Config holds extra sshd_config lines, appended after the defaults
	// (sshd uses the first value it reads for most keywords, so these
	// cannot override the defaults; use them for keywords not set here).
	Config []string
	// AuthorizedKeysURL, if set, is where sshd also looks up a user's
	// keys at each login, with %u replaced by the user name: the way an
	// instance with EC2 Instance Connect reads pushed keys from its
	// metadata. sshd fetches it with curl, as nobody (or, when the test
	// is not root, as the test's user).
	AuthorizedKeysURL string
	// Instance, if set, is the EC2 instance ID this sshd plays, configured
	// as latch's README has an instance's user data do it: sshd reads
	// AuthorizedPrincipalsFile DIR/%u, and User's file lists only
	// "User@Instance", so a certificate logs in only if it names this
	// instance. Other users have no file, so no certificate logs in as
	// them. Unset, sshd has no principals file and accepts a certificate
	// whose principals include the user's name, as a plain
	// TrustedUserCAKeys setup does.
	Instance string
}

// Server is a running sshd.
type Server struct {
	// Addr is the host:port sshd listens on.
	Addr string
	// HostKey is sshd's host public key, for ssh.FixedHostKey.
	HostKey ssh.PublicKey
	// User is the only user who can log in: whoever runs the test.
	User string

	caFile string
	curl   string // for AuthorizedKeysURL
	log    *syncBuffer
}

// Log returns what sshd has logged so far, for failure messages.
func (s *Server) Log() string { return s.log.String() }

// LogContains reports whether sshd logs substr within a few seconds.
// sshd's per-connection process may log a refusal just after the client
// has seen it, so tests that check why a login failed wait for the line.
func (s *Server) LogContains(substr string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if strings.Contains(s.Log(), substr) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SetTrustedUserCAKeys replaces the CA public keys sshd trusts. sshd reads
// the file at each login, so the change applies to the next connection.
func (s *Server) SetTrustedUserCAKeys(tb testing.TB, caPubKeys []byte) {
	tb.Helper()
	tmp := s.caFile + ".new"
	if err := os.WriteFile(tmp, caPubKeys, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, s.caFile); err != nil {
		tb.Fatal(err)
	}
}

// Start runs sshd trusting the user CA keys in caPubKeys (authorized_keys
// lines) and stops it when the test ends. It skips the test only if no
// sshd binary exists.
func Start(tb testing.TB, caPubKeys []byte, opts Options) *Server {
	tb.Helper()
	bin := findSSHD()
	if bin == "" {
		tb.Skip("sshdtest: no OpenSSH sshd found in PATH or /usr/sbin/sshd; install openssh-server to run this test")
	}
	var curl string
	if opts.AuthorizedKeysURL != "" {
		if curl = findCurl(); curl == "" {
			tb.Skip("sshdtest: AuthorizedKeysURL needs curl; install curl to run this test")
		}
	}
	u, err := user.Current()
	if err != nil {
		tb.Fatalf("sshdtest: current user: %v", err)
	}
	if os.Geteuid() == 0 {
		// sshd refuses to start as root without its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			tb.Fatalf("sshdtest: %v", err)
		}
	}

	dir := tb.TempDir()
	hostKey := writeHostKey(tb, filepath.Join(dir, "ssh_host_ed25519_key"))
	s := &Server{HostKey: hostKey, User: u.Username, caFile: filepath.Join(dir, "trusted_user_ca_keys"), curl: curl, log: &syncBuffer{}}
	s.SetTrustedUserCAKeys(tb, caPubKeys)

	// Another process may take the free port before sshd binds it: retry.
	var lastErr error
	for range 3 {
		addr, err := freeAddr()
		if err != nil {
			tb.Fatalf("sshdtest: %v", err)
		}
		s.Addr = addr
		s.log.Reset()
		if lastErr = s.run(tb, bin, dir, opts); lastErr == nil {
			return s
		}
	}
	tb.Fatalf("sshdtest: %v\nsshd log:\n%s", lastErr, s.Log())
	return nil
}

func findSSHD() string {
	if p, err := exec.LookPath("sshd"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs
		}
	}
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd", "/opt/homebrew/sbin/sshd"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

func findCurl() string {
	p, err := exec.LookPath("curl")
	if err != nil {
		return ""
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return ""
	}
	return abs
}

func (s *Server) run(tb testing.TB, bin, dir string, opts Options) error {
	cfg := []string{
		"ListenAddress " + s.Addr,
		"HostKey " + filepath.Join(dir, "ssh_host_ed25519_key"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"TrustedUserCAKeys " + s.caFile,
		"AuthorizedKeysFile none",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"HostbasedAuthentication no",
		"StrictModes no",
		"UsePAM no",
		"AllowAgentForwarding no",
		"AllowTcpForwarding no",
		"X11Forwarding no",
		"PrintMotd no",
		"PrintLastLog no",
		"LogLevel VERBOSE",
	}
	if os.Geteuid() == 0 {
		cfg = append(cfg, "PermitRootLogin prohibit-password")
	}
	principals, err := s.principalsFile(dir, opts.Instance)
	if err != nil {
		return err
	}
	cfg = append(cfg, "AuthorizedPrincipalsFile "+principals)
	if opts.AuthorizedKeysURL != "" {
		// sshd runs the command only from an absolute path nobody else may
		// write, and can switch to nobody only when it runs as root.
		runAs := s.User
		if os.Geteuid() == 0 {
			runAs = "nobody"
		}
		cfg = append(cfg, "AuthorizedKeysCommand "+s.curl+" -sSf --max-time 5 "+opts.AuthorizedKeysURL,
			"AuthorizedKeysCommandUser "+runAs)
	}
	cfg = append(cfg, opts.Config...)
	cfgFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(strings.Join(cfg, "\n")+"\n"), 0o600); err != nil {
		return err
	}

	cmd := exec.Command(bin, "-D", "-e", "-f", cfgFile)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	// A per-connection sshd that outlives the listener would hold the log pipe open.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("sshd exited before accepting connections: %v", err)
		default:
		}
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("sshd did not accept connections on %s within %v", s.Addr, startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if tb.Failed() {
			tb.Logf("sshd log:\n%s", s.Log())
		}
	})
	return nil
}

// principalsFile writes the principals files for instance, if any, and
// returns the AuthorizedPrincipalsFile setting.
func (s *Server) principalsFile(dir, instance string) (string, error) {
	if instance == "" {
		return "none", nil
	}
	pdir := filepath.Join(dir, "latch_principals")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(pdir, s.User), []byte(s.User+"@"+instance+"\n"), 0o644); err != nil {
		return "", err
	}
	return filepath.Join(pdir, "%u"), nil
}

// Run logs in to the server as User with signer (a key, or a key with its
// certificate), from 127.0.0.1, and returns what command prints. A refused
// login is an error that says "unable to authenticate"; sshd logs why.
func (s *Server) Run(tb testing.TB, signer ssh.Signer, command string) (string, error) {
	tb.Helper()
	c, err := ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey), Timeout: 10 * time.Second,
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	out, err := sess.Output(command)
	return string(out), err
}

// UserKey returns a fresh ed25519 key to log in with; tests never use ~/.ssh.
func UserKey(tb testing.TB) ssh.Signer {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func writeHostKey(tb testing.TB, path string) ssh.PublicKey {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "sshdtest host key")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		tb.Fatal(err)
	}
	hostKey, err := ssh.NewPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return hostKey
}

// syncBuffer is a bytes.Buffer safe for sshd's output and the test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}
