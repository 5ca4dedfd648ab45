package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/ec2sim"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/internal/sshdtest"
	"github.com/latchdev/latch/sqlite"
)

// sshPolicy lets alice's role log in to instances tagged env=box as the
// user running the test (sshd's only user), with the method given.
const sshPolicy = `
version: 1
rules:
  - name: box-ssh
    targets: {tags: {env: box}}
    who: {aws_principals: ["arn:aws:sts::123456789012:assumed-role/dev/*"]}
    ports: [tcp/1024-65535]
    duration: {default: 30m, max: 1h}
    approval: auto
    reason_required: false
    ssh: {method: %s, principals: [%s]}
`

// sshWorld is a latch server with an SSH CA, an instance "box-1" whose
// public address is 127.0.0.1, and a real sshd there that, like an
// instance with EC2 Instance Connect, trusts the CA and the keys pushed to
// box-1 (which it reads from the simulator). box-1's console output shows
// sshd's host key, as cloud-init prints it.
type sshWorld struct {
	*serverWorld
	sshd    *sshdtest.Server
	port    string
	caKey   string
	userDir string // the user's own ssh files, which latch must never change
}

func startSSHWorld(t *testing.T) *sshWorld {
	t.Helper()
	return startSSHWorldWith(t, latch.SSHCertificate)
}

func startSSHWorldWith(t *testing.T, method latch.SSHMethod) *sshWorld {
	t.Helper()
	caDir := t.TempDir()
	ca := filepath.Join(caDir, "ssh-ca")
	// The CA is made and published with latch's own commands.
	cli := newWorld(t)
	if r := cli.latch(t, "ssh-ca", "keygen", ca); r.code != 0 {
		t.Fatalf("ssh-ca keygen: exit %d %s", r.code, r.stderr)
	}
	pub := cli.latch(t, "ssh-ca", "pubkey", "--ssh-ca-key", ca)
	if pub.code != 0 || !strings.HasPrefix(pub.stdout, "ssh-ed25519 ") {
		t.Fatalf("ssh-ca pubkey: exit %d %q %s", pub.code, pub.stdout, pub.stderr)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}

	cli.env.RequireSim(t, "sshd reads the keys pushed with Instance Connect from the simulator's /_sim/instance-connect/keys, and box-1 needs public address 127.0.0.1 and console host keys, which only a simulator fleet gives")
	// Certificates must be valid on sshd's clock, which is the real one.
	w := startServer(t, fmt.Sprintf(sshPolicy, method, u.Username), "--ssh-ca-key", ca)
	w.setClock(t, time.Now().UTC().Truncate(time.Second))
	sshd := sshdtest.Start(t, []byte(pub.stdout), sshdtest.Options{
		AuthorizedKeysURL: w.env.URL + "/_sim/instance-connect/keys?instance=" + boxInstance + "&user=%u",
		Instance:          boxInstance, // accepts only certificates for box-1, as the README's user data sets up
	})
	_, port, _ := net.SplitHostPort(sshd.Addr)
	if err := w.env.Sim.LoadFleet(ec2sim.Fleet{Regions: map[string]ec2sim.FleetRegion{"us-east-1": {
		SecurityGroups: []ec2sim.FleetGroup{{ID: boxGroup, Name: "box-latch", Tags: map[string]string{latch.TagManaged: "true"}}},
		Instances: []ec2sim.FleetInstance{{ID: boxInstance, SecurityGroups: []string{boxGroup}, PublicIP: "127.0.0.1",
			Tags: map[string]string{"Name": "box-1", "env": "box"}, HostKeys: []string{keyLine(sshd.HostKey)}}},
	}}}); err != nil {
		t.Fatal(err)
	}
	w.as("AKIDALICE", "alice-secret")
	sw := &sshWorld{serverWorld: w, sshd: sshd, port: port, caKey: ca, userDir: t.TempDir()}
	sw.writeUserFiles(t)
	return sw
}

const (
	boxGroup    = "sg-0b0c00000000000b1"
	boxInstance = "i-0b0c00000000000b1"
)

// writeUserFiles gives the user an ssh config, a key of their own and a
// known_hosts file: what latch reads but must leave alone.
func (w *sshWorld) writeUserFiles(t *testing.T) {
	files := map[string]string{
		"config": fmt.Sprintf("Host *\n  UserKnownHostsFile %s\n  IdentityFile %s\n  StrictHostKeyChecking accept-new\n  BatchMode yes\n",
			filepath.Join(w.userDir, "known_hosts"), filepath.Join(w.userDir, "id_ed25519")),
		"known_hosts": "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
		"id_ed25519":  "not a real key; latch must not touch it\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(w.userDir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// userFiles snapshots the user's ssh directory.
func (w *sshWorld) userFiles(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(w.userDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(w.userDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// ssh runs `latch ssh box-1` with the user's config and extra ssh arguments.
func (w *sshWorld) ssh(t *testing.T, ctx context.Context, sshArgs ...string) result {
	t.Helper()
	args := append([]string{"ssh", "box-1", "--port", w.port, "--", "-F", filepath.Join(w.userDir, "config")}, sshArgs...)
	return w.latchCtx(ctx, t, args...)
}

// latchKnownHosts reads latch's own known_hosts file.
func (w *sshWorld) latchKnownHosts(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(w.dir, ".config", "latch", "known_hosts"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (w *sshWorld) openRules() int { return len(w.env.Sim.Rules("us-east-1", boxGroup)) }

// grantState reads a grant's state from the server's database.
func (w *sshWorld) grantState(t *testing.T, id string) latch.GrantState {
	t.Helper()
	store, err := sqlite.Open(t.Context(), w.vars["LATCH_DB"], sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	g, err := store.Grant(t.Context(), latch.GrantID(id))
	if err != nil {
		t.Fatal(err)
	}
	return g.State
}

func TestSSHLogsInWithACertificateAndRevokesAfter(t *testing.T) {
	w := startSSHWorld(t)
	before := w.userFiles(t)

	r := w.ssh(t, t.Context(), "echo", "hello from box-1")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "hello from box-1" {
		t.Fatalf("latch ssh: exit %d, stdout %q\nstderr: %s\nsshd: %s\nserver: %s", r.code, r.stdout, r.stderr, w.sshd.Log(), w.server.output())
	}
	grant := grantIn(t, r.stderr)
	if !w.sshd.LogContains("ID grant=" + grant + ";requester=arn:aws:sts::123456789012:assumed-role/dev/alice") {
		t.Errorf("sshd did not log the certificate for %s:\n%s", grant, w.sshd.Log())
	}
	if n := w.openRules(); n != 0 || !strings.Contains(r.stderr, "revoked "+grant) {
		t.Errorf("after the session: %d rules open, stderr %q; want the grant revoked", n, r.stderr)
	}
	if st := w.grantState(t, grant); st != latch.StateRevoked {
		t.Errorf("grant %s is %s; want revoked", grant, st)
	}

	// The host key EC2 shows was pinned in latch's file, by instance ID;
	// the user's files are untouched.
	if kh := w.latchKnownHosts(t); kh != boxInstance+" "+keyLine(w.sshd.HostKey)+"\n" || strings.Contains(r.stderr, "no host keys") {
		t.Errorf("latch's known_hosts = %q, stderr %q; want only the console's host key under %s", kh, r.stderr, boxInstance)
	}
	if after := w.userFiles(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the user's ssh files changed:\nbefore %q\nafter  %q", before, after)
	}
}

func TestSSHRefusedFromAnotherSourceAddress(t *testing.T) {
	w := startSSHWorld(t)
	// The grant and certificate are for 127.0.0.1, where the server sees us.
	r := w.ssh(t, t.Context(), "-b", "127.0.0.2", "echo", "in")
	if r.code != 255 || strings.Contains(r.stdout, "in") {
		t.Fatalf("from 127.0.0.2: exit %d stdout %q; want ssh's 255\n%s", r.code, r.stdout, r.stderr)
	}
	if !w.sshd.LogContains("not from a permitted source address (127.0.0.2)") {
		t.Errorf("sshd did not refuse for the source address:\n%s", w.sshd.Log())
	}
	if n := w.openRules(); n != 0 {
		t.Errorf("%d rules left open after a failed session", n)
	}
}

func TestSSHRefusedWhenTheInstanceTrustsAnotherCA(t *testing.T) {
	w := startSSHWorld(t)
	other := filepath.Join(t.TempDir(), "other-ca")
	if r := w.latch(t, "ssh-ca", "keygen", other); r.code != 0 {
		t.Fatal(r.stderr)
	}
	w.sshd.SetTrustedUserCAKeys(t, []byte(w.latch(t, "ssh-ca", "pubkey", "--ssh-ca-key", other).stdout))
	if r := w.ssh(t, t.Context(), "echo", "in"); r.code != 255 {
		t.Fatalf("with another CA trusted: exit %d; want 255\n%s", r.code, r.stderr)
	}
	if !w.sshd.LogContains("Failed publickey for " + w.sshd.User) {
		t.Errorf("sshd did not refuse the certificate:\n%s", w.sshd.Log())
	}
}

func TestSSHRefusedAfterTheGrantWindow(t *testing.T) {
	w := startSSHWorld(t)
	// On the server's clock it is two hours ago: the grant, and so the
	// certificate, ended 90 minutes before sshd's now.
	w.setClock(t, time.Now().Add(-2*time.Hour))
	if r := w.ssh(t, t.Context(), "echo", "in"); r.code != 255 {
		t.Fatalf("an expired certificate: exit %d; want 255\n%s", r.code, r.stderr)
	}
	if !w.sshd.LogContains("Certificate invalid: expired") {
		t.Errorf("sshd did not refuse an expired certificate:\n%s", w.sshd.Log())
	}
}

func TestSSHSessionClosedAtExpiry(t *testing.T) {
	w := startSSHWorld(t)
	now := time.Now().UTC().Truncate(time.Second)
	w.setClock(t, now)
	done := make(chan result, 1)
	go func() { done <- w.ssh(t, context.Background(), "sleep", "60") }()
	// Wait until the grant is open, then move past its end (30m, the rule's default).
	deadline := time.Now().Add(20 * time.Second)
	for w.openRules() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no rule opened\nserver: %s", w.server.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !w.sshd.LogContains("Accepted publickey") {
		t.Fatalf("the session did not start:\n%s", w.sshd.Log())
	}
	w.setClock(t, now.Add(30*time.Minute))
	r := <-done
	if r.code == 0 || !strings.Contains(r.stderr, "access expired; closing the session") {
		t.Fatalf("at expiry: exit %d stderr %q; want the session closed", r.code, r.stderr)
	}
	if n := w.openRules(); n != 0 {
		t.Errorf("%d rules open after expiry", n)
	}
}

func grantIn(t *testing.T, stderr string) string {
	t.Helper()
	_, rest, ok := strings.Cut(stderr, "(grant ")
	if !ok {
		t.Fatalf("no grant named in %q", stderr)
	}
	id, _, _ := strings.Cut(rest, ",")
	return id
}

// With --direct there is no server: the caller's own AWS credentials open
// the rule and the CA key given signs locally.
func TestSSHDirectWithALocalCA(t *testing.T) {
	w := startSSHWorld(t)
	args := []string{"ssh", "--direct", "--ssh-ca-key", w.caKey, "--ip", "127.0.0.1", "--login", w.sshd.User,
		"box-1", "--port", w.port, "--", "-F", filepath.Join(w.userDir, "config"), "echo", "direct"}
	r := w.latch(t, args...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "direct" {
		t.Fatalf("latch ssh --direct: exit %d %q\n%s\nsshd: %s", r.code, r.stdout, r.stderr, w.sshd.Log())
	}
	if !w.sshd.LogContains("ID grant=" + grantIn(t, r.stderr) + ";requester=arn:aws:sts::123456789012:assumed-role/dev/alice") {
		t.Errorf("sshd did not log the direct grant's certificate:\n%s", w.sshd.Log())
	}
	if n := w.openRules(); n != 0 {
		t.Errorf("%d rules open after the session", n)
	}
}

func TestSSHBadInput(t *testing.T) {
	w := newWorld(t)
	for _, tt := range []struct {
		args []string
		says string
	}{
		{[]string{"ssh", "web-1", "uptime"}, "after --"},
		{[]string{"ssh", "root@web-1", "--login", "admin"}, "disagree"},
		{[]string{"ssh", "bad;user@web-1"}, "login"},
		{[]string{"ssh", "web-1", "--port", "70000"}, "port"},
		{[]string{"ssh", "web-1", "--for", "-5m"}, "for"},
		{[]string{"ssh", "web-1", "--method", "certificate"}, "--direct"},
		{[]string{"ssh", "web-1", "--direct", "--method", "password"}, "password"},
		{[]string{"ssh", "web-1", "--direct", "--method", "certificate"}, "ssh-ca-key"},
	} {
		r := w.latch(t, tt.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.says) {
			t.Errorf("%v: exit %d %q; want 2 saying %q", tt.args, r.code, r.stderr, tt.says)
		}
	}
	if n := len(w.rules(t)); n != 0 {
		t.Errorf("bad input opened %d rules", n)
	}
}

// Plain `ssh box-1.latch`, with the block `latch ssh-config` prints: the
// real ssh runs latch from Match exec and ProxyCommand.
func TestSSHConfigBlockMakesPlainSSHGoThroughLatch(t *testing.T) {
	w := startSSHWorld(t)
	env := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range w.vars {
		env = append(env, k+"="+v)
	}
	gen := exec.Command(latchBinary(t), "ssh-config", "--login", w.sshd.User)
	gen.Env = env
	block, err := gen.Output()
	if err != nil || !strings.Contains(string(block), `Match host "*.latch,!*'*" user "*,!*'*" exec`) {
		t.Fatalf("ssh-config: %v\n%s", err, block)
	}
	user, _ := os.ReadFile(filepath.Join(w.userDir, "config"))
	cfg := filepath.Join(w.userDir, "config.latch")
	if err := os.WriteFile(cfg, append(block, user...), 0o600); err != nil {
		t.Fatal(err)
	}
	before := w.userFiles(t)

	cmd := exec.Command("ssh", "-F", cfg, "-p", w.port, "box-1.latch", "echo", "plain ssh")
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "plain ssh" {
		t.Fatalf("ssh box-1.latch: %v %q\n%s\nsshd: %s\nserver: %s", err, out, stderr.String(), w.sshd.Log(), w.server.output())
	}
	if !w.sshd.LogContains("ID grant=") {
		t.Errorf("sshd did not log a latch certificate:\n%s", w.sshd.Log())
	}
	// The proxy revokes as the connection closes; it may finish just after ssh.
	deadline := time.Now().Add(10 * time.Second)
	for w.openRules() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := w.openRules(); n != 0 {
		t.Errorf("%d rules open after the connection ended\n%s", n, stderr.String())
	}
	delete(before, "config.latch")
	after := w.userFiles(t)
	delete(after, "config.latch")
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("the user's ssh files changed")
	}
	if kh := w.latchKnownHosts(t); kh != "[box-1.latch]:"+w.port+" "+keyLine(w.sshd.HostKey)+"\n" {
		t.Errorf("latch's known_hosts = %q; want the console's host key pinned for box-1.latch", kh)
	}
	if entries, _ := os.ReadDir(filepath.Join(w.dir, ".cache", "latch", "ssh")); len(entries) != 0 {
		t.Errorf("the connection's key was left in the cache: %v", entries)
	}
}

func hostKey(t *testing.T) ssh.PublicKey { return sshdtest.UserKey(t).PublicKey() }

func keyLine(k ssh.PublicKey) string { return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) }

// The server's instance ID and addresses go into ssh's options and
// known_hosts, so they are checked, not trusted.
func TestLoginInstanceChecksTheServersAnswer(t *testing.T) {
	for _, in := range []latchhttp.InstanceJSON{
		{ID: "*", PublicIP: "127.0.0.1"},
		{ID: "i-0b0c00000000000b1\n*", PublicIP: "127.0.0.1"},
		{ID: "i-0b0c00000000000b1", PublicIP: "127.0.0.1 -oProxyCommand=sh"},
		{ID: "i-0b0c00000000000b1", PrivateIP: "evil.example"},
	} {
		var st sshTarget
		if err := loginInstance(&st, &in, false); err == nil || st.instance != "" || st.address != "" {
			t.Errorf("%+v: err %v, target %+v; want refused and nothing set", in, err, st)
		}
	}
	var st sshTarget
	if err := loginInstance(&st, &latchhttp.InstanceJSON{ID: "i-0b0c00000000000b1", PublicIP: "203.0.113.9", PrivateIP: "10.0.0.9"}, true); err != nil ||
		st.instance != "i-0b0c00000000000b1" || st.address != "10.0.0.9" {
		t.Errorf("good answer: %v, %+v; want the instance at its private address", err, st)
	}
}
