package latch_test

import (
	"testing"

	"github.com/latchdev/latch"
)

// fakePeople links each name's identities.
type fakePeople map[string][]latch.Identity

func (p fakePeople) Person(id latch.Identity) (string, []latch.Identity) {
	for name, ids := range p {
		for _, i := range ids {
			if i.Key() == id.Key() {
				return name, ids
			}
		}
	}
	return "", nil
}

func TestIdentityKey(t *testing.T) {
	oidc := func(iss, sub, email string) latch.Identity {
		return latch.Identity{Kind: latch.KindOIDC, Issuer: iss, Subject: sub, Email: email}
	}
	iam := func(arn string) latch.Identity {
		return latch.Identity{Kind: latch.KindIAM, Issuer: "111122223333", Subject: arn}
	}
	same := []struct {
		name string
		a, b latch.Identity
	}{
		{"email is an attribute", oidc("https://idp", "u-1", "a@example.com"), oidc("https://idp", "u-1", "")},
		{"subject case", oidc("https://idp", "U-1", ""), oidc("https://idp", "u-1", "")},
		{"one Identity Center user under two permission sets, in one account",
			iam("arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/alice@example.com"),
			iam("arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_ReadOnly_fedcba9876543210/Alice@example.com")},
	}
	for _, tt := range same {
		if tt.a.Key() != tt.b.Key() {
			t.Errorf("%s: %q and %q, want one key", tt.name, tt.a.Key(), tt.b.Key())
		}
	}
	differ := []struct {
		name string
		a, b latch.Identity
	}{
		{"issuer", oidc("https://idp", "u-1", ""), oidc("https://evil", "u-1", "")},
		{"kind", oidc("111122223333", "arn:aws:iam::111122223333:user/a", ""), iam("arn:aws:iam::111122223333:user/a")},
		{"same email, two subjects", oidc("https://idp", "u-1", "a@example.com"), oidc("https://idp", "u-2", "a@example.com")},
		{"two sessions of one ordinary role", iam("arn:aws:sts::111122223333:assumed-role/dev/a"), iam("arn:aws:sts::111122223333:assumed-role/dev/b")},
		{"one Identity Center user name in two accounts", iam("arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_01/alice"),
			latch.Identity{Kind: latch.KindIAM, Issuer: "444455556666", Subject: "arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_Admin_01/alice"}},
		{"a role named like Identity Center's, with a path in the session", iam("arn:aws:sts::111122223333:assumed-role/dev/AWSReservedSSO_x/a"),
			iam("arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_x/a")},
	}
	for _, tt := range differ {
		if tt.a.Key() == tt.b.Key() {
			t.Errorf("%s: both %q, want two keys", tt.name, tt.a.Key())
		}
	}
}

func TestDistinct(t *testing.T) {
	var (
		alice      = latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "u-alice"}
		bob        = latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "u-bob"}
		aliceUser  = latch.Identity{Kind: latch.KindIAM, Issuer: "111122223333", Subject: "arn:aws:iam::111122223333:user/alice"}
		bobUser    = latch.Identity{Kind: latch.KindIAM, Issuer: "111122223333", Subject: "arn:aws:iam::111122223333:user/bob"}
		bobOther   = latch.Identity{Kind: latch.KindIAM, Issuer: "444455556666", Subject: "arn:aws:iam::444455556666:user/bob"}
		roleA      = latch.Identity{Kind: latch.KindIAM, Issuer: "111122223333", Subject: "arn:aws:sts::111122223333:assumed-role/ops/alice"}
		roleB      = latch.Identity{Kind: latch.KindIAM, Issuer: "111122223333", Subject: "arn:aws:sts::111122223333:assumed-role/ops/bob"}
		ssoAlice   = latch.Identity{Kind: latch.KindIAM, Issuer: "111122223333", Subject: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev_01/alice"}
		ssoBob     = latch.Identity{Kind: latch.KindIAM, Issuer: "111122223333", Subject: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev_01/bob"}
		slackAlice = latch.Identity{Kind: latch.KindSlack, Issuer: "T0001", Subject: "U0ALICE", Email: "alice@example.com"}
	)
	none := latch.NoPeople{}
	linked := fakePeople{"alice": {alice, aliceUser, slackAlice}, "bob": {bob, roleB}}
	tests := []struct {
		name   string
		people latch.People
		a, b   latch.Identity
		want   bool
	}{
		{"two OIDC logins", none, alice, bob, true},
		{"one OIDC login", none, alice, alice, false},
		{"two IAM users of one account", none, aliceUser, bobUser, true},
		{"IAM users of two accounts may be one person", none, aliceUser, bobOther, false},
		{"an IAM user and an OIDC login, unlinked", none, bobUser, alice, false},
		{"two sessions of one role: the caller names them", none, roleA, roleB, false},
		{"two Identity Center users", none, ssoAlice, ssoBob, true},
		{"one Identity Center user name in two accounts may be one person", none, ssoAlice,
			latch.Identity{Kind: latch.KindIAM, Issuer: "444455556666", Subject: "arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_Dev_01/alice"}, false},
		{"linked to one person", linked, aliceUser, alice, false},
		{"linked to two people", linked, aliceUser, roleB, true},
		{"linked on one side, compared in the realm both have", linked, aliceUser, bobUser, true},
		{"linked on one side, no realm in common", linked, roleB, ssoAlice, false},
		{"a Slack user linked to one person and that person's login", linked, slackAlice, alice, false},
		{"a Slack user linked to one person and another's login", linked, slackAlice, bob, true},
		{"a Slack user nobody linked", none, slackAlice, bob, false},
		{"a Slack user linked to one person, an OIDC login with their email in another realm", linked, slackAlice,
			latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "u-alice-2", Email: "Alice@Example.com"}, false},
		{"one verified email, linked to two people", linked,
			latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "u-alice", Email: "x@example.com"},
			latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "u-bob", Email: "x@example.com"}, false},
	}
	for _, tt := range tests {
		if got := latch.Distinct(tt.people, tt.a, tt.b); got != tt.want {
			t.Errorf("%s: Distinct = %v, want %v", tt.name, got, tt.want)
		}
		if got := latch.Distinct(tt.people, tt.b, tt.a); got != tt.want {
			t.Errorf("%s (swapped): Distinct = %v, want %v", tt.name, got, tt.want)
		}
	}
}
