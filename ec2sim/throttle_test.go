package ec2sim_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch/ec2sim"
)

const revoke = "RevokeSecurityGroupIngress"

// query sends one EC2 Query API request to the simulator at u, signed (in
// scope only) for region, and returns the status and body.
func query(t testing.TB, u, region string, form url.Values) (int, string) {
	t.Helper()
	form.Set("Version", ec2sim.APIVersion)
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261204/"+region+"/ec2/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// revokeUnknown is a RevokeSecurityGroupIngress EC2 evaluates (and
// refuses: the rule does not exist), so it spends a token and changes
// nothing.
func revokeUnknown() url.Values {
	return url.Values{"Action": {revoke}, "GroupId": {web}, "SecurityGroupRuleId.1": {"sgr-00000000000000001"}}
}

// spend sends n requests of form and reports how many were throttled.
func spend(t testing.TB, u, region string, n int, form func() url.Values) int {
	t.Helper()
	throttled := 0
	for range n {
		status, body := query(t, u, region, form())
		if strings.Contains(body, "<Code>RequestLimitExceeded</Code>") {
			throttled++
			if status != http.StatusServiceUnavailable {
				t.Fatalf("RequestLimitExceeded with status %d, want 503", status)
			}
		}
	}
	return throttled
}

func throttledSim(t *testing.T, th *ec2sim.Throttle) (*ec2sim.Server, string, *testClock) {
	t.Helper()
	clock := &testClock{now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	sim := ec2sim.New(ec2sim.Options{Now: clock.Now, Throttle: th})
	if err := sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		t.Fatal(err)
	}
	return sim, mustStart(t, sim), clock
}

func TestThrottle_OffByDefault(t *testing.T) {
	sim, u, _ := throttledSim(t, nil)
	if n := spend(t, u, "us-east-1", 200, revokeUnknown); n != 0 {
		t.Errorf("%d of 200 revokes throttled with no Throttle, want 0", n)
	}
	if sim.CurrentThrottle() != nil || sim.Throttled("") != 0 {
		t.Errorf("throttle %v, %d throttled; want off", sim.CurrentThrottle(), sim.Throttled(""))
	}
}

func TestThrottle_EmptyBucketAnswersRequestLimitExceeded(t *testing.T) {
	sim, u, clock := throttledSim(t, ec2sim.EC2Throttle())
	// RevokeSecurityGroupIngress is resource-intensive: 50 tokens.
	if n := spend(t, u, "us-east-1", 50, revokeUnknown); n != 0 {
		t.Fatalf("%d of the first 50 revokes throttled, want 0", n)
	}
	status, body := query(t, u, "us-east-1", revokeUnknown())
	if status != http.StatusServiceUnavailable ||
		!strings.Contains(body, "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>") {
		t.Fatalf("51st revoke: %d %s, want 503 and EC2's RequestLimitExceeded", status, body)
	}
	if got := sim.Throttled(revoke); got != 1 {
		t.Errorf("Throttled(%s) = %d, want 1", revoke, got)
	}
	if got := sim.Calls(revoke); got != 51 {
		t.Errorf("Calls(%s) = %d, want 51 (throttled requests count)", revoke, got)
	}

	// A second refills 5 tokens, no more.
	clock.Set(clock.Now().Add(time.Second))
	if n := spend(t, u, "us-east-1", 6, revokeUnknown); n != 1 {
		t.Errorf("a second after emptying: %d of 6 throttled, want 1 (refill 5/s)", n)
	}
	// An hour fills it to 50, no more.
	clock.Set(clock.Now().Add(time.Hour))
	if n := spend(t, u, "us-east-1", 51, revokeUnknown); n != 1 {
		t.Errorf("an hour later: %d of 51 throttled, want 1 (bucket holds 50)", n)
	}
	// The refused changed nothing.
	if rules := sim.Rules("us-east-1", web); len(rules) != 0 {
		t.Errorf("rules %v", rules)
	}
}

func TestThrottle_BucketsAreIndependent(t *testing.T) {
	sim, u, _ := throttledSim(t, ec2sim.EC2Throttle())
	spend(t, u, "us-east-1", 60, revokeUnknown)
	if sim.Throttled(revoke) != 10 {
		t.Fatalf("Throttled = %d, want 10", sim.Throttled(revoke))
	}
	// Another API, another region, another category: full buckets.
	authz := func() url.Values {
		return url.Values{"Action": {authorize}, "GroupId": {"sg-404"}, "IpPermissions.1.IpProtocol": {"tcp"},
			"IpPermissions.1.FromPort": {"22"}, "IpPermissions.1.ToPort": {"22"}, "IpPermissions.1.IpRanges.1.CidrIp": {"192.0.2.1/32"}}
	}
	tags := func() url.Values {
		return url.Values{"Action": {"CreateTags"}, "ResourceId.1": {web}, "Tag.1.Key": {"k"}, "Tag.1.Value": {"v"}}
	}
	describe := func() url.Values { return url.Values{"Action": {"DescribeSecurityGroupRules"}} }
	for _, c := range []struct {
		name, region string
		form         func() url.Values
		free         int // tokens in a full bucket
	}{
		{"revoke in us-west-2", "us-west-2", revokeUnknown, 50},
		{"authorize", "us-east-1", authz, 50},
		{"CreateTags (uncategorized: 100)", "us-east-1", tags, 100},
		{"DescribeSecurityGroupRules (non-mutating: 100)", "us-east-1", describe, 100},
	} {
		if n := spend(t, u, c.region, c.free, c.form); n != 0 {
			t.Errorf("%s: %d of %d throttled, want 0", c.name, n, c.free)
		}
		if n := spend(t, u, c.region, 1, c.form); n != 1 {
			t.Errorf("%s: call %d not throttled", c.name, c.free+1)
		}
	}
	if sim.Throttled("") != 14 {
		t.Errorf("Throttled(\"\") = %d, want 14", sim.Throttled(""))
	}
}

func TestThrottle_UnfilteredDescribeHasTheSmallerBucket(t *testing.T) {
	_, u, _ := throttledSim(t, ec2sim.EC2Throttle())
	unfiltered := func() url.Values { return url.Values{"Action": {"DescribeSecurityGroups"}} }
	filtered := func() url.Values {
		return url.Values{"Action": {"DescribeSecurityGroups"}, "Filter.1.Name": {"group-id"}, "Filter.1.Value.1": {web}}
	}
	if n := spend(t, u, "us-east-1", 51, unfiltered); n != 1 {
		t.Errorf("unfiltered: %d of 51 throttled, want 1 (bucket of 50)", n)
	}
	if n := spend(t, u, "us-east-1", 100, filtered); n != 0 {
		t.Errorf("filtered after unfiltered ran dry: %d of 100 throttled, want 0", n)
	}
}

func TestThrottle_ScaleAndSwitch(t *testing.T) {
	sim, u, _ := throttledSim(t, nil)
	sim.SetThrottle(ec2sim.EC2Throttle().Scale(0.1)) // 5 tokens
	if n := spend(t, u, "us-east-1", 6, revokeUnknown); n != 1 {
		t.Errorf("scaled by 0.1: %d of 6 throttled, want 1", n)
	}
	if b := sim.CurrentThrottle().ResourceIntensive; b != (ec2sim.Bucket{Size: 5, Refill: 0.5}) {
		t.Errorf("scaled bucket %+v", b)
	}
	sim.SetThrottle(nil)
	if n := spend(t, u, "us-east-1", 10, revokeUnknown); n != 0 {
		t.Errorf("after SetThrottle(nil): %d throttled", n)
	}
	// Overriding one action's bucket.
	th := ec2sim.EC2Throttle()
	th.Actions[revoke] = ec2sim.Bucket{Size: 2, Refill: 1}
	sim.SetThrottle(th)
	if n := spend(t, u, "us-east-1", 3, revokeUnknown); n != 1 {
		t.Errorf("override of 2: %d of 3 throttled, want 1", n)
	}
}

func TestThrottle_AdminEndpoint(t *testing.T) {
	sim, u, _ := throttledSim(t, nil)
	post := func(body string) int {
		t.Helper()
		resp, err := http.Post(u+"/_sim/throttle", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(`{"scale": 0.1}`); code != http.StatusOK {
		t.Fatalf("POST scale: %d", code)
	}
	if b := sim.CurrentThrottle(); b == nil || b.ResourceIntensive.Size != 5 {
		t.Fatalf("after POST scale 0.1: %+v", b)
	}
	if code := post(`{"buckets": {"resource_intensive": {"size": 1, "refill": 1}}}`); code != http.StatusOK {
		t.Fatalf("POST buckets: %d", code)
	}
	if n := spend(t, u, "us-east-1", 2, revokeUnknown); n != 1 {
		t.Errorf("bucket of 1 from the endpoint: %d of 2 throttled, want 1", n)
	}
	for _, bad := range []string{`{}`, `{"scale": -1}`, `{"bogus": 1}`} {
		if code := post(bad); code != http.StatusBadRequest {
			t.Errorf("POST %s: %d, want 400", bad, code)
		}
	}
	if code := post(`{"off": true}`); code != http.StatusOK || sim.CurrentThrottle() != nil {
		t.Errorf("POST off: %d, throttle %v", code, sim.CurrentThrottle())
	}
}
