package datachannel

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch/internal/ssmplugintest"
)

// bound is how long a test waits for an event before failing: a failure
// bound, never a pause.
const bound = 30 * time.Second

// fakeSessions holds sessions and dials targets on 127.0.0.1: an
// instance's port is the local port.
type fakeSessions struct {
	mu       sync.Mutex
	sessions map[string]Session
	ended    chan string
	dials    []string
}

func (f *fakeSessions) LookupSession(id string) (Session, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[id]
	return s, ok
}

func (f *fakeSessions) EndSession(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended <- id
	delete(f.sessions, id)
}

func (f *fakeSessions) DialTarget(ctx context.Context, region, instanceID string, port int) (net.Conn, error) {
	f.mu.Lock()
	f.dials = append(f.dials, fmt.Sprintf("%s/%s:%d", region, instanceID, port))
	f.mu.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", port))
}

func (f *fakeSessions) dialed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.dials...)
}

// env is a data channel server behind an httptest server, and an SSM
// endpoint that records what the plugin asks of it.
type env struct {
	t        *testing.T
	sessions *fakeSessions
	srv      *Server
	http     *httptest.Server
	ssm      *httptest.Server

	mu       sync.Mutex
	ssmCalls []string
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, sessions: &fakeSessions{sessions: map[string]Session{}, ended: make(chan string, 10)}}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.srv = New(e.sessions, logger)
	e.http = httptest.NewServer(e.srv)
	e.ssm = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.ssmCalls = append(e.ssmCalls, r.Header.Get("X-Amz-Target"))
		e.mu.Unlock()
		http.Error(w, `{"__type":"AccessDeniedException","message":"test endpoint"}`, http.StatusBadRequest)
	}))
	t.Cleanup(func() {
		if err := e.srv.Close(); err != nil {
			t.Error(err)
		}
		e.http.Close()
		e.ssm.Close()
	})
	return e
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (e *env) add(s Session) Session {
	if s.ID == "" {
		s.ID = "latch-test-" + fmt.Sprint(time.Now().UnixNano())
	}
	if s.Token == "" {
		s.Token = "token-" + s.ID
	}
	if s.Region == "" {
		s.Region = "eu-west-1"
	}
	if s.Target == "" {
		s.Target = "i-0123456789abcdef0"
	}
	e.sessions.mu.Lock()
	e.sessions.sessions[s.ID] = s
	e.sessions.mu.Unlock()
	return s
}

// plugin is a running session-manager-plugin.
type plugin struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	done   chan struct{}
	err    error

	mu  sync.Mutex
	out bytes.Buffer // stdout, when read through lines
}

// start runs the plugin as the AWS CLI does after StartSession, with the
// token given (the session's unless token is set).
func (e *env) start(s Session, token string) *plugin {
	t := e.t
	if token == "" {
		token = s.Token
	}
	resp, _ := json.Marshal(map[string]string{
		"SessionId":  s.ID,
		"TokenValue": token,
		"StreamUrl":  "ws" + strings.TrimPrefix(e.http.URL, "http") + PathPrefix + s.ID,
	})
	params := map[string][]string{}
	for k, v := range s.Parameters {
		params[k] = v
	}
	req, _ := json.Marshal(map[string]any{"Target": s.Target, "DocumentName": s.Document, "Parameters": params})
	cmd := exec.Command(ssmplugintest.Path(t), string(resp), s.Region, "StartSession", "", string(req), e.ssm.URL)
	cmd.Env = ssmplugintest.Env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Our own pipe, not StdoutPipe: Wait would close that one, and the
	// plugin's last words are read after it exits.
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdout.Close() })
	cmd.Stdout = w
	err = cmd.Start()
	_ = w.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := &plugin{t: t, cmd: cmd, stdin: stdin, stdout: bufio.NewReader(stdout), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if stderr.Len() > 0 {
			t.Logf("plugin stderr:\n%s", stderr.Bytes())
		}
	})
	return p
}

// waitOutput reads the plugin's stdout until re matches it, and returns
// the submatches.
func (p *plugin) waitOutput(re *regexp.Regexp) []string {
	p.t.Helper()
	found := make(chan []string, 1)
	go func() {
		for {
			b, err := p.stdout.ReadByte()
			if err != nil {
				found <- nil
				return
			}
			p.mu.Lock()
			p.out.WriteByte(b)
			m := re.FindStringSubmatch(p.out.String())
			p.mu.Unlock()
			if m != nil {
				found <- m
				return
			}
		}
	}()
	select {
	case m := <-found:
		if m == nil {
			p.t.Fatalf("plugin output ended without %s:\n%s", re, p.output())
		}
		return m
	case <-time.After(bound):
		p.t.Fatalf("plugin output has no %s after %s:\n%s", re, bound, p.output())
	}
	return nil
}

func (p *plugin) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// wait waits for the plugin to exit.
func (p *plugin) wait() error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(bound):
		p.t.Fatalf("the plugin did not exit within %s:\n%s", bound, p.output())
	}
	return nil
}

// echoServer accepts connections and echoes them; it returns its port.
func echoServer(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// echoes sends msg on conn and reads it back.
func echoes(t *testing.T, conn net.Conn, msg string) {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(bound))
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("reading the echo of %q: %v", msg, err)
	}
	if string(got) != msg {
		t.Fatalf("echo: got %q, want %q", got, msg)
	}
}

var portOpened = regexp.MustCompile(`Port (\d+) opened for sessionId (\S+)\.\s*Waiting for connections`)

func TestPortForwardingMultiplexed(t *testing.T) {
	e := newEnv(t)
	echo, local := echoServer(t), freePort(t)
	s := e.add(Session{Document: DocumentPortForwarding, Parameters: map[string][]string{
		"portNumber": {fmt.Sprint(echo)}, "localPortNumber": {fmt.Sprint(local)},
	}})
	p := e.start(s, "")
	m := p.waitOutput(portOpened)
	if m[1] != fmt.Sprint(local) || m[2] != s.ID {
		t.Fatalf("plugin says %q", m[0])
	}
	if !strings.Contains(p.output(), "Starting session with SessionId: "+s.ID) {
		t.Errorf("no 'Starting session' line:\n%s", p.output())
	}

	a, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", local))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", local))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Interleaved on two connections at once: each gets its own bytes.
	echoes(t, a, "first connection\n")
	echoes(t, b, "second connection\n")
	echoes(t, a, strings.Repeat("larger than one message ", 1000))
	var wg sync.WaitGroup
	for i, c := range []net.Conn{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				msg := fmt.Sprintf("conn %d message %d\n", i, j)
				_ = c.SetDeadline(time.Now().Add(bound))
				if _, err := io.WriteString(c, msg); err != nil {
					t.Error(err)
					return
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
					t.Errorf("conn %d: got %q, %v; want %q", i, got, err, msg)
					return
				}
			}
		}()
	}
	wg.Wait()
	want := fmt.Sprintf("%s/%s:%d", s.Region, s.Target, echo)
	if d := e.sessions.dialed(); len(d) != 2 || d[0] != want || d[1] != want {
		t.Errorf("dialled %q, want two of %q", d, want)
	}

	// Terminate: the plugin is told the channel closed, prints why and exits.
	e.srv.Terminate(s.ID)
	if err := p.wait(); err != nil {
		t.Errorf("plugin exit: %v", err)
	}
	p.mu.Lock()
	_, _ = io.Copy(&p.out, p.stdout)
	p.mu.Unlock()
	if out := p.output(); !strings.Contains(out, "SessionId: "+s.ID+" : "+TerminatedOutput) {
		t.Errorf("plugin output does not say the session was terminated:\n%s", out)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.ssmCalls) != 0 {
		t.Errorf("the plugin called SSM: %q", e.ssmCalls)
	}
}

func TestSSHStandardStream(t *testing.T) {
	e := newEnv(t)
	echo := echoServer(t)
	s := e.add(Session{Document: DocumentSSH, Parameters: map[string][]string{"portNumber": {fmt.Sprint(echo)}}})
	p := e.start(s, "")
	r := p.stdout
	// The plugin prints its Starting session line on stdout first.
	line, err := r.ReadString('\n')
	for err == nil && !strings.Contains(line, "Starting session with SessionId: "+s.ID) {
		line, err = r.ReadString('\n')
	}
	if err != nil {
		t.Fatalf("no Starting session line: %v", err)
	}
	for i := range 3 {
		msg := fmt.Sprintf("SSH-2.0-test line %d\r\n", i)
		if _, err := io.WriteString(p.stdin, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		read := make(chan error, 1)
		go func() { _, err := io.ReadFull(r, got); read <- err }()
		select {
		case err := <-read:
			if err != nil || string(got) != msg {
				t.Fatalf("got %q, %v; want %q", got, err, msg)
			}
		case <-time.After(bound):
			t.Fatalf("no echo of %q within %s", msg, bound)
		}
	}
	// Closing stdin ends the plugin, as ssh closing its ProxyCommand does.
	_ = p.stdin.Close()
	if err := p.wait(); err != nil {
		t.Errorf("plugin exit: %v", err)
	}
	if d := e.sessions.dialed(); len(d) != 1 {
		t.Errorf("dialled %q, want one connection", d)
	}
}

func TestWrongTokenIsRefused(t *testing.T) {
	e := newEnv(t)
	echo, local := echoServer(t), freePort(t)
	s := e.add(Session{Document: DocumentPortForwarding, Parameters: map[string][]string{
		"portNumber": {fmt.Sprint(echo)}, "localPortNumber": {fmt.Sprint(local)},
	}})
	p := e.start(s, "not-the-token")
	if err := p.wait(); err != nil {
		t.Errorf("plugin exit: %v", err)
	}
	p.mu.Lock()
	_, _ = io.Copy(&p.out, p.stdout)
	p.mu.Unlock()
	out := p.output()
	if !strings.Contains(out, "SessionId: "+s.ID+" : Invalid token") || strings.Contains(out, "opened for sessionId") {
		t.Errorf("plugin output:\n%s", out)
	}
	if d := e.sessions.dialed(); len(d) != 0 {
		t.Errorf("dialled %q", d)
	}
	// An unknown session is refused the same way.
	p = e.start(Session{ID: "no-such-session", Token: "t", Region: "eu-west-1", Target: s.Target, Document: DocumentSSH}, "")
	if err := p.wait(); err != nil {
		t.Errorf("plugin exit: %v", err)
	}
}

func TestShell(t *testing.T) {
	e := newEnv(t)
	s := e.add(Session{Document: DocumentShell})
	p := e.start(s, "")
	if _, err := io.WriteString(p.stdin, "echo $((40+2))hello\n"); err != nil {
		t.Fatal(err)
	}
	// The terminal echoes the command line; only the shell writes 42hello,
	// after a prompt when the echo came first.
	p.waitOutput(regexp.MustCompile(`(?m)(^|\$ )42hello\r?$`))
	if _, err := io.WriteString(p.stdin, "exit\n"); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(); err != nil {
		t.Errorf("plugin exit: %v", err)
	}
}

func TestTerminateFlagEndsTheSession(t *testing.T) {
	e := newEnv(t)
	echo, local := echoServer(t), freePort(t)
	s := e.add(Session{Document: DocumentPortForwarding, Parameters: map[string][]string{
		"portNumber": {fmt.Sprint(echo)}, "localPortNumber": {fmt.Sprint(local)},
	}})
	p := e.start(s, "")
	p.waitOutput(portOpened)
	// Ctrl-C: the plugin sends the TerminateSession flag and exits.
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(); err != nil {
		t.Errorf("plugin exit: %v", err)
	}
	select {
	case id := <-e.sessions.ended:
		if id != s.ID {
			t.Errorf("ended %s, want %s", id, s.ID)
		}
	case <-time.After(bound):
		t.Fatalf("the session was not ended within %s", bound)
	}
}

// With an agent version before 3.0.196.0 the plugin forwards a port
// without multiplexing: one connection at a time, a DisconnectToPort flag
// when it closes, and the next connection a new one to the target.
func TestPortForwardingBasic(t *testing.T) {
	e := newEnv(t)
	e.srv.agentVersion = "3.0.161.0"
	echo, local := echoServer(t), freePort(t)
	s := e.add(Session{Document: DocumentPortForwarding, Parameters: map[string][]string{
		"portNumber": {fmt.Sprint(echo)}, "localPortNumber": {fmt.Sprint(local)},
	}})
	p := e.start(s, "")
	p.waitOutput(regexp.MustCompile(`Port \d+ opened for sessionId`))
	for i := range 2 {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", local))
		if err != nil {
			t.Fatal(err)
		}
		echoes(t, c, fmt.Sprintf("connection %d\n", i))
		_ = c.Close()
	}
	e.srv.Terminate(s.ID)
	if err := p.wait(); err != nil {
		t.Errorf("plugin exit: %v", err)
	}
	if d := e.sessions.dialed(); len(d) != 2 {
		t.Errorf("dialled %q, want two connections", d)
	}
}

// Close ends every channel: the plugins exit, and none of the package's
// goroutines (nor smux's) outlive it.
func TestCloseEndsEverything(t *testing.T) {
	e := newEnv(t)
	echo, local := echoServer(t), freePort(t)
	fwd := e.add(Session{ID: "fwd", Document: DocumentPortForwarding, Parameters: map[string][]string{
		"portNumber": {fmt.Sprint(echo)}, "localPortNumber": {fmt.Sprint(local)},
	}})
	ssh := e.add(Session{ID: "ssh", Document: DocumentSSH, Parameters: map[string][]string{"portNumber": {fmt.Sprint(echo)}}})
	shell := e.add(Session{ID: "shell", Document: DocumentShell})
	p1, p2, p3 := e.start(fwd, ""), e.start(ssh, ""), e.start(shell, "")
	p1.waitOutput(portOpened)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", local))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoes(t, c, "open while closing\n")
	if _, err := io.WriteString(p3.stdin, "echo $((6*7))ready\n"); err != nil {
		t.Fatal(err)
	}
	p3.waitOutput(regexp.MustCompile(`(?m)(^|\$ )42ready\r?$`))
	if _, err := io.WriteString(p2.stdin, "ping\r\n"); err != nil {
		t.Fatal(err)
	}
	p2.waitOutput(regexp.MustCompile(`ping\r\n`))

	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*plugin{p1, p2, p3} {
		if err := p.wait(); err != nil {
			t.Errorf("plugin exit: %v", err)
		}
	}
	// Goroutines end on their own after Close; there is no event to wait
	// for, so look until the bound.
	deadline := time.Now().Add(bound)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		var left []string
		for _, g := range strings.Split(stacks, "\n\n") {
			if (strings.Contains(g, "ec2sim/datachannel.") || strings.Contains(g, "xtaci/smux")) && !strings.Contains(g, "_test.go") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines outlived Close:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
	// A closed server refuses new channels.
	resp, err := http.Get(e.http.URL + PathPrefix + "fwd")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Close: %s", resp.Status)
	}
}
