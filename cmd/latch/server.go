package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/awsauth"
	"github.com/latchdev/latch/broker"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/leader"
	"github.com/latchdev/latch/policy"
	"github.com/latchdev/latch/revoker"
	"github.com/latchdev/latch/webhook"
)

type serverOptions struct {
	listen, tlsCert, tlsKey, policyFile string
	url                                 string // the URL clients use; "" derives it from the listener
	insecureHTTP                        bool
	adminGroups, adminUsers, oldAdmins  []string
	trustedProxies                      []string
	sweepInterval, metricsListen        string
	leaderLease                         string
	rateLimit                           float64
	auth                                authOptions
	sshCA                               sshCAOptions
	limits                              limitOptions
	notify                              notifyOptions
	portal                              portalOptions
	slack                               slackOptions
}

func (a *app) serverCommand() *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server --policy FILE",
		Short: "Run the broker: the /v1 API, policy, approvals and the revoker",
		Long: `Serve latch's JSON API. Requesters hold no AWS permissions: they ask this
server, which decides by --policy, collects approvals, and opens and revokes
rules with its own AWS credentials. The revoker runs inside it.

Callers authenticate with an OIDC ID token (--oidc-issuer, --oidc-audience;
get one with 'latch login') or with AWS IAM (--aws-auth: a presigned
sts:GetCallerIdentity, checked against STS, from the --aws-account accounts
only). An AWS proof names the server it is for, by default its URL (--url,
which clients give as --server), and is accepted once.

Serve TLS with --tls-cert and --tls-key. Plain HTTP is allowed on loopback;
anywhere else it needs --insecure-http (behind a TLS-terminating proxy,
with --trusted-proxy) and is logged as a warning.

SIGHUP reloads the policy file; a bad file keeps the old policy and logs why,
as does one the server could not start with (a webhook name not given to
--webhook, a Slack channel without a Slack bot token).

Limits keep a flood cheap. Before a caller is authenticated, its address
spends from a budget of --addr-rate-limit requests a second (an IPv6 /64
counts as one address; health and readiness probes spend it too): over
it, the answer is 429 with Retry-After, and STS and the OIDC issuer are
not asked. At most --max-verifications callers are verified at once; more
get 503 with Retry-After at once. Then each identity has --rate-limit
requests a second. Behind a proxy, set --trusted-proxy, or every caller
shares the proxy's address budget.

A connection must send its request within --read-timeout, gets its answer
within --write-timeout, and is closed after --idle-timeout without a
request. At most --max-conns are open at once; more wait until one closes.
One address may hold at most --max-conns-per-addr of them; more from it
are closed at once (a --trusted-proxy is exempt: it carries many clients).`,
		Example: `  latch server --policy policy.yaml --oidc-issuer https://idp.example.com --oidc-audience latch \
    --tls-cert cert.pem --tls-key key.pem --listen :8443 --admin-group latch-admins
  latch server --policy policy.yaml --aws-auth --admin-user arn:aws:iam::123456789012:user/ops`,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.serve(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8443", "address to serve on")
	f.StringVar(&o.url, "url", "", "the URL clients reach this server by (their --server), and so its AWS server ID (default: from --listen, e.g. https://127.0.0.1:8443)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (PEM)")
	f.StringVar(&o.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	f.BoolVar(&o.insecureHTTP, "insecure-http", false, "allow plain HTTP on a non-loopback address")
	f.StringVar(&o.policyFile, "policy", "", "policy file (YAML); required")
	f.StringSliceVar(&o.adminGroups, "admin-group", nil, "groups whose members administer latch (see and end every grant and request)")
	f.StringSliceVar(&o.adminUsers, "admin-user", nil, "users who administer latch: a subject or verified email (OIDC), an ARN, an Identity Center user, or a person in the policy's people section")
	f.StringSliceVar(&o.oldAdmins, "admin", nil, "replaced by --admin-group and --admin-user")
	_ = f.MarkHidden("admin")
	f.StringSliceVar(&o.trustedProxies, "trusted-proxy", nil, "CIDRs of proxies whose X-Forwarded-For is believed")
	f.StringVar(&o.sweepInterval, "sweep-interval", revoker.DefaultSweepInterval.String(), "how often to sweep AWS for expired rules")
	f.StringVar(&o.leaderLease, "leader-lease", leader.DefaultTTL.String(), "with a shared (PostgreSQL) database, how long the replica that runs the revoker leads without renewing; another takes over within it")
	f.StringVar(&o.metricsListen, "metrics-listen", "", "serve Prometheus metrics at http://ADDR/metrics, apart from the API (e.g. 127.0.0.1:9464)")
	f.Float64Var(&o.rateLimit, "rate-limit", float64(latchhttp.DefaultRateLimit), "API requests per second per identity")
	o.auth.flags(cmd)
	o.sshCA.flags(cmd)
	o.limits.flags(cmd)
	o.notify.flags(cmd)
	o.portal.flags(cmd)
	o.slack.flags(cmd)
	a.addFlags(cmd, append([]flagGroup{dbFlags}, brokerFlags...)...)
	return cmd
}

// policyHolder is the policy in force, swapped whole on SIGHUP, and the
// status of its loads, which admins see in the portal.
type policyHolder struct {
	p      atomic.Pointer[policy.Policy]
	mu     sync.Mutex
	status broker.PolicyStatus // guarded by mu
}

func (h *policyHolder) Policy() *policy.Policy { return h.p.Load() }

// load reads and parses path and, if it is good and passes check (nil
// checks nothing more), puts it in force; a bad file keeps the policy in
// force and is recorded as the last error.
func (h *policyHolder) load(path string, now time.Time, check func(*policy.Policy) error) (*policy.Policy, error) {
	data, err := os.ReadFile(path)
	var p *policy.Policy
	if err != nil {
		err = fmt.Errorf("load policy: %w", err)
	} else {
		p, err = policy.Parse(path, data)
	}
	if err == nil && check != nil {
		err = check(p)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.status.LastError, h.status.LastErrorAt = err.Error(), now.UTC()
		return nil, err
	}
	sum := sha256.Sum256(data)
	h.p.Store(p)
	h.status = broker.PolicyStatus{Path: path, LoadedAt: now.UTC(), SHA256: hex.EncodeToString(sum[:]), Rules: len(p.Rules())}
	return p, nil
}

// PolicyStatus implements broker.PolicyReporter.
func (h *policyHolder) PolicyStatus() broker.PolicyStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.status
}

func (a *app) serve(ctx context.Context, o serverOptions) error {
	if o.policyFile == "" {
		return latch.Invalidf("policy", "a policy file is required: --policy FILE (see 'latch policy check')")
	}
	if len(o.oldAdmins) > 0 {
		// It named groups and users alike, so a user named like the admin
		// group became an admin: say which each is.
		return latch.Invalidf("admin", "--admin %s is ambiguous and no longer accepted: name groups with --admin-group and users with --admin-user",
			strings.Join(o.oldAdmins, ","))
	}
	holder := &policyHolder{}
	p, err := holder.load(o.policyFile, a.clock.Now(), nil) // checked below, with the configuration it is checked against
	if err != nil {
		return latch.Invalidf("policy", "%v", err)
	}
	sweep, err := positiveDuration("sweep-interval", o.sweepInterval)
	if err != nil {
		return err
	}
	lease, err := positiveDuration("leader-lease", o.leaderLease)
	if err != nil {
		return err
	}
	if lease < time.Second {
		return usagef("--leader-lease %s: want at least 1s (it is renewed every third of it)", o.leaderLease)
	}
	proxies, err := parsePrefixes("trusted-proxy", o.trustedProxies)
	if err != nil {
		return err
	}
	if err := o.checkURL(); err != nil {
		return err
	}
	apiOpts := latchhttp.Options{TrustedProxies: proxies, RateLimit: rate.Limit(o.rateLimit)}
	if err := o.limits.apply(&apiOpts); err != nil {
		return err
	}
	hooks, err := a.checkNotify(o.notify, p)
	if err != nil {
		return err
	}
	slackApp, err := a.checkSlack(o.slack, p)
	if err != nil {
		return err
	}
	ln, tlsCfg, err := a.listen(o)
	if err != nil {
		return err
	}
	defer ln.Close()

	store, err := a.store(ctx)
	if err != nil {
		return err
	}
	serverID := o.serverID(ln, tlsCfg != nil)
	auth, err := o.auth.authenticator(ctx, serverID, store)
	if err != nil {
		return err
	}
	if o.auth.awsAuth {
		a.log.Info("accepting AWS identities", "server_id", serverID, "accounts", o.auth.awsAccounts)
	}
	if o.metricsListen != "" {
		if _, err := a.startMetrics(ctx, o.metricsListen, store); err != nil {
			return err
		}
	}
	b, err := a.broker(ctx, store, a.regions, policy.DurationCap)
	if err != nil {
		return err
	}
	inv, err := a.inventories(ctx)
	if err != nil {
		return err
	}
	opts := broker.AccessOptions{
		Clock: a.clock, Logger: a.log.With("component", "access"), DefaultRegion: a.regions[0],
		AdminGroups: o.adminGroups, AdminUsers: o.adminUsers, OIDCIssuer: o.auth.oidcIssuer,
		Policies: holder, AuditPublicKey: a.auditPublicKey(),
	}
	if err := a.sshOptions(ctx, o.sshCA, &opts); err != nil {
		return err
	}
	access := broker.NewAccess(b, store, holder, inv, opts)
	g, gctx := errgroup.WithContext(ctx)
	var slackWait func()
	apiOpts.Mount, slackWait = slackApp.mount(gctx, a, o.slack, access, holder, store)
	apiOpts.Logger = a.log.With("component", "http")
	apiOpts.Ready = func(ctx context.Context) error { _, err := store.Grants(ctx, latch.GrantFilter{Limit: 1}); return err }
	if apiOpts.Portal, err = o.portal.handler(ctx, o, access, ln, tlsCfg != nil, a.portalProof(), a.clock, a.log.With("component", "portal")); err != nil {
		return err
	}
	api := latchhttp.NewServer(access, auth, apiOpts)
	ropts := revoker.Options{Clock: a.clock, Logger: a.log.With("component", "revoker"), SweepInterval: sweep}
	ctx = gctx
	g.Go(func() error { return a.runRevoker(ctx, store, b, sweeper{b, access}, ropts, lease) })
	g.Go(func() error { return a.notifier(hooks, slackApp.sinks(a, store, holder), store, holder).Run(ctx) })
	// Listen for SIGHUP before saying the server started: until then, a
	// reload's SIGHUP would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	g.Go(func() error {
		a.reloadOnHUP(ctx, hup, o.policyFile, holder, access, configured(hooks, slackApp))
		return nil
	})
	g.Go(func() error { return api.Serve(ctx, ln, tlsCfg) }) // until ctx ends, then a graceful shutdown
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	a.log.Info("server started", "url", scheme+"://"+ln.Addr().String(), "policy", o.policyFile, "rules", len(p.Rules()), "regions", a.regions)
	fmt.Fprintf(a.stdout, "%s://%s\n", scheme, ln.Addr())
	err = g.Wait()
	slackWait() // the server's context has ended, so reviews after a click end too
	return err
}

// checkURL refuses a bad --url, and bad authentication flags, before the
// server binds. Without --url or --aws-server-id, the server's ID in AWS
// proofs is the URL of the address it listens on, so that address must be
// one clients can use.
func (o serverOptions) checkURL() error {
	if err := o.auth.check(); err != nil {
		return err
	}
	if o.url != "" {
		if _, err := awsauth.ServerID(o.url); err != nil || !strings.Contains(o.url, "://") {
			return latch.Invalidf("url", "%q is not the server's URL: want http(s)://HOST[:PORT][/PATH], as clients give it to --server", o.url)
		}
		return nil
	}
	if !o.auth.awsAuth || o.auth.awsServerID != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return latch.Invalidf("listen", "%q is not HOST:PORT", o.listen)
	}
	if a, err := netip.ParseAddr(host); host == "" || (err == nil && a.IsUnspecified()) {
		return latch.Invalidf("url", "--listen %s is every interface, so latch cannot tell the URL clients use, which AWS proofs name: give --url, e.g. https://latch.example.com:8443", o.listen)
	}
	return nil
}

// serverID is the ID AWS proofs must name: --aws-server-id, else --url,
// else the URL of the address ln listens on, normalised as clients
// normalise their --server. checkURL has vetted the flags.
func (o serverOptions) serverID(ln net.Listener, tls bool) string {
	id := cmp.Or(o.auth.awsServerID, o.url)
	if id == "" {
		scheme := "http"
		if tls {
			scheme = "https"
		}
		id = scheme + "://" + ln.Addr().String()
	}
	if n, err := awsauth.ServerID(id); err == nil {
		id = n
	}
	return id
}

// sweeper is the server's periodic pass: expired rules, then requests
// that waited too long for approval.
type sweeper struct {
	b      *broker.Broker
	access *broker.Access
}

func (s sweeper) Sweep(ctx context.Context) error {
	return errors.Join(s.b.Sweep(ctx), s.access.TimeOutPending(ctx))
}

// listen opens the listener, refusing plain HTTP off loopback unless told.
func (a *app) listen(o serverOptions) (net.Listener, *tls.Config, error) {
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, nil, latch.Invalidf("tls-cert", "--tls-cert and --tls-key go together")
	}
	var tlsCfg *tls.Config
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return nil, nil, latch.Invalidf("tls-cert", "load %s and %s: %v", o.tlsCert, o.tlsKey, err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return nil, nil, latch.Invalidf("listen", "%q is not HOST:PORT", o.listen)
	}
	if tlsCfg == nil && !isLoopback(host) { // decided before binding, so a refused server never listens
		if !o.insecureHTTP {
			return nil, nil, latch.Invalidf("listen", "%s is not a loopback address: serve TLS (--tls-cert, --tls-key), or pass --insecure-http behind a TLS proxy", o.listen)
		}
		a.log.Warn("serving plain HTTP on a non-loopback address; tokens cross the network in clear unless a proxy terminates TLS", "listen", o.listen)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	return ln, tlsCfg, nil
}

// isLoopback: "localhost" and loopback addresses; an empty host is every
// interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func parsePrefixes(flag string, vs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range vs {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, latch.Invalidf(flag, "%q is not a CIDR, e.g. 10.0.0.0/8", v)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// configured checks a policy against what the server was started with,
// as the start does: its webhook names are configured, and Slack routes
// have a bot token. A reload must pass it too: the notification worker
// would otherwise drop those events.
func configured(hooks map[string]webhook.Hook, s slackSetup) func(*policy.Policy) error {
	return func(p *policy.Policy) error {
		if err := p.CheckWebhooks(func(name string) bool { _, ok := hooks[name]; return ok }); err != nil {
			return err
		}
		if s.client == nil {
			return needSlackToken(p)
		}
		return nil
	}
}

// reloadOnHUP swaps the policy on each signal from hup (SIGHUP); a bad
// file, or one that fails check, keeps the old one.
func (a *app) reloadOnHUP(ctx context.Context, hup <-chan os.Signal, path string, h *policyHolder, access *broker.Access, check func(*policy.Policy) error) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			p, err := h.load(path, a.clock.Now(), check)
			if err != nil {
				a.log.Error("policy reload failed; keeping the old policy", "policy", path, "err", err)
				continue
			}
			access.RecordPolicyReload(ctx, path, len(p.Rules()))
			a.log.Info("policy reloaded", "policy", path, "rules", len(p.Rules()))
		}
	}
}

// sshOptions gives the access service its SSH CA, if configured, and
// Instance Connect and host keys from console output in every region.
func (a *app) sshOptions(ctx context.Context, o sshCAOptions, opts *broker.AccessOptions) error {
	ca, err := o.load()
	if err != nil {
		return err
	}
	if ca != nil {
		opts.SSHCA = ca
	}
	opts.KeyPushers = map[string]latch.SSHKeyPusher{}
	opts.HostKeys = map[string]latch.HostKeySource{}
	for _, region := range a.regions {
		cfg, err := a.awsConfig(ctx, region)
		if err != nil {
			return err
		}
		opts.KeyPushers[region] = latchaws.NewInstanceConnect(cfg)
		opts.HostKeys[region] = latchaws.NewConsoleHostKeys(cfg)
	}
	return nil
}

// inventories connects an inventory to each region.
func (a *app) inventories(ctx context.Context) (map[string]latch.Inventory, error) {
	out := map[string]latch.Inventory{}
	for _, region := range a.regions {
		cfg, err := a.awsConfig(ctx, region)
		if err != nil {
			return nil, err
		}
		out[region] = latchaws.NewInventory(cfg, a.log.With("component", "aws"))
	}
	return out, nil
}

// limitOptions bound what callers can make the server do; see the
// server's help and latchhttp.Options.
type limitOptions struct {
	addrRateLimit                          float64
	maxVerifications, maxConns, maxPerAddr int
	readTimeout, writeTimeout, idleTimeout string
}

func (o *limitOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.Float64Var(&o.addrRateLimit, "addr-rate-limit", float64(latchhttp.DefaultAddrRateLimit),
		fmt.Sprintf("API requests per second per source address, counted before authentication (burst: 5 s' worth, at least %d); raise it for many people behind one NAT", latchhttp.DefaultAddrBurst))
	f.IntVar(&o.maxVerifications, "max-verifications", latchhttp.DefaultMaxVerifications, "callers verified at once (STS calls, ID tokens); more get 503 and Retry-After")
	f.IntVar(&o.maxConns, "max-conns", latchhttp.DefaultMaxConns, "connections open at once; more wait until one closes")
	f.IntVar(&o.maxPerAddr, "max-conns-per-addr", latchhttp.DefaultMaxConnsPerAddr, "connections one source address may hold open at once (--trusted-proxy exempt); more are closed at once; raise it for a big team behind one NAT")
	f.StringVar(&o.readTimeout, "read-timeout", latchhttp.DefaultReadTimeout.String(), "the longest a client may take to send a request, headers and body")
	f.StringVar(&o.writeTimeout, "write-timeout", latchhttp.DefaultWriteTimeout.String(), "the longest from a request's headers to the end of its answer, AWS calls included")
	f.StringVar(&o.idleTimeout, "idle-timeout", latchhttp.DefaultIdleTimeout.String(), "how long a kept-alive connection may wait for its next request; keep it above a load balancer's idle timeout")
}

// apply checks the limits and sets them in opts.
func (o *limitOptions) apply(opts *latchhttp.Options) error {
	if !(o.addrRateLimit > 0) {
		return usagef("--addr-rate-limit %v: want a positive number of requests per second", o.addrRateLimit)
	}
	if o.maxVerifications <= 0 {
		return usagef("--max-verifications %d: want a positive number", o.maxVerifications)
	}
	if o.maxConns <= 0 {
		return usagef("--max-conns %d: want a positive number", o.maxConns)
	}
	if o.maxPerAddr <= 0 {
		return usagef("--max-conns-per-addr %d: want a positive number", o.maxPerAddr)
	}
	var err error
	if opts.ReadTimeout, err = positiveDuration("read-timeout", o.readTimeout); err != nil {
		return err
	}
	if opts.WriteTimeout, err = positiveDuration("write-timeout", o.writeTimeout); err != nil {
		return err
	}
	if opts.IdleTimeout, err = positiveDuration("idle-timeout", o.idleTimeout); err != nil {
		return err
	}
	opts.AddrRateLimit = rate.Limit(o.addrRateLimit)
	opts.AddrBurst = max(latchhttp.DefaultAddrBurst, int(math.Ceil(5*o.addrRateLimit)))
	opts.MaxVerifications, opts.MaxConns, opts.MaxConnsPerAddr = o.maxVerifications, o.maxConns, o.maxPerAddr
	return nil
}
