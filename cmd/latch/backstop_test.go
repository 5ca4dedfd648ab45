package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

const schedulerRole = "arn:aws:iam::123456789012:role/latch-scheduler"

func (w *world) scheduler() *scheduler.Client {
	return scheduler.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(w.env.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDLATCHTEST", "secret", "")})
}

// latch grants and exits; no latch process ever runs again. At expiry the
// schedule in AWS (the simulator's Scheduler) revokes the rule by itself.
// With the schedule deleted by hand, the next sweep revokes instead; and
// when latch revokes first, it deletes the schedule.
func TestBackstop(t *testing.T) {
	w := trailWorld(t, 0)
	w.vars["LATCH_BACKSTOP_ROLE_ARN"] = schedulerRole
	w.vars["LATCH_BACKSTOP_GROUP"] = "default"
	sched := w.scheduler()
	grant := func(ip string) grantJSONOutFull {
		t.Helper()
		r := w.latch(t, "grant", "--sg", string(w.group), "--ip", ip, "--for", "10m", "--reason", "backstop", "--detach", "--json")
		if r.code != 0 {
			t.Fatalf("grant: %s", r.stderr)
		}
		g := grantOut(t, r.stdout)
		return grantJSONOutFull{ID: string(g.ID), RuleID: string(g.RuleID)}
	}

	g := grant("203.0.113.7")
	got, err := sched.GetSchedule(t.Context(), &scheduler.GetScheduleInput{Name: aws.String(latchaws.ScheduleName(latch.RuleID(g.RuleID))), GroupName: aws.String("default")})
	if err != nil {
		t.Fatalf("no backstop schedule for %s: %v", g.RuleID, err)
	}
	if aws.ToString(got.ScheduleExpression) != "at(2026-11-23T10:10:00)" || aws.ToString(got.Target.Arn) != latchaws.RevokeTarget ||
		aws.ToString(got.Target.RoleArn) != schedulerRole || got.ActionAfterCompletion != "DELETE" || got.FlexibleTimeWindow.Mode != "OFF" {
		t.Fatalf("schedule = %+v", got)
	}

	w.setClock(t, start.Add(10*time.Minute-time.Second))
	w.env.Sim.FireDueSchedules()
	if len(w.rules(t)) != 1 {
		t.Fatal("the schedule fired before the expiry")
	}
	w.setClock(t, start.Add(10*time.Minute))
	w.env.Sim.FireDueSchedules()
	if n := len(w.rules(t)); n != 0 {
		t.Fatalf("%d rules after the schedule's time, with no latch process", n)
	}
	if _, err := sched.GetSchedule(t.Context(), &scheduler.GetScheduleInput{Name: aws.String(latchaws.ScheduleName(latch.RuleID(g.RuleID))), GroupName: aws.String("default")}); err == nil {
		t.Error("the fired schedule was not deleted")
	}

	g2 := grant("203.0.113.8") // expires at +20m
	if _, err := sched.DeleteSchedule(t.Context(), &scheduler.DeleteScheduleInput{Name: aws.String(latchaws.ScheduleName(latch.RuleID(g2.RuleID))), GroupName: aws.String("default")}); err != nil {
		t.Fatal(err)
	}
	w.setClock(t, start.Add(20*time.Minute))
	w.env.Sim.FireDueSchedules()
	if len(w.rules(t)) != 1 {
		t.Fatal("something revoked the rule whose schedule was deleted")
	}
	if r := w.latch(t, "sweep"); r.code != 0 || len(w.rules(t)) != 0 {
		t.Fatalf("the sweep did not revoke it: exit %d %s", r.code, r.stderr)
	}

	g3 := grant("203.0.113.9")
	if r := w.latch(t, "revoke", string(g3.ID)); r.code != 0 {
		t.Fatalf("revoke: %s", r.stderr)
	}
	if _, err := sched.GetSchedule(t.Context(), &scheduler.GetScheduleInput{Name: aws.String(latchaws.ScheduleName(latch.RuleID(g3.RuleID))), GroupName: aws.String("default")}); err == nil {
		t.Error("latch revoked first but left the schedule")
	}
}

type grantJSONOutFull struct {
	ID     string `json:"grant_id"`
	RuleID string `json:"rule_id"`
}

// The recipe as a Lambda: the function grants from its environment and
// "dies"; the backstop schedule revokes at expiry, beyond Lambda's 15
// minutes, and the sweep event finds nothing left.
func TestLambdaGrantThenScheduleRevokes(t *testing.T) {
	w := trailWorld(t, 0)
	w.vars["LATCH_BACKSTOP_ROLE_ARN"] = schedulerRole
	w.vars["LATCH_BACKSTOP_GROUP"] = "default"
	w.vars["SECURITY_GROUP_ID"], w.vars["ALLOWED_IP"], w.vars["DURATION"] = string(w.group), "203.0.113.7", "3600"
	event := filepath.Join(w.dir, "event.json")
	os.WriteFile(event, []byte(`{}`), 0o600)
	r := w.latch(t, "lambda", "--event", event)
	if r.code != 0 {
		t.Fatalf("invoke: exit %d %s", r.code, r.stderr)
	}
	g := decode[grantJSONOutFull](t, r.stdout)
	if g.RuleID == "" || len(w.rules(t)) != 1 {
		t.Fatalf("grant = %+v with %d rules", g, len(w.rules(t)))
	}
	w.setClock(t, start.Add(time.Hour))
	w.env.Sim.FireDueSchedules()
	if n := len(w.rules(t)); n != 0 {
		t.Fatalf("%d rules an hour later, with the function long gone", n)
	}
	os.WriteFile(event, []byte(`{"latch":"sweep"}`), 0o600)
	if r := w.latch(t, "lambda", "--event", event); r.code != 0 || !strings.Contains(r.stdout, `"revoked":[]`) {
		t.Fatalf("sweep event: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	w.vars["ALLOWED_IP"] = "0.0.0.0/0"
	os.WriteFile(event, []byte(`{}`), 0o600)
	if r := w.latch(t, "lambda", "--event", event); r.code != exitUsage || !strings.Contains(r.stderr, "whole internet") {
		t.Fatalf("the recipe's 0.0.0.0/0: exit %d %s", r.code, r.stderr)
	}
}

// A Session Manager session outlives the server that started it: the
// server is killed mid-session and no latch process runs again. At the
// grant's expiry the session's schedule in AWS (the simulator's
// Scheduler) terminates it by itself, and deletes itself after.
func TestSessionBackstopEndsTheSessionWithNoLatchProcess(t *testing.T) {
	// The simulator's clock is the wall clock (sshd checks certificates
	// on it) until the test moves it on to the grant's expiry.
	var ahead atomic.Int64
	env := awstest.NewSim(t, ec2sim.Options{Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})
	w := startSSMWorldOn(t, env, "--backstop-role-arn", schedulerRole, "--backstop-group", "default")
	now := time.Now().UTC().Truncate(time.Second)
	done := w.forwardInBackground(t, now)
	id := latch.SSMSessionID(w.sessions()[0].ID)
	name := &scheduler.GetScheduleInput{Name: aws.String(latchaws.SessionScheduleName(id)), GroupName: aws.String("default")}
	sched := w.scheduler()
	// The simulator lists the session as soon as StartSession answers;
	// the server makes its schedule just after.
	var got *scheduler.GetScheduleOutput
	waitFor(t, "the session's backstop schedule", func() bool {
		var err error
		got, err = sched.GetSchedule(t.Context(), name)
		return err == nil
	}, w.server.output)
	expiry := now.Add(30 * time.Minute)
	if aws.ToString(got.ScheduleExpression) != "at("+expiry.Format("2006-01-02T15:04:05")+")" || aws.ToString(got.Target.Arn) != latchaws.SessionTarget ||
		aws.ToString(got.Target.Input) != `{"SessionId":"`+string(id)+`"}` || aws.ToString(got.Target.RoleArn) != schedulerRole ||
		got.ActionAfterCompletion != "DELETE" || got.FlexibleTimeWindow.Mode != "OFF" {
		t.Fatalf("schedule = %+v, target %+v", got, got.Target)
	}

	w.server.kill(t)
	ahead.Store(int64(time.Until(expiry.Add(-time.Second))))
	w.env.Sim.FireDueSchedules()
	if !connected(w.sessions()) {
		t.Fatalf("the schedule ended the session before its grant's expiry: %+v", w.sessions())
	}
	ahead.Store(int64(time.Until(expiry)))
	runs := w.env.Sim.FireDueSchedules()
	if s := w.sessions()[0]; s.Status != "Terminated" || len(runs) != 1 || runs[0].Err != nil {
		t.Fatalf("session %s after the schedule's time with no latch process; runs %+v", s.Status, runs)
	}
	if n := w.env.Sim.Calls("TerminateSession"); n != 1 {
		t.Errorf("%d TerminateSession calls; want the schedule's one", n)
	}
	if _, err := sched.GetSchedule(t.Context(), name); !strings.Contains(fmt.Sprint(err), "ResourceNotFoundException") {
		t.Errorf("GetSchedule after it fired = %v; want ResourceNotFoundException", err)
	}
	select {
	case <-done: // the plugin's channel closed: latch session exits
	case <-time.After(30 * time.Second):
		t.Error("latch session did not exit after its session was terminated")
	}
}
