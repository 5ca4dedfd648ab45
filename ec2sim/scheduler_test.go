package ec2sim_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the time zone tests must not depend on the host's zoneinfo

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	stypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/aws/smithy-go"

	"github.com/latchdev/latch/ec2sim"
)

const (
	revokeARN    = "arn:aws:scheduler:::aws-sdk:ec2:revokeSecurityGroupIngress"
	authorizeARN = "arn:aws:scheduler:::aws-sdk:ec2:authorizeSecurityGroupIngress"
	backstopRole = "arn:aws:iam::123456789012:role/latch-backstop"
	lambdaARN    = "arn:aws:lambda:us-east-1:123456789012:function:latch-sweep"
	deadLetters  = "arn:aws:sqs:us-east-1:123456789012:latch-backstop-dlq"
)

// t0 is the tests' starting time.
var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// schedClient is an SDK Scheduler client for the simulator at url, with
// newClient's retry policy (no backoff, no quota).
func schedClient(t testing.TB, url, region string, optFns ...func(*scheduler.Options)) *scheduler.Client {
	t.Helper()
	return scheduler.NewFromConfig(simConfig(t, url, region), optFns...)
}

// oneTime is a CreateScheduleInput for a one-time schedule at at (UTC)
// that calls target and deletes itself after.
func oneTime(name string, at time.Time, target *stypes.Target) *scheduler.CreateScheduleInput {
	return &scheduler.CreateScheduleInput{
		Name:                       aws.String(name),
		ScheduleExpression:         aws.String("at(" + at.UTC().Format("2006-01-02T15:04:05") + ")"),
		ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow:         &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeOff},
		ActionAfterCompletion:      stypes.ActionAfterCompletionDelete,
		Target:                     target,
	}
}

// revokeTarget is the universal target that revokes ruleIDs in group.
func revokeTarget(group string, ruleIDs ...string) *stypes.Target {
	ids := `"` + strings.Join(ruleIDs, `","`) + `"`
	return &stypes.Target{
		Arn: aws.String(revokeARN), RoleArn: aws.String(backstopRole),
		Input: aws.String(`{"GroupId":"` + group + `","SecurityGroupRuleIds":[` + ids + `]}`),
	}
}

func lambdaTarget(input string) *stypes.Target {
	return &stypes.Target{Arn: aws.String(lambdaARN), RoleArn: aws.String(backstopRole), Input: aws.String(input)}
}

// wantSchedErr fails unless err is Scheduler's code with status, and its
// message holds every part.
func wantSchedErr(t testing.TB, err error, code string, status int, parts ...string) {
	t.Helper()
	var apiErr smithy.APIError
	var respErr *awshttp.ResponseError
	if !errors.As(err, &apiErr) || !errors.As(err, &respErr) {
		t.Fatalf("err = %v, want %s (HTTP %d)", err, code, status)
	}
	if apiErr.ErrorCode() != code || respErr.HTTPStatusCode() != status {
		t.Fatalf("err = %s (HTTP %d) %q, want %s (HTTP %d)", apiErr.ErrorCode(), respErr.HTTPStatusCode(), apiErr.ErrorMessage(), code, status)
	}
	for _, p := range parts {
		if !strings.Contains(apiErr.ErrorMessage(), p) {
			t.Errorf("%s message %q does not mention %q", code, apiErr.ErrorMessage(), p)
		}
	}
}

func TestScheduler_CreateGetUpdateDelete(t *testing.T) {
	clock := &testClock{now: t0}
	c := schedClient(t, mustStart(t, ec2sim.New(ec2sim.Options{Now: clock.Now})), "us-east-1")
	ctx := t.Context()

	in := oneTime("latch-sgr-1", t0.Add(15*time.Minute), revokeTarget("sg-1", "sgr-1"))
	in.Description = aws.String("latch backstop")
	in.Target.DeadLetterConfig = &stypes.DeadLetterConfig{Arn: aws.String(deadLetters)}
	out, err := c.CreateSchedule(ctx, in)
	if err != nil {
		t.Fatalf("CreateSchedule = %v", err)
	}
	arn := "arn:aws:scheduler:us-east-1:123456789012:schedule/default/latch-sgr-1"
	if got := aws.ToString(out.ScheduleArn); got != arn {
		t.Errorf("ScheduleArn = %s, want %s", got, arn)
	}
	got, err := c.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("latch-sgr-1")})
	if err != nil {
		t.Fatalf("GetSchedule = %v", err)
	}
	for _, f := range []struct{ name, got, want string }{
		{"Arn", aws.ToString(got.Arn), arn},
		{"GroupName", aws.ToString(got.GroupName), "default"},
		{"ScheduleExpression", aws.ToString(got.ScheduleExpression), "at(2026-11-23T10:15:00)"},
		{"ScheduleExpressionTimezone", aws.ToString(got.ScheduleExpressionTimezone), "UTC"},
		{"State", string(got.State), "ENABLED"},
		{"ActionAfterCompletion", string(got.ActionAfterCompletion), "DELETE"},
		{"Description", aws.ToString(got.Description), "latch backstop"},
		{"FlexibleTimeWindow.Mode", string(got.FlexibleTimeWindow.Mode), "OFF"},
		{"Target.Input", aws.ToString(got.Target.Input), `{"GroupId":"sg-1","SecurityGroupRuleIds":["sgr-1"]}`},
		{"Target.RoleArn", aws.ToString(got.Target.RoleArn), backstopRole},
		{"Target.DeadLetterConfig.Arn", aws.ToString(got.Target.DeadLetterConfig.Arn), deadLetters},
	} {
		if f.got != f.want {
			t.Errorf("%s = %q, want %q", f.name, f.got, f.want)
		}
	}
	// Scheduler reports its default retry policy when none was given.
	if rp := got.Target.RetryPolicy; rp == nil || aws.ToInt32(rp.MaximumRetryAttempts) != 185 || aws.ToInt32(rp.MaximumEventAgeInSeconds) != 86400 {
		t.Errorf("RetryPolicy = %+v, want the defaults 185 attempts, 86400 s", rp)
	}
	if !got.CreationDate.Equal(t0) || !got.LastModificationDate.Equal(t0) {
		t.Errorf("CreationDate, LastModificationDate = %v, %v, want %v", got.CreationDate, got.LastModificationDate, t0)
	}

	// An update replaces the whole schedule: what it leaves out is reset.
	clock.Set(t0.Add(time.Minute))
	_, err = c.UpdateSchedule(ctx, &scheduler.UpdateScheduleInput{
		Name: aws.String("latch-sgr-1"), ScheduleExpression: aws.String("rate(5 minutes)"), State: stypes.ScheduleStateDisabled,
		FlexibleTimeWindow: &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeFlexible, MaximumWindowInMinutes: aws.Int32(10)},
		Target:             lambdaTarget(`{"sweep":true}`),
	})
	if err != nil {
		t.Fatalf("UpdateSchedule = %v", err)
	}
	got, err = c.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("latch-sgr-1"), GroupName: aws.String("default")})
	if err != nil {
		t.Fatalf("GetSchedule after update = %v", err)
	}
	if got.State != stypes.ScheduleStateDisabled || got.ActionAfterCompletion != stypes.ActionAfterCompletionNone ||
		got.Description != nil || aws.ToString(got.Target.Arn) != lambdaARN || aws.ToInt32(got.FlexibleTimeWindow.MaximumWindowInMinutes) != 10 {
		t.Errorf("after update: State %s, ActionAfterCompletion %s, Description %v, Target %s, window %v",
			got.State, got.ActionAfterCompletion, got.Description, aws.ToString(got.Target.Arn), got.FlexibleTimeWindow.MaximumWindowInMinutes)
	}
	if !got.CreationDate.Equal(t0) || !got.LastModificationDate.Equal(t0.Add(time.Minute)) {
		t.Errorf("after update CreationDate, LastModificationDate = %v, %v", got.CreationDate, got.LastModificationDate)
	}

	if _, err := c.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String("latch-sgr-1")}); err != nil {
		t.Fatalf("DeleteSchedule = %v", err)
	}
	_, err = c.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("latch-sgr-1")})
	wantSchedErr(t, err, "ResourceNotFoundException", 404, "Schedule latch-sgr-1 does not exist.")
	_, err = c.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String("latch-sgr-1")})
	wantSchedErr(t, err, "ResourceNotFoundException", 404, "latch-sgr-1")
	_, err = c.UpdateSchedule(ctx, &scheduler.UpdateScheduleInput{
		Name: aws.String("latch-sgr-1"), ScheduleExpression: aws.String("rate(1 hour)"),
		FlexibleTimeWindow: &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeOff}, Target: lambdaTarget("{}"),
	})
	wantSchedErr(t, err, "ResourceNotFoundException", 404, "latch-sgr-1")
}

func TestScheduler_ConflictAndClientToken(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	c := schedClient(t, mustStart(t, sim), "us-east-1")
	ctx := t.Context()
	in := oneTime("latch-sgr-2", t0, revokeTarget("sg-1", "sgr-2"))
	first, err := c.CreateSchedule(ctx, in)
	if err != nil {
		t.Fatalf("CreateSchedule = %v", err)
	}
	// The SDK writes the ClientToken it makes into the input, so sending
	// the same input again is the same request, answered alike; a new
	// request for the same name is a conflict.
	same, err := c.CreateSchedule(ctx, in)
	if err != nil || aws.ToString(same.ScheduleArn) != aws.ToString(first.ScheduleArn) {
		t.Fatalf("CreateSchedule with the same ClientToken = %v, %v; want the first answer", same, err)
	}
	_, err = c.CreateSchedule(ctx, oneTime("latch-sgr-2", t0, revokeTarget("sg-1", "sgr-2")))
	wantSchedErr(t, err, "ConflictException", 409, "Schedule latch-sgr-2 already exists.")

	// A create whose answer is lost is retried by the SDK with the same
	// token, and answered as the first time.
	sim.SetFaults(ec2sim.Faults{LostResponseRate: 1, Actions: []string{"CreateSchedule"}, Limit: 1})
	again, err := c.CreateSchedule(ctx, oneTime("latch-sgr-3", t0, revokeTarget("sg-1", "sgr-3")))
	if err != nil {
		t.Fatalf("CreateSchedule with a lost answer = %v, want the retry to succeed", err)
	}
	if !strings.HasSuffix(aws.ToString(again.ScheduleArn), "/default/latch-sgr-3") || sim.Calls("CreateSchedule") != 5 {
		t.Errorf("retried create: ARN %s, %d calls", aws.ToString(again.ScheduleArn), sim.Calls("CreateSchedule"))
	}
	sim.SetFaults(ec2sim.Faults{LostResponseRate: 1, Actions: []string{"DeleteSchedule"}, Limit: 1})
	if _, err := c.DeleteSchedule(ctx, &scheduler.DeleteScheduleInput{Name: aws.String("latch-sgr-2")}); err != nil {
		t.Fatalf("DeleteSchedule with a lost answer = %v, want the retry to succeed", err)
	}
	if n := sim.Calls("DeleteSchedule"); n != 2 {
		t.Errorf("Calls(DeleteSchedule) = %d, want 2 (one lost, one retried)", n)
	}
	recreated, err := c.CreateSchedule(ctx, oneTime("latch-sgr-2", t0, revokeTarget("sg-1", "sgr-2")))
	if err != nil {
		t.Fatalf("CreateSchedule after delete = %v", err)
	}
	if aws.ToString(recreated.ScheduleArn) != aws.ToString(first.ScheduleArn) {
		t.Errorf("recreated ARN %s, want %s", aws.ToString(recreated.ScheduleArn), aws.ToString(first.ScheduleArn))
	}
}

func TestScheduler_Throttling(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	url := mustStart(t, sim)
	c := schedClient(t, url, "us-east-1")
	if _, err := c.CreateSchedule(t.Context(), oneTime("s", t0, lambdaTarget("{}"))); err != nil {
		t.Fatal(err)
	}
	sim.SetFaults(ec2sim.Faults{ThrottleRate: 1, Actions: []string{"GetSchedule"}, Limit: 1})
	if _, err := c.GetSchedule(t.Context(), &scheduler.GetScheduleInput{Name: aws.String("s")}); err != nil {
		t.Fatalf("GetSchedule after one throttle = %v, want the SDK's retry to succeed", err)
	}
	if n := sim.Calls("GetSchedule"); n != 2 {
		t.Errorf("Calls(GetSchedule) = %d, want 2", n)
	}
	sim.SetFaults(ec2sim.Faults{ThrottleRate: 1, Actions: []string{"GetSchedule"}})
	once := schedClient(t, url, "us-east-1", func(o *scheduler.Options) { o.RetryMaxAttempts = 1 })
	_, err := once.GetSchedule(t.Context(), &scheduler.GetScheduleInput{Name: aws.String("s")})
	wantSchedErr(t, err, "ThrottlingException", 429)
}

func TestScheduler_GroupsAndRegions(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	url := mustStart(t, sim)
	east, west := schedClient(t, url, "us-east-1"), schedClient(t, url, "us-west-2")
	ctx := t.Context()

	def, err := east.GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String("default")})
	if err != nil || def.State != stypes.ScheduleGroupStateActive {
		t.Fatalf("GetScheduleGroup(default) = %+v, %v; want it to exist, ACTIVE", def, err)
	}
	g, err := east.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String("latch")})
	if err != nil {
		t.Fatalf("CreateScheduleGroup = %v", err)
	}
	if want := "arn:aws:scheduler:us-east-1:123456789012:schedule-group/latch"; aws.ToString(g.ScheduleGroupArn) != want {
		t.Errorf("ScheduleGroupArn = %s, want %s", aws.ToString(g.ScheduleGroupArn), want)
	}
	_, err = east.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String("latch")})
	wantSchedErr(t, err, "ConflictException", 409, "latch")

	in := oneTime("s1", t0, lambdaTarget("{}"))
	in.GroupName = aws.String("nope")
	_, err = east.CreateSchedule(ctx, in)
	wantSchedErr(t, err, "ResourceNotFoundException", 404, "Schedule group nope does not exist.")
	in.GroupName = aws.String("latch")
	out, err := east.CreateSchedule(ctx, in)
	if err != nil || !strings.HasSuffix(aws.ToString(out.ScheduleArn), ":schedule/latch/s1") {
		t.Fatalf("CreateSchedule in latch = %v, %v", out, err)
	}
	_, err = east.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("s1")})
	wantSchedErr(t, err, "ResourceNotFoundException", 404) // it is not in the default group
	if _, err := east.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String("s1"), GroupName: aws.String("latch")}); err != nil {
		t.Fatalf("GetSchedule(latch/s1) = %v", err)
	}

	// Regions share nothing.
	_, err = west.GetScheduleGroup(ctx, &scheduler.GetScheduleGroupInput{Name: aws.String("latch")})
	wantSchedErr(t, err, "ResourceNotFoundException", 404)
	wout, err := west.CreateSchedule(ctx, oneTime("s1", t0, lambdaTarget("{}")))
	if err != nil || !strings.HasPrefix(aws.ToString(wout.ScheduleArn), "arn:aws:scheduler:us-west-2:") {
		t.Fatalf("CreateSchedule in us-west-2 = %v, %v", wout, err)
	}

	groups, err := east.ListScheduleGroups(ctx, &scheduler.ListScheduleGroupsInput{})
	if err != nil || len(groups.ScheduleGroups) != 2 {
		t.Fatalf("ListScheduleGroups = %+v, %v; want default and latch", groups, err)
	}
	if _, err := east.DeleteScheduleGroup(ctx, &scheduler.DeleteScheduleGroupInput{Name: aws.String("latch")}); err != nil {
		t.Fatalf("DeleteScheduleGroup = %v", err)
	}
	list, err := east.ListSchedules(ctx, &scheduler.ListSchedulesInput{})
	if err != nil || len(list.Schedules) != 0 {
		t.Errorf("ListSchedules after deleting the group = %+v, %v; want its schedules gone", list, err)
	}
}

func TestScheduler_ListSchedules(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	c := schedClient(t, mustStart(t, sim), "us-east-1")
	ctx := t.Context()
	if _, err := c.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String("latch")}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ group, name, state string }{
		{"default", "a2", "ENABLED"}, {"default", "a1", "DISABLED"}, {"default", "b1", "ENABLED"},
		{"latch", "a3", "ENABLED"}, {"default", "a4", "ENABLED"},
	} {
		in := oneTime(s.name, t0, lambdaTarget("{}"))
		in.GroupName, in.State = aws.String(s.group), stypes.ScheduleState(s.state)
		if _, err := c.CreateSchedule(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	list := func(in *scheduler.ListSchedulesInput) []string {
		t.Helper()
		var names []string
		for p := scheduler.NewListSchedulesPaginator(c, in); p.HasMorePages(); {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("ListSchedules = %v", err)
			}
			if len(out.Schedules) > int(aws.ToInt32(in.MaxResults)) && in.MaxResults != nil {
				t.Errorf("page of %d, want at most %d", len(out.Schedules), aws.ToInt32(in.MaxResults))
			}
			for _, s := range out.Schedules {
				names = append(names, aws.ToString(s.GroupName)+"/"+aws.ToString(s.Name))
			}
		}
		return names
	}
	for _, tt := range []struct {
		name string
		in   *scheduler.ListSchedulesInput
		want string
	}{
		{"all", &scheduler.ListSchedulesInput{}, "default/a1 default/a2 default/a4 default/b1 latch/a3"},
		{"pages of two", &scheduler.ListSchedulesInput{MaxResults: aws.Int32(2)}, "default/a1 default/a2 default/a4 default/b1 latch/a3"},
		{"prefix", &scheduler.ListSchedulesInput{NamePrefix: aws.String("a"), MaxResults: aws.Int32(1)}, "default/a1 default/a2 default/a4 latch/a3"},
		{"group", &scheduler.ListSchedulesInput{GroupName: aws.String("latch")}, "latch/a3"},
		{"state", &scheduler.ListSchedulesInput{State: stypes.ScheduleStateDisabled}, "default/a1"},
	} {
		if got := strings.Join(list(tt.in), " "); got != tt.want {
			t.Errorf("%s: ListSchedules = %s, want %s", tt.name, got, tt.want)
		}
	}
	_, err := c.ListSchedules(ctx, &scheduler.ListSchedulesInput{GroupName: aws.String("nope")})
	wantSchedErr(t, err, "ResourceNotFoundException", 404, "nope")
	_, err = c.ListSchedules(ctx, &scheduler.ListSchedulesInput{MaxResults: aws.Int32(101)})
	wantSchedErr(t, err, "ValidationException", 400, "Value '101' at 'maxResults'")
	_, err = c.ListSchedules(ctx, &scheduler.ListSchedulesInput{NextToken: aws.String("garbage")})
	wantSchedErr(t, err, "ValidationException", 400, "NextToken")
}
