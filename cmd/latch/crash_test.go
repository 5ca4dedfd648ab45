package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// latchBinary builds cmd/latch once per test run.
func latchBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "latch-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "latch")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build latch: %v\n%s", buildErr, binPath)
	}
	return binPath
}

// proc is a latch process the test may kill.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced on every stderr line
	done  chan struct{}
}

func (w *world) start(t *testing.T, crashpoint string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(latchBinary(t), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range w.vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if crashpoint != "" {
		cmd.Env = append(cmd.Env, "LATCH_TEST_CRASHPOINT="+crashpoint)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, more: make(chan struct{}), done: make(chan struct{})}
	go p.collect(stderr)
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.done; _ = cmd.Wait() })
	return p
}

// collect reads the process's stderr line by line until it closes.
func (p *proc) collect(stderr io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		p.mu.Lock()
		p.lines = append(p.lines, sc.Text())
		close(p.more)
		p.more = make(chan struct{})
		p.mu.Unlock()
	}
}

// waitLine waits for a stderr line containing s.
func (p *proc) waitLine(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(20 * time.Second) // a bound for a hung test
	for {
		p.mu.Lock()
		more := p.more
		for _, l := range p.lines {
			if strings.Contains(l, s) {
				p.mu.Unlock()
				return
			}
		}
		p.mu.Unlock()
		select {
		case <-more:
		case <-p.done:
			t.Fatalf("process ended without printing %q:\n%s", s, p.output())
		case <-deadline:
			t.Fatalf("no %q on stderr:\n%s", s, p.output())
		}
	}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// kill sends SIGKILL: no deferred code, no cleanup, as in a real crash.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	_ = p.cmd.Wait()
}

// stop sends SIGTERM and expects a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("latch run after SIGTERM: %v\n%s", err, p.output())
	}
}

// TestCrashSafety kills latch processes with SIGKILL at each step of
// opening and revoking a grant, restarts the daemon (with the database, or
// after deleting it) and checks that every rule is revoked within one sweep
// interval of its expiry.
func TestCrashSafety(t *testing.T) {
	tests := []struct {
		name        string
		grantCrash  string // where `latch grant --detach` is killed
		daemonCrash string // where the first `latch run` is killed
	}{
		{name: "grant killed before the AWS call", grantCrash: "before-authorize"},
		{name: "grant killed after authorize before the store write", grantCrash: "after-authorize"},
		{name: "daemon killed before revoke", daemonCrash: "before-revoke"},
		{name: "daemon killed after revoke before the store write", daemonCrash: "after-revoke"},
		{name: "no crash"},
	}
	const expiry, interval = 5 * time.Minute, time.Minute
	for _, tt := range tests {
		for _, deleteDB := range []bool{false, true} {
			name := tt.name
			if deleteDB {
				name += ", database deleted"
			}
			t.Run(name, func(t *testing.T) {
				w := newWorld(t)
				grant := w.start(t, tt.grantCrash, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", expiry.String(), "--reason", "crash test", "--detach")
				if tt.grantCrash != "" {
					grant.waitLine(t, "crashpoint "+tt.grantCrash+" reached")
					grant.kill(t)
				} else {
					grant.waitLine(t, `"msg":"granted"`)
					<-grant.done
				}
				wantRule := tt.grantCrash != "before-authorize"
				if got := len(w.rules(t)); (got == 1) != wantRule {
					t.Fatalf("%d rules after the grant step, want rule=%v", got, wantRule)
				}

				if tt.daemonCrash != "" {
					daemon := w.start(t, tt.daemonCrash, "run", "--sweep-interval", interval.String())
					daemon.waitLine(t, "revoker started")
					w.setClock(t, start.Add(expiry))
					daemon.waitLine(t, "crashpoint "+tt.daemonCrash+" reached")
					daemon.kill(t)
				} else {
					w.setClock(t, start.Add(time.Minute))
				}
				if deleteDB {
					for _, suffix := range []string{"", "-wal", "-shm"} {
						_ = os.Remove(w.vars["LATCH_DB"] + suffix)
					}
				}

				daemon := w.start(t, "", "run", "--sweep-interval", interval.String())
				daemon.waitLine(t, "revoker started")
				if tt.daemonCrash == "" && wantRule {
					w.setClock(t, start.Add(expiry-time.Second))
					if len(w.rules(t)) != 1 {
						t.Fatal("rule revoked before its expiry")
					}
				}
				w.setClock(t, start.Add(expiry+interval))
				w.waitForRules(t, 0)

				if !deleteDB {
					grants := lsOut(t, w.latch(t, "ls", "--all", "--json").stdout)
					want := latch.StateExpired
					if !wantRule {
						want = latch.StateFailed
					}
					if len(grants) != 1 || grants[0].State != want {
						// The rule is gone either way; the record follows at the next pass.
						w.waitForState(t, want)
					}
				}
				daemon.stop(t)
			})
		}
	}
}

// waitForState waits until the only grant in the database is in state.
func (w *world) waitForState(t *testing.T, state latch.GrantState) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		grants := lsOut(t, w.latch(t, "ls", "--all", "--json").stdout)
		if len(grants) == 1 && grants[0].State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("grants = %+v, want one %s", grants, state)
		}
		time.Sleep(20 * time.Millisecond) // polling another process's database writes
	}
}
