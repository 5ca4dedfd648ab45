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
)

// Identity is an authenticated caller. Subject is what policies and records
// name: the user (email, or sub) for OIDC, the normalised ARN for AWS IAM.
type Identity struct {
	Kind    IdentityKind
	Subject string
	Issuer  string   // the OIDC issuer, or the AWS account ID
	Groups  []string // from the token's groups claim; empty for IAM
}

func (i Identity) String() string { return i.Subject }

// InGroup reports whether i is in group g.
func (i Identity) InGroup(g string) bool { return slices.Contains(i.Groups, g) }

// Same reports whether i and o are the same person: same kind, issuer and
// subject. It is what "nobody approves their own request" compares.
func (i Identity) Same(o Identity) bool {
	return i.Kind == o.Kind && i.Issuer == o.Issuer && strings.EqualFold(i.Subject, o.Subject)
}
