package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/iampolicy"
)

// iamPolicies are the documents `latch iam-policy --for` can print.
var iamPolicies = []struct {
	name  string
	build func(iampolicy.Options) iampolicy.Document
}{
	{"server", iampolicy.Server},
	{"lambda", iampolicy.Lambda},
	{"scheduler", iampolicy.Scheduler},
	{"sweeper", iampolicy.Sweeper},
	{"session-role", iampolicy.SessionRole},
	{"session-role-trust", func(o iampolicy.Options) iampolicy.Document { return iampolicy.SessionRoleTrust(o.ServerRoleARN) }},
	{"scan", iampolicy.Scan},
	{"adopt", iampolicy.Adopt},
}

func iamPolicyNames() string {
	names := make([]string, len(iamPolicies))
	for i, p := range iamPolicies {
		names[i] = p.name
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

func (a *app) iamPolicyCommand() *cobra.Command {
	var (
		which string
		opts  iampolicy.Options
		ssm   bool
	)
	cmd := &cobra.Command{
		Use:   "iam-policy --for server|lambda|scheduler|sweeper|session-role|session-role-trust|scan|adopt",
		Short: "Print the least-privilege IAM policy a latch role needs",
		Long: `Print, as an IAM policy document, exactly what one of latch's roles may do:

  server     the role of latch server, run, sweep, grant, revoke and doctor:
             open and close rules only in groups tagged latch:managed=true,
             create only rules carrying latch:expires-at, tag only latch's
             rules with latch's keys, read instances, groups and rules, keep
             backstop schedules in one schedule group and pass them only the
             scheduler role
  lambda     the Lambda function's execution role: the server's, plus writing
             its own log group
  scheduler  the role EventBridge Scheduler assumes to revoke a rule or end a
             Session Manager session at its expiry: RevokeSecurityGroupIngress
             in managed groups and ssm:TerminateSession, nothing else
  sweeper    the role the sweep schedule uses to invoke the function
  session-role
             the role the server assumes, as the requester, to start Session
             Manager sessions: ssm:StartSession only on instances tagged
             latch:managed=true and only with latch's three documents
  session-role-trust
             that role's trust policy: only --server-role-arn may assume it,
             and only with a source identity (the requester) set
  scan       the role latch scan runs with: read-only (groups, rules,
             instances, launch templates, SSM agents, instance roles and
             iam:SimulatePrincipalPolicy on them, trails); a scan refused
             part of it reports that part as not checked
  adopt      the role latch adopt --apply and --undo run with: the scan's
             reads, creating groups only tagged latch:managed=true and
             latch:adopt-plan, attaching groups, revoking standing rules
             and restoring them on undo, deleting only groups a plan
             created. An admin's role: the server's can create no group

The server's policy includes Session Manager (assume the session role, end
sessions, read sessions and agents) unless --ssm=false; it never holds
ssm:StartSession, and neither do requesters: latch starts sessions with
the session role (--session-role-arn, default role/latch-session).

Without --account and --region the policy applies in every account and
region; name them to narrow it. The scheduler role, schedule group and
dead-letter queue default to the backstop's (--backstop-role-arn,
--backstop-group, --backstop-dlq-arn, or their LATCH_ variables). deploy/cloudformation and deploy/terraform
create these roles with the same statements. latch audit proof and
reconcile are not covered: run them with credentials that may call
cloudtrail:LookupEvents.`,
		Example: `  latch iam-policy --for server
  latch iam-policy --for server --account 123456789012 --region eu-west-1 \
    --scheduler-role-arn arn:aws:iam::123456789012:role/latch-scheduler > latch-server.json
  latch iam-policy --for scheduler --dead-letter-arn arn:aws:sqs:eu-west-1:123456789012:latch-dead-letters
  latch iam-policy --for session-role --account 123456789012
  latch iam-policy --for session-role-trust --server-role-arn arn:aws:iam::123456789012:role/latch-server
  latch iam-policy --for server --ssm=false
  latch iam-policy --for scan --account 123456789012
  latch iam-policy --for adopt --account 123456789012 --region eu-west-1`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if which == "" {
				return latch.Invalidf("for", "--for is required: want %s", iamPolicyNames())
			}
			var build func(iampolicy.Options) iampolicy.Document
			for _, p := range iamPolicies {
				if p.name == which {
					build = p.build
				}
			}
			if build == nil {
				return latch.Invalidf("for", "%q is not one of latch's roles; want %s", which, iamPolicyNames())
			}
			if which == "session-role-trust" && opts.ServerRoleARN == "" {
				return latch.Invalidf("server-role-arn", "--for session-role-trust needs --server-role-arn, the role latch runs as")
			}
			opts.NoSSM = !ssm
			if opts.SchedulerRoleARN == "" {
				opts.SchedulerRoleARN = a.backstop.RoleARN
			}
			if opts.ScheduleGroup == "" {
				opts.ScheduleGroup = a.backstop.Group
			}
			if opts.DeadLetterQueueARN == "" {
				opts.DeadLetterQueueARN = a.backstop.DeadLetterARN
			}
			if err := opts.Validate(); err != nil {
				return err
			}
			out, err := json.MarshalIndent(build(opts), "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "%s\n", out)
			return err
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("%w\nSee '%s --help'.", err, c.CommandPath())
	})
	f := cmd.Flags()
	f.StringVar(&which, "for", "", "the role: "+iamPolicyNames())
	f.StringVar(&opts.Account, "account", "", `the AWS account ID the policy applies in (default "*", any)`)
	// Not the AWS group's --region: one region, or "*", not a list to connect to.
	f.StringVar(&opts.Region, "region", "", `the region the policy applies in (default "*", any)`)
	f.StringVar(&opts.Partition, "partition", "", "the AWS partition (default aws)")
	f.StringVar(&opts.ScheduleGroup, "schedule-group", "", "the EventBridge Scheduler group of the backstop schedules (default --backstop-group)")
	f.StringVar(&opts.SchedulerRoleARN, "scheduler-role-arn", "", "the role backstop schedules run as (default --backstop-role-arn, else role/latch-scheduler in --account)")
	f.StringVar(&opts.LogGroupARN, "log-group-arn", "", "for lambda: the function's log group (default /aws/lambda/latch)")
	f.StringVar(&opts.FunctionARN, "function-arn", "", "for sweeper: the function to invoke (default function:latch)")
	f.StringVar(&opts.DeadLetterQueueARN, "dead-letter-arn", "", "for scheduler: the SQS queue for revocations that never ran (default --backstop-dlq-arn, else none)")
	f.BoolVar(&ssm, "ssm", true, "for server and lambda: include Session Manager (assume the session role, end and read sessions)")
	f.StringVar(&opts.SessionRoleARN, "session-role-arn", "", "for server and lambda: the role latch starts Session Manager sessions as (default role/latch-session in --account)")
	f.StringVar(&opts.ServerRoleARN, "server-role-arn", "", "for session-role-trust: the role latch runs as, the only one that may assume the session role")
	a.addFlags(cmd, backstopFlags) // the defaults of --scheduler-role-arn, --schedule-group, --dead-letter-arn
	return cmd
}
