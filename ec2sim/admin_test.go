package ec2sim_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch/ec2sim"
)

func TestAdmin_FaultsRulesAndCalls(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	if err := sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		t.Fatal(err)
	}
	url := mustStart(t, sim)
	c := newClient(t, url, "us-east-1")

	resp, err := http.Post(url+"/_sim/faults", "application/json",
		strings.NewReader(`{"throttle_rate": 1, "actions": ["AuthorizeSecurityGroupIngress"], "latency": "1ms", "seed": 7}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /_sim/faults: %s", resp.Status)
	}
	if f := sim.CurrentFaults(); f.ThrottleRate != 1 || f.Latency != time.Millisecond || f.Seed != 7 || len(f.Actions) != 1 {
		t.Errorf("faults = %+v", f)
	}
	_, err = c.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(web), IpPermissions: []types.IpPermission{ssh("192.0.2.1/32")},
	})
	wantCode(t, err, "RequestLimitExceeded")

	resp, err = http.Post(url+"/_sim/faults", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mustAuthorize(t, c, web, ssh("192.0.2.1/32"))

	var rules []ec2sim.Rule
	getJSON(t, url+"/_sim/rules?region=us-east-1&group="+web, &rules)
	if len(rules) != 1 || rules[0].CIDR != "192.0.2.1/32" || rules[0].GroupID != web {
		t.Errorf("GET /_sim/rules = %+v", rules)
	}
	var calls map[string]int
	getJSON(t, url+"/_sim/calls", &calls)
	if calls["AuthorizeSecurityGroupIngress"] != 4 {
		t.Errorf("calls = %v, want 3 throttled authorize attempts and 1 that worked", calls)
	}

	for _, body := range []string{`{"throttle_rate": 2}`, `{"latency": "soon"}`, `{"nope": 1}`} {
		resp, err := http.Post(url+"/_sim/faults", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST %s: %s, want 400", body, resp.Status)
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
