package datachannel

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/latchdev/latch/internal/sshdtest"
	"github.com/latchdev/latch/internal/ssmplugintest"
)

// SSH over Session Manager reaches a real sshd both ways people use it:
// OpenSSH's ssh with the plugin as ProxyCommand (AWS-StartSSHSession), and
// an SSH client on the local port of AWS-StartPortForwardingSession.
func TestSSHOverSessionManagerReachesSSHD(t *testing.T) {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		t.Skip("no OpenSSH ssh client in PATH; install openssh-client to run this test")
	}
	ca := sshdtest.UserKey(t)
	sshd := sshdtest.Start(t, ssh.MarshalAuthorizedKey(ca.PublicKey()), sshdtest.Options{})
	_, sshdPort, _ := net.SplitHostPort(sshd.Addr)

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cert := &ssh.Certificate{Key: key.PublicKey(), CertType: ssh.UserCert, KeyId: "ssm-test",
		ValidPrincipals: []string{sshd.User}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)

	t.Run("ProxyCommand", func(t *testing.T) {
		s := e.add(Session{Document: DocumentSSH, Parameters: map[string][]string{"portNumber": {sshdPort}}})
		dir := t.TempDir()
		block, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			t.Fatal(err)
		}
		keyFile, certFile, knownHosts := filepath.Join(dir, "id"), filepath.Join(dir, "id-cert.pub"), filepath.Join(dir, "known_hosts")
		for name, b := range map[string][]byte{
			keyFile:    pem.EncodeToMemory(block),
			certFile:   ssh.MarshalAuthorizedKey(cert),
			knownHosts: []byte(s.Target + " " + string(ssh.MarshalAuthorizedKey(sshd.HostKey))),
		} {
			if err := os.WriteFile(name, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// As the AWS CLI's ssh config has it, but with the plugin called
		// directly: what aws ssm start-session would pass it.
		resp := fmt.Sprintf(`{"SessionId":%q,"TokenValue":%q,"StreamUrl":%q}`, s.ID, s.Token,
			"ws"+strings.TrimPrefix(e.http.URL, "http")+PathPrefix+s.ID)
		req := fmt.Sprintf(`{"Target":%q,"DocumentName":%q,"Parameters":{"portNumber":[%q]}}`, s.Target, s.Document, sshdPort)
		proxy := strings.Join([]string{shellQuote(ssmplugintest.Path(t)), shellQuote(resp), s.Region, "StartSession", "''", shellQuote(req), shellQuote(e.ssm.URL)}, " ")
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		cmd := exec.CommandContext(ctx, sshBin, "-F", "/dev/null", "-i", keyFile, "-o", "CertificateFile="+certFile,
			"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+knownHosts,
			"-o", "StrictHostKeyChecking=yes", "-o", "HostKeyAlias="+s.Target, "-o", "ProxyCommand="+proxy,
			"-l", sshd.User, s.Target, "echo hello over $((1+1)) hops")
		cmd.Env = ssmplugintest.Env()
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "hello over 2 hops") {
			t.Fatalf("ssh: %v\n%s\nsshd log:\n%s", err, out, sshd.Log())
		}
	})

	t.Run("PortForwarding", func(t *testing.T) {
		local := freePort(t)
		s := e.add(Session{Document: DocumentPortForwarding, Parameters: map[string][]string{
			"portNumber": {sshdPort}, "localPortNumber": {fmt.Sprint(local)},
		}})
		p := e.start(s, "")
		p.waitOutput(portOpened)
		signer, err := ssh.NewCertSigner(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ssh.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", local), &ssh.ClientConfig{
			User: sshd.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
			HostKeyCallback: ssh.FixedHostKey(sshd.HostKey), Timeout: bound,
		})
		if err != nil {
			t.Fatalf("ssh through the forwarded port: %v\nsshd log:\n%s", err, sshd.Log())
		}
		defer c.Close()
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		out, err := sess.Output("echo forwarded $((20+22))")
		if err != nil || strings.TrimSpace(string(out)) != "forwarded 42" {
			t.Fatalf("got %q, %v", out, err)
		}
	})
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
