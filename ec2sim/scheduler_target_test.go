package ec2sim_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	stypes "github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/latchdev/latch/ec2sim"
)

func TestFire_AuthorizeTargetAddsATaggedRule(t *testing.T) {
	e := newFireEnv(t, ec2sim.Options{})
	group := ec2sim.DemoWebLatchGroup
	input := `{"GroupId":"` + group + `","IpPermissions":[{"IpProtocol":"tcp","FromPort":22,"ToPort":22,` +
		`"IpRanges":[{"CidrIp":"198.51.100.9/32","Description":"scheduled"}]}],` +
		`"TagSpecifications":[{"ResourceType":"security-group-rule","Tags":[{"Key":"latch:grant","Value":"g-1"}]}]}`
	e.create(t, oneTime("open", t0, &stypes.Target{Arn: aws.String(authorizeARN), RoleArn: aws.String(backstopRole), Input: aws.String(input)}))
	runs := e.fireAt(t0)
	if len(runs) != 1 || runs[0].Err != nil {
		t.Fatalf("runs = %+v, want one that succeeded", runs)
	}
	var found bool
	for _, r := range e.sim.Rules("us-east-1", group) {
		if r.CIDR == "198.51.100.9/32" && r.FromPort == 22 && r.Description == "scheduled" && r.Tags["latch:grant"] == "g-1" {
			found = true
		}
	}
	if !found {
		t.Errorf("rules = %+v, want 198.51.100.9/32 on port 22, tagged latch:grant=g-1", e.sim.Rules("us-east-1", group))
	}
}

func TestFire_UniversalTargetErrors(t *testing.T) {
	e := newFireEnv(t, ec2sim.Options{})
	group := ec2sim.DemoWebLatchGroup
	for _, tt := range []struct {
		name, arn, input, code, want string
	}{
		{"unknown member", revokeARN, `{"GroupId":"` + group + `","RuleIds":["sgr-1"]}`, "", `unknown field "RuleIds"`},
		{"not JSON", revokeARN, `GroupId=sg-1`, "", "Input"},
		{"malformed rule ID", revokeARN, `{"GroupId":"` + group + `","SecurityGroupRuleIds":["rule-1"]}`, "InvalidSecurityGroupRuleId.Malformed", "rule-1"},
		{"no such group", revokeARN, `{"GroupId":"sg-0000000000000dead","SecurityGroupRuleIds":["sgr-0000000000000dead"]}`, "InvalidGroup.NotFound", "sg-0000000000000dead"},
		{"dry run", revokeARN, `{"GroupId":"` + group + `","SecurityGroupRuleIds":["sgr-0000000000000dead"],"DryRun":true}`, "DryRunOperation", ""},
		{"not modelled", "arn:aws:scheduler:::aws-sdk:ec2:createTags", `{"Resources":["sg-1"]}`, "", "not modelled"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := oneTime("t", t0, &stypes.Target{Arn: aws.String(tt.arn), RoleArn: aws.String(backstopRole), Input: aws.String(tt.input)})
			in.Target.RetryPolicy = &stypes.RetryPolicy{MaximumRetryAttempts: aws.Int32(0)}
			e.create(t, in)
			runs := e.fireAt(t0)
			if len(runs) != 1 || runs[0].Err == nil || targetCode(runs[0].Err) != tt.code || !strings.Contains(runs[0].Err.Error(), tt.want) || !runs[0].GaveUp {
				t.Fatalf("runs = %+v, want one failed with code %q mentioning %q, given up", runs, tt.code, tt.want)
			}
		})
	}
}

func TestFire_ThrottledUniversalCallIsRetried(t *testing.T) {
	e := newFireEnv(t, ec2sim.Options{})
	group := ec2sim.DemoWebLatchGroup
	rule := aws.ToString(mustAuthorize(t, e.ec2, group, ssh("203.0.113.9/32"))[0].SecurityGroupRuleId)
	e.create(t, oneTime("latch-"+rule, t0, revokeTarget(group, rule)))
	e.sim.SetFaults(ec2sim.Faults{ThrottleRate: 1, Actions: []string{"RevokeSecurityGroupIngress"}, Limit: 1})
	runs := e.fireAt(t0)
	if len(runs) != 1 || targetCode(runs[0].Err) != "RequestLimitExceeded" || runs[0].GaveUp || !hasRule(e.sim, group, rule) {
		t.Fatalf("throttled: runs = %+v, want RequestLimitExceeded, to be retried, the rule untouched", runs)
	}
	runs = e.fireAt(t0.Add(time.Second))
	if len(runs) != 1 || runs[0].Err != nil || runs[0].Attempt != 2 || hasRule(e.sim, group, rule) {
		t.Fatalf("retry: runs = %+v, want attempt 2 to revoke the rule", runs)
	}
	if n := e.sim.Calls("RevokeSecurityGroupIngress"); n != 2 {
		t.Errorf("Calls(RevokeSecurityGroupIngress) = %d, want 2", n)
	}
}

func TestFire_AdminEndpoint(t *testing.T) {
	e := newFireEnv(t, ec2sim.Options{})
	e.create(t, oneTime("latch-sgr-0000000000000dead", t0, revokeTarget(ec2sim.DemoWebLatchGroup, "sgr-0000000000000dead")))

	resp, err := http.Get(e.url + "/_sim/scheduler/fire")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /_sim/scheduler/fire = HTTP %d, want 405", resp.StatusCode)
	}

	resp, err = http.Post(e.url+"/_sim/scheduler/fire", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var runs []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&runs); err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0]["name"] != "latch-sgr-0000000000000dead" || runs[0]["error_code"] != "InvalidSecurityGroupRuleId.NotFound" ||
		runs[0]["attempt"] != 1.0 || runs[0]["at"] != "2026-11-23T10:00:00Z" {
		t.Errorf("POST /_sim/scheduler/fire = %v", runs)
	}
	// The other control endpoints still answer.
	var calls map[string]int
	getJSON(t, e.url+"/_sim/calls", &calls)
	if calls["RevokeSecurityGroupIngress"] != 1 || calls["CreateSchedule"] != 1 {
		t.Errorf("/_sim/calls = %v", calls)
	}
}

// Concurrent callers share out the due events: each runs once.
func TestFire_ConcurrentCallsRunEachEventOnce(t *testing.T) {
	iv := &invocations{}
	e := newFireEnv(t, ec2sim.Options{Invoke: iv.invoke})
	const n = 20
	for i := range n {
		e.create(t, oneTime("s"+string(rune('a'+i)), t0, lambdaTarget("{}")))
	}
	var wg sync.WaitGroup
	counts := make(chan int, 4)
	for range 4 {
		wg.Go(func() { counts <- len(e.sim.FireDueSchedules()) })
	}
	wg.Wait()
	close(counts)
	total := 0
	for c := range counts {
		total += c
	}
	if calls := iv.take(); total != n || len(calls) != n {
		t.Errorf("runs %d, invocations %d; want %d of each", total, len(calls), n)
	}
}

// A rate schedule runs from its StartDate to its EndDate, and is then
// complete.
func TestFire_RateBetweenStartAndEndDates(t *testing.T) {
	iv := &invocations{}
	e := newFireEnv(t, ec2sim.Options{Invoke: iv.invoke})
	start, end := t0.Add(30*time.Minute), t0.Add(150*time.Minute)
	e.create(t, &scheduler.CreateScheduleInput{
		Name: aws.String("window"), ScheduleExpression: aws.String("rate(1 hour)"),
		StartDate: aws.Time(start), EndDate: aws.Time(end),
		FlexibleTimeWindow:    &stypes.FlexibleTimeWindow{Mode: stypes.FlexibleTimeWindowModeOff},
		ActionAfterCompletion: stypes.ActionAfterCompletionDelete,
		Target:                lambdaTarget("{}"),
	})
	got, err := e.sched.GetSchedule(t.Context(), &scheduler.GetScheduleInput{Name: aws.String("window")})
	if err != nil || !got.StartDate.Equal(start) || !got.EndDate.Equal(end) {
		t.Fatalf("GetSchedule = %+v, %v; want StartDate %v, EndDate %v", got, err, start, end)
	}
	var fired []string
	for _, at := range []time.Duration{29 * time.Minute, 30 * time.Minute, 89 * time.Minute, 90 * time.Minute, 150 * time.Minute, 210 * time.Minute} {
		for _, r := range e.fireAt(t0.Add(at)) {
			fired = append(fired, r.At.Sub(t0).String())
		}
	}
	if got, want := strings.Join(fired, " "), "30m0s 1h30m0s 2h30m0s"; got != want {
		t.Errorf("fired for %s, want %s", got, want)
	}
	if e.exists(t, "window") {
		t.Error("schedule still there after its EndDate; ActionAfterCompletion DELETE should remove it")
	}
}
