package sshclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/latchdev/latch"
)

const (
	// warnBefore is how long before access ends the user is told.
	warnBefore = 5 * time.Minute
	// killAfter is how long ssh has to exit once asked, in wall time: it
	// is a process, which does not follow an injected clock.
	killAfter = 5 * time.Second
)

// Session is one run of the ssh client (or the Session Manager plugin)
// in the foreground.
type Session struct {
	Argv  []string  // the command line, e.g. Command.Argv
	Until time.Time // when access ends: the user is warned 5 minutes before, and the session closed then
	Clock latch.Clock
	Stdin io.Reader
	// Stdout and Stderr are ssh's; latch's notices go to Stderr too.
	Stdout, Stderr io.Writer
	Log            *slog.Logger // nil discards
	// Env, if not nil, is the command's whole environment; nil means
	// latch's own.
	Env []string
}

// Run runs ssh until it exits, ctx ends (it is sent SIGTERM) or access
// expires at Until (it is warned, then ended: a security group keeps
// tracked connections open after their rule goes, so latch closes the
// session itself). It returns ssh's exit status, 255 if a signal killed
// it; the error is for ssh that could not be run.
func (s Session) Run(ctx context.Context) (int, error) {
	cmd := exec.Command(s.Argv[0], s.Argv[1:]...)
	cmd.Env = s.Env
	stderr := s.Stderr
	if _, ok := stderr.(*os.File); !ok {
		stderr = &lockedWriter{w: stderr} // ssh's copier and latch's notices write to it at once
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.Stdin, s.Stdout, stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", filepath.Base(s.Argv[0]), err)
	}
	if s.Log != nil {
		s.Log.Debug("started", "argv", s.Argv)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	warn := s.Clock.Alarm(s.Until.Add(-warnBefore))
	expire := s.Clock.Alarm(s.Until)
	for {
		select {
		case err := <-done:
			return exitCode(err)
		case <-warn:
			fmt.Fprintf(stderr, "\r\nlatch: access ends in %s, at %s; the session will be closed then.\r\n",
				s.Until.Sub(s.Clock.Now()).Round(time.Second), latch.FormatExpiry(s.Until))
		case <-expire:
			fmt.Fprint(stderr, "\r\nlatch: access expired; closing the session.\r\n")
			return stop(cmd, done)
		case <-ctx.Done():
			return stop(cmd, done)
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

// stop asks ssh to exit, and kills it if it has not within killAfter.
func stop(cmd *exec.Cmd, done <-chan error) (int, error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		return exitCode(err)
	case <-time.After(killAfter):
		_ = cmd.Process.Kill()
		return exitCode(<-done)
	}
}

func exitCode(err error) (int, error) {
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
