package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
	"github.com/latchdev/latch/internal/sshdtest"
	"github.com/latchdev/latch/internal/ssmplugintest"
	"github.com/latchdev/latch/sqlite"
)

// ssmPolicy lets alice's role reach instances tagged env=box through
// Session Manager only (no ports: section, so no rule can ever open):
// SSH to port 22 with a certificate for the test's user, and port
// forwarding to port 7. No shell.
const ssmPolicy = `
version: 1
rules:
  - name: box-ssm
    targets: {tags: {env: box}}
    who: {aws_principals: ["arn:aws:sts::123456789012:assumed-role/dev/*"]}
    ssm: {documents: [ssh, port-forward], ports: [22, 7]}
    duration: {default: 30m, max: 1h}
    approval: auto
    reason_required: false
    ssh: {method: certificate, principals: [%s]}
`

const (
	sessionRole   = "arn:aws:iam::123456789012:role/latch-session"
	otherInstance = "i-0b0c00000000000b2" // box-2: env=other, which alice's rule does not cover
	offlineBox    = "i-0b0c00000000000b3" // box-3: env=box, its agent offline
)

// ssmWorld is a latch server that starts Session Manager sessions, an
// instance box-1 with an online agent whose port 22 is a real sshd
// trusting latch's CA and whose port 7 is an echo server, and the real
// session-manager-plugin.
type ssmWorld struct {
	*sshWorld
	plugin string
	echo   string // the echo server's address
	args   []string
}

func startSSMWorld(t *testing.T) *ssmWorld {
	t.Helper()
	return startSSMWorldOn(t, awstest.New(t))
}

// startSSMWorldOn is startSSMWorld on env, the server started with extra
// arguments too.
func startSSMWorldOn(t *testing.T, env *awstest.Env, extra ...string) *ssmWorld {
	t.Helper()
	caDir := t.TempDir()
	ca := filepath.Join(caDir, "ssh-ca")
	cli := newWorld(t)
	cli.env.RequireSim(t, "Session Manager's agent is the simulator's: it forwards box-1's ports to the test's sshd and echo server, which no external endpoint can reach")
	if r := cli.latch(t, "ssh-ca", "keygen", ca); r.code != 0 {
		t.Fatalf("ssh-ca keygen: exit %d %s", r.code, r.stderr)
	}
	pub := cli.latch(t, "ssh-ca", "pubkey", "--ssh-ca-key", ca)
	if pub.code != 0 {
		t.Fatalf("ssh-ca pubkey: exit %d %s", pub.code, pub.stderr)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	plugin := ssmplugintest.Path(t)
	args := append([]string{"--ssh-ca-key", ca, "--ssm-session-role", sessionRole}, extra...)
	w := startServerOn(t, env, fmt.Sprintf(ssmPolicy, u.Username), args...)
	w.setClock(t, time.Now().UTC().Truncate(time.Second)) // certificates must be valid on sshd's clock
	sshd := sshdtest.Start(t, []byte(pub.stdout), sshdtest.Options{Instance: boxInstance})
	echo := echoServer(t)
	online := &ec2sim.FleetAgent{Status: "online"}
	managed := func(name, env string) map[string]string {
		return map[string]string{"Name": name, "env": env, latch.TagManaged: "true"}
	}
	if err := w.env.Sim.LoadFleet(ec2sim.Fleet{Regions: map[string]ec2sim.FleetRegion{"us-east-1": {
		// One ordinary group with no inbound rules: Session Manager needs
		// no port, and latch manages no group here.
		SecurityGroups: []ec2sim.FleetGroup{{ID: boxGroup, Name: "box-no-ingress"}},
		Instances: []ec2sim.FleetInstance{
			{ID: boxInstance, SecurityGroups: []string{boxGroup}, Tags: managed("box-1", "box"), HostKeys: []string{keyLine(sshd.HostKey)}, Agent: online},
			{ID: otherInstance, SecurityGroups: []string{boxGroup}, Tags: managed("box-2", "other"), Agent: online},
			{ID: offlineBox, SecurityGroups: []string{boxGroup}, Tags: managed("box-3", "box"), Agent: &ec2sim.FleetAgent{Status: "offline"}},
		},
	}}}); err != nil {
		t.Fatal(err)
	}
	ports := map[int]string{22: sshd.Addr, 7: echo}
	w.env.Sim.SetDial(func(ctx context.Context, _, instance string, port int) (net.Conn, error) {
		addr, ok := ports[port]
		if !ok || instance != boxInstance {
			return nil, fmt.Errorf("nothing listens on %s:%d", instance, port)
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	})
	w.as("AKIDALICE", "alice-secret")
	sw := &sshWorld{serverWorld: w, sshd: sshd, caKey: ca, userDir: t.TempDir()}
	sw.writeUserFiles(t)
	return &ssmWorld{sshWorld: sw, plugin: plugin, echo: echo, args: args}
}

// echoServer answers every connection with what it reads.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return l.Addr().String()
}

// sshViaSSM runs `latch ssh box-1 --via ssm` with the user's config.
func (w *ssmWorld) sshViaSSM(t *testing.T, ctx context.Context, sshArgs ...string) result {
	t.Helper()
	args := append([]string{"ssh", "box-1", "--via", "ssm", "--plugin", w.plugin, "--", "-F", filepath.Join(w.userDir, "config")}, sshArgs...)
	return w.latchCtx(ctx, t, args...)
}

// latchFrozen runs latch as latchCtx does, but on a clock of its own that
// stays at now, so that what happens at expiry is the server's doing,
// not the client's own timer.
func (w *ssmWorld) latchFrozen(t *testing.T, now time.Time, args ...string) result {
	t.Helper()
	clock := filepath.Join(t.TempDir(), "client-clock")
	if err := os.WriteFile(clock, []byte(now.Format(time.RFC3339Nano)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := w.getenvSnapshot()
	getenv := func(k string) string {
		if k == "LATCH_TEST_CLOCK_FILE" {
			return clock
		}
		return env(k)
	}
	var stdout, stderr strings.Builder
	code := run(context.Background(), args, getenv, strings.NewReader(""), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// forwardInBackground sets latch's clock to now and runs `latch session
// box-1` forwarding port 7, on a client clock that stays at now, until
// its session is connected; done has its result when it exits.
func (w *ssmWorld) forwardInBackground(t *testing.T, now time.Time) <-chan result {
	t.Helper()
	w.setClock(t, now)
	local := freePort(t)
	done := make(chan result, 1)
	go func() {
		done <- w.latchFrozen(t, now, "session", "box-1", "--document", "port-forward", "--port", "7",
			"--local-port", strconv.Itoa(local), "--plugin", w.plugin)
	}()
	waitFor(t, "the session", func() bool { return connected(w.sessions()) }, w.server.output)
	return done
}

// sessions are the simulator's Session Manager sessions.
func (w *ssmWorld) sessions() []ec2sim.Session { return w.env.Sim.Sessions("us-east-1") }

// waitFor polls cond until it holds, failing after a generous bound: it
// waits on other processes, which have no event to wait on.
func waitFor(t *testing.T, what string, cond func() bool, more func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, more())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func connected(ss []ec2sim.Session) bool {
	return len(ss) == 1 && ss[0].Status == "Connected"
}

// SSH over Session Manager: the certificate logs in through the real
// plugin as ssh's ProxyCommand, EC2 records no ingress change at all,
// and the session is named for the requester and ended with the grant.
func TestSSHViaSSM(t *testing.T) {
	w := startSSMWorld(t)
	authorized := w.env.Sim.Calls("AuthorizeSecurityGroupIngress") // the fleet's set-up
	r := w.sshViaSSM(t, t.Context(), "echo", "ok")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "ok" {
		t.Fatalf("latch ssh --via ssm: exit %d, stdout %q\nstderr: %s\nsshd: %s\nserver: %s", r.code, r.stdout, r.stderr, w.sshd.Log(), w.server.output())
	}
	if n := w.env.Sim.Calls("AuthorizeSecurityGroupIngress") - authorized; n != 0 {
		t.Errorf("EC2 saw %d AuthorizeSecurityGroupIngress calls; Session Manager access opens no rule", n)
	}
	if !w.sshd.LogContains("Accepted publickey") || !w.sshd.LogContains("CERT") {
		t.Errorf("sshd did not accept a certificate:\n%s", w.sshd.Log())
	}
	ss := w.sessions()
	if len(ss) != 1 {
		t.Fatalf("%d sessions; want 1", len(ss))
	}
	s := ss[0]
	if !strings.HasPrefix(s.ID, "dev-alice-") || !strings.Contains(s.Owner, "assumed-role/latch-session/dev-alice-") {
		t.Errorf("session %s owned by %s; want both to name the requester (dev/alice)", s.ID, s.Owner)
	}
	if s.DocumentName != "AWS-StartSSHSession" || s.Target != boxInstance || !strings.HasPrefix(s.Reason, "latch g-") {
		t.Errorf("session %+v; want AWS-StartSSHSession on box-1 with latch's reason", s)
	}
	if s.Status != "Terminated" {
		t.Errorf("session %s is %s after ssh exited; want it terminated with the grant", s.ID, s.Status)
	}
	if !strings.Contains(r.stderr, "revoked g-") {
		t.Errorf("stderr %q does not say the grant was ended", r.stderr)
	}
}

// At the grant's expiry, on latch's clock, the server terminates the
// session: the plugin's channel closes and ssh exits.
func TestSSHViaSSMEndsAtExpiry(t *testing.T) {
	w := startSSMWorld(t)
	now := time.Now().UTC().Truncate(time.Second)
	w.setClock(t, now)
	done := make(chan result, 1)
	go func() {
		done <- w.latchFrozen(t, now, "ssh", "box-1", "--via", "ssm", "--plugin", w.plugin, "--", "-F", filepath.Join(w.userDir, "config"), "sleep", "120")
	}()
	waitFor(t, "the session", func() bool { return connected(w.sessions()) && w.sshd.LogContains("Starting session") },
		func() string { return w.sshd.Log() + w.server.output() })
	if n := w.env.Sim.Calls("TerminateSession"); n != 0 {
		t.Fatalf("%d TerminateSession calls before expiry", n)
	}
	w.setClock(t, now.Add(30*time.Minute)) // the server's clock; the client's stays
	r := <-done
	if r.code == 0 {
		t.Fatalf("ssh exited 0 at expiry; stderr %s", r.stderr)
	}
	if s := w.sessions(); s[0].Status != "Terminated" || w.env.Sim.Calls("TerminateSession") == 0 {
		t.Errorf("session %s after %d TerminateSession calls: want the server to have terminated it", s[0].Status, w.env.Sim.Calls("TerminateSession"))
	}
	// The revoker's timer or the sweep, whichever runs first at the new
	// time, terminates it.
	if out := w.server.output(); !strings.Contains(out, `"msg":"session terminated"`) {
		t.Errorf("the server's log does not show the session terminated:\n%s\nclient: %s", out, r.stderr)
	}
}

// latch session with port forwarding carries bytes to a port on the
// instance, through the real plugin's local port.
func TestSessionPortForward(t *testing.T) {
	w := startSSMWorld(t)
	local := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan result, 1)
	go func() {
		done <- w.latchCtx(ctx, t, "session", "box-1", "--document", "port-forward", "--port", "7", "--local-port", strconv.Itoa(local), "--plugin", w.plugin)
	}()
	var conn net.Conn
	waitFor(t, "the plugin's local port", func() bool {
		var err error
		conn, err = net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(local)))
		return err == nil
	}, func() string { return w.server.output() })
	msg := "hello through Session Manager\n"
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if err := conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != msg {
		t.Fatalf("read %q, %v; want the echo %q", got, err, msg)
	}
	conn.Close()
	cancel()
	r := <-done
	if !strings.Contains(r.stderr, "revoked g-") {
		t.Errorf("stopping latch session did not end its grant: %s", r.stderr)
	}
	if ss := w.sessions(); len(ss) != 1 || ss[0].Status != "Terminated" || ss[0].DocumentName != "AWS-StartPortForwardingSession" {
		t.Errorf("sessions %+v; want one port-forwarding session, terminated", ss)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Refusals are clear, and start nothing: a document the rule does not
// allow, an instance whose agent is offline, a target the requester's
// rule does not cover, a port outside the rule's ssm ports.
func TestSessionRefusals(t *testing.T) {
	w := startSSMWorld(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"document not allowed", []string{"session", "box-1"}, 1, `start a shell session`},
		{"agent offline", []string{"session", "box-3", "--document", "port-forward", "--port", "7"}, 1, "is ConnectionLost, not Online"},
		{"target not covered", []string{"session", "box-2", "--document", "port-forward", "--port", "7"}, 1, "no policy rule lets"},
		{"port not allowed", []string{"session", "box-1", "--document", "port-forward", "--port", "5432"}, 1, "port 5432"},
		{"ssh document", []string{"session", "box-1", "--document", "ssh"}, 2, "latch ssh TARGET --via ssm"},
		{"no port", []string{"session", "box-1", "--document", "port-forward"}, 2, "needs --port"},
		{"bad local port", []string{"session", "box-1", "--document", "port-forward", "--port", "7", "--local-port", "70000"}, 2, `--local-port "70000"`},
		{"via what", []string{"ssh", "box-1", "--via", "carrier-pigeon"}, 2, "want network"},
		{"via ssm direct", []string{"ssh", "box-1", "--via", "ssm", "--direct"}, 2, "needs a server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := w.latch(t, append(tc.args, "--plugin", w.plugin)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.says) {
				t.Errorf("exit %d, stderr %q; want %d saying %q", r.code, r.stderr, tc.code, tc.says)
			}
		})
	}
	if ss := w.sessions(); len(ss) != 0 {
		t.Errorf("%d sessions started; want none", len(ss))
	}
	if n := w.env.Sim.Calls("AssumeRole"); n != 0 {
		t.Errorf("the server assumed the session role %d times; want never", n)
	}
	if gs := w.grants(t); len(gs) != 0 {
		t.Errorf("the store holds %d grants; want none", len(gs))
	}
}

// grants lists the server's grants from its database.
func (w *ssmWorld) grants(t *testing.T) []latch.Grant {
	t.Helper()
	store, err := sqlite.Open(t.Context(), w.vars["LATCH_DB"], sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	gs, err := store.Grants(t.Context(), latch.GrantFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return gs
}

// Revocation never depends on a process staying alive: the server is
// killed during a session and comes back with its database gone; once
// the grant is past its expiry, the sweep finds the session in AWS by
// its reason and terminates it.
func TestSessionSweptAfterServerDeathAndLostDatabase(t *testing.T) {
	w := startSSMWorld(t)
	now := time.Now().UTC().Truncate(time.Second)
	done := w.forwardInBackground(t, now)

	w.server.kill(t)
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(w.vars["LATCH_DB"] + suffix); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	w.serverWorld = w.launchServer(t, w.args...)
	if !connected(w.sessions()) {
		t.Fatalf("the session ended before its grant did: %+v", w.sessions())
	}
	if n := w.env.Sim.Calls("TerminateSession"); n != 0 {
		t.Fatalf("%d TerminateSession calls before expiry", n)
	}
	w.setClock(t, now.Add(30*time.Minute)) // the new server's clock; the client's stays
	waitFor(t, "the sweep to terminate the session", func() bool { return w.sessions()[0].Status == "Terminated" }, w.server.output)
	if n := w.env.Sim.Calls("TerminateSession"); n != 1 {
		t.Errorf("%d TerminateSession calls; want the sweep's one", n)
	}
	if out := w.server.output(); !strings.Contains(out, `"via":"sweep"`) {
		t.Errorf("the restarted server's log shows no sweep terminating the session:\n%s", out)
	}
	r := <-done // the plugin's channel closed: it exits, and latch session with it
	if !strings.Contains(r.stderr, "latch: revoke g-") {
		t.Errorf("latch session: exit %d, %s; want it to report that its (dead) server could not end the grant", r.code, r.stderr)
	}
}

// latch sweep ends overdue Session Manager sessions once, with no server
// running and a database that knows nothing of them (a lost one): AWS's
// record, the session's reason, is enough. --dry-run only reports.
func TestSweepCommandEndsOverdueSessions(t *testing.T) {
	w := startSSMWorld(t)
	now := time.Now().UTC().Truncate(time.Second)
	done := w.forwardInBackground(t, now)
	w.server.kill(t)
	w.setClock(t, now.Add(31*time.Minute))

	w.vars["LATCH_DB"] = filepath.Join(t.TempDir(), "new.db")
	dry := w.latch(t, "sweep", "--dry-run", "--json", "--ssm-session-role", sessionRole)
	out := decode[sweepJSON](t, dry.stdout)
	if dry.code != 0 || len(out.Sessions) != 1 || out.Sessions[0].Terminated || out.Sessions[0].InstanceID != boxInstance {
		t.Fatalf("sweep --dry-run: exit %d %+v %s; want the overdue session reported, not terminated", dry.code, out, dry.stderr)
	}
	if !connected(w.sessions()) {
		t.Fatal("a dry run terminated the session")
	}
	r := w.latch(t, "sweep", "--ssm-session-role", sessionRole)
	if r.code != 0 || !strings.Contains(r.stdout, "terminated Session Manager session "+w.sessions()[0].ID) {
		t.Fatalf("sweep: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if s := w.sessions()[0]; s.Status != "Terminated" {
		t.Errorf("session %s after the sweep", s.Status)
	}
	<-done
	if again := w.latch(t, "sweep", "--ssm-session-role", sessionRole); !strings.Contains(again.stdout, "Nothing expired.") {
		t.Errorf("a second sweep found more: %s", again.stdout)
	}
}

// The server explains Session Manager sessions too, by the same policy
// code, for an instance with no managed security group.
func TestPolicyExplainSessionThroughTheServer(t *testing.T) {
	w := startSSMWorld(t)
	r := w.latch(t, "policy", "explain", "--target", "box-1", "--document", "ssh", "--json")
	out := decode[struct {
		Rules []explainJSON `json:"rules"`
	}](t, r.stdout)
	if r.code != 0 || len(out.Rules) != 1 || !out.Rules[0].Applies || !strings.Contains(out.Rules[0].Why, "ssh session to port 22") {
		t.Fatalf("explain ssh: exit %d %+v %s", r.code, out, r.stderr)
	}
	r = w.latch(t, "policy", "explain", "--target", "box-1", "--document", "shell")
	if r.code != 0 || !strings.Contains(r.stdout, "does not allow shell sessions") {
		t.Errorf("explain shell: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := w.latch(t, "policy", "explain", "--target", "box-1", "--document", "port-forward", "--port", "99999"); r.code != exitUsage {
		t.Errorf("explain with a bad port: exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
}
