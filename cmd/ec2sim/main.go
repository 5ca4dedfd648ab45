// Command ec2sim serves the in-repo EC2 simulator on a TCP port, for tests
// and demos that run in another process.
//
// Usage:
//
//	ec2sim [-listen 127.0.0.1:0] [-fleet FILE|none] [-rule-limit N] [-account ID] [-fire-schedules] [-v]
//
// It prints its URL (http://127.0.0.1:PORT) as the first line of standard
// output, then serves until SIGINT or SIGTERM. Without -fleet it loads the
// demo fleet; -fleet none starts with empty regions. With -fire-schedules
// it fires due EventBridge Scheduler schedules every second, on the wall
// clock; without it they fire only when a test POSTs to
// /_sim/scheduler/fire. Tests in other processes steer it through the
// /_sim/ endpoints (see package ec2sim).
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
	"net"
	"net/http"
	"os"
	"os/signal"
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
	listen    string
	fleet     string
	ruleLimit int
	accountID string
	fire      bool
	verbose   bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("ec2sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:0", "`address` to listen on; port 0 picks a free port")
	fs.StringVar(&cfg.fleet, "fleet", "", "fleet YAML `file` to load; empty means the demo fleet, \"none\" means no resources")
	fs.IntVar(&cfg.ruleLimit, "rule-limit", 0, "inbound rules allowed per group and address family; 0 means 60, as in EC2")
	fs.StringVar(&cfg.accountID, "account", "", "12-digit account `ID` that owns everything; empty means "+ec2sim.DefaultAccountID)
	fs.BoolVar(&cfg.fire, "fire-schedules", false, "fire due EventBridge Scheduler schedules every second")
	fs.BoolVar(&cfg.verbose, "v", false, "log every request to standard error")
	if err := fs.Parse(args); err != nil {
		return cfg, usageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return cfg, usageError{fmt.Errorf("unexpected argument %q (ec2sim takes only flags)", fs.Arg(0))}
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
	sim := ec2sim.New(ec2sim.Options{RuleLimit: cfg.ruleLimit, AccountID: cfg.accountID, Logger: log})
	if err := sim.LoadFleet(fleet); err != nil {
		return fmt.Errorf("load fleet: %w", err)
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
