package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/policy"
	"github.com/latchdev/latch/scan"
)

// exitFindings is latch scan's status when a finding reaches --fail-on:
// distinct from a usage error (2) and a failed scan (1), so CI can tell
// "found something" from "could not look".
const exitFindings = 3

type scanOptions struct {
	policyFile, baseline, format, failOn string
	asJSON                               bool
	adminPorts                           []int
	maxManaged, concurrency              int
}

func (a *app) scanCommand() *cobra.Command {
	var o scanOptions
	cmd := &cobra.Command{
		Use:   "scan",
		Short: "Find standing access: open admin ports, unmanaged instances, roles that can open their own groups",
		Long: `Read every region given and report the standing access latch exists to end,
each finding with a severity, a stable ID, the resource and what to do:

  LATCH001 critical  an admin port (22, 3389, 5985, 5986 and the policy's ports)
                     open to 0.0.0.0/0 or ::/0
  LATCH002 high      an admin port open to a range wider than the policy's networks
  LATCH003 high      a standing rule (not latch's) on an admin port in a
                     latch:managed group
  LATCH004 info      an admin port open to a security group or a prefix list
  LATCH005 critical  an instance with a public address behind a LATCH001 rule
  LATCH006 medium    an instance with no latch:managed group
  LATCH007 low       an instance with more managed groups than expected
  LATCH008 high      an instance role that could change security groups
  LATCH009 medium    an instance role without AmazonSSMManagedInstanceCore
  LATCH010 medium    a region with no trail logging management events
  LATCH011 medium    an instance launched with an EC2 key pair
  LATCH012 medium    a launch template naming an EC2 key pair

It only reads (latch iam-policy --for scan prints the role it needs). A
check whose API is refused (AccessDenied) or missing is reported as not
checked, with why, and the rest goes on: a read-only role that lacks
part of it still scans the rest.

Exit status: 0 when no finding reaches --fail-on, 3 when one does, 1
when the scan itself failed, 2 for bad usage. --baseline accepts known
findings by ID: a previous 'latch scan --json' output, or a file of IDs,
one per line. --format sarif writes SARIF 2.1.0 for code-scanning tools.

With --policy, the policy's TCP ports are admin ports too, and its
networks are where access is expected to come from.`,
		Example: `  latch scan                                   # the default region, a table
  latch scan --region us-east-1,eu-west-1 --policy policy.yaml
  latch scan --json > baseline.json            # accept today's findings...
  latch scan --baseline baseline.json          # ...and fail only on new ones
  latch scan --format sarif > latch.sarif      # for GitHub code scanning
  latch scan --fail-on critical                # CI: fail only on critical`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.scan(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.policyFile, "policy", "", "a policy file: its ports are admin ports too, its networks where access is expected from")
	f.StringVar(&o.baseline, "baseline", "", "accept the findings this file lists (a 'latch scan --json' output, or IDs one per line)")
	f.StringVar(&o.format, "format", "table", "output: table, json or sarif")
	f.BoolVar(&o.asJSON, "json", false, "print JSON (the same as --format json)")
	f.StringVar(&o.failOn, "fail-on", "high", "exit 3 when a finding is at least this severe: critical, high, medium, low, info, or none")
	f.IntSliceVar(&o.adminPorts, "admin-port", nil, "another TCP port to treat as an admin port (repeatable)")
	f.IntVar(&o.maxManaged, "max-managed-groups", 1, "report instances with more latch:managed groups than this")
	f.IntVar(&o.concurrency, "concurrency", 4, "regions read at once")
	a.addFlags(cmd, awsFlags)
	return cmd
}

func (a *app) scan(ctx context.Context, o scanOptions) error {
	if o.asJSON {
		o.format = "json"
	}
	if !slices.Contains([]string{"table", "json", "sarif"}, o.format) {
		return latch.Invalidf("format", "%q is not an output format; want table, json or sarif", o.format)
	}
	failOn, err := scan.ParseFailOn(o.failOn)
	if err != nil {
		return err
	}
	if o.concurrency < 1 || o.concurrency > 32 {
		return latch.Invalidf("concurrency", "%d: want 1 to 32 regions at once", o.concurrency)
	}
	if o.maxManaged < 1 {
		return latch.Invalidf("max-managed-groups", "%d: want 1 or more", o.maxManaged)
	}
	opts, _, err := a.scanJudgeOptions(o.policyFile, o.adminPorts, o.maxManaged)
	if err != nil {
		return err
	}
	var baseline scan.Baseline
	if o.baseline != "" {
		baseline, err = readBaseline(o.baseline)
		if err != nil {
			return err
		}
	}
	estates, err := a.readEstates(ctx, a.regions, o.concurrency)
	if err != nil {
		return err
	}
	report := scan.Judge(estates, opts)
	accepted := 0
	if baseline != nil {
		report, accepted = report.Without(baseline)
	}
	switch o.format {
	case "json":
		err = scan.WriteJSON(a.stdout, report)
	case "sarif":
		err = scan.WriteSARIF(a.stdout, report, scan.ToolInfo{Version: latchVersion()})
	default:
		err = printScan(a.stdout, report, accepted)
	}
	if err != nil {
		return err
	}
	// Groups and instances are where standing access lives: a scan that
	// could not read them has not looked, and must not pass as clean.
	for _, est := range estates {
		if n, unread := est.Unread(latch.CheckGroups, latch.CheckInstances); unread {
			return latch.Errorf(latch.EFORBIDDEN, "%s in %s could not be read, so the report above is incomplete: nothing there was checked for open admin ports (the role needs what 'latch iam-policy --for scan' prints)", n.Check, est.Region)
		}
	}
	if report.Fails(failOn) {
		if o.format == "table" {
			fmt.Fprintf(a.stderr, "latch scan: a finding reaches --fail-on %s\n", o.failOn)
		}
		return exitStatus(exitFindings)
	}
	return nil
}

// scanJudgeOptions builds the judgement's options from the flags and the
// policy, and returns the policy (nil without one).
func (a *app) scanJudgeOptions(policyFile string, extraPorts []int, maxManaged int) (scan.Options, *policy.Policy, error) {
	opts := scan.Options{AdminPorts: latch.DefaultAdminPorts(), MaxManagedGroups: maxManaged}
	for _, p := range extraPorts {
		if p < 1 || p > 65535 {
			return opts, nil, latch.Invalidf("admin-port", "%d is not a TCP port; want 1 to 65535", p)
		}
		opts.AdminPorts = append(opts.AdminPorts, p)
	}
	var p *policy.Policy
	if policyFile != "" {
		var err error
		if p, err = policy.Load(policyFile); err != nil {
			return opts, nil, err
		}
		opts.AdminPorts = append(opts.AdminPorts, p.TCPPorts()...)
		opts.Networks = p.Networks()
	}
	return opts, p, opts.Validate() // Judge sorts the ports and drops repeats
}

func readBaseline(path string) (scan.Baseline, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, latch.Invalidf("baseline", "%s: %v", path, err)
	}
	defer f.Close()
	b, err := scan.ReadBaseline(f)
	if err != nil {
		return nil, latch.Invalidf("baseline", "%s: %v", path, err)
	}
	return b, nil
}

// readEstates reads each region, concurrency at a time, with progress on
// a terminal.
func (a *app) readEstates(ctx context.Context, regions []string, concurrency int) ([]latch.Estate, error) {
	var bar *progress
	if isTerminal(a.stderr) {
		bar = &progress{w: a.stderr, prefix: "latch scan"}
		defer bar.clear()
	}
	estates := make([]latch.Estate, len(regions))
	var mu sync.Mutex
	done := make([]int, len(regions))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for i, region := range regions {
		g.Go(func() error {
			cfg, err := a.awsConfig(gctx, region)
			if err != nil {
				return err
			}
			reader := latchaws.NewEstateReader(cfg)
			est, err := reader.ReadEstate(gctx, region, func(n, _ int) {
				if bar == nil {
					return
				}
				mu.Lock()
				done[i] = n
				sum := 0
				for _, d := range done {
					sum += d
				}
				mu.Unlock()
				bar.show("reading "+strings.Join(regions, ", "), sum, len(regions)*latchaws.EstateReads)
			})
			estates[i] = est
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return estates, nil
}

// printScan writes the report as a table, then what was not checked.
func printScan(w io.Writer, r scan.Report, accepted int) error {
	c := r.Scanned
	fmt.Fprintf(w, "Scanned %s: %s (%s), %s, %s, %s, %s.\n", strings.Join(r.Regions, ", "),
		count(c.Groups, "group"), count(c.Rules, "inbound rule"), count(c.Instances, "instance"),
		count(c.Templates, "launch template version"), count(c.Roles, "instance role"), count(c.Trails, "trail"))
	if len(r.Findings) == 0 {
		fmt.Fprintln(w, "No findings.")
	} else {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tCHECK\tRESOURCE\tFINDING")
		for _, f := range r.Findings {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Severity, f.Check, esc(where(f)), esc(f.Title))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w, "\nWhat to do:")
		seen := map[string]bool{}
		for _, f := range r.Findings {
			if !seen[f.Check] {
				seen[f.Check] = true
				fmt.Fprintf(w, "  %s %s: %s\n", f.Check, f.Name, esc(f.Fix))
			}
		}
	}
	if len(r.NotChecked) > 0 {
		fmt.Fprintln(w, "\nNot checked:")
		for _, n := range r.NotChecked {
			what := string(n.Check)
			if n.Resource != "" {
				what += " " + n.Resource
			}
			api := ""
			if n.API != "" {
				api = n.API + ": "
			}
			fmt.Fprintf(w, "  %s in %s: %s%s\n", esc(what), n.Region, esc(api), esc(n.Reason))
		}
	}
	fmt.Fprintf(w, "\n%s", summary(r))
	if accepted > 0 {
		fmt.Fprintf(w, "; %d accepted by the baseline", accepted)
	}
	fmt.Fprintln(w, ".")
	fmt.Fprintln(w, "IDs are stable: 'latch scan --json' lists them for a --baseline.")
	return nil
}

func summary(r scan.Report) string {
	if len(r.Findings) == 0 {
		return "0 findings"
	}
	var parts []string
	for _, s := range slices.Backward(scan.Severities()) {
		if n := r.Count(s); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	return fmt.Sprintf("%s (%s)", count(len(r.Findings), "finding"), strings.Join(parts, ", "))
}

// latchVersion is the module version latch was built as, "(devel)" from a
// checkout.
func latchVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}

// where names a finding's resource: region/resource, the region alone for
// a region's finding, and an IAM role's ARN (global) alone.
func where(f scan.Finding) string {
	switch f.Resource {
	case "", f.Region:
		return f.Region
	}
	if f.Region == "" {
		return f.Resource
	}
	return f.Region + "/" + f.Resource
}

// count is n and noun, plural unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
