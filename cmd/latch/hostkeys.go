package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// pinHostKeys makes keys ("TYPE BASE64" lines, read from outside the
// instance) the only keys latch's known_hosts file at path holds for
// host, so ssh checks the instance's key instead of trusting the first
// one it is shown. Lines for other hosts, and markers such as
// @cert-authority, are kept. It reports whether any key was pinned: keys
// that do not parse are dropped, and with none left the file is unchanged.
func pinHostKeys(path, host string, keys []string) (bool, error) {
	var pinned []string
	for _, k := range keys {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil {
			continue
		}
		pinned = append(pinned, host+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))))
	}
	if len(pinned) == 0 {
		return false, nil
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(old))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !knownHostsLineNames(sc.Text(), host) {
			out.WriteString(sc.Text() + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	out.WriteString(strings.Join(pinned, "\n") + "\n")
	// Write then rename: ssh, or another latch, may be reading it.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".known_hosts-*")
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(out.Bytes()); err != nil {
		tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	return true, os.Rename(tmp.Name(), path)
}

// knownHostsLineNames reports whether a known_hosts line is a plain key
// line for host, by name or hashed (HashKnownHosts yes writes those).
func knownHostsLineNames(line, host string) bool {
	hosts, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	if hosts == "" || strings.HasPrefix(hosts, "#") || strings.HasPrefix(hosts, "@") {
		return false
	}
	if salt, hash, ok := strings.Cut(strings.TrimPrefix(hosts, "|1|"), "|"); ok && strings.HasPrefix(hosts, "|1|") {
		return hashedHostIs(salt, hash, host)
	}
	for h := range strings.SplitSeq(hosts, ",") {
		if h == host {
			return true
		}
	}
	return false
}

// hashedHostIs checks OpenSSH's hashed host name: HMAC-SHA1 of the name,
// keyed with the salt, both base64.
func hashedHostIs(salt64, hash64, host string) bool {
	salt, err1 := base64.StdEncoding.DecodeString(salt64)
	hash, err2 := base64.StdEncoding.DecodeString(hash64)
	if err1 != nil || err2 != nil {
		return false
	}
	m := hmac.New(sha1.New, salt)
	m.Write([]byte(host))
	return hmac.Equal(m.Sum(nil), hash)
}

// pinSessionHostKeys pins the instance's host keys in latch's known_hosts
// under its instance ID, the HostKeyAlias latch gives ssh, when latch
// chose the address. Without keys from EC2 ssh falls back to trusting the
// first key it sees, and the user is told so the first time.
func (a *app) pinSessionHostKeys(t *sshTarget, knownHosts string) error {
	if t.address == "" || t.instance == "" {
		return nil
	}
	ok, err := pinHostKeys(knownHosts, string(t.instance), t.hostKeys)
	if err != nil {
		return fmt.Errorf("pin the host keys of %s: %w", t.instance, err)
	}
	t.pinned = ok
	if !ok && !knownHostsHas(knownHosts, string(t.instance)) {
		fmt.Fprintf(a.stderr, "latch: EC2 shows no host keys for %s (its console output has none); ssh will trust the key it is first shown.\n", t.instance)
	}
	return nil
}

// knownHostsHas reports whether the known_hosts file at path has a key
// line for host.
func knownHostsHas(path, host string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if knownHostsLineNames(line, host) {
			return true
		}
	}
	return false
}
