package adopt_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/adopt"
)

func TestPlanJSONRoundTrips(t *testing.T) {
	sg := rule("sgr-1", "sg-a", "tcp", 22, 22, "sg-bastion")
	pl := rule("sgr-2", "sg-a", "tcp", 3389, 3389, "pl-0corp")
	v6 := rule("sgr-3", "sg-a", "-1", -1, -1, "2001:db8::/32")
	v6.Description, v6.Tags = "all from the lab", map[string]string{"k": "v"}
	p := adopt.Plan{ID: planID, Region: "eu-west-1", Actor: "alice", CreatedAt: epoch, Steps: []adopt.Step{
		{Kind: adopt.CreateGroup, VPC: "vpc-1", Group: adopt.Placeholder("vpc-1"), Tags: map[string]string{"Name": "latch-managed"}},
		{Kind: adopt.AttachGroup, VPC: "vpc-1", Group: "new:vpc-1", Instance: "i-1", Interface: "eni-1", Before: []latch.GroupID{"sg-a"}, After: []latch.GroupID{"sg-a", "new:vpc-1"}},
		{Kind: adopt.RemoveRule, VPC: "vpc-1", Group: "sg-a", Rule: &sg, Finding: "F-1"},
		{Kind: adopt.RemoveRule, VPC: "vpc-1", Group: "sg-a", Rule: &pl, Finding: "F-2"},
		{Kind: adopt.RemoveRule, VPC: "vpc-1", Group: "sg-a", Rule: &v6, Finding: "F-3"},
	}, Refused: []adopt.Refusal{{Kind: adopt.RefusedLockOut, Instance: "i-2", Rules: []latch.RuleID{"sgr-9"}, Reason: "why"}}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"source_group":"sg-bastion"`) || !strings.Contains(string(b), `"prefix_list":"pl-0corp"`) {
		t.Errorf("json %s", b)
	}
	var back adopt.Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", back, p)
	}
}
