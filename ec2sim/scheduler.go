package ec2sim

// EventBridge Scheduler: schedules that invoke a target once (at()) or
// every so often (rate()). The SDK sends every service to one base
// endpoint, so Scheduler's REST JSON API (scheduler_api.go) arrives here
// beside EC2's Query API; nothing of EC2's lives under /schedules or
// /schedule-groups. Schedules fire only when asked ([Server.FireDueSchedules],
// scheduler_fire.go), on the clock Options.Now, so tests decide when time
// passes. This file holds the state and its JSON shapes.

import (
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// EventBridge Scheduler's error codes, as it spells them in
// x-amzn-ErrorType.
const (
	CodeConflictException         = "ConflictException"
	CodeInternalServerException   = "InternalServerException"
	CodeResourceNotFoundException = "ResourceNotFoundException"
	CodeSerializationException    = "SerializationException"
	CodeThrottlingException       = "ThrottlingException"
	CodeUnknownOperation          = "UnknownOperationException"
	CodeValidationException       = "ValidationException"
)

// DefaultScheduleGroup is the schedule group every region has, and the one
// a schedule joins when it names none.
const DefaultScheduleGroup = "default"

// Scheduler's retry policy when a target names none: retry for a day, up
// to 185 times.
const (
	defaultMaxRetryAttempts = 185
	defaultMaxEventAge      = 86400
)

// schedRegion is one region's schedule groups and schedules. Caller holds
// s.mu for all access.
type schedRegion struct {
	groups    map[string]*schedGroup
	schedules map[schedKey]*schedule
	// deleted holds the ClientToken of each schedule's last delete, so
	// that a delete the SDK retries after a lost answer succeeds again.
	deleted map[schedKey]string
}

type schedKey struct{ group, name string }

type schedGroup struct {
	name, arn, token  string
	created, modified time.Time
}

// schedule is one schedule. An update replaces it with a new one, so a
// run in flight can tell (by pointer) whether its schedule is still the
// one it claimed from.
type schedule struct {
	key               schedKey
	arn               string
	spec              scheduleSpec // as sent, after validation
	created, modified time.Time
	token             string // the ClientToken that created it
	loc               *time.Location

	at    time.Time     // one-time: when it fires; zero for rate
	every time.Duration // rate: the period
	end   time.Time     // rate: EndDate, zero for none
	// next is the next occurrence not yet claimed by FireDueSchedules;
	// zero when none is left.
	next time.Time
	// pending are failed events awaiting a retry; inFlight counts the
	// events claimed and not yet settled.
	pending  []*schedEvent
	inFlight int
}

// schedEvent is one occurrence of a schedule: due at at, tried attempts
// times so far.
type schedEvent struct {
	at       time.Time
	attempts int
	lastErr  error
}

// scheduler returns region's scheduler state, creating it with its
// default group on first use. Caller holds s.mu.
func (s *Server) scheduler(region string) *schedRegion {
	if s.schedulers == nil {
		s.schedulers = map[string]*schedRegion{}
	}
	if sr, ok := s.schedulers[region]; ok {
		return sr
	}
	now := s.now().UTC()
	sr := &schedRegion{groups: map[string]*schedGroup{}, schedules: map[schedKey]*schedule{}, deleted: map[schedKey]string{}}
	sr.groups[DefaultScheduleGroup] = &schedGroup{
		name: DefaultScheduleGroup, arn: s.groupARN(region, DefaultScheduleGroup), created: now, modified: now,
	}
	s.schedulers[region] = sr
	return sr
}

func (s *Server) scheduleARN(region string, k schedKey) string {
	return "arn:aws:scheduler:" + region + ":" + s.accountID() + ":schedule/" + k.group + "/" + k.name
}

func (s *Server) groupARN(region, name string) string {
	return "arn:aws:scheduler:" + region + ":" + s.accountID() + ":schedule-group/" + name
}

// scheduleSpec is the body of CreateSchedule and UpdateSchedule, with
// pointers where Scheduler tells a missing member from an empty one.
type scheduleSpec struct {
	ActionAfterCompletion      *string             `json:"ActionAfterCompletion,omitempty"`
	ClientToken                *string             `json:"ClientToken,omitempty"`
	Description                *string             `json:"Description,omitempty"`
	EndDate                    *epochSeconds       `json:"EndDate,omitempty"`
	FlexibleTimeWindow         *flexibleTimeWindow `json:"FlexibleTimeWindow,omitempty"`
	GroupName                  *string             `json:"GroupName,omitempty"`
	KmsKeyArn                  *string             `json:"KmsKeyArn,omitempty"`
	ScheduleExpression         *string             `json:"ScheduleExpression,omitempty"`
	ScheduleExpressionTimezone *string             `json:"ScheduleExpressionTimezone,omitempty"`
	StartDate                  *epochSeconds       `json:"StartDate,omitempty"`
	State                      *string             `json:"State,omitempty"`
	Target                     *schedTarget        `json:"Target,omitempty"`
}

type flexibleTimeWindow struct {
	MaximumWindowInMinutes *int    `json:"MaximumWindowInMinutes,omitempty"`
	Mode                   *string `json:"Mode,omitempty"`
}

// schedTarget is a schedule's target. The parameters of targets the
// simulator does not invoke (ECS, SQS, …) are kept as sent and returned
// by GetSchedule.
type schedTarget struct {
	Arn                         *string           `json:"Arn,omitempty"`
	DeadLetterConfig            *deadLetterConfig `json:"DeadLetterConfig,omitempty"`
	EcsParameters               json.RawMessage   `json:"EcsParameters,omitempty"`
	EventBridgeParameters       json.RawMessage   `json:"EventBridgeParameters,omitempty"`
	Input                       *string           `json:"Input,omitempty"`
	KinesisParameters           json.RawMessage   `json:"KinesisParameters,omitempty"`
	RetryPolicy                 *retryPolicy      `json:"RetryPolicy,omitempty"`
	RoleArn                     *string           `json:"RoleArn,omitempty"`
	SageMakerPipelineParameters json.RawMessage   `json:"SageMakerPipelineParameters,omitempty"`
	SqsParameters               json.RawMessage   `json:"SqsParameters,omitempty"`
}

type retryPolicy struct {
	MaximumEventAgeInSeconds *int `json:"MaximumEventAgeInSeconds,omitempty"`
	MaximumRetryAttempts     *int `json:"MaximumRetryAttempts,omitempty"`
}

type deadLetterConfig struct {
	Arn *string `json:"Arn,omitempty"`
}

// retries returns the target's retry policy with Scheduler's defaults
// filled in.
func (t *schedTarget) retries() (maxAttempts int, maxAge time.Duration) {
	maxAttempts, age := defaultMaxRetryAttempts, defaultMaxEventAge
	if rp := t.RetryPolicy; rp != nil {
		if rp.MaximumRetryAttempts != nil {
			maxAttempts = *rp.MaximumRetryAttempts
		}
		if rp.MaximumEventAgeInSeconds != nil {
			age = *rp.MaximumEventAgeInSeconds
		}
	}
	return maxAttempts, time.Duration(age) * time.Second
}

func (t *schedTarget) deadLetterARN() string {
	if t.DeadLetterConfig == nil || t.DeadLetterConfig.Arn == nil {
		return ""
	}
	return *t.DeadLetterConfig.Arn
}

// epochSeconds is a timestamp as REST JSON sends it: seconds since the epoch,
// with a fraction.
type epochSeconds struct{ time.Time }

func (e epochSeconds) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf("%.3f", float64(e.UnixMilli())/1000)), nil
}

func (e *epochSeconds) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("timestamp %s: want seconds since the epoch", b)
	}
	sec, frac := math.Modf(f)
	e.Time = time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond)).UTC()
	return nil
}

// getScheduleOutput is GetSchedule's answer: the schedule as sent, with
// Scheduler's defaults filled in.
type getScheduleOutput struct {
	ActionAfterCompletion      string              `json:"ActionAfterCompletion"`
	Arn                        string              `json:"Arn"`
	CreationDate               epochSeconds        `json:"CreationDate"`
	Description                *string             `json:"Description,omitempty"`
	EndDate                    *epochSeconds       `json:"EndDate,omitempty"`
	FlexibleTimeWindow         *flexibleTimeWindow `json:"FlexibleTimeWindow"`
	GroupName                  string              `json:"GroupName"`
	KmsKeyArn                  *string             `json:"KmsKeyArn,omitempty"`
	LastModificationDate       epochSeconds        `json:"LastModificationDate"`
	Name                       string              `json:"Name"`
	ScheduleExpression         string              `json:"ScheduleExpression"`
	ScheduleExpressionTimezone string              `json:"ScheduleExpressionTimezone"`
	StartDate                  *epochSeconds       `json:"StartDate,omitempty"`
	State                      string              `json:"State"`
	Target                     schedTarget         `json:"Target"`
}

func (sc *schedule) output() getScheduleOutput {
	sp := sc.spec
	target := *sp.Target
	maxAttempts, maxAge := target.retries()
	age := int(maxAge / time.Second)
	target.RetryPolicy = &retryPolicy{MaximumEventAgeInSeconds: &age, MaximumRetryAttempts: &maxAttempts}
	return getScheduleOutput{
		ActionAfterCompletion:      sc.afterCompletion(),
		Arn:                        sc.arn,
		CreationDate:               epochSeconds{sc.created},
		Description:                sp.Description,
		EndDate:                    sp.EndDate,
		FlexibleTimeWindow:         sp.FlexibleTimeWindow,
		GroupName:                  sc.key.group,
		KmsKeyArn:                  sp.KmsKeyArn,
		LastModificationDate:       epochSeconds{sc.modified},
		Name:                       sc.key.name,
		ScheduleExpression:         *sp.ScheduleExpression,
		ScheduleExpressionTimezone: sc.loc.String(),
		StartDate:                  sp.StartDate,
		State:                      sc.state(),
		Target:                     target,
	}
}

func (sc *schedule) state() string {
	if sc.spec.State == nil {
		return "ENABLED"
	}
	return *sc.spec.State
}

func (sc *schedule) afterCompletion() string {
	if sc.spec.ActionAfterCompletion == nil {
		return "NONE"
	}
	return *sc.spec.ActionAfterCompletion
}

// scheduleSummary is one schedule in ListSchedules.
type scheduleSummary struct {
	Arn                  string       `json:"Arn"`
	CreationDate         epochSeconds `json:"CreationDate"`
	GroupName            string       `json:"GroupName"`
	LastModificationDate epochSeconds `json:"LastModificationDate"`
	Name                 string       `json:"Name"`
	State                string       `json:"State"`
	Target               struct {
		Arn string `json:"Arn"`
	} `json:"Target"`
}

func (sc *schedule) summary() scheduleSummary {
	out := scheduleSummary{
		Arn: sc.arn, CreationDate: epochSeconds{sc.created}, GroupName: sc.key.group,
		LastModificationDate: epochSeconds{sc.modified}, Name: sc.key.name, State: sc.state(),
	}
	out.Target.Arn = *sc.spec.Target.Arn
	return out
}

// groupOutput is a schedule group as GetScheduleGroup and
// ListScheduleGroups answer it.
type groupOutput struct {
	Arn                  string       `json:"Arn"`
	CreationDate         epochSeconds `json:"CreationDate"`
	LastModificationDate epochSeconds `json:"LastModificationDate"`
	Name                 string       `json:"Name"`
	State                string       `json:"State"`
}

func (g *schedGroup) output() groupOutput {
	return groupOutput{Arn: g.arn, CreationDate: epochSeconds{g.created}, LastModificationDate: epochSeconds{g.modified}, Name: g.name, State: "ACTIVE"}
}
