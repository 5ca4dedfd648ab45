package ec2sim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	stypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/latchdev/latch/ec2sim"
)

func TestScheduler_ValidationNamesTheFieldAndValue(t *testing.T) {
	c := schedClient(t, mustStart(t, ec2sim.New(ec2sim.Options{})), "us-east-1")
	retry := func(attempts, age int32) func(*scheduler.CreateScheduleInput) {
		return func(in *scheduler.CreateScheduleInput) {
			in.Target.RetryPolicy = &stypes.RetryPolicy{MaximumRetryAttempts: aws.Int32(attempts), MaximumEventAgeInSeconds: aws.Int32(age)}
		}
	}
	expr := func(e string) func(*scheduler.CreateScheduleInput) {
		return func(in *scheduler.CreateScheduleInput) { in.ScheduleExpression = aws.String(e) }
	}
	tests := []struct {
		name   string
		change func(*scheduler.CreateScheduleInput)
		want   []string
	}{
		{"bad name", func(in *scheduler.CreateScheduleInput) { in.Name = aws.String("no spaces") },
			[]string{"1 validation error detected: Value 'no spaces' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern"}},
		{"long name", func(in *scheduler.CreateScheduleInput) { in.Name = aws.String(strings.Repeat("n", 65)) },
			[]string{"at 'name'", "Member must have length less than or equal to 64"}},
		{"zero rate", expr("rate(0 minutes)"), []string{"Invalid Schedule Expression rate(0 minutes)."}},
		{"rate unit", expr("rate(5 weeks)"), []string{"Invalid Schedule Expression rate(5 weeks)."}},
		{"impossible date", expr("at(2026-02-30T10:00:00)"), []string{"Invalid Schedule Expression at(2026-02-30T10:00:00)."}},
		{"at with zone", expr("at(2026-11-23T10:00:00Z)"), []string{"Invalid Schedule Expression"}},
		{"cron", expr("cron(0 12 * * ? *)"), []string{"cron(0 12 * * ? *)", "not"}},
		{"too many retries", retry(186, 3600),
			[]string{"Value '186' at 'target.retryPolicy.maximumRetryAttempts'", "Member must have value less than or equal to 185"}},
		{"negative retries", retry(-1, 3600), []string{"Value '-1' at 'target.retryPolicy.maximumRetryAttempts'", "greater than or equal to 0"}},
		{"short event age", retry(3, 59), []string{"Value '59' at 'target.retryPolicy.maximumEventAgeInSeconds'", "greater than or equal to 60"}},
		{"long event age", retry(3, 86401), []string{"Value '86401' at 'target.retryPolicy.maximumEventAgeInSeconds'"}},
		{"two at once", retry(200, 30), []string{"2 validation errors detected", "maximumRetryAttempts", "maximumEventAgeInSeconds"}},
		{"time zone", func(in *scheduler.CreateScheduleInput) {
			in.ScheduleExpressionTimezone = aws.String("Mars/Olympus_Mons")
		},
			[]string{"ScheduleExpressionTimezone Mars/Olympus_Mons"}},
		{"flexible without window", func(in *scheduler.CreateScheduleInput) {
			in.FlexibleTimeWindow = &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeFlexible}
		}, []string{"MaximumWindowInMinutes", "FLEXIBLE"}},
		{"window too wide", func(in *scheduler.CreateScheduleInput) {
			in.FlexibleTimeWindow = &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeFlexible, MaximumWindowInMinutes: aws.Int32(1441)}
		}, []string{"Value '1441' at 'flexibleTimeWindow.maximumWindowInMinutes'"}},
		{"window mode", func(in *scheduler.CreateScheduleInput) { in.FlexibleTimeWindow.Mode = "SOMETIMES" },
			[]string{"Value 'SOMETIMES' at 'flexibleTimeWindow.mode'", "enum value set: [OFF, FLEXIBLE]"}},
		{"state", func(in *scheduler.CreateScheduleInput) { in.State = "PAUSED" }, []string{"Value 'PAUSED' at 'state'"}},
		{"after completion", func(in *scheduler.CreateScheduleInput) { in.ActionAfterCompletion = "ARCHIVE" },
			[]string{"Value 'ARCHIVE' at 'actionAfterCompletion'"}},
		{"role", func(in *scheduler.CreateScheduleInput) { in.Target.RoleArn = aws.String("arn:aws:iam::1234:user/bob") },
			[]string{"Value 'arn:aws:iam::1234:user/bob' at 'target.roleArn'", "regular expression pattern"}},
		{"dead-letter queue", func(in *scheduler.CreateScheduleInput) {
			in.Target.DeadLetterConfig = &stypes.DeadLetterConfig{Arn: aws.String(lambdaARN)}
		}, []string{"at 'target.deadLetterConfig.arn'"}},
		{"group name", func(in *scheduler.CreateScheduleInput) { in.GroupName = aws.String("a/b") }, []string{"Value 'a/b' at 'groupName'"}},
		{"description", func(in *scheduler.CreateScheduleInput) { in.Description = aws.String(strings.Repeat("d", 513)) },
			[]string{"at 'description'", "less than or equal to 512"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := oneTime("s", t0, revokeTarget("sg-1", "sgr-1"))
			tt.change(in)
			_, err := c.CreateSchedule(t.Context(), in)
			wantSchedErr(t, err, "ValidationException", 400, tt.want...)
		})
	}
	// Nothing invalid was created.
	out, err := c.ListSchedules(t.Context(), &scheduler.ListSchedulesInput{})
	if err != nil || len(out.Schedules) != 0 {
		t.Errorf("ListSchedules = %+v, %v; want none", out, err)
	}
}

// The SDK refuses to send a request without a required member, so other
// clients' mistakes are sent raw.
func TestScheduler_ValidationOfRawRequests(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
		want                     []string
	}{
		{"no role", "POST", "/schedules/s", `{"ScheduleExpression":"rate(1 hour)","FlexibleTimeWindow":{"Mode":"OFF"},"Target":{"Arn":"` + lambdaARN + `"}}`,
			400, "ValidationException", []string{"1 validation error detected: Value null at 'target.roleArn' failed to satisfy constraint: Member must not be null"}},
		{"nothing", "POST", "/schedules/s", `{}`, 400, "ValidationException",
			[]string{"3 validation errors detected", "at 'scheduleExpression'", "at 'flexibleTimeWindow'", "at 'target'"}},
		{"not JSON", "PUT", "/schedules/s", `{"ScheduleExpression":`, 400, "SerializationException", nil},
		{"wrong type", "POST", "/schedules/s", `{"Target":{"RetryPolicy":{"MaximumRetryAttempts":"three"}}}`, 400, "SerializationException", nil},
		{"no such operation", "PATCH", "/schedules/s", ``, 404, "UnknownOperationException", []string{"PATCH"}},
		{"get, bad group", "GET", "/schedules/s?groupName=a%20b", ``, 400, "ValidationException", []string{"Value 'a b' at 'groupName'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			sim.ServeHTTP(rec, req)
			var body struct{ Message string }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("error body %q is not JSON: %v", rec.Body, err)
			}
			if rec.Code != tt.status || rec.Header().Get("X-Amzn-ErrorType") != tt.code || rec.Header().Get("x-amzn-RequestId") == "" {
				t.Fatalf("%s %s = HTTP %d %s (request ID %q), want HTTP %d %s",
					tt.method, tt.path, rec.Code, rec.Header().Get("X-Amzn-ErrorType"), rec.Header().Get("x-amzn-RequestId"), tt.status, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(body.Message, w) {
					t.Errorf("Message %q does not mention %q", body.Message, w)
				}
			}
		})
	}
	if got := sim.Calls("CreateSchedule"); got != 3 {
		t.Errorf("Calls(CreateSchedule) = %d, want 3", got)
	}
	// Paths that are not Scheduler's are still EC2's.
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/?Action=DescribeSecurityGroups&Version=2016-11-15", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("EC2 request after Scheduler's = HTTP %d\n%s", rec.Code, rec.Body)
	}
}
