package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"

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

// SessionTarget is Scheduler's universal target for Systems Manager's
// TerminateSession: the schedule ends a Session Manager session at its
// grant's expiry itself. Universal targets name the API action in the
// SDK's camelCase, arn:aws:scheduler:::aws-sdk:SERVICE:apiAction, and take
// the request's JSON as Input (EventBridge Scheduler User Guide, "Using
// universal targets"); TerminateSession's request is {"SessionId": "…"}.
const SessionTarget = "arn:aws:scheduler:::aws-sdk:ssm:terminateSession"

// BackstopOptions configure the backstop schedules.
type BackstopOptions struct {
	Group         string // the schedule group; "" means "default"
	RoleARN       string // the role Scheduler assumes: only ec2:RevokeSecurityGroupIngress on managed groups and ssm:TerminateSession
	DeadLetterARN string // an SQS queue for runs that never succeeded; "" for none
}

// Backstop keeps, for each open latch rule, an EventBridge Scheduler
// one-time schedule that revokes it at its expiry, and for each Session
// Manager session latch started, one that terminates it at its grant's
// expiry: the second revocation path, which works when every latch process
// is gone.
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
	desc := fmt.Sprintf("latch backstop: revoke %s in %s at %s", rule, group, latch.FormatExpiry(at))
	err = b.put(ctx, c, ScheduleName(rule), RevokeTarget, string(input), desc, at)
	return translate("schedule the backstop for "+string(rule), err)
}

// SessionScheduleName is the schedule that ends session id. Schedule names
// allow only [0-9a-zA-Z-_.] and at most 64 characters, and a session ID
// is the role session's name (which may hold '@', '=', ',') and a suffix,
// up to 96 characters: so the name carries the first 16 hex digits of the
// ID's SHA-256, and the schedule's Input and description the ID itself.
func SessionScheduleName(id latch.SSMSessionID) string {
	sum := sha256.Sum256([]byte(id))
	return "latch-session-" + hex.EncodeToString(sum[:8])
}

// EnsureSession makes session id's schedule terminate it at at, creating
// the schedule or moving it.
func (b *Backstop) EnsureSession(ctx context.Context, region string, id latch.SSMSessionID, at time.Time) error {
	c, err := b.client(region)
	if err != nil {
		return err
	}
	input, _ := json.Marshal(struct {
		SessionId string //nolint:revive // the SSM API's own field name
	}{string(id)})
	desc := fmt.Sprintf("latch backstop: terminate session %s at %s", id, latch.FormatExpiry(at))
	err = b.put(ctx, c, SessionScheduleName(id), SessionTarget, string(input), desc, at)
	return translate("schedule the backstop for session "+string(id), err)
}

// CancelSession deletes session id's schedule. A schedule already gone
// (fired: one-time schedules delete themselves after completion, or never
// made) is not an error.
func (b *Backstop) CancelSession(ctx context.Context, region string, id latch.SSMSessionID) error {
	c, err := b.client(region)
	if err != nil {
		return err
	}
	return translate("delete the backstop for session "+string(id), b.delete(ctx, c, SessionScheduleName(id)))
}

// put creates the one-time schedule name calling target with input at
// at, or moves it there if it exists.
func (b *Backstop) put(ctx context.Context, c schedulerAPI, name, arn, input, desc string, at time.Time) error {
	target := &types.Target{
		Arn: aws.String(arn), RoleArn: aws.String(b.opts.RoleARN), Input: aws.String(input),
		RetryPolicy: &types.RetryPolicy{MaximumRetryAttempts: aws.Int32(185), MaximumEventAgeInSeconds: aws.Int32(86400)},
	}
	if b.opts.DeadLetterARN != "" {
		target.DeadLetterConfig = &types.DeadLetterConfig{Arn: aws.String(b.opts.DeadLetterARN)}
	}
	expr := "at(" + at.UTC().Format("2006-01-02T15:04:05") + ")"
	_, err := c.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
		Name: aws.String(name), GroupName: aws.String(b.opts.Group), ScheduleExpression: aws.String(expr),
		ScheduleExpressionTimezone: aws.String("UTC"), FlexibleTimeWindow: &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		ActionAfterCompletion: types.ActionAfterCompletionDelete, Target: target, Description: aws.String(desc),
	})
	if apiCode(err) == "ConflictException" {
		_, err = c.UpdateSchedule(ctx, &scheduler.UpdateScheduleInput{
			Name: aws.String(name), GroupName: aws.String(b.opts.Group), ScheduleExpression: aws.String(expr),
			ScheduleExpressionTimezone: aws.String("UTC"), FlexibleTimeWindow: &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
			ActionAfterCompletion: types.ActionAfterCompletionDelete, Target: target, Description: aws.String(desc),
		})
	}
	return err
}

// delete deletes schedule name; one already gone is not an error.
func (b *Backstop) delete(ctx context.Context, c schedulerAPI, name string) error {
	_, err := c.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String(name), GroupName: aws.String(b.opts.Group)})
	if apiCode(err) == "ResourceNotFoundException" {
		return nil
	}
	return err
}

// Cancel deletes rule's schedule. A schedule already gone (fired, or never
// made) is not an error.
func (b *Backstop) Cancel(ctx context.Context, region string, rule latch.RuleID) error {
	c, err := b.client(region)
	if err != nil {
		return err
	}
	return translate("delete the backstop for "+string(rule), b.delete(ctx, c, ScheduleName(rule)))
}

func (b *Backstop) client(region string) (schedulerAPI, error) {
	c, ok := b.clients[region]
	if !ok {
		return nil, latch.Invalidf("region", "no backstop for region %q", region)
	}
	return c, nil
}
