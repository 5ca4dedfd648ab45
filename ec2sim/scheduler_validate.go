package ec2sim

// Validation of schedules, with Scheduler's messages: constraint
// violations in the service framework's words ("1 validation error
// detected: Value '200' at 'target.retryPolicy.maximumRetryAttempts'
// failed to satisfy constraint: …"), naming the member and its value, and
// the parsing of schedule expressions and time zones.

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var (
	schedNamePattern   = regexp.MustCompile(`^[0-9a-zA-Z-_.]+$`)
	clientTokenPattern = regexp.MustCompile(`^[a-zA-Z0-9-_]+$`)
	roleARNPattern     = regexp.MustCompile(`^arn:aws(-[a-z]+)?:iam::\d{12}:role/[\w+=,.@/-]+$`)
	queueARNPattern    = regexp.MustCompile(`^arn:aws(-[a-z]+)?:sqs:[a-z0-9\-]+:\d{12}:[a-zA-Z0-9\-_]+$`)
	atPattern          = regexp.MustCompile(`^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$`)
	ratePattern        = regexp.MustCompile(`^rate\((\d+) (minutes?|hours?|days?)\)$`)
)

// violations are the constraint violations of one request, in the order
// found.
type violations []string

func (v *violations) add(value any, path, constraint string) {
	shown := "null"
	switch x := value.(type) {
	case *string:
		if x != nil {
			shown = "'" + *x + "'"
		}
	case *int:
		if x != nil {
			shown = "'" + strconv.Itoa(*x) + "'"
		}
	}
	*v = append(*v, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: Member must %s", shown, path, constraint))
}

func (v *violations) required(value any, path string) bool {
	if isNil(value) {
		v.add(value, path, "not be null")
		return false
	}
	return true
}

func isNil(value any) bool {
	switch x := value.(type) {
	case *string:
		return x == nil
	case *int:
		return x == nil
	}
	return value == nil
}

// length checks an optional string's length in characters.
func (v *violations) length(s *string, path string, lo, hi int) {
	if s == nil {
		return
	}
	switch n := len([]rune(*s)); {
	case n < lo:
		v.add(s, path, fmt.Sprintf("have length greater than or equal to %d", lo))
	case n > hi:
		v.add(s, path, fmt.Sprintf("have length less than or equal to %d", hi))
	}
}

func (v *violations) pattern(s *string, path string, re *regexp.Regexp) {
	if s != nil && *s != "" && !re.MatchString(*s) {
		v.add(s, path, "satisfy regular expression pattern: "+re.String())
	}
}

func (v *violations) between(n *int, path string, lo, hi int) {
	switch {
	case n == nil:
	case *n < lo:
		v.add(n, path, fmt.Sprintf("have value greater than or equal to %d", lo))
	case *n > hi:
		v.add(n, path, fmt.Sprintf("have value less than or equal to %d", hi))
	}
}

func (v *violations) enum(s *string, path string, values ...string) {
	if s == nil {
		return
	}
	for _, ok := range values {
		if *s == ok {
			return
		}
	}
	v.add(s, path, "satisfy enum value set: ["+strings.Join(values, ", ")+"]")
}

// name checks a schedule or group name: 1 to 64 of [0-9a-zA-Z-_.].
func (v *violations) name(s *string, path string) {
	v.length(s, path, 1, 64)
	v.pattern(s, path, schedNamePattern)
}

func (v violations) err() *apiError {
	switch len(v) {
	case 0:
		return nil
	case 1:
		return errf(CodeValidationException, "1 validation error detected: %s", v[0])
	default:
		return errf(CodeValidationException, "%d validation errors detected: %s", len(v), strings.Join(v, "; "))
	}
}

// timing is when a valid schedule fires.
type timing struct {
	loc   *time.Location
	at    time.Time     // one-time schedules
	every time.Duration // rate schedules
}

// validateSchedule checks a CreateSchedule or UpdateSchedule request for
// the schedule name and works out when it fires.
func validateSchedule(name string, sp *scheduleSpec) (timing, *apiError) {
	var v violations
	v.name(&name, "name")
	v.name(sp.GroupName, "groupName")
	v.length(sp.Description, "description", 0, 512)
	v.length(sp.ClientToken, "clientToken", 1, 64)
	v.pattern(sp.ClientToken, "clientToken", clientTokenPattern)
	if v.required(sp.ScheduleExpression, "scheduleExpression") {
		v.length(sp.ScheduleExpression, "scheduleExpression", 1, 256)
	}
	v.length(sp.ScheduleExpressionTimezone, "scheduleExpressionTimezone", 1, 50)
	v.enum(sp.State, "state", "ENABLED", "DISABLED")
	v.enum(sp.ActionAfterCompletion, "actionAfterCompletion", "NONE", "DELETE")
	v.length(sp.KmsKeyArn, "kmsKeyArn", 1, 2048)
	if ftw := sp.FlexibleTimeWindow; ftw == nil {
		v.add(nil, "flexibleTimeWindow", "not be null")
	} else {
		if v.required(ftw.Mode, "flexibleTimeWindow.mode") {
			v.enum(ftw.Mode, "flexibleTimeWindow.mode", "OFF", "FLEXIBLE")
		}
		v.between(ftw.MaximumWindowInMinutes, "flexibleTimeWindow.maximumWindowInMinutes", 1, 1440)
	}
	if t := sp.Target; t == nil {
		v.add(nil, "target", "not be null")
	} else {
		if v.required(t.Arn, "target.arn") {
			v.length(t.Arn, "target.arn", 1, 1600)
		}
		if v.required(t.RoleArn, "target.roleArn") {
			v.length(t.RoleArn, "target.roleArn", 1, 1600)
			v.pattern(t.RoleArn, "target.roleArn", roleARNPattern)
		}
		v.length(t.Input, "target.input", 1, 8192)
		if rp := t.RetryPolicy; rp != nil {
			v.between(rp.MaximumRetryAttempts, "target.retryPolicy.maximumRetryAttempts", 0, 185)
			v.between(rp.MaximumEventAgeInSeconds, "target.retryPolicy.maximumEventAgeInSeconds", 60, 86400)
		}
		if dlq := t.DeadLetterConfig; dlq != nil {
			v.length(dlq.Arn, "target.deadLetterConfig.arn", 1, 1600)
			v.pattern(dlq.Arn, "target.deadLetterConfig.arn", queueARNPattern)
		}
	}
	if err := v.err(); err != nil {
		return timing{}, err
	}

	if ftw := sp.FlexibleTimeWindow; *ftw.Mode == "FLEXIBLE" && ftw.MaximumWindowInMinutes == nil {
		return timing{}, errf(CodeValidationException, "MaximumWindowInMinutes must be provided when FlexibleTimeWindow Mode is FLEXIBLE.")
	} else if *ftw.Mode == "OFF" && ftw.MaximumWindowInMinutes != nil {
		return timing{}, errf(CodeValidationException, "MaximumWindowInMinutes must not be provided when FlexibleTimeWindow Mode is OFF.")
	}
	if sp.StartDate != nil && sp.EndDate != nil && !sp.EndDate.After(sp.StartDate.Time) {
		return timing{}, errf(CodeValidationException, "The EndDate (%s) must be after the StartDate (%s).",
			sp.EndDate.Format(time.RFC3339), sp.StartDate.Format(time.RFC3339))
	}
	loc := time.UTC
	if tz := sp.ScheduleExpressionTimezone; tz != nil {
		l, err := time.LoadLocation(*tz)
		if err != nil || *tz == "Local" {
			return timing{}, errf(CodeValidationException, "Invalid ScheduleExpressionTimezone %s: not an IANA time zone.", *tz)
		}
		loc = l
	}
	return parseExpression(*sp.ScheduleExpression, loc)
}

// parseExpression reads at(yyyy-mm-ddThh:mm:ss), in loc, and
// rate(N minute(s)|hour(s)|day(s)).
func parseExpression(expr string, loc *time.Location) (timing, *apiError) {
	invalid := errf(CodeValidationException, "Invalid Schedule Expression %s.", expr)
	if m := atPattern.FindStringSubmatch(expr); m != nil {
		at, err := time.ParseInLocation("2006-01-02T15:04:05", m[1], loc)
		if err != nil {
			return timing{}, invalid
		}
		return timing{loc: loc, at: at.UTC()}, nil
	}
	if m := ratePattern.FindStringSubmatch(expr); m != nil {
		n, err := strconv.Atoi(m[1])
		unit := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[strings.TrimSuffix(m[2], "s")]
		if err != nil || n < 1 || int64(n) > math.MaxInt64/int64(unit) {
			return timing{}, invalid
		}
		return timing{loc: loc, every: time.Duration(n) * unit}, nil
	}
	if strings.HasPrefix(expr, "cron(") {
		return timing{}, errf(CodeValidationException,
			"ec2sim models at() and rate() schedule expressions only, not %s.", expr)
	}
	return timing{}, invalid
}
