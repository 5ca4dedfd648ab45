// Command ec2sim serves the in-repo EC2 simulator on a TCP port, for tests
// and demos that run in another process.
//
// Usage:
//
//	ec2sim [-listen 127.0.0.1:0] [-fleet FILE|none] [-rule-limit N] [-account ID]
//	       [-identity KEY:SECRET:ARN]... [-ssm-forward INSTANCE_ID:PORT=HOST:PORT]...
//	       [-fire-schedules] [-throttle] [-throttle-scale F] [-v]
//
// It prints its URL (http://127.0.0.1:PORT) as the first line of standard
// output, then serves until SIGINT or SIGTERM. Without -fleet it loads the
// demo fleet; -fleet none starts with empty regions. With -fire-schedules
// it fires due EventBridge Scheduler schedules every second, on the wall
// clock; without it they fire only when a test POSTs to
// /_sim/scheduler/fire. Tests in other processes steer it through the
// /_sim/ endpoints (see package ec2sim).
//
// Each -identity (repeatable) lets the access key KEY, signing with
// SECRET, call sts:GetCallerIdentity, which names it ARN, e.g.
// -identity AKIDALICE:alice-secret:arn:aws:iam::123456789012:user/alice.
// Keys not given are refused with InvalidClientTokenId, as STS refuses
// them; EC2's actions accept any key.
//
// Each -ssm-forward (repeatable) says where a Session Manager session's
// agent connects when it opens PORT on INSTANCE_ID, e.g. -ssm-forward
// i-0a0b0c0d0e0f00001:22=127.0.0.1:2222 lets a local sshd stand in for
// web-1's; connections to ports not forwarded are refused.
//
// With -throttle EC2's request throttling is on: every API has a token
// bucket per region, EC2's documented defaults (ec2sim.EC2Throttle) times
// -throttle-scale, and requests finding it empty are answered
// RequestLimitExceeded (HTTP 503). Tests can also turn it on or off with
// POST /_sim/throttle.
//
// Exit status is 2 for bad flags and 1 for any other failure.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // schedules name IANA time zones, which the host may lack

	"github.com/latchdev/latch/ec2sim"
)

// shutdownTimeout bounds how long a graceful stop waits for requests in
// flight; a simulator has nothing worth waiting longer for.
const shutdownTimeout = 5 * time.Second

// fireInterval is how often -fire-schedules fires due schedules. Scheduler
// itself promises a minute's precision; a second keeps tests quick.
const fireInterval = time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	var usage usageError
	switch {
	case err == nil:
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "ec2sim:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "ec2sim:", err)
		os.Exit(1)
	}
}

// usageError is a problem with the command line, as opposed to one met
// while running.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

type config struct {
	listen     string
	fleet      string
	ruleLimit  int
	accountID  string
	fire       bool
	throttle   bool
	scale      float64
	verbose    bool
	identities []ec2sim.Identity
	forwards   map[string]string // INSTANCE_ID:PORT → HOST:PORT
}

// identityFlag collects -identity KEY:SECRET:ARN values, checking each.
type identityFlag struct{ ids *[]ec2sim.Identity }

func (f identityFlag) String() string { return "" }

func (f identityFlag) Set(v string) error {
	key, rest, ok1 := strings.Cut(v, ":")
	secret, arn, ok2 := strings.Cut(rest, ":")
	switch {
	case !ok1 || !ok2:
		return errors.New("want KEY:SECRET:ARN, e.g. AKIDALICE:alice-secret:arn:aws:iam::123456789012:user/alice")
	case key == "":
		return errors.New("the access key ID (before the first colon) is empty")
	case secret == "":
		return errors.New("the secret (between the first two colons) is empty")
	case arn == "":
		return errors.New("the ARN (after the second colon) is empty; want e.g. arn:aws:iam::123456789012:user/alice")
	}
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[5] == "" {
		return fmt.Errorf("%q is not an ARN; want e.g. arn:aws:iam::123456789012:user/alice", arn)
	}
	if !isAccountID(parts[4]) {
		return fmt.Errorf("ARN %q names no account: want 12 digits after the fourth colon", arn)
	}
	for _, id := range *f.ids {
		if id.AccessKeyID == key {
			return fmt.Errorf("access key %q is given twice", key)
		}
	}
	*f.ids = append(*f.ids, ec2sim.Identity{AccessKeyID: key, SecretAccessKey: secret, ARN: arn})
	return nil
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("ec2sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:0", "`address` to listen on; port 0 picks a free port")
	fs.StringVar(&cfg.fleet, "fleet", "", "fleet YAML `file` to load; empty means the demo fleet, \"none\" means no resources")
	fs.IntVar(&cfg.ruleLimit, "rule-limit", 0, "inbound rules allowed per group and address family; 0 means 60, as in EC2")
	fs.StringVar(&cfg.accountID, "account", "", "12-digit account `ID` that owns everything; empty means "+ec2sim.DefaultAccountID)
	fs.Var(identityFlag{&cfg.identities}, "identity", "an identity for STS, `KEY:SECRET:ARN`: KEY may call sts:GetCallerIdentity, which names it ARN; repeat for several")
	fs.Var(forwardFlag{&cfg.forwards}, "ssm-forward", "where a session's agent connects, `INSTANCE_ID:PORT=HOST:PORT`; repeat for several")
	fs.BoolVar(&cfg.fire, "fire-schedules", false, "fire due EventBridge Scheduler schedules every second")
	fs.BoolVar(&cfg.throttle, "throttle", false, "throttle requests as EC2 does, with a token bucket per API and region")
	fs.Float64Var(&cfg.scale, "throttle-scale", 1, "multiply -throttle's buckets (EC2's documented sizes and refill rates) by `F`")
	fs.BoolVar(&cfg.verbose, "v", false, "log every request to standard error")
	if err := fs.Parse(args); err != nil {
		return cfg, usageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return cfg, usageError{fmt.Errorf("unexpected argument %q (ec2sim takes only flags)", fs.Arg(0))}
	case !(cfg.scale > 0) || math.IsInf(cfg.scale, 0):
		return cfg, usageError{fmt.Errorf("-throttle-scale %v: want a number above 0 (1 is EC2's defaults)", cfg.scale)}
	case cfg.ruleLimit < 0:
		return cfg, usageError{fmt.Errorf("-rule-limit %d: want 0 (the default, 60) or more", cfg.ruleLimit)}
	case cfg.accountID != "" && !isAccountID(cfg.accountID):
		return cfg, usageError{fmt.Errorf("-account %q: want 12 digits", cfg.accountID)}
	}
	return cfg, nil
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func loadFleet(path string) (ec2sim.Fleet, error) {
	switch path {
	case "":
		return ec2sim.DemoFleet(), nil
	case "none":
		return ec2sim.Fleet{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return ec2sim.Fleet{}, fmt.Errorf("read fleet: %w", err)
	}
	f, err := ec2sim.ParseFleet(data)
	if err != nil {
		return ec2sim.Fleet{}, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// run serves until ctx is done. It writes the server's URL as the first
// line of stdout once it is listening, so a parent process can wait for it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if cfg.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	fleet, err := loadFleet(cfg.fleet)
	if err != nil {
		return err
	}
	sim := ec2sim.New(ec2sim.Options{
		RuleLimit: cfg.ruleLimit, AccountID: cfg.accountID, Logger: log, Dial: forwardDialer(cfg.forwards),
	})
	if err := sim.LoadFleet(fleet); err != nil {
		return fmt.Errorf("load fleet: %w", err)
	}
	if cfg.throttle {
		sim.SetThrottle(ec2sim.EC2Throttle().Scale(cfg.scale))
	}
	for _, id := range cfg.identities {
		if err := sim.AddIdentity(id); err != nil {
			return usageError{fmt.Errorf("-identity %s: %w", id.AccessKeyID, err)}
		}
	}

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	if _, err := fmt.Fprintln(stdout, url); err != nil {
		ln.Close()
		return fmt.Errorf("write URL: %w", err)
	}
	log.Info("ec2sim listening", "url", url, "fleet", cmp.Or(cfg.fleet, "demo"))

	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if cfg.fire {
		fireCtx, stopFiring := context.WithCancel(ctx)
		fired := make(chan struct{})
		go func() {
			defer close(fired)
			fireSchedules(fireCtx, sim)
		}()
		defer func() { stopFiring(); <-fired }()
	}
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("ec2sim stopped")
	return nil
}

// fireSchedules fires sim's due schedules every fireInterval until ctx is
// done. The simulator logs each run.
func fireSchedules(ctx context.Context, sim *ec2sim.Server) {
	tick := time.NewTicker(fireInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			sim.FireDueSchedules()
		}
	}
}
