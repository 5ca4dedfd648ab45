package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	latchhttp "github.com/latchdev/latch/http"
)

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "latch test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return cert, key
}

func TestServerServesTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	w := startServer(t, e2ePolicy, "--tls-cert", cert, "--tls-key", key)
	if !strings.HasPrefix(w.url, "https://") {
		t.Fatalf("server URL %s, want https", w.url)
	}
	w.as("AKIDALICE", "alice-secret")
	if r := w.latch(t, "whoami"); r.code != exitRuntime || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("without trusting its CA: exit %d %s", r.code, r.stderr)
	}
	w.vars["LATCH_SERVER_CA"] = cert
	if r := w.latch(t, "whoami"); r.code != 0 || !strings.Contains(r.stdout, "assumed-role/dev/alice") {
		t.Fatalf("over TLS: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
}

func TestServerRefusesPlainHTTPOffLoopback(t *testing.T) {
	w := newWorld(t)
	pf := filepath.Join(w.dir, "policy.yaml")
	os.WriteFile(pf, []byte(e2ePolicy), 0o600)
	// Refused before binding, so this never listens beyond loopback.
	r := w.latch(t, "server", "--policy", pf, "--aws-auth", "--aws-account", "123456789012", "--url", "https://latch.example.com", "--listen", "0.0.0.0:0")
	if r.code != exitUsage || !strings.Contains(r.stderr, "not a loopback address") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	r = w.latch(t, "server", "--policy", pf, "--listen", "127.0.0.1:0")
	if r.code != exitUsage || !strings.Contains(r.stderr, "no way to authenticate") {
		t.Fatalf("no authentication configured: exit %d: %s", r.code, r.stderr)
	}
}

// SIGHUP reloads the policy; a bad file keeps the old one, and says why.
func TestServerReloadsPolicyOnHUP(t *testing.T) {
	w := startServer(t, e2ePolicy)
	w.as("AKIDALICE", "alice-secret")
	if r := w.latch(t, "request", w.fleet.DB1, "--reason", "x"); r.code != exitRuntime {
		t.Fatalf("prod before the reload: exit %d %s", r.code, r.stderr)
	}
	pf := filepath.Join(w.dir, "policy.yaml")
	wider := e2ePolicy + `
  - name: prod-ssh-iam
    targets: {tags: {env: prod}}
    who: {aws_principals: ["arn:aws:sts::123456789012:assumed-role/dev/*"]}
    ports: [tcp/22]
    duration: {default: 10m, max: 1h}
    approval: auto
`
	os.WriteFile(pf, []byte(wider), 0o600)
	w.server.cmd.Process.Signal(syscall.SIGHUP)
	w.server.waitLine(t, `"msg":"policy reloaded"`)
	if r := w.latch(t, "request", w.fleet.DB1, "--reason", "x"); r.code != 0 {
		t.Fatalf("prod after the reload: exit %d %s", r.code, r.stderr)
	}

	os.WriteFile(pf, []byte("version: 1\nrules: [oops"), 0o600)
	w.server.cmd.Process.Signal(syscall.SIGHUP)
	w.server.waitLine(t, `"msg":"policy reload failed; keeping the old policy"`)
	if r := w.latch(t, "request", w.fleet.Web2, "--reason", "x"); r.code != 0 {
		t.Fatalf("after a bad reload the old policy should stand: exit %d %s", r.code, r.stderr)
	}
	delete(w.vars, "LATCH_SERVER")
	reloads := 0
	for _, e := range decodeLines[latchhttp.AuditEntryJSON](t, w.latch(t, "audit", "ls", "--json").stdout) {
		if e.Action == "policy-reloaded" {
			reloads++
		}
	}
	if reloads != 1 {
		t.Errorf("%d policy-reloaded audit entries, want 1 (the bad file changed nothing)", reloads)
	}
}
