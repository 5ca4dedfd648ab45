package ec2sim

// Firing schedules. Nothing fires on its own: FireDueSchedules runs what
// is due on the clock Options.Now, and each call is also the next chance
// for a failed run to be retried. A call claims its events under the
// lock, invokes their targets without it (a target may call the server),
// then settles them under the lock again.

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"
)

// ScheduleRun is one attempt to invoke a schedule's target, or the end of
// an event that aged out while awaiting a retry.
type ScheduleRun struct {
	Region string
	Group  string
	Name   string
	Target string // the target's ARN
	// At is when the event was due: an at() schedule's time, or one of a
	// rate schedule's occurrences. Retries of an event keep its At.
	At time.Time
	// Err is why the attempt failed, nil when it succeeded. Universal
	// targets fail with a *TargetError carrying the API's error code.
	Err error
	// Attempt counts the attempts at this event, 1 for the first. A run
	// for an event that aged out makes no new attempt: its Attempt is that
	// of the last one, and Err that attempt's error.
	Attempt int
	// GaveUp is set on an event's last run when it failed: the retry
	// policy's MaximumRetryAttempts or MaximumEventAgeInSeconds is used
	// up, and the event will not be tried again.
	GaveUp bool
	// DeadLettered is set when an event Scheduler gave up on went to the
	// target's dead-letter queue, which is only recorded here. Without a
	// DeadLetterConfig the event is dropped.
	DeadLettered bool
}

// TargetError is the error answer of the API a universal target called,
// such as InvalidSecurityGroupRuleId.NotFound from EC2.
type TargetError struct {
	Code    string
	Message string
}

func (e *TargetError) Error() string { return e.Code + ": " + e.Message }

// claim is one event taken by FireDueSchedules.
type claim struct {
	region string
	sc     *schedule
	ev     *schedEvent
	invoke bool   // false: the event aged out and is only settled
	key    string // the access key of the role's session, for universal targets
	err    error
}

// FireDueSchedules runs every enabled schedule whose time has come on
// Options.Now, in region, group and name order, and retries the failed
// runs of earlier calls; it returns one ScheduleRun per event handled.
// An at() schedule fires once; a rate schedule fires at most once per
// call, for its latest occurrence that is due (occurrences missed between
// calls are not made up). A one-time schedule, or a rate schedule past its
// EndDate, is complete once its last event has succeeded or been given
// up on, and is then deleted if its ActionAfterCompletion is DELETE.
func (s *Server) FireDueSchedules() []ScheduleRun {
	s.lock()
	now := s.now().UTC()
	claims := s.claimDue(now)
	s.unlock()

	for _, c := range claims {
		if c.invoke {
			c.err = s.invokeTarget(c)
		}
	}

	s.lock()
	defer s.unlock()
	runs := make([]ScheduleRun, 0, len(claims))
	for _, c := range claims {
		runs = append(runs, s.settle(c))
	}
	return runs
}

// claimDue takes the events due at now. Caller holds s.mu.
func (s *Server) claimDue(now time.Time) []*claim {
	var claims []*claim
	for _, region := range slices.Sorted(maps.Keys(s.schedulers)) {
		sr := s.schedulers[region]
		scs := make([]*schedule, 0, len(sr.schedules))
		for _, sc := range sr.schedules {
			scs = append(scs, sc)
		}
		slices.SortFunc(scs, func(a, b *schedule) int {
			return cmp.Or(cmp.Compare(a.key.group, b.key.group), cmp.Compare(a.key.name, b.key.name))
		})
		for _, sc := range scs {
			if sc.state() != "ENABLED" {
				continue
			}
			_, maxAge := sc.spec.Target.retries()
			for _, ev := range sc.pending {
				aged := now.Sub(ev.at) > maxAge
				claims = append(claims, &claim{region: region, sc: sc, ev: ev, invoke: !aged})
			}
			sc.inFlight += len(sc.pending)
			sc.pending = nil
			if at, ok := sc.due(now); ok {
				claims = append(claims, &claim{region: region, sc: sc, ev: &schedEvent{at: at}, invoke: true})
				sc.inFlight++
			}
			s.completeIfDone(sr, sc)
		}
	}
	for _, c := range claims {
		if c.invoke && isUniversalTarget(*c.sc.spec.Target.Arn) {
			c.key = s.schedulerSession(c.sc)
		}
	}
	return claims
}

// due claims sc's occurrence due at now, if any, and moves sc.next on.
func (sc *schedule) due(now time.Time) (time.Time, bool) {
	if sc.next.IsZero() || now.Before(sc.next) {
		return time.Time{}, false
	}
	at := sc.next
	if sc.every == 0 {
		sc.next = time.Time{}
		return at, true
	}
	last := now
	if !sc.end.IsZero() && sc.end.Before(last) {
		last = sc.end
	}
	if last.Before(at) {
		sc.next = time.Time{} // the first occurrence is past the EndDate
		return time.Time{}, false
	}
	at = at.Add(last.Sub(at) / sc.every * sc.every)
	sc.next = at.Add(sc.every)
	if !sc.end.IsZero() && sc.next.After(sc.end) {
		sc.next = time.Time{}
	}
	return at, true
}

// settle records how c's attempt went and reports it. Caller holds s.mu.
func (s *Server) settle(c *claim) ScheduleRun {
	sc, ev := c.sc, c.ev
	target := sc.spec.Target
	run := ScheduleRun{Region: c.region, Group: sc.key.group, Name: sc.key.name, Target: *target.Arn, At: ev.at}
	if c.invoke {
		ev.attempts++
		ev.lastErr = c.err
	}
	run.Attempt, run.Err = ev.attempts, ev.lastErr
	sc.inFlight--
	if ev.lastErr != nil {
		maxRetries, _ := target.retries()
		if !c.invoke || ev.attempts > maxRetries {
			run.GaveUp = true
			run.DeadLettered = target.deadLetterARN() != ""
		} else {
			sc.pending = append(sc.pending, ev)
		}
	}
	if sr := s.schedulers[c.region]; sr.schedules[sc.key] == sc {
		s.completeIfDone(sr, sc)
	}
	level := s.log().Debug
	if run.Err != nil {
		level = s.log().Warn
	}
	level("schedule run", "region", run.Region, "group", run.Group, "name", run.Name, "target", run.Target,
		"at", run.At, "attempt", run.Attempt, "err", run.Err, "gave_up", run.GaveUp, "dead_lettered", run.DeadLettered)
	return run
}

// completeIfDone deletes sc if it has nothing left to run and its
// ActionAfterCompletion is DELETE. Caller holds s.mu.
func (s *Server) completeIfDone(sr *schedRegion, sc *schedule) {
	if sc.next.IsZero() && len(sc.pending) == 0 && sc.inFlight == 0 && sc.afterCompletion() == "DELETE" {
		delete(sr.schedules, sc.key)
	}
}

// invokeTarget calls c's target: one of the simulator's universal
// targets, or Options.Invoke. It runs without s.mu.
func (s *Server) invokeTarget(c *claim) error {
	t := c.sc.spec.Target
	input := ""
	if t.Input != nil {
		input = *t.Input
	}
	if isUniversalTarget(*t.Arn) {
		return s.callUniversalTarget(c.region, c.key, *t.Arn, input)
	}
	if s.opts.Invoke == nil {
		return fmt.Errorf("ec2sim: no Options.Invoke to call target %s", *t.Arn)
	}
	if err := s.opts.Invoke(*t.Arn, []byte(input)); err != nil {
		return fmt.Errorf("invoke %s: %w", *t.Arn, err)
	}
	return nil
}

// schedulerFirePath fires due schedules for tests in another process.
const schedulerFirePath = adminPrefix + "scheduler/fire"

// scheduleRunJSON is a ScheduleRun on the wire.
type scheduleRunJSON struct {
	Region       string    `json:"region"`
	Group        string    `json:"group"`
	Name         string    `json:"name"`
	Target       string    `json:"target"`
	At           time.Time `json:"at"`
	Attempt      int       `json:"attempt"`
	Error        string    `json:"error,omitempty"`
	ErrorCode    string    `json:"error_code,omitempty"`
	GaveUp       bool      `json:"gave_up,omitempty"`
	DeadLettered bool      `json:"dead_lettered,omitempty"`
}

// serveSchedulerAdmin answers POST /_sim/scheduler/fire with the runs of
// FireDueSchedules, and reports whether r was for it.
func (s *Server) serveSchedulerAdmin(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != schedulerFirePath {
		return false
	}
	if r.Method != http.MethodPost {
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return true
	}
	out := []scheduleRunJSON{}
	for _, run := range s.FireDueSchedules() {
		rj := scheduleRunJSON{
			Region: run.Region, Group: run.Group, Name: run.Name, Target: run.Target, At: run.At,
			Attempt: run.Attempt, GaveUp: run.GaveUp, DeadLettered: run.DeadLettered,
		}
		if run.Err != nil {
			rj.Error = run.Err.Error()
			if te, ok := errors.AsType[*TargetError](run.Err); ok {
				rj.ErrorCode = te.Code
			}
		}
		out = append(out, rj)
	}
	writeJSON(w, out)
	return true
}
