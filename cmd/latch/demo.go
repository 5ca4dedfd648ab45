package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/revoker"
	"github.com/latchdev/latch/sqlite"
)

type demoOptions struct {
	dur    string
	keep   bool
	server bool
	scan   bool
}

func (a *app) demoCommand() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "See latch open and close access, offline, in a few seconds",
		Long: `Start an in-process EC2 simulator with a small demo fleet, a grant database in
a temporary directory and the revoker, then:

  1. grant 203.0.113.10 SSH to the web-latch security group for --for,
  2. show the tagged rule as EC2 lists it,
  3. open a second rule the way a crashed process would leave it (tagged,
     with no database record) and watch the sweep revoke it from its tags,
  4. watch the revoker close the grant at expiry,
  5. print the timeline with the evidence log lines.

It needs no AWS account and no network. With --keep, the simulator and the
revoker stay up until Ctrl-C, and latch prints how to point other latch
commands at them.

With --server, it runs a latch server instead, in front of the simulator,
with a demo policy that needs one approval and two demo AWS identities
that the simulator's STS knows: demo-requester asks, demo-approver
approves. It then walks through a request, its approval, the rule opening
and the requester revoking it, printing each command it runs as each
person. With --server --keep, it prints the environment and the commands
to paste as each person instead, and serves until Ctrl-C.

With --scan, it runs latch scan on the demo fleet, which carries the usual
mistakes (SSH open to the world on an old bastion with a public address
and a key pair, a role that can change security groups, a launch
template with a key, no CloudTrail trail), then latch adopt on the
bastion (a dry run, then --apply), scans again, and undoes the plan.`,
		Example: `  latch demo                    # a direct grant, closed at expiry
  latch demo --scan             # find standing access, adopt an instance, undo
  latch demo --server           # request, approve, revoke through a server
  latch demo --server --keep    # a server to try by hand, as two people`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.scan {
				if o.server || o.keep {
					return usagef("--scan runs on its own: not with --server or --keep")
				}
				return a.demoScan(cmd.Context())
			}
			if o.server {
				return a.demoServer(cmd.Context(), o)
			}
			return a.demo(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.dur, "for", "5s", "how long the demo grant lasts")
	cmd.Flags().BoolVar(&o.keep, "keep", false, "leave the simulator and revoker (or server) running until Ctrl-C")
	cmd.Flags().BoolVar(&o.server, "server", false, "run a latch server with two demo identities: one requests, the other approves")
	cmd.Flags().BoolVar(&o.scan, "scan", false, "scan the demo fleet for standing access, adopt its bastion, scan again and undo")
	// Not from LATCH_SERVER, which the other commands read as a URL, and
	// which 'latch demo --server --keep' has people export.
	commandLineOnly(cmd, "server")
	return cmd
}

func (a *app) demo(ctx context.Context, o demoOptions) error {
	dur, err := positiveDuration("for", o.dur)
	if err != nil {
		return err
	}
	t := newTimeline(a.stdout, a.clock)
	a.log = t.logger()

	_, url, group, stopSim, err := startDemoSim()
	if err != nil {
		return err
	}
	defer stopSim()
	t.say("EC2 simulator listening at %s (demo fleet; managed group %s)", url, group)

	dir, err := os.MkdirTemp("", "latch-demo-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "latch.db"), sqlite.Options{Now: a.clock.Now})
	if err != nil {
		return err
	}
	defer store.Close()
	cfg, err := latchaws.LoadConfig(ctx, latchaws.Config{Region: "us-east-1", Endpoint: url, AccessKeyID: "demo", SecretAccessKey: "demo"})
	if err != nil {
		return err
	}
	fw := latchaws.NewFirewall(cfg, nil)
	b := broker.New(store, []latch.Firewall{fw}, map[string]broker.GroupLookup{"us-east-1": latchaws.NewInventory(cfg, nil)},
		broker.Options{Clock: a.clock, Logger: a.log})
	r := revoker.New(store, b, b, revoker.Options{Clock: a.clock, Logger: a.log, SweepInterval: 2 * time.Second, Recheck: time.Second})
	runCtx, stopRevoker := context.WithCancel(ctx)
	revokerDone := make(chan error, 1)
	go func() { revokerDone <- r.Run(runCtx) }()
	defer func() { stopRevoker(); <-revokerDone }()

	if err := a.demoScript(ctx, t, b, fw, group, dur); err != nil {
		return err
	}
	t.say("Done: no rule is left open. Every step above is in the evidence lines (JSON, one per grant and revoke).")
	if !o.keep {
		return nil
	}
	fmt.Fprintf(a.stdout, "\nStill running (Ctrl-C to stop). Try, in another terminal:\n"+
		"  export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_ENDPOINT_URL=%s\n"+
		"  latch --db %s grant --sg %s --ip 203.0.113.11 --for 1m --reason try --detach\n"+
		"  latch --db %s ls\n", url, store.Path(), group, store.Path())
	<-ctx.Done()
	return nil
}

// demoScript is the story the demo tells.
func (a *app) demoScript(ctx context.Context, t *timeline, b *broker.Broker, fw latch.Firewall, group latch.GroupID, dur time.Duration) error {
	g, err := b.Grant(ctx, latch.GrantRequest{
		Region: "us-east-1", GroupID: group, Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22},
		Source: netip.MustParsePrefix("203.0.113.10/32"), Duration: dur, Requester: "demo@latch", Reason: "latch demo",
	})
	if err != nil {
		return fmt.Errorf("demo grant: %w", err)
	}
	t.say("granted %s: rule %s opens tcp 22 from %s until %s", g.ID, g.RuleID, g.Source, latch.FormatExpiry(g.ExpiresAt))
	rules, err := fw.Rules(ctx)
	if err != nil {
		return err
	}
	for _, r := range rules {
		t.say("  EC2 lists %s in %s with tags %s=%s %s=%s", r.ID, r.Opening.GroupID,
			latch.TagGrantID, r.Tags[latch.TagGrantID], latch.TagExpiresAt, r.Tags[latch.TagExpiresAt])
	}

	orphan := latch.Grant{ID: latch.NewGrantID(), Requester: "crashed-process", ExpiresAt: a.clock.Now().Add(time.Second)}
	rule, _, err := fw.Authorize(ctx, latch.Opening{Region: "us-east-1", GroupID: group, Protocol: latch.TCP,
		Ports: latch.PortRange{From: 22, To: 22}, Source: netip.MustParsePrefix("198.51.100.20/32")}, latch.RuleTags(orphan))
	if err != nil {
		return fmt.Errorf("demo orphan rule: %w", err)
	}
	t.say("a process opened rule %s for 198.51.100.20 and died before recording it; only its tags know it", rule.ID)

	if err := t.await(ctx, "expired", string(rule.ID), 30*time.Second); err != nil {
		return err
	}
	t.say("the sweep found %s expired by its tag and revoked it, with no database record", rule.ID)
	t.say("waiting for %s to expire…", g.ID)
	if err := t.await(ctx, "expired", string(g.RuleID), dur+30*time.Second); err != nil {
		return err
	}
	t.say("the revoker closed %s at expiry", g.ID)
	left, err := fw.Rules(ctx)
	if err != nil {
		return err
	}
	if len(left) != 0 {
		return fmt.Errorf("demo: %d latch rule(s) still open", len(left))
	}
	t.say("EC2 now lists no latch rules in %s", group)
	return nil
}

// startDemoSim serves the simulator with the demo fleet on a loopback port.
func startDemoSim() (sim *ec2sim.Server, url string, group latch.GroupID, stop func(), err error) {
	sim = ec2sim.New(ec2sim.Options{})
	if err := sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		return nil, "", "", nil, fmt.Errorf("load demo fleet: %w", err)
	}
	// The demo's credentials, so a direct grant tried against it (--keep)
	// has a caller for STS to name.
	if err := sim.AddIdentity(ec2sim.Identity{AccessKeyID: "demo", SecretAccessKey: "demo", ARN: "arn:aws:iam::" + ec2sim.DefaultAccountID + ":user/demo"}); err != nil {
		return nil, "", "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", "", nil, err
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // Serve returns ErrServerClosed on Close
	return sim, "http://" + ln.Addr().String(), ec2sim.DemoWebLatchGroup, func() { srv.Close() }, nil
}
