// Package sshca is latch's SSH user certificate authority: it signs
// short-lived OpenSSH user certificates for granted access, so a laptop
// reaches a shell with no long-lived key on the server.
//
// A CA holds one or more ed25519 signing keys. The newest signs; all are
// trusted while a rotation is under way, and TrustedUserCAKeys gives the
// lines for sshd's TrustedUserCAKeys file. Keys live in OpenSSH private key
// files that only their owner may read (mode 0600 or stricter), optionally
// passphrase-protected.
package sshca

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/atomicfile"
	"golang.org/x/crypto/ssh"
)

// DefaultSkew is how far back ValidAfter is moved when a CertRequest sets
// no Skew, so a server whose clock is a little behind accepts a new
// certificate at once.
const DefaultSkew = time.Minute

// CA signs SSH user certificates. The zero value holds no key; use LoadCA.
type CA struct {
	signers []ssh.Signer // newest first; signers[0] signs
}

// LoadCA reads the CA's private keys from paths, newest first: the key in
// paths[0] signs, and every key is trusted. Each file must be an
// unencrypted OpenSSH ed25519 private key with mode 0600 or stricter.
func LoadCA(paths ...string) (*CA, error) {
	return load(nil, paths)
}

// LoadCAWithPassphrase is LoadCA for keys encrypted with passphrase. A key
// that is not encrypted is read as it is.
func LoadCAWithPassphrase(passphrase []byte, paths ...string) (*CA, error) {
	if len(passphrase) == 0 {
		return nil, latch.Invalidf("passphrase", "is empty")
	}
	return load(passphrase, paths)
}

func load(passphrase []byte, paths []string) (*CA, error) {
	if len(paths) == 0 {
		return nil, latch.Invalidf("paths", "no CA key file given")
	}
	ca := &CA{}
	seen := map[string]string{}
	for _, path := range paths {
		s, err := loadKey(path, passphrase)
		if err != nil {
			return nil, err
		}
		fp := ssh.FingerprintSHA256(s.PublicKey())
		if prev, ok := seen[fp]; ok {
			return nil, latch.Errorf(latch.EINVALID, "CA key %s is the same key as %s", path, prev)
		}
		seen[fp] = path
		ca.signers = append(ca.signers, s)
	}
	return ca, nil
}

func loadKey(path string, passphrase []byte) (ssh.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	defer f.Close()
	// Check the mode of the file we read, not of whatever the path names later.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, latch.Errorf(latch.EINVALID, "CA key %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, latch.Errorf(latch.EINVALID, "CA key %s has mode %#o; others may read it: it must be 0600 or stricter", path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read CA key %s: %w", path, err)
	}

	var raw any
	if passphrase != nil {
		raw, err = ssh.ParseRawPrivateKeyWithPassphrase(data, passphrase)
		if err != nil && !isEncrypted(data) {
			raw, err = ssh.ParseRawPrivateKey(data)
		}
	} else {
		raw, err = ssh.ParseRawPrivateKey(data)
		if _, ok := errors.AsType[*ssh.PassphraseMissingError](err); ok {
			return nil, latch.Errorf(latch.EINVALID, "CA key %s is passphrase-protected; give its passphrase", path)
		}
	}
	if err != nil {
		return nil, latch.Errorf(latch.EINVALID, "CA key %s: %v", path, err)
	}
	var key ed25519.PrivateKey
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		key = k
	case *ed25519.PrivateKey:
		key = *k
	default:
		return nil, latch.Errorf(latch.EINVALID, "CA key %s is a %T; latch's CA keys are ed25519", path, raw)
	}
	return ssh.NewSignerFromKey(key)
}

// isEncrypted reports whether data is an OpenSSH private key that needs a
// passphrase.
func isEncrypted(data []byte) bool {
	_, err := ssh.ParseRawPrivateKey(data)
	_, ok := errors.AsType[*ssh.PassphraseMissingError](err)
	return ok
}

// GenerateKey writes a new ed25519 CA private key to path with mode 0600,
// and its public key to path+".pub". It refuses to overwrite either file.
func GenerateKey(path string) error {
	return generate(path, nil)
}

// GenerateKeyWithPassphrase is GenerateKey with the private key encrypted
// by passphrase.
func GenerateKeyWithPassphrase(path string, passphrase []byte) error {
	if len(passphrase) == 0 {
		return latch.Invalidf("passphrase", "is empty")
	}
	return generate(path, passphrase)
}

func generate(path string, passphrase []byte) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	const comment = "latch ssh user CA"
	var block *pem.Block
	if passphrase != nil {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, comment, passphrase)
	} else {
		block, err = ssh.MarshalPrivateKey(priv, comment)
	}
	if err != nil {
		return err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	pubLine := bytes.TrimSuffix(ssh.MarshalAuthorizedKey(sshPub), []byte("\n"))
	pubLine = append(pubLine, " "+comment+"\n"...)

	if err := writeNew(path+".pub", pubLine, 0o644); err != nil {
		return err
	}
	if err := writeNew(path, pem.EncodeToMemory(block), 0o600); err != nil {
		os.Remove(path + ".pub")
		return err
	}
	return nil
}

// writeNew writes data to a file that must not exist yet.
func writeNew(path string, data []byte, perm os.FileMode) error {
	if err := atomicfile.WriteNew(path, data, perm); err != nil {
		return fmt.Errorf("write CA key: %w", err)
	}
	return nil
}

// PublicKeys returns the CA's public keys, newest (the signing key) first.
func (ca *CA) PublicKeys() []ssh.PublicKey {
	keys := make([]ssh.PublicKey, len(ca.signers))
	for i, s := range ca.signers {
		keys[i] = s.PublicKey()
	}
	return keys
}

// TrustedUserCAKeys returns one authorized_keys line per CA public key,
// newest first: the contents of sshd's TrustedUserCAKeys file.
func (ca *CA) TrustedUserCAKeys() []byte {
	var b []byte
	for _, s := range ca.signers {
		b = append(b, ssh.MarshalAuthorizedKey(s.PublicKey())...)
	}
	return b
}

// CertRequest says what a user certificate allows; see latch.SSHCertRequest.
type CertRequest = latch.SSHCertRequest

// Sign returns a user certificate for pub, signed by the CA's newest key.
// The certificate permits a pty and nothing else beyond a shell: no agent,
// port or X11 forwarding and no ~/.ssh/rc.
func (ca *CA) Sign(pub ssh.PublicKey, c CertRequest) (*ssh.Certificate, error) {
	if ca == nil || len(ca.signers) == 0 {
		return nil, latch.Errorf(latch.EINTERNAL, "sshca: the CA has no key")
	}
	if pub == nil {
		return nil, latch.Invalidf("public_key", "is missing")
	}
	if _, ok := pub.(*ssh.Certificate); ok {
		return nil, latch.Invalidf("public_key", "is a certificate; give a plain public key")
	}
	if c.KeyID == "" {
		return nil, latch.Invalidf("key_id", "is empty")
	}
	if len(c.Principals) == 0 {
		return nil, latch.Invalidf("principals", "none given; a certificate with no principal is valid for every user")
	}
	for _, p := range c.Principals {
		if p == "" {
			return nil, latch.Invalidf("principals", "contains an empty name")
		}
	}
	if c.ValidAfter.IsZero() || c.ValidBefore.IsZero() {
		return nil, latch.Invalidf("valid_before", "both ends of the validity window are required")
	}
	if !c.ValidBefore.After(c.ValidAfter) {
		return nil, latch.Invalidf("valid_before", "%s is not after valid_after %s",
			c.ValidBefore.UTC().Format(time.RFC3339), c.ValidAfter.UTC().Format(time.RFC3339))
	}
	skew := c.Skew
	switch {
	case skew < 0:
		return nil, latch.Invalidf("skew", "is negative")
	case skew == 0:
		skew = DefaultSkew
	}

	critical := map[string]string{}
	switch src := c.SourceAddress; {
	case !src.IsValid():
		if !c.AllowWideSource {
			return nil, latch.Invalidf("source_address", "is required unless a certificate usable from anywhere is explicitly allowed")
		}
	default:
		src = netip.PrefixFrom(src.Addr().Unmap(), src.Bits()-unmapBits(src)).Masked()
		if !src.IsValid() {
			return nil, latch.Invalidf("source_address", "%s is not a valid prefix", c.SourceAddress)
		}
		if !src.IsSingleIP() && !c.AllowWideSource {
			return nil, latch.Invalidf("source_address", "%s is wider than one address", c.SourceAddress)
		}
		from := []string{src.String()}
		for _, p := range c.AlsoFrom {
			if !p.IsValid() || !p.IsSingleIP() {
				return nil, latch.Invalidf("source_address", "%s is not a single address", p)
			}
			from = append(from, p.String())
		}
		critical["source-address"] = strings.Join(from, ",")
	}

	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	after := c.ValidAfter.Add(-skew).Unix()
	if after < 0 {
		after = 0
	}
	cert := &ssh.Certificate{
		Key:             pub,
		Serial:          serial,
		CertType:        ssh.UserCert,
		KeyId:           c.KeyID,
		ValidPrincipals: append([]string(nil), c.Principals...),
		ValidAfter:      uint64(after),
		ValidBefore:     uint64(c.ValidBefore.Unix()),
		Permissions: ssh.Permissions{
			CriticalOptions: critical,
			Extensions:      map[string]string{"permit-pty": ""},
		},
	}
	if err := cert.SignCert(rand.Reader, ca.signers[0]); err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	return cert, nil
}

// Certify signs an authorized_keys-format public key and returns the
// certificate in the same format: latch.SSHCertifier.
func (ca *CA) Certify(_ context.Context, publicKey []byte, c latch.SSHCertRequest) ([]byte, uint64, error) {
	pub, _, _, rest, err := ssh.ParseAuthorizedKey(publicKey)
	if err != nil || len(bytes.TrimSpace(rest)) > 0 {
		return nil, 0, latch.Invalidf("public_key", "is not one OpenSSH public key (want e.g. \"ssh-ed25519 AAAA…\")")
	}
	cert, err := ca.Sign(pub, c)
	if err != nil {
		return nil, 0, err
	}
	return ssh.MarshalAuthorizedKey(cert), cert.Serial, nil
}

// unmapBits is how many prefix bits an IPv4-mapped IPv6 prefix loses when
// its address is unmapped to IPv4.
func unmapBits(p netip.Prefix) int {
	if p.Addr().Is4In6() {
		return 96
	}
	return 0
}

func randomSerial() (uint64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b[:]), nil
}
