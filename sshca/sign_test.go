package sshca_test

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/sshdtest"
	"github.com/latchdev/latch/sshca"
	"golang.org/x/crypto/ssh"
)

func TestSignFields(t *testing.T) {
	ca, _ := newCA(t)
	key := sshdtest.UserKey(t)
	after := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	req := sshca.CertRequest{
		KeyID:         "grant=g-1;requester=alice@example.com",
		Principals:    []string{"ubuntu", "ec2-user"},
		ValidAfter:    after,
		ValidBefore:   after.Add(time.Hour),
		SourceAddress: netip.MustParsePrefix("192.0.2.7/32"),
	}
	cert, err := ca.Sign(key.PublicKey(), req)
	if err != nil {
		t.Fatal(err)
	}
	if cert.CertType != ssh.UserCert {
		t.Errorf("CertType = %d, want user", cert.CertType)
	}
	if cert.KeyId != req.KeyID {
		t.Errorf("KeyId = %q, want %q", cert.KeyId, req.KeyID)
	}
	if !slices.Equal(cert.ValidPrincipals, req.Principals) {
		t.Errorf("ValidPrincipals = %q, want %q", cert.ValidPrincipals, req.Principals)
	}
	if got, want := cert.ValidAfter, uint64(after.Add(-sshca.DefaultSkew).Unix()); got != want {
		t.Errorf("ValidAfter = %d, want %d (ValidAfter less the default skew)", got, want)
	}
	if got, want := cert.ValidBefore, uint64(after.Add(time.Hour).Unix()); got != want {
		t.Errorf("ValidBefore = %d, want %d", got, want)
	}
	if got := cert.CriticalOptions; len(got) != 1 || got["source-address"] != "192.0.2.7/32" {
		t.Errorf("CriticalOptions = %v, want only source-address 192.0.2.7/32", got)
	}
	if got := cert.Extensions; len(got) != 1 || got["permit-pty"] != "" {
		t.Errorf("Extensions = %v, want only permit-pty", cert.Extensions)
	}
	if !bytes.Equal(cert.Key.Marshal(), key.PublicKey().Marshal()) {
		t.Error("certificate is not for the requested key")
	}
	if !bytes.Equal(cert.SignatureKey.Marshal(), ca.PublicKeys()[0].Marshal()) {
		t.Error("certificate is not signed by the CA's key")
	}

	// The certificate checks out as OpenSSH would check it.
	checker := &ssh.CertChecker{
		IsUserAuthority: func(auth ssh.PublicKey) bool {
			return bytes.Equal(auth.Marshal(), ca.PublicKeys()[0].Marshal())
		},
		Clock:                    func() time.Time { return after.Add(time.Minute) },
		SupportedCriticalOptions: []string{"source-address"},
	}
	if err := checker.CheckCert("ubuntu", cert); err != nil {
		t.Errorf("CheckCert: %v", err)
	}

	// An explicit skew replaces the default.
	req.Skew = 5 * time.Minute
	cert, err = ca.Sign(key.PublicKey(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cert.ValidAfter, uint64(after.Add(-5*time.Minute).Unix()); got != want {
		t.Errorf("with Skew 5m, ValidAfter = %d, want %d", got, want)
	}
}

func TestSignSourceAddress(t *testing.T) {
	ca, _ := newCA(t)
	key := sshdtest.UserKey(t)
	now := time.Now()
	base := sshca.CertRequest{KeyID: "k", Principals: []string{"u"}, ValidAfter: now, ValidBefore: now.Add(time.Hour)}
	for _, tt := range []struct {
		prefix string // "" is the zero Prefix
		wide   bool
		want   string // source-address, or "" for none; "ERR" for a refusal
	}{
		{"127.0.0.1/32", false, "127.0.0.1/32"},
		{"2001:db8::1/128", false, "2001:db8::1/128"},
		{"::ffff:10.1.2.3/128", false, "10.1.2.3/32"},
		{"10.0.0.0/24", false, "ERR"},
		{"10.0.0.5/24", true, "10.0.0.0/24"},
		{"", false, "ERR"},
		{"", true, ""},
	} {
		req := base
		if tt.prefix != "" {
			req.SourceAddress = netip.MustParsePrefix(tt.prefix)
		}
		req.AllowWideSource = tt.wide
		cert, err := ca.Sign(key.PublicKey(), req)
		if tt.want == "ERR" {
			if latch.ErrorCode(err) != latch.EINVALID {
				t.Errorf("%q wide=%v: err = %v, want EINVALID", tt.prefix, tt.wide, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q wide=%v: %v", tt.prefix, tt.wide, err)
			continue
		}
		if got := cert.CriticalOptions["source-address"]; got != tt.want {
			t.Errorf("%q wide=%v: source-address = %q, want %q", tt.prefix, tt.wide, got, tt.want)
		}
	}
}

func TestSignRefusesBadRequests(t *testing.T) {
	ca, _ := newCA(t)
	key := sshdtest.UserKey(t)
	now := time.Now()
	good := sshca.CertRequest{
		KeyID: "k", Principals: []string{"u"}, ValidAfter: now, ValidBefore: now.Add(time.Hour),
		SourceAddress: netip.MustParsePrefix("127.0.0.1/32"),
	}
	if _, err := ca.Sign(key.PublicKey(), good); err != nil {
		t.Fatalf("good request: %v", err)
	}
	cert, err := ca.Sign(key.PublicKey(), good)
	if err != nil {
		t.Fatal(err)
	}
	for name, tt := range map[string]struct {
		pub    ssh.PublicKey
		change func(*sshca.CertRequest)
		field  string
	}{
		"no principals":       {change: func(r *sshca.CertRequest) { r.Principals = nil }, field: "principals"},
		"empty principal":     {change: func(r *sshca.CertRequest) { r.Principals = []string{"u", ""} }, field: "principals"},
		"no key id":           {change: func(r *sshca.CertRequest) { r.KeyID = "" }, field: "key_id"},
		"before equals after": {change: func(r *sshca.CertRequest) { r.ValidBefore = r.ValidAfter }, field: "valid_before"},
		"before earlier":      {change: func(r *sshca.CertRequest) { r.ValidBefore = r.ValidAfter.Add(-time.Second) }, field: "valid_before"},
		"no valid after":      {change: func(r *sshca.CertRequest) { r.ValidAfter = time.Time{} }, field: "valid_before"},
		"negative skew":       {change: func(r *sshca.CertRequest) { r.Skew = -time.Second }, field: "skew"},
		"wide source":         {change: func(r *sshca.CertRequest) { r.SourceAddress = netip.MustParsePrefix("0.0.0.0/0") }, field: "source_address"},
		"no public key":       {pub: nil, change: func(r *sshca.CertRequest) {}, field: "public_key"},
		"certificate as key":  {pub: cert, change: func(r *sshca.CertRequest) {}, field: "public_key"},
	} {
		req := good
		req.Principals = slices.Clone(good.Principals)
		tt.change(&req)
		pub := tt.pub
		if pub == nil && !strings.Contains(name, "public key") {
			pub = key.PublicKey()
		}
		_, err := ca.Sign(pub, req)
		e, ok := err.(*latch.Error)
		if !ok || e.Code != latch.EINVALID || e.Field != tt.field {
			t.Errorf("%s: err = %#v, want EINVALID on %s", name, err, tt.field)
		}
	}
}

func TestLoadCARefusesReadableKey(t *testing.T) {
	_, path := newCA(t)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := sshca.LoadCA(path)
	if err == nil {
		t.Fatal("LoadCA accepted a key file with mode 0644")
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "0644") {
		t.Errorf("error %q should name the file and its mode", msg)
	}
	// 0400 is stricter than 0600 and fine.
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := sshca.LoadCA(path); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
}

func TestGenerateKey(t *testing.T) {
	ca, path := newCA(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key mode = %#o, want 0600", perm)
	}
	pubLine, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub.Marshal(), ca.PublicKeys()[0].Marshal()) {
		t.Error(".pub file does not hold the key's public half")
	}
	if err := sshca.GenerateKey(path); err == nil {
		t.Error("GenerateKey overwrote an existing key")
	}
}

func TestPassphrase(t *testing.T) {
	t.Parallel() // each bcrypt key derivation takes a while under -race
	path := filepath.Join(t.TempDir(), "ca")
	pass := []byte("correct horse")
	if err := sshca.GenerateKeyWithPassphrase(path, pass); err != nil {
		t.Fatal(err)
	}
	if _, err := sshca.LoadCA(path); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Errorf("LoadCA of an encrypted key: err = %v, want one asking for the passphrase", err)
	}
	if _, err := sshca.LoadCAWithPassphrase([]byte("wrong"), path); err == nil {
		t.Error("wrong passphrase accepted")
	}
	ca, err := sshca.LoadCAWithPassphrase(pass, path)
	if err != nil {
		t.Fatal(err)
	}
	// An unencrypted key can sit beside it, as during a rotation.
	_, plain := newCA(t)
	if _, err := sshca.LoadCAWithPassphrase(pass, path, plain); err != nil {
		t.Errorf("mixed encrypted and plain keys: %v", err)
	}
	if len(ca.PublicKeys()) != 1 {
		t.Errorf("%d keys, want 1", len(ca.PublicKeys()))
	}
}

func TestTrustedUserCAKeysNewestFirst(t *testing.T) {
	oldCA, oldPath := newCA(t)
	newCA, newPath := newCA(t)
	ca, err := sshca.LoadCA(newPath, oldPath)
	if err != nil {
		t.Fatal(err)
	}
	want := append(newCA.TrustedUserCAKeys(), oldCA.TrustedUserCAKeys()...)
	if got := ca.TrustedUserCAKeys(); !bytes.Equal(got, want) {
		t.Errorf("TrustedUserCAKeys =\n%s\nwant\n%s", got, want)
	}
	if _, err := sshca.LoadCA(newPath, newPath); err == nil {
		t.Error("LoadCA accepted the same key twice")
	}
}

// BenchmarkCertify measures one certificate from an authorized_keys line,
// as the server issues them: parse, sign with ed25519, marshal.
func BenchmarkCertify(b *testing.B) {
	ca, _ := newCA(b)
	pub := ssh.MarshalAuthorizedKey(sshdtest.UserKey(b).PublicKey())
	req := request(b)
	for b.Loop() {
		if _, _, err := ca.Certify(b.Context(), pub, req); err != nil {
			b.Fatal(err)
		}
	}
}
