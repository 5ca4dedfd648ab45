package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/broker"
)

// check is one line of the doctor's report.
type check struct {
	Name   string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fatal  bool   `json:"fatal"` // latch cannot work without it
}

func (a *app) doctorCommand() *cobra.Command {
	var asJSON bool
	var targets []string
	var quota int
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check latch's setup: credentials, managed groups, backstop, Session Manager, database, audit key",
		Long: `Check, for each --region, what latch needs: AWS credentials, security groups
tagged latch:managed=true, the backstop schedule group and role
(--backstop-role-arn), the grant database and the audit signing key.

Each managed group's inbound rules are counted against EC2's quota per
group and address family (--rule-quota, 60 unless you raised quota
L-0EA8095F): at 80% or more it warns. When a group is full, a grant on
an instance opens in the instance's next managed group; with none, it
fails.

With --ssm-session-role, check Session Manager too: that the server's
credentials may assume the session role with a source identity (doctor
assumes it once, as latch-doctor, and starts nothing), and that
ssm:DescribeSessions answers, which the sweep needs. Each --target
(an instance ID or Name tag, in the first --region) is checked as a
session target: tagged latch:managed=true, its SSM agent Online.

Exits 1 if something latch cannot work without is missing.`,
		Example: `  latch doctor
  latch doctor --region us-east-1,eu-west-1 --backstop-role-arn arn:aws:iam::123456789012:role/latch-scheduler
  latch doctor --ssm-session-role arn:aws:iam::123456789012:role/latch-session --target web-1
  latch doctor --json | jq '.checks[] | select(.ok | not)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(targets) > 0 && a.ssmRole == "" {
				return usagef("--target checks an instance for Session Manager sessions; it needs --ssm-session-role")
			}
			if quota < 1 {
				return usagef("--rule-quota %d: want EC2's quota of inbound rules per security group, 1 or more (60 by default)", quota)
			}
			checks := a.doctor(cmd.Context(), targets, quota)
			if asJSON {
				if err := writeJSON(a.stdout, struct {
					Checks []check `json:"checks"`
				}{checks}); err != nil {
					return err
				}
			} else {
				for _, c := range checks {
					mark := "ok  "
					if !c.OK {
						mark = "WARN"
						if c.Fatal {
							mark = "FAIL"
						}
					}
					fmt.Fprintf(a.stdout, "%s  %-28s %s\n", mark, c.Name, c.Detail)
				}
			}
			for _, c := range checks {
				if c.Fatal && !c.OK {
					return fmt.Errorf("%s: %s", c.Name, c.Detail)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&quota, "rule-quota", latch.DefaultRuleQuota, "EC2's quota of inbound rules per security group and address family (L-0EA8095F), to warn at 80% of")
	cmd.Flags().StringArrayVar(&targets, "target", nil, "an instance (ID or Name tag) to check as a Session Manager target, in the first --region; repeatable")
	a.addFlags(cmd, append([]flagGroup{dbFlags}, brokerFlags...)...)
	return cmd
}

func (a *app) doctor(ctx context.Context, targets []string, quota int) []check {
	var out []check
	for i, region := range a.regions {
		cfg, err := a.awsConfig(ctx, region)
		if err != nil {
			return append(out, check{Name: "aws config " + region, Detail: err.Error(), Fatal: true})
		}
		checks, caller := a.doctorRegion(ctx, cfg, quota)
		out = append(out, checks...)
		if a.ssmRole != "" {
			out = append(out, a.doctorSessionRole(ctx, cfg, caller), doctorSessionSweep(ctx, cfg))
			if i == 0 {
				for _, t := range targets {
					out = append(out, doctorSessionTarget(ctx, cfg, t))
				}
			}
		}
	}
	if store, err := a.store(ctx); err != nil {
		out = append(out, check{Name: "grant database", Detail: err.Error(), Fatal: true})
	} else {
		out = append(out, check{Name: "grant database", OK: true, Detail: store.Path()})
	}
	switch {
	case a.auditKey == "":
		out = append(out, check{Name: "audit signing key", Detail: "none: entries are hash-chained but unsigned (--audit-key; 'latch audit keygen')"})
	default:
		if _, err := loadAuditKey(a.auditKey); err != nil {
			out = append(out, check{Name: "audit signing key", Detail: err.Error(), Fatal: true})
		} else {
			out = append(out, check{Name: "audit signing key", OK: true, Detail: a.auditKey})
		}
	}
	return out
}

// doctorRegion checks one region's credentials, managed groups and
// backstop. caller is the credentials' ARN, "" if STS did not say.
func (a *app) doctorRegion(ctx context.Context, cfg aws.Config, quota int) (out []check, caller string) {
	r := cfg.Region
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		out = append(out, check{Name: "credentials " + r, Detail: latchaws.ErrorLine(err), Fatal: true})
	} else {
		caller = aws.ToString(id.Arn)
		out = append(out, check{Name: "credentials " + r, OK: true, Detail: caller})
	}
	groups, err := latchaws.NewInventory(cfg, nil).ManagedGroups(ctx)
	switch {
	case err != nil:
		out = append(out, check{Name: "managed groups " + r, Detail: latchaws.ErrorLine(err), Fatal: true})
	case len(groups) == 0:
		out = append(out, check{Name: "managed groups " + r, Detail: "no security group is tagged latch:managed=true; latch will open nothing"})
	default:
		out = append(out, check{Name: "managed groups " + r, OK: true, Detail: fmt.Sprintf("%d tagged latch:managed=true", len(groups))})
		out = append(out, doctorRuleQuota(ctx, cfg, groups, quota)...)
	}
	return append(out, a.doctorBackstop(ctx, cfg)), caller
}

func (a *app) doctorBackstop(ctx context.Context, cfg aws.Config) check {
	name := "backstop " + cfg.Region
	if a.backstop.RoleARN == "" {
		return check{Name: name, Detail: "off: only latch processes revoke (set --backstop-role-arn for a schedule per grant in EventBridge Scheduler)"}
	}
	if _, err := scheduler.NewFromConfig(cfg).GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String(a.backstop.Group)}); err != nil {
		return check{Name: name, Detail: fmt.Sprintf("schedule group %q: %s", a.backstop.Group, latchaws.ErrorLine(err)), Fatal: true}
	}
	return check{Name: name, OK: true, Detail: fmt.Sprintf("group %s, role %s", a.backstop.Group, a.backstop.RoleARN)}
}

// doctorSessionName is the role session name and source identity doctor
// assumes the session role with: CloudTrail shows the check for what it
// is, and no requester's name is borrowed.
const doctorSessionName = "latch-doctor"

// doctorSessionRole checks that --ssm-session-role names a role and that
// the server's credentials may assume it as latch does, with a source
// identity. The credentials it gets are dropped unused.
func (a *app) doctorSessionRole(ctx context.Context, cfg aws.Config, caller string) check {
	name := "session role " + cfg.Region
	if err := latchaws.CheckRoleARN(a.ssmRole); err != nil {
		return check{Name: name, Detail: "--ssm-session-role: " + latch.ErrorMessage(err), Fatal: true}
	}
	out, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn: aws.String(a.ssmRole), RoleSessionName: aws.String(doctorSessionName), SourceIdentity: aws.String(doctorSessionName),
		DurationSeconds: aws.Int32(900), // STS's minimum
	})
	if err != nil {
		detail := latchaws.ErrorLine(err)
		if apiErr, ok := errors.AsType[smithy.APIError](err); ok && apiErr.ErrorCode() == "AccessDenied" {
			detail += fmt.Sprintf("; let latch's credentials assume the role with a source identity: its trust policy is "+
				"'latch iam-policy --for session-role-trust --server-role-arn %s', and the server's own policy "+
				"'latch iam-policy --for server --session-role-arn %s' allows sts:AssumeRole and sts:SetSourceIdentity on it",
				serverRoleARN(caller), a.ssmRole)
		}
		return check{Name: name, Detail: detail, Fatal: true}
	}
	as := a.ssmRole
	if out.AssumedRoleUser != nil {
		as = aws.ToString(out.AssumedRoleUser.Arn)
	}
	return check{Name: name, OK: true, Detail: "assumed with a source identity, as " + as}
}

// serverRoleARN is the principal a trust policy names for the caller: the
// role of an assumed-role session (arn:aws:sts::ACCOUNT:assumed-role/NAME/
// SESSION is arn:aws:iam::ACCOUNT:role/NAME, less any path the role has),
// or the caller's own ARN. "" (STS did not answer) becomes a placeholder.
func serverRoleARN(caller string) string {
	parts := strings.SplitN(caller, ":", 6)
	switch {
	case caller == "" || len(parts) != 6:
		return "ROLE-LATCH-RUNS-AS"
	case parts[2] == "sts" && strings.HasPrefix(parts[5], "assumed-role/"):
		role, _, _ := strings.Cut(strings.TrimPrefix(parts[5], "assumed-role/"), "/")
		return fmt.Sprintf("arn:%s:iam::%s:role/%s", parts[1], parts[4], role)
	}
	return caller
}

// doctorSessionSweep checks that ssm:DescribeSessions answers: the
// sweep lists sessions with it, and ends those past their grant's expiry.
func doctorSessionSweep(ctx context.Context, cfg aws.Config) check {
	name := "session sweep " + cfg.Region
	if _, err := ssm.NewFromConfig(cfg).DescribeSessions(ctx, &ssm.DescribeSessionsInput{
		State: ssmtypes.SessionStateActive, MaxResults: aws.Int32(1),
	}); err != nil {
		return check{Name: name, Detail: latchaws.ErrorLine(err) + "; the sweep lists sessions with ssm:DescribeSessions, which the server's policy ('latch iam-policy --for server') allows", Fatal: true}
	}
	return check{Name: name, OK: true, Detail: "ssm:DescribeSessions answers"}
}

// doctorSessionTarget checks that latch may start sessions on target, an
// instance ID or Name tag: it is tagged latch:managed=true and its SSM
// agent is online, as broker.CheckSessionTarget requires.
func doctorSessionTarget(ctx context.Context, cfg aws.Config, target string) check {
	name := "session target " + target
	in, err := broker.FindInstance(ctx, latchaws.NewInventory(cfg, nil), target)
	if err != nil {
		return check{Name: name, Detail: fmt.Sprintf("in %s: %s", cfg.Region, latchaws.ErrorLine(err)), Fatal: true}
	}
	if in.Tags[latch.TagManaged] != "true" {
		return check{Name: name, Detail: fmt.Sprintf("instance %s is not tagged %s=true, so latch never starts sessions on it (the session role may start them only on tagged instances): tag it to allow Session Manager access", in.ID, latch.TagManaged), Fatal: true}
	}
	agent, err := latchaws.NewSessionManager(cfg, "", nil).Agent(ctx, in.ID)
	switch {
	case err != nil:
		return check{Name: name, Detail: latchaws.ErrorLine(err), Fatal: true}
	case !agent.Registered:
		return check{Name: name, Detail: fmt.Sprintf("instance %s has no SSM agent registered with Systems Manager (ssm:DescribeInstanceInformation does not list it): install and start the SSM agent, and give the instance a role with the AmazonSSMManagedInstanceCore policy", in.ID), Fatal: true}
	case !agent.Online():
		return check{Name: name, Detail: fmt.Sprintf("the SSM agent on instance %s has PingStatus %s, not Online, so sessions cannot start: check that the agent runs (systemctl status amazon-ssm-agent), that the instance's role has AmazonSSMManagedInstanceCore, and that it can reach Systems Manager's endpoints", in.ID, agent.PingStatus), Fatal: true}
	}
	return check{Name: name, OK: true, Detail: fmt.Sprintf("instance %s, tagged %s=true, SSM agent Online (%s, %s)", in.ID, latch.TagManaged, agent.Platform, agent.Version)}
}

// quotaWarnAt is the share of the rule quota at which doctor warns.
const quotaWarnAt = 0.8

// doctorRuleQuota counts each managed group's inbound rules, per address
// family as EC2's quota counts them, and warns for each at 80% of quota
// or more: one check per group, by ID.
func doctorRuleQuota(ctx context.Context, cfg aws.Config, groups []latch.Group, quota int) []check {
	counts, err := inboundRules(ctx, ec2.NewFromConfig(cfg), groups)
	if err != nil {
		return []check{{Name: "rule quota " + cfg.Region, Detail: latchaws.ErrorLine(err)}}
	}
	var out []check
	for _, g := range groups {
		n := counts[g.ID]
		used, family := n[0], "IPv4"
		if n[1] > used {
			used, family = n[1], "IPv6"
		}
		c := check{Name: "rules " + string(g.ID), OK: float64(used) < quotaWarnAt*float64(quota),
			Detail: fmt.Sprintf("%d of %d inbound %s rules (%d%%)", used, quota, family, used*100/quota)}
		switch {
		case used >= quota:
			c.Detail += "; full: grants on instances with another group tagged latch:managed=true open there, others fail. Attach another managed group to its instances, end grants, or raise quota L-0EA8095F (then pass --rule-quota)"
		case !c.OK:
			c.Detail += "; nearly full: attach another group tagged latch:managed=true to its instances (latch opens the next when one is full), or raise quota L-0EA8095F"
		}
		out = append(out, c)
	}
	return out
}

// inboundRules counts the inbound rules of groups, [IPv4, IPv6]. A rule
// that references a group or prefix list counts in both families, as EC2
// counts it.
func inboundRules(ctx context.Context, c *ec2.Client, groups []latch.Group) (map[latch.GroupID][2]int, error) {
	counts := map[latch.GroupID][2]int{}
	for chunk := range slices.Chunk(groups, latch.MaxRevokeBatch) { // as many values as latch puts in any one filter
		var ids []string
		for _, g := range chunk {
			ids = append(ids, string(g.ID))
		}
		p := ec2.NewDescribeSecurityGroupRulesPaginator(c, &ec2.DescribeSecurityGroupRulesInput{
			Filters:    []ec2types.Filter{{Name: aws.String("group-id"), Values: ids}},
			MaxResults: aws.Int32(1000),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, r := range page.SecurityGroupRules {
				if aws.ToBool(r.IsEgress) {
					continue
				}
				id := latch.GroupID(aws.ToString(r.GroupId))
				n := counts[id]
				switch {
				case r.CidrIpv4 != nil:
					n[0]++
				case r.CidrIpv6 != nil:
					n[1]++
				default:
					n[0]++
					n[1]++
				}
				counts[id] = n
			}
		}
	}
	return counts, nil
}
