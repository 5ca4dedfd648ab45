package sshclient

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// Key is an ed25519 key made for one session, in a private directory that
// is removed afterwards. latch never reads or writes the user's own keys.
type Key struct {
	dir    string
	Path   string // the private key; CertPath is its certificate
	Public []byte // the public key as an authorized_keys line
}

// NewKey makes a key in a new temporary directory (mode 0700).
func NewKey() (*Key, error) {
	dir, err := os.MkdirTemp("", "latch-ssh-") // mode 0700
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	k, err := NewKeyIn(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
	}
	return k, err
}

// NewKeyIn makes a key in dir, which the key owns from then on: Remove
// removes it.
func NewKeyIn(dir string) (*Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "latch session key")
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	k := &Key{dir: dir, Path: filepath.Join(dir, "id_ed25519"), Public: ssh.MarshalAuthorizedKey(sp)}
	if err := os.WriteFile(k.Path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	return k, nil
}

// CertPath is where the key's certificate goes, beside it, where ssh
// looks for it.
func (k *Key) CertPath() string { return k.Path + "-cert.pub" }

// WriteCert stores the key's certificate (an authorized_keys line).
func (k *Key) WriteCert(cert []byte) error {
	return os.WriteFile(k.CertPath(), cert, 0o600)
}

// Remove removes the key's directory and everything in it.
func (k *Key) Remove() { _ = os.RemoveAll(k.dir) }
