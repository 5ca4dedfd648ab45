package sshclient_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch/mock"
	"github.com/latchdev/latch/sshclient"
)

var start = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func TestCommandArgv(t *testing.T) {
	k, err := sshclient.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	defer k.Remove()
	c := sshclient.Command{SSH: "ssh", Dest: "web-1", Login: "ec2-user", Port: 22, Key: k, KnownHosts: "/l/known_hosts",
		Config: sshclient.Config{"userknownhostsfile": "~/.ssh/known_hosts"}, Args: []string{"-v", "uptime"}}
	want := []string{"ssh", "-i", k.Path, "-o", "IdentitiesOnly=yes", "-l", "ec2-user", "-p", "22",
		"-o", "UserKnownHostsFile=/l/known_hosts ~/.ssh/known_hosts", "web-1", "-v", "uptime"}
	if got := c.Argv(); !slices.Equal(got, want) {
		t.Errorf("argv =\n%q\nwant\n%q", got, want)
	}

	c.Certificate, c.Address, c.Instance, c.Strict = true, "203.0.113.9", "i-0b0c00000000000b1", true
	want = append(want[:11:11], "-o", "CertificateFile="+k.CertPath(), "-o", "HostName=203.0.113.9",
		"-o", "HostKeyAlias=i-0b0c00000000000b1", "-o", "StrictHostKeyChecking=yes", "web-1", "-v", "uptime")
	if got := c.Argv(); !slices.Equal(got, want) {
		t.Errorf("argv with an address and a pinned key =\n%q\nwant\n%q", got, want)
	}
}

func TestKeyIsPrivateAndRemoved(t *testing.T) {
	k, err := sshclient.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Dir(k.Path)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("key directory: %v, %v; want 0700", fi.Mode(), err)
	}
	if !strings.HasPrefix(string(k.Public), "ssh-ed25519 ") {
		t.Errorf("public key = %q", k.Public)
	}
	if err := k.WriteCert([]byte("cert")); err != nil {
		t.Fatal(err)
	}
	k.Remove()
	if _, err := os.Stat(filepath.Dir(k.Path)); !os.IsNotExist(err) {
		t.Errorf("after Remove: %v", err)
	}
}

// syncBuffer is a buffer the session writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// fakeSSH is a shell script standing in for ssh.
func fakeSSH(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ssh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSessionRun(t *testing.T) {
	t.Run("ExitStatus", func(t *testing.T) {
		var out bytes.Buffer
		s := sshclient.Session{Argv: []string{fakeSSH(t, `echo "$@"; exit 3`), "a", "b"}, Until: start.Add(time.Hour),
			Clock: mock.NewClock(start), Stdout: &out, Stderr: &out}
		code, err := s.Run(t.Context())
		if code != 3 || err != nil || out.String() != "a b\n" {
			t.Errorf("Run = %d, %v, output %q; want ssh's 3", code, err, out.String())
		}
	})

	t.Run("WarnsThenClosesAtExpiry", func(t *testing.T) {
		clock := mock.NewClock(start)
		out := &syncBuffer{}
		s := sshclient.Session{Argv: []string{fakeSSH(t, "exec sleep 60")}, Until: start.Add(10 * time.Minute),
			Clock: clock, Stdout: out, Stderr: out}
		done := make(chan int)
		go func() { code, _ := s.Run(context.Background()); done <- code }()
		for clock.Pending() < 2 {
			time.Sleep(10 * time.Millisecond)
		}
		clock.Advance(6 * time.Minute)
		for !strings.Contains(out.String(), "access ends in 4m0s") {
			time.Sleep(10 * time.Millisecond)
		}
		clock.Advance(5 * time.Minute)
		select {
		case code := <-done:
			if code != 255 {
				t.Errorf("exit = %d; want 255, ssh ended by a signal", code)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the session was not closed at expiry")
		}
		if got := out.String(); !strings.Contains(got, "access ends in 4m0s") || !strings.Contains(got, "access expired; closing the session") {
			t.Errorf("notices = %q", got)
		}
	})

	t.Run("NoSSH", func(t *testing.T) {
		s := sshclient.Session{Argv: []string{filepath.Join(t.TempDir(), "none")}, Clock: mock.NewClock(start)}
		if _, err := s.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "start none") {
			t.Errorf("Run = %v; want start none failed, naming the program", err)
		}
	})
}
