package latch

import (
	"slices"
	"strings"
)

// IdentityKind says how an identity was proven.
type IdentityKind string

// The ways latch knows who is asking.
const (
	KindOIDC  IdentityKind = "oidc"    // a bearer token from an OpenID Connect issuer
	KindIAM   IdentityKind = "aws-iam" // a presigned sts:GetCallerIdentity request
	KindLocal IdentityKind = "local"   // the user at this terminal, for direct (admin) commands
	// KindSlack is a Slack user who clicked a button: Issuer is the
	// workspace (team) ID, Subject the user ID, Email the address Slack
	// holds for them (see package slack). It says nothing certain on its
	// own about which person clicked (it has no realm): a review from it
	// counts only when the policy's people section links it to a person.
	KindSlack IdentityKind = "slack"
)

// Identity is an authenticated caller. Kind, Issuer and Subject are its
// key ([Identity.Key]): the OIDC issuer and its sub claim (or a configured
// claim the operator knows is stable), or the AWS account and the
// normalised ARN. Email and Name are attributes: shown to people and
// matched by policy, never part of the key, because a caller can often
// choose whether a token carries them.
type Identity struct {
	Kind    IdentityKind
	Subject string
	Issuer  string   // the OIDC issuer, or the AWS account ID
	Email   string   // a verified email address; "" when the issuer did not vouch for one
	Name    string   // a display name; "" for none
	Groups  []string // from the token's groups claim; empty for IAM
}

// String names i for people: its verified email, else its subject.
func (i Identity) String() string {
	if i.Email != "" {
		return i.Email
	}
	return i.Subject
}

// InGroup reports whether i is in group g.
func (i Identity) InGroup(g string) bool { return slices.Contains(i.Groups, g) }

// Key is i's stable key: kind, issuer and subject, the subject in lower
// case. Equal keys are one person. An IAM Identity Center user is keyed by
// account and user name, whatever permission set (role) they act through,
// since Identity Center, not the caller, names the session. (Across
// accounts the same user name has two keys, which latch cannot tell
// apart: see [Distinct].)
func (i Identity) Key() string {
	if i.Kind == KindIAM {
		if name, ok := IdentityCenterUser(i.Subject); ok {
			return "aws-sso|" + i.Issuer + "|" + strings.ToLower(name)
		}
	}
	return string(i.Kind) + "|" + i.Issuer + "|" + strings.ToLower(i.Subject)
}

// realmKey returns the namespace in which i is one individual, and i's
// key there, so that two identities with different keys in one realm are
// different people; "" if i says nothing certain about who the person is.
// A generic role session is such an identity: whoever may assume the role
// picks the session name. A server trusts one OIDC issuer, so the realm
// of OIDC logins does not name it; links in a policy's people section
// name OIDC identities by subject alone.
func (i Identity) realmKey() (realm, key string) {
	switch i.Kind {
	case KindOIDC:
		return "oidc", strings.ToLower(i.Subject)
	case KindLocal:
		return "local|" + i.Issuer, strings.ToLower(i.Subject)
	case KindIAM:
		if name, ok := IdentityCenterUser(i.Subject); ok {
			return "aws-sso", strings.ToLower(name)
		}
		if iamUser(i.Subject) {
			return "aws-iam-user|" + i.Issuer, strings.ToLower(i.Subject)
		}
	}
	return "", ""
}

// IdentityCenterUser returns the IAM Identity Center user behind an
// assumed-role ARN of one of its permission-set roles
// (arn:aws:sts::ACCOUNT:assumed-role/AWSReservedSSO_SET_HASH/NAME): the
// session name, which Identity Center sets to the user's name. An
// assumed-role ARN carries no role path, so a role someone else named
// AWSReservedSSO_… (in another path) looks the same: accounts that serve
// latch should deny iam:CreateRole on such names (README, security model).
func IdentityCenterUser(arn string) (name string, ok bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sts" {
		return "", false
	}
	rest, ok := strings.CutPrefix(parts[5], "assumed-role/")
	role, session, found := strings.Cut(rest, "/")
	if !ok || !found || !strings.HasPrefix(role, "AWSReservedSSO_") || session == "" || strings.Contains(session, "/") {
		return "", false
	}
	return session, true
}

// ARNAccount returns the account field of an ARN, "" if it has none.
func ARNAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 {
		return ""
	}
	return parts[4]
}

// iamUser reports whether arn names an IAM user (arn:aws:iam::ACCOUNT:user/NAME).
func iamUser(arn string) bool {
	parts := strings.SplitN(arn, ":", 6)
	return len(parts) == 6 && parts[0] == "arn" && parts[2] == "iam" && strings.HasPrefix(parts[5], "user/")
}
