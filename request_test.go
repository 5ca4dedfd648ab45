package latch_test

import (
	"testing"
	"time"

	"github.com/latchdev/latch"
)

func TestRequestReview(t *testing.T) {
	var (
		now     = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		alice   = latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "alice@example.com", Groups: []string{"dev", "sre"}}
		aliceUp = latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "ALICE@example.com", Groups: []string{"sre"}}
		bob     = latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "bob@example.com", Groups: []string{"sre"}}
		carol   = latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "carol@example.com", Groups: []string{"security"}}
		dave    = latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "dave@example.com", Groups: []string{"dev"}}
		bobIAM  = latch.Identity{Kind: latch.KindIAM, Issuer: "123456789012", Subject: "arn:aws:iam::123456789012:user/bob"}
		erinIAM = latch.Identity{Kind: latch.KindIAM, Issuer: "123456789012", Subject: "arn:aws:iam::123456789012:user/erin"}
		// links bob's IAM user to his OIDC login; erin's IAM user is linked to nobody.
		links = fakePeople{"bob": {bob, bobIAM}}
	)
	type step struct {
		by      latch.Identity
		approve bool
		reason  string
		at      time.Duration // after now
		code    string        // expected error code; "" for success
		state   latch.RequestState
	}
	tests := []struct {
		name   string
		needed int
		steps  []step
	}{
		{"one approval approves", 1, []step{{by: bob, approve: true, state: latch.RequestApproved}}},
		{"requester cannot approve their own request", 1, []step{{by: alice, approve: true, code: latch.EFORBIDDEN, state: latch.RequestPending}}},
		{"not even with different letter case", 1, []step{{by: aliceUp, approve: true, code: latch.EFORBIDDEN, state: latch.RequestPending}}},
		{"reviewer must be in an approver group", 1, []step{{by: dave, approve: true, code: latch.EFORBIDDEN, state: latch.RequestPending}}},
		{"two approvals need two people", 2, []step{
			{by: bob, approve: true, state: latch.RequestPending},
			{by: bob, approve: true, code: latch.ECONFLICT, state: latch.RequestPending},
			{by: carol, approve: true, state: latch.RequestApproved},
		}},
		{"one denial denies, and is final", 2, []step{
			{by: bob, approve: false, reason: "not during the freeze", state: latch.RequestDenied},
			{by: carol, approve: true, code: latch.ECONFLICT, state: latch.RequestDenied},
		}},
		{"a denial needs a reason", 1, []step{{by: bob, approve: false, code: latch.EINVALID, state: latch.RequestPending}}},
		{"no review after the pending time", 1, []step{{by: bob, approve: true, at: time.Hour, code: latch.ECONFLICT, state: latch.RequestPending}}},
		{"an unlinked IAM user may be the requester", 1, []step{{by: erinIAM, approve: true, code: latch.EFORBIDDEN, state: latch.RequestPending}}},
		{"an IAM user linked to another person is not", 1, []step{{by: bobIAM, approve: true, state: latch.RequestApproved}}},
		{"one person's two identities are one reviewer", 2, []step{
			{by: bob, approve: true, state: latch.RequestPending},
			{by: bobIAM, approve: true, code: latch.ECONFLICT, state: latch.RequestPending},
		}},
		{"approvers named as users", 1, []step{{by: latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "u-frank", Email: "Frank@Example.com"},
			approve: true, state: latch.RequestApproved}}},
		{"a user named like an approver group is not in it", 1, []step{{by: latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "sre"},
			approve: true, code: latch.EFORBIDDEN, state: latch.RequestPending}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := latch.Request{ID: "r-0000000000000001", State: latch.RequestPending, Requester: alice,
				ApprovalsNeeded: tt.needed, PendingUntil: now.Add(time.Hour),
				Approvers: latch.Selector{Groups: []string{"sre", "security"}, Users: []string{"frank@example.com"},
					AWSPrincipals: []string{"arn:aws:iam::123456789012:user/*"}}}
			for i, s := range tt.steps {
				err := r.Review(s.by, s.approve, s.reason, now.Add(s.at), links)
				if latch.ErrorCode(err) != s.code {
					t.Fatalf("step %d: Review by %s = %v, want code %q", i, s.by, err, s.code)
				}
				if r.State != s.state {
					t.Fatalf("step %d: state %s, want %s", i, r.State, s.state)
				}
			}
		})
	}
}

func TestRequestStatesAreFinal(t *testing.T) {
	for _, s := range []latch.RequestState{latch.RequestDenied, latch.RequestWithdrawn, latch.RequestTimedOut, latch.RequestFailed} {
		for _, to := range []latch.RequestState{latch.RequestPending, latch.RequestApproved, latch.RequestActive} {
			if s.CanMove(to) {
				t.Errorf("%s may move to %s", s, to)
			}
		}
	}
}

// A review's reason is checked like every other reason: a newline in it
// would forge a row where reviews are listed.
func TestReviewRefusesBadReasons(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	bob := latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "u-bob", Groups: []string{"sre"}}
	for _, reason := range []string{"ok\nforged row", "   ", "\x1b[31mred"} {
		r := latch.Request{ID: "r-0000000000000001", State: latch.RequestPending, Requester: latch.Identity{Kind: latch.KindOIDC, Subject: "u-alice"},
			ApprovalsNeeded: 1, PendingUntil: now.Add(time.Hour), Approvers: latch.Selector{Groups: []string{"sre"}}}
		for _, approve := range []bool{true, false} {
			if err := r.Review(bob, approve, reason, now, latch.NoPeople{}); latch.ErrorCode(err) != latch.EINVALID || len(r.Reviews) != 0 {
				t.Errorf("Review(approve %v, %q) = %v, %d reviews; want EINVALID and none", approve, reason, err, len(r.Reviews))
			}
		}
	}
}
