package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/broker"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/sshclient"
	"github.com/latchdev/latch/ssmclient"
)

type sshOptions struct {
	dur, reason, login, method, ip, sshPath, knownHosts, port, via, plugin string
	direct, private, breakGlass                                            bool
	ca                                                                     sshCAOptions
}

func (a *app) sshCommand() *cobra.Command {
	var o sshOptions
	cmd := &cobra.Command{
		Use:   "ssh [USER@]TARGET [-- SSH_ARGS...]",
		Short: "Open access, log in with a short-lived credential, and close it when you leave",
		Long: `Connect to TARGET (an instance ID or Name tag) with your system's OpenSSH
client, in one step:

  1. ask $LATCH_SERVER for access to the port (or, with --direct, open it
     with your own AWS credentials), waiting with progress for approval;
  2. get a short-lived credential for a key made for this session only:
     a certificate from latch's SSH CA, valid for the grant's window,
     from your address only and on this instance only (its principals
     are LOGIN@INSTANCE_ID), or a key pushed with EC2 Instance Connect;
     the policy rule's ssh section decides which;
  3. run ssh; your ssh config applies (User, Port, ProxyJump, ...). The
     host keys EC2 shows in the instance's console output (cloud-init
     prints them at boot) are pinned in latch's own known_hosts, by
     instance ID, and ssh refuses any other; without them ssh trusts the
     first key it sees, as usual;
  4. revoke access as soon as ssh exits, or close the session at expiry.

With --via ssm no port is opened at all: the server starts a Session
Manager session (AWS-StartSSHSession) under a role session named for you,
and ssh reaches sshd through AWS's session-manager-plugin as its
ProxyCommand. The certificate is then valid from the instance's own
loopback only, where Session Manager's agent connects from.

Your keys, agent and ~/.ssh/known_hosts are read, never written. latch
exits with ssh's exit status. Arguments after -- go to ssh: options, then
optionally a command.`,
		Example: `  latch ssh web-1 --reason "deploy 1.4"
  latch ssh ec2-user@i-0a0b0c0d0e0f00001 --for 15m --reason INC-7 -- -L 5432:localhost:5432
  latch ssh web-1 --reason "check logs" -- journalctl -u app --since -1h
  latch ssh --direct --ssh-ca-key ~/.latch/ca web-1 --reason "lab"
  latch ssh web-1 --via ssm --reason "no port 22 at all" -- uptime`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); (dash == -1 && len(args) > 1) || dash > 1 {
				return usagef("one TARGET, then ssh's arguments after --: latch ssh TARGET -- %s", strings.Join(args[1:], " "))
			}
			return a.ssh(cmd.Context(), args[0], args[1:], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dur, "for", "", "how long, e.g. 30m (default: the policy's; 30m with --direct)")
	f.StringVar(&o.reason, "reason", "", "why you need access")
	f.StringVarP(&o.login, "login", "l", "", "the OS user (default: USER@ in TARGET, your ssh config's User, else the policy's first principal)")
	f.StringVar(&o.port, "port", "", "sshd's port, the one opened: one port, 1-65535 (default: your ssh config's Port, else 22)")
	f.BoolVar(&o.private, "private", false, "connect to the instance's private address even if it has a public one")
	f.BoolVar(&o.breakGlass, "break-glass", false, "skip approval in an emergency, where the policy allows it (flagged everywhere)")
	f.BoolVar(&o.direct, "direct", false, "no server: open access with your own AWS credentials")
	f.StringVar(&o.method, "method", "", "with --direct: certificate (needs --ssh-ca-key) or instance-connect (default: certificate if a CA key is given)")
	f.StringVar(&o.ip, "ip", "auto", "with --direct: the address to open for, or auto to detect your public address")
	f.StringVar(&o.sshPath, "ssh", "ssh", "the OpenSSH client to run")
	f.StringVar(&o.knownHosts, "known-hosts", "", "latch's known_hosts file (default $XDG_CONFIG_HOME/latch/known_hosts)")
	f.StringVar(&o.via, "via", "network", "how ssh reaches the instance: network (a rule opened for your address) or ssm (Session Manager: no port opened)")
	f.StringVar(&o.plugin, "plugin", "", "with --via ssm: the session-manager-plugin to run (default: the one on your PATH)")
	o.ca.flags(cmd)
	a.addFlags(cmd, append([]flagGroup{serverFlags, dbFlags}, brokerFlags...)...)
	return cmd
}

func (a *app) ssh(ctx context.Context, target string, userArgs []string, o sshOptions) error {
	// The session holds access open: closing the terminal must end it and
	// revoke, not kill latch with the rule open.
	ctx, stop := whileHolding(ctx)
	defer stop()
	t, cfg, err := a.sshPlan(ctx, target, userArgs, &o)
	if err != nil {
		return err
	}
	k, err := sshclient.NewKey()
	if err != nil {
		return err
	}
	defer k.Remove()
	var s sshAccess
	switch {
	case o.via == "ssm":
		s, err = a.sshViaSSM(ctx, &t, k, o)
	case o.direct:
		s, err = a.sshDirect(ctx, &t, k, o)
	default:
		s, err = a.sshViaServer(ctx, &t, k, o)
	}
	if s.end != nil {
		defer a.endHeld(ctx, s.grant, s.end)
	}
	if err == nil {
		err = a.pinSessionHostKeys(&t, o.knownHosts)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "latch: %s open as %s until %s (grant %s, %s).\n", target, t.login, latch.FormatExpiry(s.until), s.grant, s.method)
	argv := sshclient.Command{SSH: o.sshPath, Dest: t.dest, Login: t.login, Port: t.port, Key: k, Certificate: s.method == latch.SSHCertificate,
		KnownHosts: o.knownHosts, Config: cfg, Address: t.address, Instance: t.instance, Strict: t.pinned, Args: userArgs,
		ProxyCommand: s.proxyCommand}.Argv()
	code, err := sshclient.Session{Argv: argv, Until: s.until, Clock: a.clock,
		Stdin: a.stdin, Stdout: a.stdout, Stderr: a.stderr, Log: a.log}.Run(ctx)
	if err != nil || code == 0 {
		return err
	}
	return exitStatus(code)
}

// sshPlan checks the flags and reads the user's ssh config for target.
func (a *app) sshPlan(ctx context.Context, target string, userArgs []string, o *sshOptions) (sshTarget, sshclient.Config, error) {
	t := sshTarget{dest: target, login: o.login}
	if user, host, ok := strings.Cut(target, "@"); ok {
		if o.login != "" && o.login != user {
			return t, nil, latch.Invalidf("login", "%q in %s and --login %q disagree", user, target, o.login)
		}
		t.dest, t.login = host, user
	}
	if t.login != "" {
		if err := latch.CheckLogin("login", t.login); err != nil {
			return t, nil, err
		}
	}
	if t.dest == "" {
		return t, nil, latch.Invalidf("target", "%q names no instance; want an instance ID or Name tag", target)
	}
	if o.port != "" {
		var err error
		if t.port, err = sshPort(o.port); err != nil {
			return t, nil, err
		}
	}
	if o.dur != "" {
		if _, err := positiveDuration("for", o.dur); err != nil {
			return t, nil, err
		}
	}
	if !o.direct && (o.method != "" || o.ip != "auto" || len(o.ca.keys) > 0) {
		return t, nil, latch.Invalidf("direct", "--method, --ip and --ssh-ca-key apply with --direct only; the server decides them otherwise")
	}
	switch {
	case o.via != "network" && o.via != "ssm":
		return t, nil, latch.Invalidf("via", "--via %q: want network (a rule opened for your address) or ssm (Session Manager)", o.via)
	case o.via == "ssm" && o.direct:
		return t, nil, latch.Invalidf("via", "--via ssm needs a server: only the server may start Session Manager sessions; drop --direct")
	case o.via != "ssm" && o.plugin != "":
		return t, nil, latch.Invalidf("plugin", "--plugin applies with --via ssm only")
	case o.via == "ssm" && o.private:
		return t, nil, latch.Invalidf("private", "--private chooses an address; --via ssm uses none")
	}
	cfg, err := sshclient.ReadConfig(ctx, o.sshPath, t.dest, userArgs)
	if err != nil {
		return t, nil, err
	}
	if t.login == "" {
		t.login = configuredLogin(cfg["user"])
	}
	if t.port == 0 {
		if t.port, err = strconv.Atoi(cfg["port"]); err != nil || t.port <= 0 {
			t.port = 22
		}
	}
	if o.knownHosts == "" {
		if o.knownHosts, err = a.latchKnownHosts(); err != nil {
			return t, nil, err
		}
	}
	t.keepHostName = !strings.EqualFold(cfg["hostname"], t.dest)
	return t, cfg, nil
}

// sshPort parses ssh's --port as grant's is parsed, but ssh connects to
// one port: a range is refused.
func sshPort(v string) (int, error) {
	r, err := latch.ParsePorts(latch.TCP, v)
	if err != nil {
		return 0, latch.Invalidf("port", "--port %q is not a port; want one number, 1-65535 (default: your ssh config's Port, else 22)", v)
	}
	if r.From != r.To {
		return 0, latch.Invalidf("port", "--port %q is a range; ssh connects to one port: want one number, 1-65535", v)
	}
	return r.From, nil
}

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

// exitStatus is ssh's exit status, which latch ssh exits with.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("ssh exited with status %d", int(e)) }

// pinSessionHostKeys pins the instance's host keys in latch's known_hosts
// under its instance ID, the HostKeyAlias latch gives ssh, when latch
// chose the address. Without keys from EC2 ssh falls back to trusting the
// first key it sees, and the user is told so the first time.
func (a *app) pinSessionHostKeys(t *sshTarget, knownHosts string) error {
	if t.address == "" || t.instance == "" {
		return nil
	}
	ok, err := sshclient.PinHostKeys(knownHosts, string(t.instance), t.hostKeys)
	if err != nil {
		return fmt.Errorf("pin the host keys of %s: %w", t.instance, err)
	}
	t.pinned = ok
	if !ok && !sshclient.KnownHostsHas(knownHosts, string(t.instance)) {
		fmt.Fprintf(a.stderr, "latch: no host keys for %s could be read from its EC2 console output; ssh will trust the key it is first shown.\n", t.instance)
	}
	return nil
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

// sshAccess is open access and the credential for it.
type sshAccess struct {
	grant  latch.GrantID
	method latch.SSHMethod
	until  time.Time                       // when the grant ends
	end    func(ctx context.Context) error // revokes the grant; nil until there is one
	// proxyCommand, with --via ssm: ssh's ProxyCommand, which runs the
	// plugin with the session.
	proxyCommand string
}

// sshViaSSM asks the server for Session Manager access to sshd, a
// credential for k, and a session, which ssh reaches through the plugin.
func (a *app) sshViaSSM(ctx context.Context, t *sshTarget, k *sshclient.Key, o sshOptions) (sshAccess, error) {
	var s sshAccess
	plugin, err := ssmclient.FindPlugin(o.plugin)
	if err != nil {
		return s, err
	}
	c, held, err := a.askSession(ctx, latchhttp.RequestBody{Target: t.dest, Document: string(latch.DocSSH), Port: strconv.Itoa(t.port),
		Duration: o.dur, Reason: o.reason, BreakGlass: o.breakGlass})
	s.grant, s.end, s.until = held.grant, held.end, held.until
	if err != nil {
		return s, err
	}
	l, err := c.SSHLogin(ctx, held.grant, latchhttp.SSHBody{PublicKey: string(k.Public), Login: t.login})
	if err != nil {
		return s, err
	}
	if l.Certificate != "" {
		if err := k.WriteCert([]byte(l.Certificate)); err != nil {
			return s, err
		}
	}
	s.method, t.login, t.hostKeys = l.Method, l.Login, l.HostKeys
	if err := held.start(ctx, c, 0); err != nil {
		return s, err
	}
	// ssh connects to no address: HostName is the instance, whose host
	// keys are pinned under its ID as with any latch login.
	t.instance = held.session.Target
	t.address = string(held.session.Target)
	s.proxyCommand, err = held.session.ProxyCommand(plugin, filepath.Dir(k.Path))
	fmt.Fprintf(a.stderr, "latch: Session Manager session %s for ssh to %s.\n", held.session.SessionID, t.instance)
	return s, err
}

// sshViaServer asks the server for access and a credential for k.
func (a *app) sshViaServer(ctx context.Context, t *sshTarget, k *sshclient.Key, o sshOptions) (sshAccess, error) {
	var s sshAccess
	c, err := a.client(ctx)
	if err != nil {
		return s, err
	}
	r, err := c.CreateRequest(ctx, latchhttp.RequestBody{Target: t.dest, Protocol: "tcp", Port: strconv.Itoa(t.port),
		Duration: o.dur, Reason: o.reason, BreakGlass: o.breakGlass})
	if err != nil {
		return s, err
	}
	if r.State == latch.RequestPending {
		if r, err = a.waitForDecision(ctx, c, r, true); err != nil {
			return s, err
		}
	}
	if r.State != latch.RequestActive {
		return s, fmt.Errorf("request %s was %s %s", r.ID, r.State, r.Note)
	}
	s.grant = r.GrantID
	s.end = func(ctx context.Context) error { _, err := c.Revoke(ctx, r.GrantID); return err }
	l, err := c.SSHLogin(ctx, r.GrantID, latchhttp.SSHBody{PublicKey: string(k.Public), Login: t.login})
	if err != nil {
		return s, err
	}
	if l.Certificate != "" {
		if err := k.WriteCert([]byte(l.Certificate)); err != nil {
			return s, err
		}
	}
	s.method, s.until, t.login, t.hostKeys = l.Method, l.AccessUntil, l.Login, l.HostKeys
	if s.until.IsZero() { // a server older than access_until
		g, err := c.Grant(ctx, r.GrantID)
		if err != nil {
			return s, err
		}
		s.until = g.ExpiresAt
	}
	return s, loginInstance(t, l.Instance, o.private)
}

// loginInstance takes the instance and address to connect to from the
// server's answer, checked: they go into ssh's options and known_hosts.
func loginInstance(t *sshTarget, in *latchhttp.InstanceJSON, private bool) error {
	if in == nil {
		return nil
	}
	id, err := latch.ParseInstanceID(string(in.ID))
	if err != nil {
		return fmt.Errorf("the server named instance %q: %w", in.ID, err)
	}
	for _, a := range []string{in.PublicIP, in.PrivateIP} {
		if _, err := netip.ParseAddr(a); a != "" && err != nil {
			return fmt.Errorf("the server gave %s the address %q, which is not an IP address", id, a)
		}
	}
	t.instance = id
	t.address = pickAddress(t.keepHostName, in.PublicIP, in.PrivateIP, private)
	return nil
}

// pickAddress chooses where to connect: nowhere new if the user's config
// names a HostName, else the public address unless private is asked.
func pickAddress(keepHostName bool, public, private string, wantPrivate bool) string {
	switch {
	case keepHostName:
		return ""
	case public != "" && !wantPrivate:
		return public
	}
	return private
}

// configuredLogin is the user ssh says it will log in as, or "" when that
// is only its default, the local user: then the policy chooses.
func configuredLogin(sshUser string) string {
	if u, err := user.Current(); err == nil && sshUser == u.Username {
		return ""
	}
	return sshUser
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// sshDirect opens access with the caller's own AWS credentials and makes
// the credential locally: a certificate from --ssh-ca-key, or a key
// pushed with Instance Connect.
func (a *app) sshDirect(ctx context.Context, t *sshTarget, k *sshclient.Key, o sshOptions) (sshAccess, error) {
	var s sshAccess
	method, ca, err := a.directMethod(o)
	if err != nil {
		return s, err
	}
	cfg, err := a.awsConfig(ctx, a.regions[0])
	if err != nil {
		return s, err
	}
	req, b, in, err := a.directGrant(ctx, cfg, t, o)
	if err != nil {
		return s, err
	}
	g, err := b.GrantOnInstance(ctx, req, in.ID, nil)
	if err != nil {
		return s, err
	}
	s.grant, s.method, s.until = g.ID, method, g.ExpiresAt
	s.end = func(ctx context.Context) error { _, err := b.Revoke(ctx, g.ID, g.Requester); return err }
	if t.login == "" {
		t.login = "ec2-user"
	}
	if t.hostKeys, err = latchaws.NewConsoleHostKeys(cfg).HostKeys(ctx, in.ID); err != nil {
		a.log.WarnContext(ctx, "cannot read host keys from the console output", "instance_id", in.ID, "err", err)
	}
	if method == latch.SSHCertificate {
		req, err := latch.GrantCertRequest(g, in.ID, []string{t.login})
		if err != nil {
			return s, err
		}
		cert, _, err := ca.Certify(ctx, k.Public, req)
		if err == nil {
			err = k.WriteCert(cert)
		}
		return s, err
	}
	return s, latchaws.NewInstanceConnect(cfg).PushSSHKey(ctx, in.ID, t.login, k.Public)
}

// directGrant resolves the target with cfg, for the first region, and
// builds the grant request.
func (a *app) directGrant(ctx context.Context, cfg aws.Config, t *sshTarget, o sshOptions) (latch.GrantRequest, *broker.Broker, latch.Instance, error) {
	req := latch.GrantRequest{Region: a.regions[0], Protocol: latch.TCP, Ports: latch.PortRange{From: t.port, To: t.port},
		Duration: 30 * time.Minute, Requester: directRequesterPending, Reason: o.reason}
	if req.Reason == "" {
		req.Reason = "latch ssh " + t.dest
	}
	var err error
	if o.dur != "" {
		if req.Duration, err = positiveDuration("for", o.dur); err != nil {
			return req, nil, latch.Instance{}, err
		}
	}
	ip := o.ip
	if ip == "auto" {
		if ip, err = a.publicIP(ctx); err != nil {
			return req, nil, latch.Instance{}, err
		}
	}
	if req.Source, err = latch.ParseSource(ip); err != nil {
		return req, nil, latch.Instance{}, err
	}
	in, err := broker.FindInstance(ctx, latchaws.NewInventory(cfg, a.log.With("component", "aws")), t.dest)
	if err != nil {
		return req, nil, in, err
	}
	g, err := in.ManagedGroup()
	if err != nil {
		return req, nil, in, err
	}
	req.GroupID, t.instance = g.ID, in.ID
	if err := req.Validate(latch.DefaultMaxDuration); err != nil {
		return req, nil, in, err
	}
	if req.Requester, err = a.directRequester(ctx, cfg); err != nil {
		return req, nil, in, err
	}
	t.address = pickAddress(t.keepHostName, addrString(in.PublicIP), addrString(in.PrivateIP), o.private)
	store, err := a.store(ctx)
	if err != nil {
		return req, nil, in, err
	}
	b, err := a.broker(ctx, store, a.regions[:1], latch.DefaultMaxDuration)
	return req, b, in, err
}

// directMethod picks the credential for --direct.
func (a *app) directMethod(o sshOptions) (latch.SSHMethod, latch.SSHCertifier, error) {
	ca, err := o.ca.load()
	if err != nil {
		return "", nil, err
	}
	method := latch.SSHInstanceConnect
	if ca != nil {
		method = latch.SSHCertificate
	}
	if o.method != "" {
		if method, err = latch.ParseSSHMethod(o.method); err != nil {
			return "", nil, err
		}
	}
	if method == latch.SSHCertificate && ca == nil {
		return "", nil, latch.Invalidf("ssh-ca-key", "--method certificate needs the CA key: --ssh-ca-key FILE")
	}
	if ca == nil {
		return method, nil, nil
	}
	return method, ca, nil
}
