package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/sshclient"
)

const defaultSSHSuffix = ".latch"

func (a *app) sshConfigCommand() *cobra.Command {
	var suffix, login, reason string
	cmd := &cobra.Command{
		Use:   "ssh-config [--suffix .latch] [--login USER] >> ~/.ssh/config",
		Short: "Print an ssh_config block so plain `ssh NAME.latch` goes through latch",
		Long: `Print an ssh_config block after which 'ssh web-1.latch' (or scp, rsync,
git, an IDE's remote mode) reaches the instance named web-1 through latch:

  - Match exec runs 'latch ssh-config prepare': it asks $LATCH_SERVER for
    access, waits (progress on stderr), and fetches a short-lived
    credential for a key made for this connection, in latch's cache;
  - ProxyCommand runs 'latch ssh-config proxy': it carries the connection
    to the instance, closes it when access expires, and revokes access as
    soon as the connection ends.

Only names ending in the suffix are touched; every other host is left to
your ssh config. Append the output to ~/.ssh/config, or Include it.`,
		Example: `  latch ssh-config --login ec2-user >> ~/.ssh/config
  ssh web-1.latch
  ssh ubuntu@i-0a0b0c0d0e0f00001.latch -L 8080:localhost:8080`,
		RunE: func(*cobra.Command, []string) error { return a.printSSHConfig(suffix, login, reason) },
	}
	cmd.Flags().StringVar(&suffix, "suffix", defaultSSHSuffix, "host names ending in this go through latch")
	cmd.Flags().StringVar(&login, "login", "", "add a User line: the OS user to log in as")
	cmd.Flags().StringVar(&reason, "reason", "", "the reason sent with each request (for policies that require one)")
	a.addFlags(cmd, flagGroup{serverFlags.title, []string{"server"}}) // written into the block
	cmd.AddCommand(a.sshPrepareCommand(), a.sshProxyCommand())
	return cmd
}

func (a *app) printSSHConfig(suffix, login, reason string) error {
	if !strings.HasPrefix(suffix, ".") || len(suffix) < 2 || !sshHost.MatchString("x"+suffix) {
		return latch.Invalidf("suffix", "%q is not a host-name suffix; want '.' then letters, digits, '-', '_' or '.', e.g. .latch", suffix)
	}
	if login != "" {
		if err := latch.CheckLogin("login", login); err != nil {
			return err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cache, err := a.sshCacheDir()
	if err != nil {
		return err
	}
	kh, err := a.latchKnownHosts()
	if err != nil {
		return err
	}
	server := ""
	if a.server != "" {
		server = " --server " + shellQuote(a.server)
	}
	prepare := shellQuote(exe) + " ssh-config prepare" + server + " --suffix " + shellQuote(suffix)
	if reason != "" {
		prepare += " --reason " + shellQuote(reason)
	}
	w := a.stdout
	fmt.Fprintf(w, "# latch: `ssh NAME%s` reaches the instance NAME (ID or Name tag) through latch,\n", suffix)
	fmt.Fprintf(w, "# with a short-lived credential; access ends with the connection. From `latch ssh-config`.\n")
	// ssh substitutes %n and %r as given (a link or a repository URL can
	// choose them) and runs the command with the shell, so each token is
	// single-quoted, and names holding a single quote, the one character
	// that could end the quoting, never match: ssh then runs nothing.
	// latch itself refuses any name that is not a plain host or user name.
	fmt.Fprintf(w, "Match host \"*%s,!*'*\" user \"*,!*'*\" exec \"%s '%%n' '%%p' '%%r'\"\n", suffix, strings.ReplaceAll(prepare, `"`, `\"`))
	if login != "" {
		fmt.Fprintf(w, "    User %s\n", login)
	}
	fmt.Fprintf(w, "    IdentityFile %s\n", filepath.Join(cache, "%n", "id_ed25519"))
	fmt.Fprintf(w, "    CertificateFile %s\n", filepath.Join(cache, "%n", "id_ed25519-cert.pub"))
	fmt.Fprintf(w, "    IdentitiesOnly yes\n")
	fmt.Fprintf(w, "    UserKnownHostsFile %s ~/.ssh/known_hosts\n", kh)
	fmt.Fprintf(w, "    ProxyCommand %s ssh-config proxy%s '%%n' '%%p'\n", shellQuote(exe), server)
	return nil
}

// sshConnState is what prepare leaves for proxy, beside the key.
type sshConnState struct {
	Grant     latch.GrantID `json:"grant_id"`
	Address   string        `json:"address"`
	ExpiresAt time.Time     `json:"expires_at"`
}

func (a *app) sshPrepareCommand() *cobra.Command {
	var suffix, reason string
	cmd := &cobra.Command{
		Use:    "prepare HOST PORT USER",
		Short:  "Match exec: open access to HOST and fetch a credential (run by ssh)",
		Hidden: true,
		Args:   cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.sshPrepare(cmd.Context(), args[0], args[1], args[2], suffix, reason)
		},
	}
	cmd.Flags().StringVar(&suffix, "suffix", defaultSSHSuffix, "the suffix to strip from HOST")
	cmd.Flags().StringVar(&reason, "reason", "", "why you need access")
	a.addFlags(cmd, serverFlags, awsFlags)
	return cmd
}

// sshPrepare runs inside ssh's config parsing: whatever it prints to
// stderr the user sees, and a non-zero exit means "no match", so ssh
// then fails to resolve the name.
func (a *app) sshPrepare(ctx context.Context, host, port, login, suffix, reason string) error {
	t, err := connTarget(host, port, suffix)
	if err != nil {
		return err
	}
	if err := latch.CheckLogin("user", login); err != nil {
		return err
	}
	t.login = configuredLogin(login) // %r is the local user when nothing set User
	dir, err := a.connDir(host)
	if err != nil {
		return err
	}
	if st, err := readConnState(dir); err == nil && a.clock.Now().Add(time.Minute).Before(st.ExpiresAt) {
		return nil // ssh may read its config twice; the first pass did the work
	}
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	s, err := a.prepareConn(ctx, dir, &t, reason)
	if err == nil {
		err = a.pinConnHostKeys(host, port, t.hostKeys)
	}
	if err != nil {
		if s.end != nil {
			_ = s.end(context.WithoutCancel(ctx))
		}
		_ = os.RemoveAll(dir)
		return err
	}
	fmt.Fprintf(a.stderr, "latch: %s open as %s until %s (grant %s, %s).\n", t.dest, t.login, latch.FormatExpiry(s.until), s.grant, s.method)
	return nil
}

// prepareConn opens access for a key made in dir and records it there.
func (a *app) prepareConn(ctx context.Context, dir string, t *sshTarget, reason string) (sshAccess, error) {
	k, err := sshclient.NewKeyIn(dir)
	if err != nil {
		return sshAccess{}, err
	}
	s, err := a.sshViaServer(ctx, t, k, sshOptions{reason: reason})
	if err != nil {
		return s, err
	}
	if t.address == "" {
		return s, latch.Errorf(latch.ECONFLICT, "latch knows no address for %s; use 'latch ssh' with your own ssh config", t.dest)
	}
	return s, writeConnState(dir, sshConnState{Grant: s.grant, Address: net.JoinHostPort(t.address, strconv.Itoa(t.port)), ExpiresAt: s.until})
}

// pinConnHostKeys pins the instance's host keys under the name ssh looks
// up for HOST and PORT, as the block's ProxyCommand leaves it.
func (a *app) pinConnHostKeys(host, port string, keys []string) error {
	kh, err := a.latchKnownHosts()
	if err != nil {
		return err
	}
	// ssh looks names up in lower case, whatever the user typed.
	name := knownhosts.Normalize(net.JoinHostPort(strings.ToLower(host), port))
	if _, err := sshclient.PinHostKeys(kh, name, keys); err != nil {
		return fmt.Errorf("pin the host keys of %s: %w", host, err)
	}
	return nil
}

func (a *app) sshProxyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:    "proxy HOST PORT",
		Short:  "ProxyCommand: carry the connection, then revoke (run by ssh)",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkSSHHost(args[0]); err != nil {
				return err
			}
			return a.sshProxy(cmd.Context(), args[0])
		},
	}
	a.addFlags(cmd, serverFlags, awsFlags)
	return cmd
}

// sshProxy joins ssh's stdin and stdout to the instance until either side
// closes or access expires, then ends the grant and forgets the key.
func (a *app) sshProxy(ctx context.Context, host string) error {
	// ssh sends its ProxyCommand SIGHUP as it exits; that must end the
	// connection, not the process, so the revoke below still runs.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP)
	defer stop()
	dir, err := a.connDir(host)
	if err != nil {
		return err
	}
	st, err := readConnState(dir)
	if err != nil {
		return fmt.Errorf("no access prepared for %s (was 'latch ssh-config prepare' run by the Match block?): %w", host, err)
	}
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	defer func() {
		_ = os.RemoveAll(dir)
		if _, err := c.Revoke(context.WithoutCancel(ctx), st.Grant); err != nil && latch.ErrorCode(err) != latch.ECONFLICT {
			fmt.Fprintf(a.stderr, "latch: revoke %s: %s\n", st.Grant, latch.ErrorMessage(err))
		}
	}()
	conn, err := (&net.Dialer{Timeout: 15 * time.Second}).DialContext(ctx, "tcp", st.Address)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", st.Address, err)
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(conn, a.stdin); done <- struct{}{} }()
	go func() { _, _ = io.Copy(a.stdout, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	case <-a.clock.Alarm(st.ExpiresAt):
		fmt.Fprintf(a.stderr, "\r\nlatch: access to %s expired; closing the connection.\r\n", host)
	}
	return nil
}

// sshHost is a name latch takes from ssh's %n: a plain host name, an
// instance ID or a Name tag made of letters, digits, '-', '_' and '.',
// starting with a letter, digit or '_'. Nothing a shell, ssh_config or a
// file path reads specially.
var sshHost = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}$`)

// checkSSHHost refuses a HOST that is not a plain host name, before
// latch uses it for anything.
func checkSSHHost(host string) error {
	if !sshHost.MatchString(host) {
		return latch.Invalidf("host", "%q is not a host name; want up to 253 letters, digits, '-', '_' or '.', starting with a letter, digit or '_'", host)
	}
	return nil
}

// connTarget reads prepare's HOST and PORT.
func connTarget(host, port, suffix string) (sshTarget, error) {
	if err := checkSSHHost(host); err != nil {
		return sshTarget{}, err
	}
	name, ok := strings.CutSuffix(host, suffix)
	if !ok || name == "" {
		return sshTarget{}, latch.Invalidf("host", "%q does not end in %s", host, suffix)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return sshTarget{}, latch.Invalidf("port", "%q is not a port", port)
	}
	return sshTarget{dest: name, port: p}, nil
}

func (a *app) sshCacheDir() (string, error) {
	dir, err := a.xdgDir("XDG_CACHE_HOME", ".cache")
	return filepath.Join(dir, "ssh"), err
}

// connDir is where one host's key, certificate and state live.
func (a *app) connDir(host string) (string, error) {
	if host == "" || strings.ContainsAny(host, "/\\") || host == "." || host == ".." {
		return "", latch.Invalidf("host", "%q is not a host name", host)
	}
	cache, err := a.sshCacheDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return "", err
	}
	return filepath.Join(cache, host), nil
}

func readConnState(dir string) (sshConnState, error) {
	var st sshConnState
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, err
	}
	if st.Grant == "" || st.Address == "" {
		return st, errors.New("incomplete state")
	}
	return st, nil
}

func writeConnState(dir string, st sshConnState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "state.json"), b, 0o600)
}

// shellQuote quotes s for the shell ssh runs Match exec and ProxyCommand
// with ($SHELL, else /bin/sh).
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
