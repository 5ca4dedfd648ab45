package iampolicy_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/iampolicy"
)

// The scan role writes nothing: every action it holds is a read.
func TestScanRoleOnlyReads(t *testing.T) {
	for _, a := range iampolicy.Actions(iampolicy.Scan(full)) {
		_, name, _ := strings.Cut(a, ":")
		if !strings.HasPrefix(name, "Describe") && !strings.HasPrefix(name, "Get") && !strings.HasPrefix(name, "List") && name != "SimulatePrincipalPolicy" {
			t.Errorf("the scan role allows %s, which is not a read", a)
		}
	}
}

// Adopt's role creates groups only tagged as latch's and its plan's, and
// deletes only groups a plan created; the server's role does neither.
func TestAdoptRoleCreatesAndDeletesOnlyItsGroups(t *testing.T) {
	doc := iampolicy.Adopt(full)
	for _, s := range doc.Statement {
		for _, a := range s.Action {
			switch {
			case a == "ec2:CreateSecurityGroup" && slices.ContainsFunc(s.Resource, func(r string) bool { return strings.Contains(r, "security-group/") }):
				if s.Condition["StringEquals"]["aws:RequestTag/"+latch.TagManaged] != "true" || s.Condition["Null"]["aws:RequestTag/"+latch.TagAdoptPlan] != "false" {
					t.Errorf("%s creates groups without requiring latch's tags: %v", s.Sid, s.Condition)
				}
			case a == "ec2:DeleteSecurityGroup":
				if s.Condition["Null"]["aws:ResourceTag/"+latch.TagAdoptPlan] != "false" {
					t.Errorf("%s deletes groups no plan created: %v", s.Sid, s.Condition)
				}
			case a == "ec2:CreateTags":
				if s.Condition["StringEquals"]["ec2:CreateAction"] == nil {
					t.Errorf("%s tags resources after creation: %v", s.Sid, s.Condition)
				}
			}
		}
	}
	server := iampolicy.Actions(iampolicy.Server(full))
	for _, a := range []string{"ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup", "ec2:ModifyInstanceAttribute", "ec2:ModifyNetworkInterfaceAttribute", "iam:SimulatePrincipalPolicy"} {
		if slices.Contains(server, a) {
			t.Errorf("the server's role allows %s, which only adopt and scan need", a)
		}
	}
	scan := iampolicy.Actions(iampolicy.Scan(full))
	adopt := iampolicy.Actions(doc)
	for _, a := range scan {
		if !slices.Contains(adopt, a) {
			t.Errorf("the adopt role lacks the scan's %s: adopt reads the estate first", a)
		}
	}
}
