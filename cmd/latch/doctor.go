package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"

	latchaws "github.com/latchdev/latch/aws"
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
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check latch's setup: credentials, managed groups, backstop, database, audit key",
		Long: `Check, for each --region, what latch needs: AWS credentials, security groups
tagged latch:managed=true, the backstop schedule group and role
(--backstop-role-arn), the grant database and the audit signing key.
Exits 1 if something latch cannot work without is missing.`,
		Example: `  latch doctor
  latch doctor --region us-east-1,eu-west-1 --backstop-role-arn arn:aws:iam::123456789012:role/latch-scheduler
  latch doctor --json | jq '.checks[] | select(.ok | not)'`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			checks := a.doctor(cmd.Context())
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
	a.addFlags(cmd, append([]flagGroup{dbFlags}, brokerFlags...)...)
	return cmd
}

func (a *app) doctor(ctx context.Context) []check {
	var out []check
	for _, region := range a.regions {
		cfg, err := a.awsConfig(ctx, region)
		if err != nil {
			return append(out, check{Name: "aws config " + region, Detail: err.Error(), Fatal: true})
		}
		out = append(out, a.doctorRegion(ctx, cfg)...)
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

func (a *app) doctorRegion(ctx context.Context, cfg aws.Config) []check {
	r := cfg.Region
	var out []check
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		out = append(out, check{Name: "credentials " + r, Detail: latchaws.ErrorLine(err), Fatal: true})
	} else {
		out = append(out, check{Name: "credentials " + r, OK: true, Detail: aws.ToString(id.Arn)})
	}
	groups, err := latchaws.NewInventory(cfg, nil).ManagedGroups(ctx)
	switch {
	case err != nil:
		out = append(out, check{Name: "managed groups " + r, Detail: latchaws.ErrorLine(err), Fatal: true})
	case len(groups) == 0:
		out = append(out, check{Name: "managed groups " + r, Detail: "no security group is tagged latch:managed=true; latch will open nothing"})
	default:
		out = append(out, check{Name: "managed groups " + r, OK: true, Detail: fmt.Sprintf("%d tagged latch:managed=true", len(groups))})
	}
	if a.backstop.RoleARN == "" {
		return append(out, check{Name: "backstop " + r, Detail: "off: only latch processes revoke (set --backstop-role-arn for a schedule per grant in EventBridge Scheduler)"})
	}
	if _, err := scheduler.NewFromConfig(cfg).GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String(a.backstop.Group)}); err != nil {
		return append(out, check{Name: "backstop " + r, Detail: fmt.Sprintf("schedule group %q: %s", a.backstop.Group, latchaws.ErrorLine(err)), Fatal: true})
	}
	return append(out, check{Name: "backstop " + r, OK: true, Detail: fmt.Sprintf("group %s, role %s", a.backstop.Group, a.backstop.RoleARN)})
}
