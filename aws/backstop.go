package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/smithy-go"

	"github.com/latchdev/latch"
)

// schedulerAPI is the part of the Scheduler client the backstop calls.
type schedulerAPI interface {
	CreateSchedule(context.Context, *scheduler.CreateScheduleInput, ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error)
	UpdateSchedule(context.Context, *scheduler.UpdateScheduleInput, ...func(*scheduler.Options)) (*scheduler.UpdateScheduleOutput, error)
	DeleteSchedule(context.Context, *scheduler.DeleteScheduleInput, ...func(*scheduler.Options)) (*scheduler.DeleteScheduleOutput, error)
}

// RevokeTarget is Scheduler's universal target for EC2's
// RevokeSecurityGroupIngress: the schedule revokes the rule itself, with
// no Lambda and no latch process involved.
const RevokeTarget = "arn:aws:scheduler:::aws-sdk:ec2:revokeSecurityGroupIngress"

// BackstopOptions configure the backstop schedules.
type BackstopOptions struct {
	Group         string // the schedule group; "" means "default"
	RoleARN       string // the role Scheduler assumes to revoke: only ec2:RevokeSecurityGroupIngress on managed groups
	DeadLetterARN string // an SQS queue for runs that never succeeded; "" for none
}

// Backstop keeps, for each open latch rule, an EventBridge Scheduler
// one-time schedule that revokes it at its expiry: the second revocation
// path, which works when every latch process is gone.
type Backstop struct {
	clients map[string]schedulerAPI // by region
	opts    BackstopOptions
}

// NewBackstop returns a backstop with one Scheduler client per config.
func NewBackstop(cfgs []aws.Config, opts BackstopOptions) *Backstop {
	if opts.Group == "" {
		opts.Group = "default"
	}
	b := &Backstop{clients: map[string]schedulerAPI{}, opts: opts}
	for _, cfg := range cfgs {
		b.clients[cfg.Region] = scheduler.NewFromConfig(cfg)
	}
	return b
}

// ScheduleName is the schedule that backs rule up: one per rule, so grants
// sharing a rule share its schedule.
func ScheduleName(rule latch.RuleID) string { return "latch-" + string(rule) }

// Ensure makes rule's schedule revoke it at at, creating the schedule or
// moving it.
func (b *Backstop) Ensure(ctx context.Context, region string, group latch.GroupID, rule latch.RuleID, at time.Time) error {
	c, err := b.client(region)
	if err != nil {
		return err
	}
	input, _ := json.Marshal(struct {
		GroupId              string   //nolint:revive // the EC2 API's own field names
		SecurityGroupRuleIds []string //nolint:revive
	}{string(group), []string{string(rule)}})
	target := &types.Target{
		Arn: aws.String(RevokeTarget), RoleArn: aws.String(b.opts.RoleARN), Input: aws.String(string(input)),
		RetryPolicy: &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(185), MaximumEventAgeInSeconds: aws.Int32(86400)},
	}
	if b.opts.DeadLetterARN != "" {
		target.DeadLetterConfig = &types.DeadLetterConfig{Arn: aws.String(b.opts.DeadLetterARN)}
	}
	expr := "at(" + at.UTC().Format("2006-01-02T15:04:05") + ")"
	desc := fmt.Sprintf("latch backstop: revoke %s in %s at %s", rule, group, latch.FormatExpiry(at))
	name := ScheduleName(rule)
	_, err = c.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
		Name: aws.String(name), GroupName: aws.String(b.opts.Group), ScheduleExpression: aws.String(expr),
		ScheduleExpressionTimezone: aws.String("UTC"), FlexibleTimeWindow: &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		ActionAfterCompletion: types.ActionAfterCompletionDelete, Target: target, Description: aws.String(desc),
	})
	if schedulerCode(err) == "ConflictException" {
		_, err = c.UpdateSchedule(ctx, &scheduler.UpdateScheduleInput{
			Name: aws.String(name), GroupName: aws.String(b.opts.Group), ScheduleExpression: aws.String(expr),
			ScheduleExpressionTimezone: aws.String("UTC"), FlexibleTimeWindow: &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
			ActionAfterCompletion: types.ActionAfterCompletionDelete, Target: target, Description: aws.String(desc),
		})
	}
	return translate("schedule the backstop for "+string(rule), err)
}

// Cancel deletes rule's schedule. A schedule already gone (fired, or never
// made) is not an error.
func (b *Backstop) Cancel(ctx context.Context, region string, rule latch.RuleID) error {
	c, err := b.client(region)
	if err != nil {
		return err
	}
	_, err = c.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(ScheduleName(rule)), GroupName: aws.String(b.opts.Group)})
	if schedulerCode(err) == "ResourceNotFoundException" {
		return nil
	}
	return translate("delete the backstop for "+string(rule), err)
}

func (b *Backstop) client(region string) (schedulerAPI, error) {
	c, ok := b.clients[region]
	if !ok {
		return nil, latch.Invalidf("region", "no backstop for region %q", region)
	}
	return c, nil
}

func schedulerCode(err error) string {
	if apiErr, ok := errors.AsType[smithy.APIError](err); ok {
		return apiErr.ErrorCode()
	}
	return ""
}
