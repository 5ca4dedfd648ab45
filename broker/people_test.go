package broker_test

import (
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
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
	r, err := f.Access.Request(t.Context(), aliceIAM, ask(f.Fleet.DB1, 22, home))
	if err != nil {
		t.Fatal(err)
	}
	r, err = f.Access.Review(t.Context(), at.Bob, r.ID, true, "ok")
	if err == nil || r.State == latch.RequestActive || r.State == latch.RequestApproved {
		t.Fatalf("an unlinked OIDC identity approved an IAM request: %s, %v", r.State, err)
	}
}

// awsOnlyPolicy is for a team with AWS identities only: approvers are IAM
// users, Identity Center users and, linked in people, role sessions.
const awsOnlyPolicy = `
version: 1
people:
  - name: frank
    oidc: [u-frank]
    aws: ["arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Ops_0123456789abcdef/frank@example.com"]
  - name: alice
    oidc: [u-alice]
    aws: ["arn:aws:iam::111122223333:user/alice"]
rules:
  - name: prod-ssh
    targets: {tags: {env: prod}}
    who: {aws_principals: ["arn:aws:iam::111122223333:user/*", "arn:aws:sts::111122223333:assumed-role/*"]}
    ports: [tcp/22]
    duration: {default: 30m, max: 2h}
    approval:
      approvals: 1
      from:
        users: [carol@example.com]
        aws_principals: ["arn:aws:iam::111122223333:user/*", "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_*", "arn:aws:iam::111122223333:role/ops",
          "arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_*"]
`

func iamID(arn string) latch.Identity {
	return latch.Identity{Kind: latch.KindIAM, Issuer: "111122223333", Subject: arn}
}

func TestApprovalsForAWSTeams(t *testing.T) {
	var (
		bobUser    = iamID("arn:aws:iam::111122223333:user/bob")
		ssoErin    = iamID("arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/erin@example.com")
		ssoAlice   = iamID("arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev_fedcba9876543210/alice@example.com")
		ssoAlice2  = iamID("arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/alice@example.com")
		opsFrank   = iamID("arn:aws:sts::111122223333:assumed-role/ops/frank")
		ssoFrank   = iamID("arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/frank@example.com")
		otherAlice = latch.Identity{Kind: latch.KindIAM, Issuer: "444455556666", Subject: "arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/alice@example.com"}
		opsMal     = iamID("arn:aws:sts::111122223333:assumed-role/ops/mallory")
		opsSelf    = iamID("arn:aws:sts::111122223333:assumed-role/ops/alice")
	)
	tests := []struct {
		name      string
		requester latch.Identity
		reviewer  latch.Identity
		wantCode  string
	}{
		{"an IAM user approves an IAM user's request", aliceIAM, bobUser, ""},
		{"an IAM user approves another's, unlinked", bobUser, iamID("arn:aws:iam::111122223333:user/erin"), ""},
		{"an Identity Center user approves an IAM user's request? they may be one person", aliceIAM, ssoErin, latch.EFORBIDDEN},
		{"an Identity Center user approves another's", ssoAlice, ssoErin, ""},
		{"the same Identity Center user under another permission set is the requester", ssoAlice, ssoAlice2, latch.EFORBIDDEN},
		{"a linked Identity Center user approves a linked IAM user's request", aliceIAM, ssoFrank, ""},
		{"a role session named like a linked person is not that person", aliceIAM, opsFrank, latch.EFORBIDDEN},
		{"the same Identity Center user name in another account may be the requester", ssoAlice, otherAlice, latch.EFORBIDDEN},
		{"an unlinked session of the same role may be anyone", aliceIAM, opsMal, latch.EFORBIDDEN},
		{"a role session requester cannot be told from an unlinked approver", opsSelf, bobUser, latch.EFORBIDDEN},
		{"an OIDC user named in from approves a linked IAM user's request", aliceIAM, at.Carol, ""},
		{"an OIDC user named in from and an unlinked IAM user may be one person", bobUser, at.Carol, latch.EFORBIDDEN},
		{"a group named like nothing in from does not approve", aliceIAM, at.Bob, latch.EFORBIDDEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := at.NewWithPolicy(t, awsOnlyPolicy)
			r, err := f.Access.Request(t.Context(), tt.requester, ask(f.Fleet.DB1, 22, home))
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Access.Review(t.Context(), tt.reviewer, r.ID, true, "ok")
			if latch.ErrorCode(err) != tt.wantCode {
				t.Fatalf("Review = %s, %v; want code %q", got.State, err, tt.wantCode)
			}
			if tt.wantCode == "" && got.State != latch.RequestActive {
				t.Fatalf("approved request is %s, want active", got.State)
			}
			if tt.wantCode != "" {
				if got.ID != "" {
					t.Errorf("a refused review returned the request: %+v", got)
				}
				stored, _ := f.Store.Request(t.Context(), r.ID)
				if stored.State != latch.RequestPending || len(stored.Reviews) != 0 {
					t.Errorf("a refused review changed the request: %s, %d reviews", stored.State, len(stored.Reviews))
				}
			}
		})
	}
}

// The message for a review latch cannot allow says how to link.
func TestCannotTellApartSaysHowToLink(t *testing.T) {
	f := at.NewWithPolicy(t, awsTeamPolicy)
	r, err := f.Access.Request(t.Context(), aliceIAM, ask(f.Fleet.DB1, 22, home))
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Access.Review(t.Context(), at.Bob, r.ID, true, "ok")
	if msg := latch.ErrorMessage(err); !strings.Contains(msg, "people") || !strings.Contains(msg, "bob@example.com") {
		t.Fatalf("refusal says %q; want it to name the reviewer and the people section", msg)
	}
}

// Admins are named as groups or as users, never one for the other.
func TestAdminGroupsAndUsers(t *testing.T) {
	f := at.NewWithPolicy(t, at.Policy, func(_ *at.Fixture, o *broker.AccessOptions) {
		o.AdminGroups, o.AdminUsers = []string{"admins"}, []string{"dave@example.com", "arn:aws:iam::111122223333:user/root-ish"}
	})
	cases := []struct {
		who  latch.Identity
		want bool
	}{
		{at.Carol, true}, // in the admins group
		{at.Dave, true},  // named by verified email
		{latch.Identity{Kind: latch.KindOIDC, Issuer: at.Issuer, Subject: "u-dave2", Email: "DAVE@example.com"}, true},
		{latch.Identity{Kind: latch.KindOIDC, Issuer: at.Issuer, Subject: "admins"}, false},                                    // a user named like the group
		{latch.Identity{Kind: latch.KindOIDC, Issuer: at.Issuer, Subject: "u-x", Groups: []string{"dave@example.com"}}, false}, // a group named like the user
		{latch.Identity{Kind: latch.KindOIDC, Issuer: at.Issuer, Subject: "dave@example.com"}, true},                           // a subject is a user name
		{iamID("arn:aws:iam::111122223333:user/root-ish"), true},
		{iamID("arn:aws:iam::111122223333:user/other"), false},
	}
	for _, c := range cases {
		if got := f.Access.IsAdmin(c.who); got != c.want {
			t.Errorf("IsAdmin(%+v) = %v, want %v", c.who, got, c.want)
		}
	}
}

// Whoever may assume a role names its sessions: a session named like a
// person (ops/alice) is not alice, cannot approve as her and is not an
// admin user named alice. (Linking such a session in people is refused
// when the policy loads.)
func TestRoleSessionNamedLikeAPersonIsNotThem(t *testing.T) {
	const linked = `
version: 1
people:
  - name: alice
    oidc: [u-alice]
    aws: ["arn:aws:iam::111122223333:user/alice"]
rules:
  - name: prod-ssh
    targets: {tags: {env: prod}}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 2h}
    approval: {approvals: 1, from: {users: [alice], aws_principals: ["arn:aws:sts::111122223333:assumed-role/ops/*"]}}
`
	mallory := latch.Identity{Kind: latch.KindOIDC, Issuer: at.Issuer, Subject: "u-mallory", Email: "mallory@example.com", Groups: []string{"dev"}}
	malloryAsAlice := iamID("arn:aws:sts::111122223333:assumed-role/ops/alice")
	f := at.NewWithPolicy(t, linked, func(_ *at.Fixture, o *broker.AccessOptions) { o.AdminUsers = []string{"alice"} })
	r, err := f.Access.Request(t.Context(), mallory, ask(f.Fleet.DB1, 22, home))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.Access.Review(t.Context(), malloryAsAlice, r.ID, true, "lgtm"); latch.ErrorCode(err) != latch.EFORBIDDEN {
		t.Errorf("mallory approved her own request as ops/alice: %s, %v", got.State, err)
	}
	if f.Access.IsAdmin(malloryAsAlice) {
		t.Errorf("a role session named alice is the admin user alice")
	}
	if !f.Access.IsAdmin(aliceIAM) {
		t.Errorf("alice's linked IAM user is not the admin user alice")
	}
}
