package ec2sim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch/ec2sim"
)

const authorize = "AuthorizeSecurityGroupIngress"

func TestFaults_ThrottlingIsRetriedThenReported(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{})
	sim.SetFaults(ec2sim.Faults{ThrottleRate: 1})
	_, err := c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("192.0.2.1/32")},
	})
	wantCode(t, err, "RequestLimitExceeded")
	if !retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err).Bool() {
		t.Errorf("the SDK does not classify %v as throttling", err)
	}
	var maxErr *retry.MaxAttemptsError
	if !errors.As(err, &maxErr) {
		t.Errorf("err = %v, want the SDK to give up after retrying", err)
	}
	if n := sim.Calls(authorize); n != 3 {
		t.Errorf("%d calls, want 3 (the SDK's standard attempts)", n)
	}
	if rules := sim.Rules("us-east-1", web); len(rules) != 0 {
		t.Errorf("throttled calls added %v", rules)
	}

	sim.SetFaults(ec2sim.Faults{})
	mustAuthorize(t, c, web, ssh("192.0.2.1/32"))
}

func TestFaults_ServerErrorAppliesNothing(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{})
	sim.SetFaults(ec2sim.Faults{ServerErrorRate: 1, Actions: []string{authorize}})
	_, err := c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("192.0.2.1/32")},
	})
	wantCode(t, err, "InternalError")
	if rules := sim.Rules("us-east-1", web); len(rules) != 0 {
		t.Errorf("failed calls added %v", rules)
	}
	// Other actions are not affected.
	if _, err := c.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{}); err != nil {
		t.Errorf("describe with faults on authorize only: %v", err)
	}
}

func TestFaults_LostResponseAppliesTheEffect(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{})
	sim.SetFaults(ec2sim.Faults{LostResponseRate: 1, Limit: 1, Actions: []string{authorize}})

	// The first attempt adds the rule but its answer is lost; the SDK
	// retries, and the retry finds the rule already there.
	_, err := c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("192.0.2.1/32")},
	})
	if code := errorCode(err); code != "InvalidPermission.Duplicate" {
		t.Fatalf("authorize with lost responses = %v, want InvalidPermission.Duplicate from the retry", err)
	}
	rules := sim.Rules("us-east-1", web)
	if len(rules) != 1 {
		t.Fatalf("rules = %v, want the one added by the first attempt", rules)
	}

	if n := sim.Calls(authorize); n != 2 {
		t.Errorf("%d authorize calls, want 2", n)
	}

	sim.SetFaults(ec2sim.Faults{LostResponseRate: 1, Limit: 1, Actions: []string{"RevokeSecurityGroupIngress"}})
	_, err = c.RevokeSecurityGroupIngress(t.Context(), &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(web), SecurityGroupRuleIds: []string{rules[0].ID},
	})
	wantCode(t, err, "InvalidSecurityGroupRuleId.NotFound")
	if left := sim.Rules("us-east-1", web); len(left) != 0 {
		t.Errorf("rules = %v, want none", left)
	}
}

func TestFaults_SeededRatesAreDeterministic(t *testing.T) {
	outcomes := func() []string {
		sim, c := mustSim(t, ec2sim.Options{})
		sim.SetFaults(ec2sim.Faults{ThrottleRate: 0.3, ServerErrorRate: 0.2, Seed: 42})
		var got []string
		for range 20 {
			_, err := c.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{}, func(o *ec2.Options) {
				o.RetryMaxAttempts = 1
			})
			got = append(got, errorCode(err))
		}
		return got
	}
	a, b := outcomes(), outcomes()
	failed := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("run 1 %v\nrun 2 %v\nwant the same sequence", a, b)
		}
		if a[i] != "" {
			failed++
		}
	}
	if failed == 0 || failed == len(a) {
		t.Errorf("%d of %d failed; want some of each at rate 0.5", failed, len(a))
	}
}

func TestFaults_LatencyHonoursTheClientDeadline(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{})
	sim.SetFaults(ec2sim.Faults{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the client's deadline to cut the injected latency short", err)
	}
	if got := sim.CurrentFaults().Latency; got != time.Hour {
		t.Errorf("CurrentFaults().Latency = %v", got)
	}
}
