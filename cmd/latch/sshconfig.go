package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
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
	a.addFlags(cmd, serverFlags) // written into the block
	cmd.AddCommand(a.sshPrepareCommand(), a.sshProxyCommand())
	return cmd
}

func (a *app) printSSHConfig(suffix, login, reason string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return a.writeSSHConfig(exe, suffix, login, reason)
}

// writeSSHConfig prints the block that runs exe, or nothing: the block is
// appended to ~/.ssh/config, where half a block would be worse than none.
func (a *app) writeSSHConfig(exe, suffix, login, reason string) error {
	if err := sshclient.CheckSuffix(suffix); err != nil {
		return err
	}
	if err := sshclient.CheckExecutable(exe, a.getenv("GOCACHE")); err != nil {
		return err
	}
	args, err := a.serverArgs()
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
	block, err := sshclient.ConfigBlock{Latch: exe, Args: args, Suffix: suffix, Login: login, Reason: reason,
		CacheDir: cache, KnownHosts: kh}.Render()
	if err != nil {
		return err
	}
	_, err = io.WriteString(a.stdout, block)
	return err
}

// serverArgs are the flags that say which server and how to reach it, for
// the block's commands: ssh runs them from IDEs and other programs that
// lack the user's LATCH_ variables, so what came from them is written out.
func (a *app) serverArgs() ([]string, error) {
	if a.server == "" {
		return nil, latch.Invalidf("server", "no latch server: the block asks one for access; set LATCH_SERVER or --server to its URL")
	}
	args := []string{"--server", a.server}
	if a.serverCA != "" {
		ca, err := filepath.Abs(a.serverCA) // ssh runs the block from any directory
		if err != nil {
			return nil, latch.Invalidf("server-ca", "%s: %v", a.serverCA, err)
		}
		args = append(args, "--server-ca", ca)
	}
	if a.serverID != "" {
		args = append(args, "--server-id", a.serverID)
	}
	if a.authMethod != "" && a.authMethod != "auto" {
		args = append(args, "--auth", a.authMethod)
	}
	return args, nil
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
	if st, err := sshclient.ReadConnState(dir); err == nil && a.clock.Now().Add(time.Minute).Before(st.ExpiresAt) {
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
	return s, sshclient.WriteConnState(dir, sshclient.ConnState{Grant: s.grant, Address: net.JoinHostPort(t.address, strconv.Itoa(t.port)), ExpiresAt: s.until})
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
			if err := sshclient.CheckHost(args[0]); err != nil {
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
	st, err := sshclient.ReadConnState(dir)
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
	return sshclient.Proxy{Address: st.Address, Until: st.ExpiresAt, Clock: a.clock, Name: host,
		Stdin: a.stdin, Stdout: a.stdout, Stderr: a.stderr}.Run(ctx)
}

// connTarget reads prepare's HOST and PORT.
func connTarget(host, port, suffix string) (sshTarget, error) {
	dest, p, err := sshclient.SplitHost(host, port, suffix)
	return sshTarget{dest: dest, port: p}, err
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
