package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/latchdev/latch"
)

// sessionKey is an ed25519 key made for one session, in a private
// temporary directory that is removed afterwards. latch never reads or
// writes the user's own keys.
type sessionKey struct {
	dir  string
	path string // the private key; path+"-cert.pub" is its certificate
	pub  []byte // authorized_keys line
}

// newSessionKey makes the key in a new temporary directory.
func newSessionKey() (*sessionKey, error) {
	dir, err := os.MkdirTemp("", "latch-ssh-") // mode 0700
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	k, err := newSessionKeyIn(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
	}
	return k, err
}

// newSessionKeyIn makes the key in dir, which it owns from then on.
func newSessionKeyIn(dir string) (*sessionKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "latch session key")
	if err != nil {
		return nil, err
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	k := &sessionKey{dir: dir, path: filepath.Join(dir, "id_ed25519"), pub: ssh.MarshalAuthorizedKey(sp)}
	if err := os.WriteFile(k.path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	return k, nil
}

func (k *sessionKey) certPath() string { return k.path + "-cert.pub" }

func (k *sessionKey) writeCert(cert []byte) error {
	return os.WriteFile(k.certPath(), cert, 0o600)
}

func (k *sessionKey) remove() { _ = os.RemoveAll(k.dir) }

// sshTarget is where and as whom one session connects.
type sshTarget struct {
	dest     string // as the user typed it, without USER@, so their ssh config's Host blocks match
	login    string // the OS user; "" until decided
	port     int
	address  string // the instance's address; "" leaves HostName to the user's config
	instance latch.InstanceID
	// keepHostName: the user's ssh config names a HostName for dest, so
	// latch connects there rather than to the instance's address.
	keepHostName bool
	// hostKeys are the instance's host keys as EC2 shows them; pinned
	// when latch's known_hosts holds exactly those for the instance.
	hostKeys []string
	pinned   bool
}

// sshConfig is what `ssh -G` says the user's configuration makes of a
// destination: the keys are ssh_config keywords in lower case.
type sshConfig map[string]string

// effectiveSSHConfig asks the ssh client how it would connect, so latch
// follows the user's ssh config (User, Port, HostName, known hosts).
func effectiveSSHConfig(ctx context.Context, sshPath, dest string, userArgs []string) (sshConfig, error) {
	out, err := exec.CommandContext(ctx, sshPath, append([]string{"-G", dest}, userArgs...)...).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := errors.AsType[*exec.ExitError](err); ok && len(ee.Stderr) > 0 {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return nil, fmt.Errorf("%s -G %s: %s", sshPath, dest, msg)
	}
	cfg := sshConfig{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if _, seen := cfg[k]; !seen { // repeated keys (identityfile, …) are not needed
			cfg[k] = v
		}
	}
	return cfg, nil
}

// sshArgv is the ssh command line for a session. latch's options come
// first, so they win over the user's config; the user's arguments follow
// the destination, which OpenSSH accepts, and may end in a command.
func sshArgv(sshPath string, k *sessionKey, t sshTarget, cfg sshConfig, knownHosts string, withCert bool, userArgs []string) []string {
	argv := []string{sshPath,
		"-i", k.path, "-o", "IdentitiesOnly=yes",
		"-l", t.login, "-p", strconv.Itoa(t.port),
		// New host keys go to latch's file; the user's files are still read.
		"-o", "UserKnownHostsFile=" + strings.TrimSpace(knownHosts+" "+cfg["userknownhostsfile"]),
	}
	if withCert {
		argv = append(argv, "-o", "CertificateFile="+k.certPath())
	}
	if t.address != "" {
		// Host keys are remembered by instance: EC2 reuses addresses.
		argv = append(argv, "-o", "HostName="+t.address, "-o", "HostKeyAlias="+string(t.instance))
	}
	if t.pinned {
		// The keys came from EC2, not the network: any other key is an impostor.
		argv = append(argv, "-o", "StrictHostKeyChecking=yes")
	}
	argv = append(argv, t.dest)
	return append(argv, userArgs...)
}

// exitStatus is ssh's exit status, which latch ssh exits with.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("ssh exited with status %d", int(e)) }

// runSSH runs ssh in the foreground until it exits, ctx ends (it is sent
// SIGTERM) or access expires at until (it is warned, then ended: a
// security group keeps tracked connections open after their rule goes,
// so latch closes the session itself).
func (a *app) runSSH(ctx context.Context, argv []string, until time.Time) (int, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	stderr := a.stderr
	if _, ok := stderr.(*os.File); !ok {
		stderr = &lockedWriter{w: stderr} // ssh's copier and latch's notices write to it at once
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.stdin, a.stdout, stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start ssh: %w", err)
	}
	a.log.Debug("ssh started", "argv", argv)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	warn := a.clock.Alarm(until.Add(-5 * time.Minute))
	expire := a.clock.Alarm(until)
	for {
		select {
		case err := <-done:
			return sshExitCode(err)
		case <-warn:
			fmt.Fprintf(stderr, "\r\nlatch: access ends in %s, at %s; the session will be closed then.\r\n",
				until.Sub(a.clock.Now()).Round(time.Second), latch.FormatExpiry(until))
		case <-expire:
			fmt.Fprint(stderr, "\r\nlatch: access expired; closing the session.\r\n")
			return stopSSH(cmd, done)
		case <-ctx.Done():
			return stopSSH(cmd, done)
		}
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// stopSSH asks ssh to exit, and kills it if it has not within 5 seconds.
func stopSSH(cmd *exec.Cmd, done <-chan error) (int, error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		return sshExitCode(err)
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		return sshExitCode(<-done)
	}
}

func sshExitCode(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		if code := ee.ExitCode(); code >= 0 {
			return code, nil
		}
		return 255, nil // killed by a signal
	}
	return 0, fmt.Errorf("ssh: %w", err)
}

// latchKnownHosts is latch's own known_hosts file, in its config directory.
func (a *app) latchKnownHosts() (string, error) {
	dir, err := a.xdgDir("XDG_CONFIG_HOME", ".config")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return filepath.Join(dir, "known_hosts"), nil
}
