package aws_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

// A session's schedule is named within Scheduler's rules whatever the
// session ID holds, calls TerminateSession with the ID at the given time,
// moves when ensured again, and deleting it twice is no error.
func TestBackstopSessionSchedule(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{})
	const role = "arn:aws:iam::123456789012:role/latch-scheduler"
	b := latchaws.NewBackstop([]aws.Config{env.Config()}, latchaws.BackstopOptions{RoleARN: role})
	id := latch.SSMSessionID("dev-alice@example.com=x,y-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	name := latchaws.SessionScheduleName(id)
	if !regexp.MustCompile(`^latch-session-[0-9a-f]{16}$`).MatchString(name) || name == latchaws.SessionScheduleName(id+"1") {
		t.Fatalf("SessionScheduleName = %q", name)
	}
	at := time.Now().UTC().Add(time.Hour).Truncate(time.Second)
	for _, when := range []time.Time{at, at.Add(30 * time.Minute)} {
		if err := b.EnsureSession(t.Context(), awstest.Region, id, when); err != nil {
			t.Fatal(err)
		}
	}
	sched := scheduler.NewFromConfig(env.Config())
	got, err := sched.GetSchedule(t.Context(), &scheduler.GetScheduleInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.ScheduleExpression) != "at("+at.Add(30*time.Minute).Format("2006-01-02T15:04:05")+")" ||
		aws.ToString(got.Target.Arn) != "arn:aws:scheduler:::aws-sdk:ssm:terminateSession" ||
		aws.ToString(got.Target.Input) != `{"SessionId":"`+string(id)+`"}` || aws.ToString(got.Target.RoleArn) != role ||
		got.ActionAfterCompletion != "DELETE" || !strings.Contains(aws.ToString(got.Description), string(id)) {
		t.Fatalf("schedule = %+v, target %+v", got, got.Target)
	}
	for range 2 {
		if err := b.CancelSession(t.Context(), awstest.Region, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sched.GetSchedule(t.Context(), &scheduler.GetScheduleInput{Name: aws.String(name)}); err == nil {
		t.Error("the schedule is still there after CancelSession")
	}
	if err := b.EnsureSession(t.Context(), "eu-west-1", id, at); latch.ErrorCode(err) != latch.EINVALID {
		t.Errorf("EnsureSession in a region with no backstop = %v; want EINVALID", err)
	}
}
