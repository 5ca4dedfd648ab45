package broker_test

import (
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/ec2sim"
	at "github.com/latchdev/latch/internal/accesstest"
)

// awsTeamPolicy lets AWS principals ask for prod, with one approval from
// the sre group.
const awsTeamPolicy = `
version: 1
rules:
  - name: prod-ssh
    targets: {tags: {env: prod}}
    who: {groups: [dev], aws_principals: ["arn:aws:iam::111122223333:user/*", "arn:aws:sts::111122223333:assumed-role/*"]}
    ports: [tcp/22]
    duration: {default: 30m, max: 2h}
    approval: {approvals: 1, from: [sre]}
`

var aliceIAM = latch.Identity{Kind: latch.KindIAM, Issuer: "111122223333", Subject: "arn:aws:iam::111122223333:user/alice"}

// A request made with AWS credentials cannot be approved by an OIDC login
// that the server cannot tell apart from the requester: nothing links
// alice's IAM user to any OIDC identity, so bob (sre) may be alice.
func TestCrossKindApprovalNeedsALink(t *testing.T) {
	f := at.NewWithPolicy(t, awsTeamPolicy)
	r, err := f.Access.Request(t.Context(), aliceIAM, ask(ec2sim.DemoDB1, 22, home))
	if err != nil {
		t.Fatal(err)
	}
	r, err = f.Access.Review(t.Context(), at.Bob, r.ID, true, "ok")
	if err == nil || r.State == latch.RequestActive || r.State == latch.RequestApproved {
		t.Fatalf("an unlinked OIDC identity approved an IAM request: %s, %v", r.State, err)
	}
}
