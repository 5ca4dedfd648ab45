package main

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/leader"
	"github.com/latchdev/latch/metrics"
	"github.com/latchdev/latch/postgres"
	"github.com/latchdev/latch/sqlite"
)

// app holds one invocation's world and the resources it opened. This file
// is the only one that reads the environment.
type app struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	regions    []string
	profile    string
	endpoint   string
	dbPath     string
	logFormat  string
	logLevel   string
	server     string // the latch server's URL, for client commands
	authMethod string // how client commands authenticate: oidc or aws
	serverID   string // the server's ID in AWS proofs; "" means the server URL
	serverCA   string // a CA file to trust for the server's certificate
	auditKey   string // ed25519 private key file that signs audit entries
	ssmRole    string // the Session Manager session role; "" leaves Session Manager off
	backstop   latchaws.BackstopOptions
	// mutatingRate is --aws-mutating-rate; mutating its limiter, made on
	// first use (portal requests may race to it) and shared by every
	// region's clients.
	mutatingRate latchaws.Limit
	mutating     *latchaws.Limiter
	mutatingOnce sync.Once

	clock latch.Clock
	// stsAtClock signs sts:GetCallerIdentity at clock's time, for the
	// CloudTrail tests, whose simulator checks signatures on the fake clock.
	stsAtClock bool
	log        *slog.Logger
	metrics    *metrics.Metrics // nil unless a command serves /metrics
	// fromEnv names the flags applyEnv set from their LATCH_ variables, so
	// a flag typed on the command line can be told from one that was not.
	fromEnv map[string]bool
	closers []func() error
}

// logFlags are the only global flags: every command logs.
func (a *app) logFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&a.logFormat, "log-format", "auto", "log format: json, text, or auto (text on a terminal, else json)")
	f.StringVar(&a.logLevel, "log-level", "", "log level: debug, info, warn or error (default warn for a command run at a terminal, info otherwise)")
}

// A flagGroup is a set of flags several commands share, kept in app.
// Each command registers the groups it uses, and no others, so that its
// help lists only flags that mean something to it. A command that reads
// one of these fields (a.server, a.dbPath, …) must register its flag, or
// the flag's LATCH_ variable is silently ignored: TestCommandFlagGroups
// holds the table.
type flagGroup struct {
	title string // the heading over the group in help
	names []string
}

var (
	awsFlags      = flagGroup{"AWS", []string{"region", "profile", "endpoint", "aws-mutating-rate"}}
	dbFlags       = flagGroup{"Database", []string{"db"}}
	serverFlags   = flagGroup{"Server", []string{"server", "auth", "server-id", "server-ca"}}
	backstopFlags = flagGroup{"Backstop", []string{"backstop-role-arn", "backstop-group", "backstop-dlq-arn"}}
	auditKeyFlags = flagGroup{"Audit signing", []string{"audit-key"}}
	ssmFlags      = flagGroup{"Session Manager", []string{"ssm-session-role"}}
)

// brokerFlags are what a.broker reads: the AWS connection, the backstop,
// the audit signing key and Session Manager.
var brokerFlags = []flagGroup{awsFlags, backstopFlags, auditKeyFlags, ssmFlags}

// groupAnnotationKey marks a shared flag with its group's title, for help.
const groupAnnotationKey = "latch:flag-group"

// addFlags registers groups' flags on cmd.
func (a *app) addFlags(cmd *cobra.Command, groups ...flagGroup) {
	f := cmd.Flags()
	for _, g := range groups {
		for _, name := range g.names {
			a.defineFlag(f, name)
			_ = f.SetAnnotation(name, groupAnnotationKey, []string{g.title})
		}
	}
}

// defineFlag defines the shared flag name on f, bound to its field of a.
func (a *app) defineFlag(f *pflag.FlagSet, name string) {
	switch name {
	case "region":
		f.StringSliceVar(&a.regions, "region", nil, "AWS region(s); grant uses the first, sweep and run cover all (default $AWS_REGION, else us-east-1)")
	case "profile":
		f.StringVar(&a.profile, "profile", "", "AWS shared-config profile (default $AWS_PROFILE)")
	case "endpoint":
		f.StringVar(&a.endpoint, "endpoint", "", "EC2 endpoint URL, e.g. a simulator (default $AWS_ENDPOINT_URL)")
	case "aws-mutating-rate":
		a.mutatingRate = latchaws.DefaultMutatingLimit
		f.Var(&a.mutatingRate, "aws-mutating-rate", "pace of mutating EC2 calls per region and API class, RATE/BURST: calls a second after a burst, below EC2's throttle (5/s after 50); raise it with your account's limits, or off")
	case "db":
		f.StringVar(&a.dbPath, "db", "", "grant database: a SQLite file, or a postgres://… URL for a PostgreSQL database replicas share (default $XDG_STATE_HOME/latch/latch.db)")
	case "server":
		f.StringVar(&a.server, "server", "", "latch server URL (default $LATCH_SERVER)")
	case "auth":
		f.StringVar(&a.authMethod, "auth", "auto", "how to prove who you are to the server: oidc ('latch login'), aws (your AWS credentials), or auto (oidc after a login, else aws)")
	case "server-id":
		f.StringVar(&a.serverID, "server-id", "", "the server's ID, signed into AWS proofs: its --aws-server-id (default: the --server URL)")
	case "server-ca":
		f.StringVar(&a.serverCA, "server-ca", "", "PEM file of the CA that signed the server's certificate (default: the system's roots)")
	case "backstop-role-arn":
		f.StringVar(&a.backstop.RoleARN, "backstop-role-arn", "", "turns on the backstop: the role EventBridge Scheduler assumes to revoke each rule, and end each Session Manager session, at expiry, even with no latch process left")
	case "backstop-group":
		f.StringVar(&a.backstop.Group, "backstop-group", "latch", "the Scheduler schedule group for backstop schedules")
	case "backstop-dlq-arn":
		f.StringVar(&a.backstop.DeadLetterARN, "backstop-dlq-arn", "", "an SQS queue for backstop runs that never succeeded")
	case "audit-key":
		f.StringVar(&a.auditKey, "audit-key", "", "ed25519 private key (PEM) that signs audit entries this process writes ('latch audit keygen')")
	case "ssm-session-role":
		f.StringVar(&a.ssmRole, "ssm-session-role", "", "IAM role ARN Session Manager sessions are started under, as each requester ('latch iam-policy --for session-role'); set, it turns on Session Manager access (sweeps end latch's sessions either way)")
	default:
		panic("latch: no shared flag --" + name)
	}
}

// noEnvAnnotationKey marks a flag applyEnv leaves alone: one whose
// LATCH_ variable belongs to another flag of the same name (demo's
// --server, a switch, is not the server's URL in LATCH_SERVER).
const noEnvAnnotationKey = "latch:no-env"

// commandLineOnly marks flags applyEnv leaves alone (noEnvAnnotationKey).
func commandLineOnly(cmd *cobra.Command, names ...string) {
	for _, n := range names {
		if err := cmd.Flags().SetAnnotation(n, noEnvAnnotationKey, []string{"true"}); err != nil {
			panic("latch: " + err.Error())
		}
	}
}

// aliasAnnotationKey marks a hidden flag as the old name of another.
const aliasAnnotationKey = "latch:alias-of"

// deprecatedAlias adds old to cmd as a hidden, deprecated name of its
// string flag current, so scripts written for old keep working; applyEnv
// moves its value over and says it is deprecated. pflag's own deprecation
// notice is not used: cobra prints it to stdout, into --json output.
func deprecatedAlias(cmd *cobra.Command, old, current string) {
	f := cmd.Flags()
	if f.Lookup(current) == nil {
		panic("latch: alias --" + old + " of no flag --" + current)
	}
	f.String(old, "", "deprecated: use --"+current)
	_ = f.SetAnnotation(old, aliasAnnotationKey, []string{current})
	_ = f.MarkHidden(old)
}

// resolveAliases gives each deprecated alias's value to the flag it
// names. The command line wins over the environment; the two names
// given the same way with different values are refused.
func (a *app) resolveAliases(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(old *pflag.Flag) {
		to := old.Annotations[aliasAnnotationKey]
		if err != nil || len(to) == 0 || !old.Changed {
			return
		}
		cur := cmd.Flags().Lookup(to[0])
		oldEnv, curEnv := a.fromEnv[old.Name], a.fromEnv[cur.Name]
		how := func(f *pflag.Flag, env bool) string {
			if env {
				return envName(f.Name)
			}
			return "--" + f.Name
		}
		if cur.Changed && oldEnv && !curEnv {
			return // the current name on the command line wins
		}
		fmt.Fprintf(a.stderr, "latch: %s is deprecated; use %s\n", how(old, oldEnv), how(cur, oldEnv))
		if cur.Changed && oldEnv == curEnv && cur.Value.String() != old.Value.String() {
			err = usagef("%s %q and %s %q are the same setting with different values: give %s only",
				how(old, oldEnv), old.Value, how(cur, curEnv), cur.Value, how(cur, curEnv))
			return
		}
		if serr := cur.Value.Set(old.Value.String()); serr != nil {
			err = usagef("%s %q: %v", how(old, oldEnv), old.Value, serr)
			return
		}
		cur.Changed = true
		if oldEnv {
			a.fromEnv[cur.Name] = true
		} else {
			delete(a.fromEnv, cur.Name)
		}
	})
	return err
}

// applyEnv fills every flag not given on the command line from its LATCH_
// variable, then sets up logging and the clock.
func (a *app) applyEnv(cmd *cobra.Command, _ []string) error {
	var err error
	visit := func(f *pflag.Flag) {
		// --direct is the explicit opt-out from a configured server: it is
		// never read from the environment, where it would skip the
		// server's policy without a word on the command line.
		if err != nil || f.Changed || f.Name == "direct" || len(f.Annotations[noEnvAnnotationKey]) > 0 {
			return
		}
		name := envName(f.Name)
		if v := a.getenv(name); v != "" {
			if serr := cmd.Flags().Set(f.Name, v); serr != nil {
				err = usagef("%s=%q: %v", name, v, serr)
			}
			if a.fromEnv == nil {
				a.fromEnv = map[string]bool{}
			}
			a.fromEnv[f.Name] = true
		}
	}
	cmd.Flags().VisitAll(visit)
	if err != nil {
		return err
	}
	if err := a.resolveAliases(cmd); err != nil {
		return err
	}
	if len(a.regions) == 0 {
		a.regions = []string{"us-east-1"}
		if r := a.getenv("AWS_REGION"); r != "" {
			a.regions = strings.Split(r, ",")
		}
	}
	for _, r := range a.regions {
		if _, err := latch.ParseRegion(r); err != nil {
			return err
		}
	}
	if a.profile == "" {
		a.profile = a.getenv("AWS_PROFILE")
	}
	if a.endpoint == "" {
		a.endpoint = a.getenv("AWS_ENDPOINT_URL")
	}
	if err := checkServerURL(a.server); err != nil {
		return err
	}
	if a.log, err = a.newLogger(cmd); err != nil {
		return err
	}
	a.clock = latch.SystemClock{}
	if path := a.getenv("LATCH_TEST_CLOCK_FILE"); path != "" {
		a.clock = newFileClock(path) // latch's own crash tests move time through this file
		a.stsAtClock = a.getenv("LATCH_TEST_STS_AT_CLOCK") != ""
	}
	return nil
}

// checkServerURL refuses a --server that is not an http or https URL,
// suggesting the URL that was probably meant.
func checkServerURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.RawQuery == "" && u.Fragment == "" {
		return nil
	}
	if !strings.Contains(s, "://") {
		scheme := "https://"
		if host, _, err := net.SplitHostPort(s); err == nil && isLoopbackHost(host) {
			scheme = "http://" // plain HTTP is allowed on loopback
		}
		return latch.Invalidf("server", "--server (or LATCH_SERVER) %q has no scheme: want the server's URL, e.g. %s%s", s, scheme, s)
	}
	return latch.Invalidf("server", "--server (or LATCH_SERVER) %q is not the server's URL: want http(s)://HOST[:PORT], e.g. https://latch.example.com:8443", s)
}

func isLoopbackHost(host string) bool {
	addr, err := netip.ParseAddr(host)
	return host == "localhost" || (err == nil && addr.IsLoopback())
}

func envName(flag string) string {
	return "LATCH_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// newLogger is the one place that decides what latch logs where.
//
// A person at a terminal reads stdout; on success stderr stays empty. So with
// --log-format auto and stderr a terminal, the logs are text at WARN: the
// evidence lines (granted, revoked, applied schema migration, …) are INFO and
// stay out of the way, warnings and errors still show, and --log-level info
// brings the rest back. Off a terminal, or with --log-format json or text
// asked for, logs are evidence for whoever collects them and start at INFO.
// The services (run, server, lambda) log at INFO everywhere: their logs are
// their output.
func (a *app) newLogger(cmd *cobra.Command) (*slog.Logger, error) {
	tty := isTerminal(a.stderr)
	format := a.logFormat
	if format == "auto" {
		format = "json"
		if tty {
			format = "text"
		}
	}
	if format != "json" && format != "text" {
		return nil, usagef("--log-format %q: want json, text or auto", a.logFormat)
	}
	name := a.logLevel
	if name == "" {
		name = "info"
		if a.logFormat == "auto" && tty && !logsAreOutput[cmd.CommandPath()] {
			name = "warn"
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(name)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", a.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(a.stderr, opts)), nil
	}
	return slog.New(slog.NewTextHandler(a.stderr, opts)), nil
}

// logsAreOutput are the commands whose logs are what they have to say:
// long-running services, which log at INFO even on a terminal.
var logsAreOutput = map[string]bool{"latch run": true, "latch server": true, "latch lambda": true}

// isTerminal reports whether w is a terminal: a character device, or a
// writer that says it is one (tests stand one in for a terminal this way).
func isTerminal(w io.Writer) bool {
	if t, ok := w.(interface{ IsTerminal() bool }); ok {
		return t.IsTerminal()
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// broker wires a broker on store with firewalls, and the group lookups
// its managed check needs, for regions.
func (a *app) broker(ctx context.Context, store latch.Store, regions []string, maxDur time.Duration) (*broker.Broker, error) {
	fws, err := a.firewalls(ctx, regions)
	if err != nil {
		return nil, err
	}
	groups := map[string]broker.GroupLookup{}
	for _, region := range regions {
		cfg, err := a.awsConfig(ctx, region)
		if err != nil {
			return nil, err
		}
		groups[region] = latchaws.NewInventory(cfg, a.log.With("component", "aws"))
	}
	sign, err := a.auditSigner()
	if err != nil {
		return nil, err
	}
	opts := broker.Options{Clock: a.clock, Logger: a.log.With("component", "broker"), MaxDuration: maxDur, Checkpoint: a.checkpoint(), Sign: sign}
	if a.metrics != nil {
		opts.Observer = a.metrics
	}
	if a.backstop.RoleARN != "" {
		var cfgs []aws.Config
		for _, region := range regions {
			cfg, err := a.awsConfig(ctx, region)
			if err != nil {
				return nil, err
			}
			cfgs = append(cfgs, cfg)
		}
		opts.Backstop = latchaws.NewBackstop(cfgs, a.backstop)
	}
	if opts.Sessions, err = a.sessionManagers(ctx, regions); err != nil {
		return nil, err
	}
	opts.SessionRole = a.ssmRole
	return broker.New(store, fws, groups, opts), nil
}

// sessionManagers connects Session Manager in each region. Sweeps and
// grants' ends use it whether or not --ssm-session-role is set: a process
// not told the role still ends the sessions a server given it left.
// Starting sessions needs the role.
func (a *app) sessionManagers(ctx context.Context, regions []string) (map[string]latch.SessionManager, error) {
	if a.ssmRole != "" {
		if err := latchaws.CheckRoleARN(a.ssmRole); err != nil {
			return nil, latch.Invalidf("ssm-session-role", "%s", latch.ErrorMessage(err))
		}
	}
	out := map[string]latch.SessionManager{}
	for _, region := range regions {
		cfg, err := a.awsConfig(ctx, region)
		if err != nil {
			return nil, err
		}
		out[region] = latchaws.NewSessionManager(cfg, a.ssmRole, a.log.With("component", "ssm"))
	}
	return out, nil
}

// auditSigner signs audit entries with --audit-key; nil when none is set.
func (a *app) auditSigner() (func(string) string, error) {
	if a.auditKey == "" {
		return nil, nil
	}
	priv, err := loadAuditKey(a.auditKey)
	if err != nil {
		return nil, err
	}
	return latch.SignAudit(priv), nil
}

// auditPublicKey is --audit-key's public half, with which admins' audit
// checks verify signatures; nil when none is set (auditSigner has refused
// a bad key before this is asked).
func (a *app) auditPublicKey() ed25519.PublicKey {
	if a.auditKey == "" {
		return nil
	}
	priv, err := loadAuditKey(a.auditKey)
	if err != nil {
		return nil
	}
	return priv.Public().(ed25519.PublicKey)
}

// firewalls connects to EC2 in each region.
func (a *app) firewalls(ctx context.Context, regions []string) ([]latch.Firewall, error) {
	var fws []latch.Firewall
	for _, region := range regions {
		cfg, err := a.awsConfig(ctx, region)
		if err != nil {
			return nil, err
		}
		// Fenced: the revoker's calls, on a replica that leads, pass the
		// lease's fence; every other call passes straight through.
		fws = append(fws, leader.Firewall(latchaws.NewFirewall(cfg, a.log.With("component", "aws"))))
	}
	return fws, nil
}

// awsConfig is the SDK configuration for one region, from flags and the
// environment.
func (a *app) awsConfig(ctx context.Context, region string) (aws.Config, error) {
	attempts := 0
	if v := a.getenv("AWS_MAX_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return aws.Config{}, usagef("AWS_MAX_ATTEMPTS=%q: want a whole number, at least 1", v)
		}
		attempts = n
	}
	a.mutatingOnce.Do(func() { a.mutating = latchaws.NewLimiter(cmp.Or(a.mutatingRate, latchaws.DefaultMutatingLimit)) })
	cfg, err := latchaws.LoadConfig(ctx, latchaws.Config{
		Region:          region,
		Profile:         a.profile,
		Endpoint:        a.endpoint,
		AccessKeyID:     a.getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: a.getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    a.getenv("AWS_SESSION_TOKEN"),
		MaxAttempts:     attempts,
		Mutating:        a.mutating,
	})
	if err == nil && a.metrics != nil {
		cfg.APIOptions = append(cfg.APIOptions, a.metrics.AWSMiddleware())
	}
	return cfg, err
}

// grantDB is what a.store returns: a SQLite file or a PostgreSQL
// database, with everything latch keeps in it.
type grantDB interface {
	latch.Store
	latch.MessageRefs
	latch.SessionStore
	// Path names the database in messages: the file, or the DSN without
	// its password.
	Path() string
}

var (
	_ grantDB = (*sqlite.Store)(nil)
	_ grantDB = (*postgres.Store)(nil)
)

// store opens the grant database, creating it if needed. A --db (or
// LATCH_DB) of postgres://… or postgresql://… is a PostgreSQL database,
// which several replicas may share; anything else is a SQLite file. The
// default path's directory (latch's own, under $XDG_STATE_HOME) is created
// too; a --db file's directory must exist, so that a typo creates no
// folders.
func (a *app) store(ctx context.Context) (grantDB, error) {
	path := a.dbPath
	if postgres.IsDSN(path) {
		s, err := postgres.Open(ctx, path, postgres.Options{Now: a.clock.Now, Logger: a.log.With("component", "store")})
		if err != nil {
			return nil, fmt.Errorf("open grant database: %w", err)
		}
		a.closers = append(a.closers, s.Close)
		return s, nil
	}
	if path == "" {
		path = a.defaultDBPath()
	} else if dir := filepath.Dir(path); dir != "" {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, usagef("--db (or LATCH_DB) %s: directory %s does not exist; create it first (mkdir -p %s) or name a file in an existing directory", path, dir, dir)
		}
	}
	s, err := sqlite.Open(ctx, path, sqlite.Options{Now: a.clock.Now, Logger: a.log.With("component", "store")})
	if err != nil {
		return nil, fmt.Errorf("open grant database %s: %w", path, err)
	}
	a.closers = append(a.closers, s.Close)
	return s, nil
}

func (a *app) defaultDBPath() string {
	dir, err := a.xdgDir("XDG_STATE_HOME", filepath.Join(".local", "state"))
	if err != nil { // neither is set: under the working directory
		dir = filepath.Join(".", ".local", "state", "latch")
	}
	return filepath.Join(dir, "latch.db")
}

// xdgDir is latch's directory under an XDG base directory: $VAR/latch, or
// $HOME/fallback/latch when VAR is unset.
func (a *app) xdgDir(variable, fallback string) (string, error) {
	dir := a.getenv(variable)
	if dir == "" {
		home := a.getenv("HOME")
		if home == "" {
			return "", latch.Errorf(latch.EINVALID, "neither %s nor HOME is set", variable)
		}
		dir = filepath.Join(home, fallback)
	}
	return filepath.Join(dir, "latch"), nil
}

// close releases what the command opened, newest first.
func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil && a.log != nil {
			a.log.Warn("close", "err", err)
		}
	}
	a.closers = nil
}

// checkpoint returns the broker's crash-test hook: with LATCH_TEST_CRASHPOINT
// set, the process announces the named point on stderr and waits there to
// be killed.
func (a *app) checkpoint() func(string) {
	want := a.getenv("LATCH_TEST_CRASHPOINT")
	if want == "" {
		return nil
	}
	return func(name string) {
		if name != want {
			return
		}
		fmt.Fprintf(a.stderr, "latch: crashpoint %s reached\n", name)
		for {
			time.Sleep(time.Hour) // a timer, so the runtime sees no deadlock
		}
	}
}

// durationFlag parses a duration flag value, naming the flag on error.
func durationFlag(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, latch.Invalidf(name, "%q is not a duration; want e.g. 30m, 1h or 90s", v)
	}
	return d, nil
}
