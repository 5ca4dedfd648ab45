// Package sshclient is the client side of latch's SSH access, shared by
// 'latch ssh', the ssh-config block and any other front end that runs the
// system OpenSSH client: it pins an instance's host keys in latch's
// known_hosts, makes a key for one session, reads the user's ssh
// configuration, builds the ssh command line, and runs ssh until it exits
// or access expires, warning first and closing the session then. For the
// ssh-config block it renders the block (ConfigBlock) and relays the
// connection its ProxyCommand carries (Proxy) until access expires.
//
// It reads and writes only the files it is given; where they live is the
// caller's choice.
package sshclient

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
	"regexp"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/atomicfile"
)

// knownHost is a name latch may write into known_hosts: a plain host name
// or instance ID, or "[name]:port". Nothing that ssh reads as a pattern
// (*, ?, !), a list (,), a marker (@), a comment (#) or a hash (|).
var knownHost = regexp.MustCompile(`^(?:\[[A-Za-z0-9._:-]+\]:[0-9]+|[A-Za-z0-9._:-]+)$`)

// PinHostKeys makes keys ("TYPE BASE64" lines, read from outside the
// instance) the only keys latch's known_hosts file at path holds for
// host, so ssh checks the instance's key instead of trusting the first
// one it is shown. Other hosts' entries, and markers such as
// @cert-authority, are kept. It reports whether any key was pinned: keys
// that do not parse, and certificates, are dropped, and with none left the
// file is unchanged.
func PinHostKeys(path, host string, keys []string) (bool, error) {
	if !knownHost.MatchString(host) {
		return false, latch.Invalidf("host", "%q cannot be written to known_hosts; want a host name, instance ID or [name]:port", host)
	}
	var pinned []string
	for _, k := range keys {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k))
		if _, cert := pk.(*ssh.Certificate); err != nil || cert {
			continue
		}
		pinned = append(pinned, host+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))))
	}
	if len(pinned) == 0 {
		return false, nil
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real // keep the user's link
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return false, err
	}
	defer unlock()
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	kept, err := withoutHost(old, host)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	return true, replaceFile(path, append(kept, strings.Join(pinned, "\n")+"\n"...))
}

// withoutHost is a known_hosts file without host's key lines; a line that
// also names other hosts keeps them.
func withoutHost(file []byte, host string) ([]byte, error) {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(file))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		hosts, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		if !knownHostsLineNames(line, host) {
			out.WriteString(line + "\n")
			continue
		}
		var others []string
		for h := range strings.SplitSeq(hosts, ",") {
			if h != host && !strings.HasPrefix(h, "|1|") {
				others = append(others, h)
			}
		}
		if len(others) > 0 {
			out.WriteString(strings.Join(others, ",") + " " + rest + "\n")
		}
	}
	return out.Bytes(), sc.Err()
}

// knownHostsLineNames reports whether a known_hosts line is a plain key
// line for host, by name or hashed (HashKnownHosts yes writes those).
func knownHostsLineNames(line, host string) bool {
	hosts, _, _ := strings.Cut(strings.TrimSpace(line), " ")
	if hosts == "" || strings.HasPrefix(hosts, "#") || strings.HasPrefix(hosts, "@") {
		return false
	}
	if hashed, ok := strings.CutPrefix(hosts, "|1|"); ok {
		salt, hash, _ := strings.Cut(hashed, "|")
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

// lockFile holds an exclusive lock on path (made if need be) until the
// returned func is called, so two latch processes pinning at once do not
// lose each other's keys.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}

// replaceFile replaces path atomically, so a reader (ssh, another latch)
// sees the old file or the new one. An existing file keeps its mode.
func replaceFile(path string, data []byte) error {
	mode := fs.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	return atomicfile.Write(path, data, mode)
}

// KnownHostsHas reports whether the known_hosts file at path has a key
// line for host, by name or hashed. A file that cannot be read has none.
func KnownHostsHas(path, host string) bool {
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
