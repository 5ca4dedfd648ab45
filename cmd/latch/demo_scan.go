package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/latchdev/latch/ec2sim"
)

// demoScan shows the standing access the demo fleet carries (a group with
// SSH open to the world on an old bastion, a role that can open its own
// groups, key pairs, no trail), then adopts the bastion, scans again, and
// undoes it: each step the real command, run in this process against the
// simulator.
func (a *app) demoScan(ctx context.Context) error {
	t := newTimeline(a.stdout, a.clock)
	sim, url, _, stopSim, err := startDemoSim()
	if err != nil {
		return err
	}
	defer stopSim()
	t.say("EC2 simulator listening at %s (demo fleet, with the usual mistakes)", url)
	dir, err := os.MkdirTemp("", "latch-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pf := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(demoScanPolicy), 0o600); err != nil {
		return err
	}
	env := map[string]string{
		"HOME": dir, "AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_ENDPOINT_URL": url,
		"AWS_REGION": ec2sim.DemoRegion, "LATCH_DB": filepath.Join(dir, "latch.db"),
	}
	// latch runs one command as the demo's admin and shows its output;
	// want is the exit status the step expects.
	latchRun := func(want int, args ...string) (string, error) {
		shown := strings.ReplaceAll(strings.Join(args, " "), pf, "policy.yaml")
		fmt.Fprintf(a.stdout, "\n$ latch %s\n", shown)
		var stdout, stderr bytes.Buffer
		code := run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
		fmt.Fprint(a.stdout, indent(stdout.String()))
		if code != want {
			return "", fmt.Errorf("demo: 'latch %s': exit %d, want %d: %s", shown, code, want, strings.TrimSpace(stderr.String()))
		}
		if code != 0 {
			why := strings.TrimSpace(stderr.String())
			why = strings.TrimPrefix(strings.TrimPrefix(why, "latch: "), "latch scan: ")
			fmt.Fprintf(a.stdout, "  (exit %d: %s)\n", code, why)
		}
		return stdout.String(), nil
	}
	if _, err := latchRun(exitFindings, "scan", "--policy", pf); err != nil {
		return err
	}
	t.say("the bastion %s has SSH open to the world; adopt plans its move to latch (a dry run changes nothing)", ec2sim.DemoBastion)
	if _, err := latchRun(0, "adopt", ec2sim.DemoBastion, "--policy", pf); err != nil {
		return err
	}
	out, err := latchRun(0, "adopt", ec2sim.DemoBastion, "--policy", pf, "--apply")
	if err != nil {
		return err
	}
	planID := planIDIn(out)
	if planID == "" {
		return fmt.Errorf("demo: adopt --apply printed no plan ID")
	}
	if _, err := latchRun(exitFindings, "scan", "--policy", pf); err != nil {
		return err
	}
	t.say("the world-open rule is gone and the bastion has a latch-managed group; the rest needs IAM and key work adopt does not do")
	if _, err := latchRun(0, "adopt", "--undo", planID); err != nil {
		return err
	}
	t.say("undone: the rule is back exactly as it was (%d inbound rules on the bastion's old group)", len(sim.Rules(ec2sim.DemoRegion, ec2sim.DemoLegacyGroup)))
	return nil
}

// planIDIn finds the plan ID adopt --apply printed.
func planIDIn(out string) string {
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "adopt-") {
			return strings.TrimRight(f, ".:,")
		}
	}
	return ""
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ") + "\n"
}

// demoScanPolicy lets the ops team reach the web servers and the bastion
// from the office network, so adopt's lock-out check knows latch can open
// the bastion on request once its standing rule is gone.
const demoScanPolicy = `version: 1
rules:
  - name: ops-ssh
    targets: {tags: {team: ops}}
    who: {aws_principals: ["arn:aws:iam::*:user/demo"]}
    ports: [tcp/22]
    networks: [203.0.113.0/24]
    duration: {default: 30m, max: 1h}
    approval: auto
`
