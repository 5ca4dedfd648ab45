package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/adopt"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/scan"
)

type adoptOptions struct {
	all, apply, force, asJSON bool
	vpc, undo, policyFile     string
	groupName                 string
}

func (a *app) adoptCommand() *cobra.Command {
	var o adoptOptions
	cmd := &cobra.Command{
		Use:   "adopt INSTANCE... | --all --vpc VPC | --undo PLAN_ID",
		Short: "Move instances to latch: attach a managed group, remove their standing admin rules",
		Long: `Plan the move of instances to the baseline latch keeps: one security group
tagged latch:managed=true per VPC with no inbound rules (an existing one is
reused), attached to each instance, and the standing admin-port rules
'latch scan' found on their groups removed (only those).

Without --apply it is a dry run: it reads, prints every change, and
changes nothing. With --apply it records the plan in the audit log first
(intent before effect), then makes each change and audits it, and prints
the plan's ID. 'latch adopt --undo PLAN_ID' restores exactly the rules the
plan removed and the groups each instance had, and deletes the group it
created.

It never locks a team out: it refuses to remove an instance's last way in
when neither Session Manager is online on it nor a rule of --policy covers
it, and says which; --force removes it anyway. It also refuses to remove a
rule from a group that instances outside the plan use, naming them.

INSTANCE is an instance ID or its Name tag. The role it needs is printed
by 'latch iam-policy --for adopt'; the server's role cannot create groups.`,
		Example: `  latch adopt i-0a0b0c0d0e0f00004                   # dry run: what would change
  latch adopt i-0a0b0c0d0e0f00004 --policy policy.yaml --apply
  latch adopt --all --vpc vpc-0a1b2c3d4e5f60718       # every instance in a VPC
  latch adopt --undo adopt-20261205-1a2b3c4d          # put it all back`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.undo != "" {
				if len(args) > 0 || o.all || o.apply {
					return usagef("--undo takes only the plan's ID: no instances, --all or --apply")
				}
				return a.adoptUndo(cmd.Context(), o)
			}
			switch {
			case o.all && len(args) > 0:
				return usagef("give instances or --all --vpc, not both")
			case !o.all && o.vpc != "":
				return usagef("--vpc goes with --all; to adopt instances by name or ID, leave it out")
			case o.all && o.vpc == "":
				return latch.Invalidf("vpc", "--all needs --vpc: adopt plans one VPC at a time")
			case !o.all && len(args) == 0:
				return usagef("name the instances to adopt, or --all --vpc VPC\nSee 'latch adopt --help'.")
			}
			return a.adopt(cmd.Context(), args, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.apply, "apply", false, "make the changes (without it, a dry run)")
	f.BoolVar(&o.all, "all", false, "every instance in --vpc")
	f.StringVar(&o.vpc, "vpc", "", "the VPC --all adopts")
	f.BoolVar(&o.force, "force", false, "remove an instance's last way in, or a rule other instances use")
	f.StringVar(&o.undo, "undo", "", "undo the plan with this ID")
	f.StringVar(&o.policyFile, "policy", "", "a policy file: its ports are admin ports, and an instance a rule covers is not locked out")
	f.StringVar(&o.groupName, "group-name", "latch-managed", "the name of a group adopt creates")
	f.BoolVar(&o.asJSON, "json", false, "print JSON")
	a.addFlags(cmd, awsFlags, dbFlags, auditKeyFlags)
	return cmd
}

func (a *app) adopt(ctx context.Context, targets []string, o adoptOptions) error {
	opts, pol, err := a.scanJudgeOptions(o.policyFile, nil, 1)
	if err != nil {
		return err
	}
	region := a.regions[0]
	cfg, err := a.awsConfig(ctx, region)
	if err != nil {
		return err
	}
	est, err := latchaws.NewEstateReader(cfg).ReadEstate(ctx, region, nil)
	if err != nil {
		return err
	}
	if n, unread := est.Unread(latch.CheckGroups, latch.CheckInstances); unread {
		return latch.Errorf(latch.EFORBIDDEN, "adopt needs to read %s, and AWS refused; nothing was changed (latch iam-policy --for adopt)", n.Check)
	}
	ids, err := resolveTargets(est, targets, o.all, o.vpc)
	if err != nil {
		return err
	}
	report := scan.Judge([]latch.Estate{est}, opts)
	standing := map[latch.RuleID]string{}
	for _, f := range report.Findings {
		if f.Rule != nil && slices.Contains(removable, f.Check) {
			standing[f.Rule.ID] = f.ID
		}
	}
	in := adopt.Input{
		Estate:  est,
		Targets: ids,
		Standing: func(r latch.IngressRule) (string, bool) {
			id, ok := standing[r.ID]
			return id, ok
		},
		Covered: func(in latch.EstateInstance) (string, bool) {
			if pol == nil {
				return "", false
			}
			for _, g := range in.Groups {
				if rule, ok := pol.Covering(latch.Target{Region: est.Region, InstanceID: in.ID, GroupID: g, Tags: in.Tags}); ok {
					return rule, true
				}
			}
			return "", false
		},
		Force:      o.force,
		GroupName:  o.groupName,
		AdminPorts: opts.AdminPorts,
		Now:        a.clock.Now(),
		Actor:      a.directActor(ctx, region),
	}
	plan, err := adopt.NewPlan(in)
	if err != nil {
		return err
	}
	if !o.apply {
		if o.asJSON {
			return writeJSON(a.stdout, map[string]any{"dry_run": true, "plan": plan})
		}
		printPlan(a.stdout, plan)
		if len(plan.Refused) > 0 {
			return latch.Errorf(latch.ECONFLICT, "%d change(s) refused (see above); nothing was changed", len(plan.Refused))
		}
		if len(plan.Steps) > 0 {
			fmt.Fprintln(a.stdout, "\nDry run: nothing was changed. Run again with --apply to make these changes.")
		}
		return nil
	}
	if len(plan.Refused) > 0 {
		if !o.asJSON {
			printPlan(a.stdout, plan)
		}
		return latch.Errorf(latch.ECONFLICT, "%d change(s) refused (see above); nothing was changed, not even the rest: fix them or use --force", len(plan.Refused))
	}
	if len(plan.Steps) == 0 {
		fmt.Fprintln(a.stdout, "Nothing to change: these instances are adopted already.")
		return nil
	}
	store, err := a.store(ctx)
	if err != nil {
		return err
	}
	sign, err := a.auditSigner()
	if err != nil {
		return err
	}
	res, err := adopt.Apply(ctx, plan, latchaws.NewAdopter(cfg), store, sign, a.clock)
	if o.asJSON {
		if jerr := writeJSON(a.stdout, map[string]any{"dry_run": false, "plan": plan, "result": res}); jerr != nil {
			return jerr
		}
	} else {
		printResult(a.stdout, plan.ID, "done", res)
	}
	if err != nil {
		return fmt.Errorf("plan %s stopped: %w (what was done is audited; latch adopt --undo %s puts it back)", plan.ID, err, plan.ID)
	}
	if !o.asJSON {
		fmt.Fprintf(a.stdout, "\nApplied plan %s. To put everything back: latch adopt --undo %s\n", plan.ID, plan.ID)
	}
	return nil
}

func (a *app) adoptUndo(ctx context.Context, o adoptOptions) error {
	store, err := a.store(ctx)
	if err != nil {
		return err
	}
	plan, err := adopt.Recorded(ctx, store, o.undo)
	if err != nil {
		return err
	}
	cfg, err := a.awsConfig(ctx, plan.Region)
	if err != nil {
		return err
	}
	sign, err := a.auditSigner()
	if err != nil {
		return err
	}
	res, err := adopt.Undo(ctx, o.undo, latchaws.NewAdopter(cfg), store, sign, a.clock, a.directActor(ctx, plan.Region))
	if o.asJSON {
		if jerr := writeJSON(a.stdout, map[string]any{"plan_id": o.undo, "result": res}); jerr != nil {
			return jerr
		}
	} else {
		printResult(a.stdout, o.undo, "undone", res)
	}
	if err != nil {
		return err
	}
	if !o.asJSON {
		fmt.Fprintf(a.stdout, "\nUndid plan %s.\n", o.undo)
	}
	return nil
}

// resolveTargets turns instance IDs and Name tags into IDs, or --all into
// every live instance of vpc.
func resolveTargets(est latch.Estate, args []string, all bool, vpc string) ([]latch.InstanceID, error) {
	var out []latch.InstanceID
	if all {
		for _, in := range est.Instances {
			if in.VPC == vpc && in.Live() {
				out = append(out, in.ID)
			}
		}
		if len(out) == 0 {
			return nil, latch.Invalidf("vpc", "%s has no instances in %s", vpc, est.Region)
		}
		return out, nil
	}
	for _, arg := range args {
		var found []latch.InstanceID
		for _, in := range est.Instances {
			if in.Live() && (string(in.ID) == arg || in.Name == arg) {
				found = append(found, in.ID)
			}
		}
		switch {
		case len(found) == 0:
			return nil, latch.Invalidf("instance", "%q: no instance in %s has that ID or Name tag", arg, est.Region)
		case len(found) > 1:
			return nil, latch.Invalidf("instance", "%q names %d instances (%s); give their IDs", arg, len(found), joinIDs(found))
		}
		if !slices.Contains(out, found[0]) {
			out = append(out, found[0])
		}
	}
	return out, nil
}

func joinIDs(ids []latch.InstanceID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ", ")
}

func printPlan(w io.Writer, p adopt.Plan) {
	fmt.Fprintf(w, "Plan %s in %s: %d change(s)\n\n", p.ID, p.Region, len(p.Steps))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, s := range p.Steps {
		fmt.Fprintf(tw, "  %d.\t%s\n", i+1, esc(s.String()))
	}
	_ = tw.Flush()
	for _, warn := range p.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", esc(warn))
	}
	if len(p.Refused) > 0 {
		fmt.Fprintln(w, "\nRefused:")
		for _, r := range p.Refused {
			fmt.Fprintf(w, "  %s: %s\n", r.Kind, esc(r.Reason))
		}
	}
}

// removable are the scan's checks whose rules adopt removes: standing
// admin-port rules (world, wide, or in a managed group). Rules from a
// group or prefix list (LATCH004) stay: they are how other systems reach
// the instance, not a person's standing access.
var removable = []string{scan.AdminPortWorld, scan.AdminPortWide, scan.StandingInManaged}

// printResult writes what Apply or Undo did and skipped.
func printResult(w io.Writer, planID, done string, r adopt.Result) {
	fmt.Fprintf(w, "Plan %s:\n", planID)
	for _, d := range r.Done {
		line := d.Step.String()
		switch {
		case d.Step.Kind == adopt.CreateGroup && d.Group != "":
			line += " → " + string(d.Group)
		case d.RuleID != "":
			line += " → restored as " + string(d.RuleID)
		}
		fmt.Fprintf(w, "  %-8s %s\n", done, esc(line))
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "  %-8s %s: %s\n", "skipped", esc(s.Step.String()), esc(s.Reason))
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", esc(warn))
	}
}
