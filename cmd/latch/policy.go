package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/policy"
)

func (a *app) policyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check, test and explain access policies",
		Long: `A policy file says who may ask for access to which targets, on which ports,
for how long, and with whose approval. Rules are read in order and the
first that applies to the caller, the target and the port decides.`,
	}
	cmd.AddCommand(a.policyCheckCommand(), a.policyTestCommand(), a.policyExplainCommand())
	return cmd
}

func (a *app) policyCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a policy file",
		Long: `Validate a policy file and list its rules. Errors give the file, line and
field, and exit 2. Warnings (on stderr, exit 0) name rules that are valid
but cannot work as written, such as an approval no set of identities could
ever give.`,
		Example: `  latch policy check policy.yaml
  latch policy check policy.yaml 2>&1 | grep warning`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			p, err := policy.Load(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: ok, %d rule(s)\n", args[0], len(p.Rules()))
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			for _, r := range p.Rules() {
				approval := "auto"
				if r.Approvals > 0 {
					approval = fmt.Sprintf("%d from %s", r.Approvals, r.Approvers.Or())
				}
				fmt.Fprintf(tw, "  %s\tline %d\tmax %s\tapproval %s\n", r.Name, r.Line, r.MaxDuration, approval)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, w := range p.Warnings() {
				fmt.Fprintf(a.stderr, "%s: warning: %s\n", args[0], w)
			}
			return nil
		},
	}
}

func (a *app) policyTestCommand() *cobra.Command {
	var policyFile string
	cmd := &cobra.Command{
		Use:   "test TESTS --policy FILE",
		Short: "Run a table of expected decisions against a policy",
		Long: `Run a YAML table of cases (who, target, port, duration → allowed,
needs-approval or denied, and optionally the deciding rule) against a
policy, so policy changes can be reviewed like code. Exits 1 if any case
fails.`,
		Example: "  latch policy test policy_test.yaml --policy policy.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if policyFile == "" {
				return latch.Invalidf("policy", "--policy FILE is required")
			}
			p, err := policy.Load(policyFile)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			results, err := policy.RunTests(p, args[0], data)
			if err != nil {
				return err
			}
			failed := 0
			for _, r := range results {
				mark := "PASS"
				if !r.Pass {
					mark, failed = "FAIL", failed+1
				}
				fmt.Fprintf(a.stdout, "%s  %s", mark, r.Name)
				if !r.Pass {
					fmt.Fprintf(a.stdout, ": %s", r.Message)
				}
				fmt.Fprintln(a.stdout)
			}
			fmt.Fprintf(a.stdout, "%d passed, %d failed\n", len(results)-failed, failed)
			if failed > 0 {
				return fmt.Errorf("%d policy test(s) failed", failed)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&policyFile, "policy", "", "the policy file to test")
	return cmd
}

type explainOptions struct {
	policyFile, as, target string
	groups                 []string
	document               string
	port                   int
	json                   bool
}

func (a *app) policyExplainCommand() *cobra.Command {
	var o explainOptions
	cmd := &cobra.Command{
		Use:   "explain --target i-… [--as IDENTITY] [--policy FILE] [--document DOC [--port N]]",
		Short: "Say what an identity may do on a target, and which rule decides",
		Long: `List every rule with whether it applies to IDENTITY on the target, why not,
or what it allows. The first rule that applies to a port decides it.

With --policy, latch reads the file and looks the target up in AWS itself
(your credentials); otherwise it asks the server ($LATCH_SERVER), where
only admins may ask about someone else. --as names the identity: an email
or subject (with --groups), or an AWS ARN.

--document explains a Session Manager session instead (shell,
port-forward or ssh; --port is the port on the instance, 22 by default
for ssh): only a rule whose ssm section allows the document and port
decides it, and each rule that matches the target and identity but not
its ssm section says why it was skipped. A rule's networks hold where a
session request comes from, which an explanation does not check.`,
		Example: `  latch policy explain --target i-0a0b0c0d0e0f00001
  latch policy explain --policy policy.yaml --as alice@example.com --groups dev --target i-0a0b0c0d0e0f00001
  latch policy explain --policy policy.yaml --as alice@example.com --groups dev --target i-0a0b0c0d0e0f00001 \
    --document port-forward --port 5432
  latch policy explain --target web-1 --document ssh`,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.policyExplain(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.policyFile, "policy", "", "explain from this file instead of asking the server")
	f.StringVar(&o.as, "as", "", "the identity to explain for (default: you)")
	f.StringSliceVar(&o.groups, "groups", nil, "the identity's groups")
	f.StringVar(&o.target, "target", "", "an instance ID or managed security group ID")
	f.StringVar(&o.document, "document", "", "explain a Session Manager session: shell, port-forward or ssh")
	f.IntVar(&o.port, "port", 0, "with --document port-forward or ssh: the port on the instance (default 22 for ssh)")
	f.BoolVar(&o.json, "json", false, "print JSON")
	a.addFlags(cmd, serverFlags, awsFlags) // the server's answer, or AWS's with --policy
	return cmd
}

type explainJSON struct {
	Rule    string `json:"rule"`
	Applies bool   `json:"applies"`
	Why     string `json:"why"`
}

func (a *app) policyExplain(cmd *cobra.Command, o explainOptions) error {
	ctx := cmd.Context()
	if o.target == "" {
		return latch.Invalidf("target", "--target i-… (or sg-…) is required")
	}
	doc, port, err := explainSession(o)
	if err != nil {
		return err
	}
	var out []explainJSON
	if o.policyFile == "" {
		c, err := a.client(ctx)
		if err != nil {
			return err
		}
		ex, err := c.ExplainSession(ctx, o.target, "", o.as, o.groups, doc, port)
		if err != nil {
			return err
		}
		for _, e := range ex {
			out = append(out, explainJSON(e))
		}
	} else {
		p, err := policy.Load(o.policyFile)
		if err != nil {
			return err
		}
		if o.as == "" {
			return latch.Invalidf("as", "--as IDENTITY is required with --policy")
		}
		who := latch.Identity{Kind: latch.KindOIDC, Subject: o.as, Groups: o.groups}
		if strings.HasPrefix(o.as, "arn:aws:") {
			who.Kind = latch.KindIAM
		}
		target, err := a.resolveTarget(ctx, o.target, doc != "")
		if err != nil {
			return err
		}
		explained := p.Explain(who, target)
		if doc != "" {
			explained = p.ExplainSession(who, target, doc, port)
		}
		for _, e := range explained {
			out = append(out, explainJSON{Rule: e.Rule.Name, Applies: e.Applies, Why: e.Why})
		}
	}
	if o.json {
		if out == nil {
			out = []explainJSON{}
		}
		return writeJSON(a.stdout, struct {
			Rules []explainJSON `json:"rules"`
		}{out})
	}
	for _, e := range out {
		mark := "  -"
		if e.Applies {
			mark = "  ✓"
		}
		fmt.Fprintf(a.stdout, "%s %s: %s\n", mark, esc(e.Rule), esc(e.Why))
	}
	return nil
}

// explainSession reads --document and --port: the session to explain, or
// "" for an opening.
func explainSession(o explainOptions) (latch.SSMDocument, int, error) {
	if o.document == "" {
		if o.port != 0 {
			return "", 0, latch.Invalidf("port", "--port goes with --document port-forward or ssh")
		}
		return "", 0, nil
	}
	doc, err := latch.ParseSSMDocument(o.document)
	if err != nil {
		return "", 0, err
	}
	switch {
	case !doc.TakesPort() && o.port != 0:
		return "", 0, latch.Invalidf("port", "--port does not go with --document %s, which reaches no port", doc)
	case doc == latch.DocSSH && o.port == 0:
		return doc, 22, nil
	case doc.TakesPort() && (o.port < 1 || o.port > 65535):
		return "", 0, latch.Invalidf("port", "--document %s needs --port, the port on the instance (1-65535)", doc)
	}
	return doc, o.port, nil
}

// resolveTarget looks a target up in AWS directly, for offline explain:
// for a session, the instance alone (it needs no managed group).
func (a *app) resolveTarget(ctx context.Context, target string, session bool) (latch.Target, error) {
	inv, err := a.inventories(ctx)
	if err != nil {
		return latch.Target{}, err
	}
	if session {
		return broker.SessionTarget(ctx, inv[a.regions[0]], a.regions[0], target)
	}
	return broker.ResolveTarget(ctx, inv[a.regions[0]], a.regions[0], target)
}
