package ec2sim_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	stypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/latchdev/latch/ec2sim"
)

// fireEnv is a demo-fleet simulator on a test clock, with clients.
type fireEnv struct {
	sim   *ec2sim.Server
	clock *testClock
	url   string
	ec2   *ec2.Client
	sched *scheduler.Client
}

func newFireEnv(t *testing.T, opts ec2sim.Options) *fireEnv {
	t.Helper()
	e := &fireEnv{clock: &testClock{now: t0}}
	opts.Now = e.clock.Now
	e.sim = ec2sim.New(opts)
	if err := e.sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		t.Fatal(err)
	}
	e.url = mustStart(t, e.sim)
	e.ec2 = newClient(t, e.url, "us-east-1")
	e.sched = schedClient(t, e.url, "us-east-1")
	return e
}

func (e *fireEnv) create(t *testing.T, in *scheduler.CreateScheduleInput) {
	t.Helper()
	if _, err := e.sched.CreateSchedule(t.Context(), in); err != nil {
		t.Fatalf("CreateSchedule(%s) = %v", aws.ToString(in.Name), err)
	}
}

// fireAt moves the clock to at and fires what is due.
func (e *fireEnv) fireAt(at time.Time) []ec2sim.ScheduleRun {
	e.clock.Set(at)
	return e.sim.FireDueSchedules()
}

func (e *fireEnv) exists(t *testing.T, name string) bool {
	t.Helper()
	_, err := e.sched.GetSchedule(t.Context(), &scheduler.GetScheduleInput{Name: aws.String(name)})
	if err != nil && errorCode(err) != "ResourceNotFoundException" {
		t.Fatalf("GetSchedule(%s) = %v", name, err)
	}
	return err == nil
}

func hasRule(sim *ec2sim.Server, group, id string) bool {
	return slices.ContainsFunc(sim.Rules("us-east-1", group), func(r ec2sim.Rule) bool { return r.ID == id })
}

// targetCode is the API error code of a run's error, "" when it has none.
func targetCode(err error) string {
	if te, ok := errors.AsType[*ec2sim.TargetError](err); ok {
		return te.Code
	}
	return ""
}

func TestFire_OneTimeRevokeAtItsTime(t *testing.T) {
	e := newFireEnv(t, ec2sim.Options{})
	group := ec2sim.DemoWebLatchGroup
	rule := aws.ToString(mustAuthorize(t, e.ec2, group, ssh("203.0.113.7/32"))[0].SecurityGroupRuleId)
	due := t0.Add(15 * time.Minute)
	e.create(t, oneTime("latch-"+rule, due, revokeTarget(group, rule)))

	if runs := e.fireAt(due.Add(-time.Second)); len(runs) != 0 {
		t.Fatalf("a second early: runs = %+v, want none", runs)
	}
	if !hasRule(e.sim, group, rule) {
		t.Fatal("the rule went before its time")
	}

	runs := e.fireAt(due)
	want := ec2sim.ScheduleRun{Region: "us-east-1", Group: "default", Name: "latch-" + rule, Target: revokeARN, At: due, Attempt: 1}
	if len(runs) != 1 || runs[0] != want {
		t.Fatalf("at its time: runs = %+v, want [%+v]", runs, want)
	}
	if hasRule(e.sim, group, rule) {
		t.Error("the rule is still there after the schedule ran")
	}
	if e.exists(t, "latch-"+rule) {
		t.Error("the schedule is still there; ActionAfterCompletion DELETE should remove it")
	}
	if runs := e.fireAt(due.Add(time.Hour)); len(runs) != 0 {
		t.Errorf("later: runs = %+v, want none (a one-time schedule fires once)", runs)
	}

	// CloudTrail has the revoke, made by a session of the schedule's role.
	events := lookup(t, trailAs(t, e.url, ec2sim.Identity{AccessKeyID: "AKID", SecretAccessKey: "SECRET"}),
		cttypes.LookupAttributeKeyEventName, "RevokeSecurityGroupIngress")
	if len(events) != 1 {
		t.Fatalf("RevokeSecurityGroupIngress events = %d, want 1", len(events))
	}
	rec := record(t, events[0])
	id := rec.UserIdentity
	if id.Type != "AssumedRole" || !strings.HasPrefix(id.ARN, "arn:aws:sts::123456789012:assumed-role/latch-backstop/") ||
		!strings.HasPrefix(id.AccessKeyID, "ASIA") || id.SessionContext == nil ||
		id.SessionContext.SessionIssuer.ARN != backstopRole || !strings.HasPrefix(id.PrincipalID, "AROA") {
		t.Errorf("userIdentity = %+v, want the assumed role latch-backstop", id)
	}
	if rec.SourceIPAddress != "scheduler.amazonaws.com" || rec.UserAgent != "scheduler.amazonaws.com" || rec.ErrorCode != "" {
		t.Errorf("sourceIPAddress %q, userAgent %q, errorCode %q; want scheduler.amazonaws.com and no error",
			rec.SourceIPAddress, rec.UserAgent, rec.ErrorCode)
	}
	if rec.EventTime != "2026-11-23T10:15:00Z" || !slices.Contains(resourceNames(events[0]), "AWS::EC2::SecurityGroupRule "+rule) {
		t.Errorf("eventTime %s, resources %v", rec.EventTime, resourceNames(events[0]))
	}
}

func TestFire_RuleAlreadyGoneIsRetriedThenDeadLettered(t *testing.T) {
	e := newFireEnv(t, ec2sim.Options{})
	group := ec2sim.DemoWebLatchGroup
	rule := aws.ToString(mustAuthorize(t, e.ec2, group, ssh("203.0.113.8/32"))[0].SecurityGroupRuleId)
	if _, err := e.ec2.RevokeSecurityGroupIngress(t.Context(), &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(group), SecurityGroupRuleIds: []string{rule},
	}); err != nil {
		t.Fatal(err)
	}
	due := t0.Add(time.Minute)
	in := oneTime("latch-"+rule, due, revokeTarget(group, rule))
	in.Target.RetryPolicy = &stypes.RetryPolicy{MaximumRetryAttempts: aws.Int32(2), MaximumEventAgeInSeconds: aws.Int32(3600)}
	in.Target.DeadLetterConfig = &stypes.DeadLetterConfig{Arn: aws.String(deadLetters)}
	e.create(t, in)

	for attempt := 1; attempt <= 3; attempt++ {
		runs := e.fireAt(due.Add(time.Duration(attempt-1) * time.Minute))
		if len(runs) != 1 {
			t.Fatalf("attempt %d: runs = %+v, want one", attempt, runs)
		}
		r := runs[0]
		last := attempt == 3
		if r.Attempt != attempt || targetCode(r.Err) != "InvalidSecurityGroupRuleId.NotFound" || !r.At.Equal(due) ||
			r.GaveUp != last || r.DeadLettered != last {
			t.Fatalf("attempt %d: run = %+v (err %v), want InvalidSecurityGroupRuleId.NotFound, gave up and dead-lettered only on the last", attempt, r, r.Err)
		}
		if !strings.Contains(r.Err.Error(), rule) {
			t.Errorf("attempt %d: error %q does not name the rule", attempt, r.Err)
		}
		if exists := e.exists(t, "latch-"+rule); exists == last {
			t.Errorf("attempt %d: schedule exists = %v, want it deleted only once given up", attempt, exists)
		}
	}
	if runs := e.fireAt(due.Add(time.Hour)); len(runs) != 0 {
		t.Errorf("after dead-lettering: runs = %+v, want none", runs)
	}
	// Each failed attempt is a failed call in CloudTrail, as in AWS.
	events := lookup(t, trailAs(t, e.url, ec2sim.Identity{AccessKeyID: "AKID", SecretAccessKey: "SECRET"}),
		cttypes.LookupAttributeKeyEventName, "RevokeSecurityGroupIngress")
	var failed int
	for _, ev := range events {
		if record(t, ev).ErrorCode == "Client.InvalidSecurityGroupRuleId.NotFound" {
			failed++
		}
	}
	if failed != 3 {
		t.Errorf("failed revokes in CloudTrail = %d, want 3", failed)
	}
}

func TestFire_EventAgesOut(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	e := newFireEnv(t, ec2sim.Options{Invoke: func(string, []byte) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		return errors.New("function error")
	}})
	in := oneTime("sweep", t0, lambdaTarget("{}"))
	in.ActionAfterCompletion = stypes.ActionAfterCompletionNone
	in.Target.RetryPolicy = &stypes.RetryPolicy{MaximumRetryAttempts: aws.Int32(185), MaximumEventAgeInSeconds: aws.Int32(60)}
	e.create(t, in)

	for _, step := range []struct {
		at               time.Duration
		attempt          int
		gaveUp, invoking bool
	}{
		{0, 1, false, true},
		{30 * time.Second, 2, false, true},
		{61 * time.Second, 2, true, false}, // too old to retry: given up, with no new attempt
	} {
		mu.Lock()
		before := calls
		mu.Unlock()
		runs := e.fireAt(t0.Add(step.at))
		if len(runs) != 1 || runs[0].Attempt != step.attempt || runs[0].GaveUp != step.gaveUp || runs[0].DeadLettered || runs[0].Err == nil {
			t.Fatalf("at +%v: runs = %+v, want attempt %d, gave up %v, not dead-lettered (no DLQ)", step.at, runs, step.attempt, step.gaveUp)
		}
		mu.Lock()
		invoked := calls > before
		mu.Unlock()
		if invoked != step.invoking {
			t.Errorf("at +%v: invoked = %v, want %v", step.at, invoked, step.invoking)
		}
	}
	if !e.exists(t, "sweep") {
		t.Error("schedule gone; ActionAfterCompletion NONE keeps it")
	}
	if runs := e.fireAt(t0.Add(time.Hour)); len(runs) != 0 {
		t.Errorf("runs = %+v after giving up, want none", runs)
	}
}

// invocations records what Options.Invoke was called with.
type invocations struct {
	mu    sync.Mutex
	calls []string // "ARN INPUT"
	fail  error
}

func (iv *invocations) invoke(arn string, input []byte) error {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	iv.calls = append(iv.calls, arn+" "+string(input))
	return iv.fail
}

func (iv *invocations) take() []string {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	out := iv.calls
	iv.calls = nil
	return out
}

func (iv *invocations) failWith(err error) {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	iv.fail = err
}

func TestFire_TimeZones(t *testing.T) {
	iv := &invocations{}
	e := newFireEnv(t, ec2sim.Options{Invoke: iv.invoke})
	e.clock.Set(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	// 2026-03-08 is the day New York moves to daylight time (UTC-4);
	// Berlin is still on UTC+1.
	for _, s := range []struct{ name, zone string }{{"ny", "America/New_York"}, {"berlin", "Europe/Berlin"}} {
		in := oneTime(s.name, t0, lambdaTarget(`{"zone":"`+s.zone+`"}`))
		in.ScheduleExpression = aws.String("at(2026-03-08T09:30:00)")
		in.ScheduleExpressionTimezone = aws.String(s.zone)
		e.create(t, in)
	}
	got, err := e.sched.GetSchedule(t.Context(), &scheduler.GetScheduleInput{Name: aws.String("ny")})
	if err != nil || aws.ToString(got.ScheduleExpressionTimezone) != "America/New_York" {
		t.Fatalf("GetSchedule(ny) = %v, %v", got, err)
	}
	berlin := time.Date(2026, 3, 8, 8, 30, 0, 0, time.UTC)
	newYork := time.Date(2026, 3, 8, 13, 30, 0, 0, time.UTC)
	for _, step := range []struct {
		at   time.Time
		want string
	}{
		{berlin.Add(-time.Second), ""},
		{berlin, "berlin"},
		{newYork.Add(-time.Second), ""},
		{newYork, "ny"},
	} {
		runs := e.fireAt(step.at)
		var names []string
		for _, r := range runs {
			names = append(names, r.Name)
			if !r.At.Equal(step.at) || r.Err != nil {
				t.Errorf("%s fired for %v (err %v), want %v", r.Name, r.At, r.Err, step.at)
			}
		}
		if got := strings.Join(names, " "); got != step.want {
			t.Errorf("at %v fired %q, want %q", step.at, got, step.want)
		}
	}
	if calls := iv.take(); len(calls) != 2 || calls[1] != lambdaARN+` {"zone":"America/New_York"}` {
		t.Errorf("invocations = %q", calls)
	}
}

func TestFire_RateScheduleInvokesTheFunction(t *testing.T) {
	iv := &invocations{}
	var sim *ec2sim.Server
	e := newFireEnv(t, ec2sim.Options{Invoke: func(arn string, input []byte) error {
		_ = sim.Rules("us-east-1", "") // a handler may call the simulator: no lock is held
		return iv.invoke(arn, input)
	}})
	sim = e.sim
	e.create(t, &scheduler.CreateScheduleInput{
		Name: aws.String("sweep"), ScheduleExpression: aws.String("rate(5 minutes)"),
		FlexibleTimeWindow: &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeOff},
		Target:             lambdaTarget(`{"source":"latch.sweep"}`),
	})
	boom := errors.New("function timed out")
	for _, step := range []struct {
		at      time.Duration
		fail    error
		want    time.Duration // the run's At after t0; -1 for no run
		attempt int
	}{
		{5*time.Minute - time.Second, nil, -1, 0},
		{5 * time.Minute, nil, 5 * time.Minute, 1},
		{5 * time.Minute, nil, -1, 0},
		{16 * time.Minute, nil, 15 * time.Minute, 1}, // the 10-minute run was missed and is not made up
		{20 * time.Minute, boom, 20 * time.Minute, 1},
		{21 * time.Minute, nil, 20 * time.Minute, 2}, // the retry
	} {
		iv.failWith(step.fail)
		runs := e.fireAt(t0.Add(step.at))
		calls := iv.take()
		if step.want < 0 {
			if len(runs) != 0 || len(calls) != 0 {
				t.Errorf("at +%v: runs %+v, invocations %q; want none", step.at, runs, calls)
			}
			continue
		}
		if len(runs) != 1 || !runs[0].At.Equal(t0.Add(step.want)) || runs[0].Attempt != step.attempt || !errors.Is(runs[0].Err, step.fail) {
			t.Fatalf("at +%v: runs = %+v, want one for +%v, attempt %d, err %v", step.at, runs, step.want, step.attempt, step.fail)
		}
		if want := lambdaARN + ` {"source":"latch.sweep"}`; len(calls) != 1 || calls[0] != want {
			t.Errorf("at +%v: invocations %q, want [%s]", step.at, calls, want)
		}
	}
}

func TestFire_DisabledSchedulesWait(t *testing.T) {
	iv := &invocations{}
	e := newFireEnv(t, ec2sim.Options{Invoke: iv.invoke})
	in := oneTime("later", t0, lambdaTarget("{}"))
	in.State = stypes.ScheduleStateDisabled
	e.create(t, in)
	if runs := e.fireAt(t0.Add(time.Minute)); len(runs) != 0 {
		t.Fatalf("disabled schedule ran: %+v", runs)
	}
	in.State, in.ClientToken = stypes.ScheduleStateEnabled, nil
	if _, err := e.sched.UpdateSchedule(t.Context(), &scheduler.UpdateScheduleInput{
		Name: in.Name, ScheduleExpression: in.ScheduleExpression, FlexibleTimeWindow: in.FlexibleTimeWindow, Target: in.Target,
	}); err != nil {
		t.Fatal(err)
	}
	if runs := e.fireAt(t0.Add(2 * time.Minute)); len(runs) != 1 || runs[0].Err != nil {
		t.Fatalf("enabled schedule: runs = %+v, want one that succeeded", runs)
	}
}

func TestFire_NoInvokeFailsTheRun(t *testing.T) {
	e := newFireEnv(t, ec2sim.Options{})
	in := oneTime("orphan", t0, lambdaTarget("{}"))
	in.Target.RetryPolicy = &stypes.RetryPolicy{MaximumRetryAttempts: aws.Int32(0)}
	e.create(t, in)
	runs := e.fireAt(t0)
	if len(runs) != 1 || runs[0].Err == nil || !strings.Contains(runs[0].Err.Error(), "Options.Invoke") || !runs[0].GaveUp {
		t.Fatalf("runs = %+v, want one that failed for want of Options.Invoke and was given up (no retries)", runs)
	}
	if e.exists(t, "orphan") {
		t.Error("schedule still there after its only event was given up")
	}
}
