package latch

import (
	"fmt"
	"slices"
	"strings"
)

// People links identities of different kinds to the people behind them,
// as a policy's people section does: alice's OIDC login, her IAM user and
// her Identity Center sessions.
type People interface {
	// Person returns the name of the person id is linked to and every
	// identity linked to them, id's own included; "" and nil when id is
	// linked to nobody.
	Person(id Identity) (name string, linked []Identity)
}

// NoPeople links nobody.
type NoPeople struct{}

// Person implements People.
func (NoPeople) Person(Identity) (string, []Identity) { return "", nil }

// SamePerson reports whether a and b are one person: the same key, or
// linked to the same person. It is the one comparison latch makes for
// owning a grant or request, reviewing one's own request, reviewing twice
// and being named an admin user.
func SamePerson(p People, a, b Identity) bool {
	if a.Key() == b.Key() {
		return true
	}
	na, _ := p.Person(a)
	nb, _ := p.Person(b)
	return na != "" && strings.EqualFold(na, nb)
}

// Distinct reports whether a and b are certainly different people: not
// the same person, and either linked to different people, or with
// identities in one realm (one OIDC issuer, IAM Identity Center, the IAM
// users of one account) that differ there. An IAM user and an OIDC login
// that nothing links may be one person, and so may two sessions of one
// role, whose names the caller chooses. Two identities with the same
// verified email are never distinct, whatever their links: an OIDC
// login and a Slack user with one address may well be one person.
func Distinct(p People, a, b Identity) bool {
	if SamePerson(p, a, b) || sameEmail(a, b) {
		return false
	}
	na, la := p.Person(a)
	nb, lb := p.Person(b)
	if na != "" && nb != "" {
		return true // linked to different people
	}
	ra, rb := realms(a, la), realms(b, lb)
	for realm, ka := range ra {
		if kb, ok := rb[realm]; ok && kb != ka {
			return true
		}
	}
	return false
}

// sameEmail reports whether a and b carry one verified email.
func sameEmail(a, b Identity) bool { return a.Email != "" && strings.EqualFold(a.Email, b.Email) }

// realms maps each realm in which id's person has a known individual
// identity to that identity's key there.
func realms(id Identity, linked []Identity) map[string]string {
	out := map[string]string{}
	for _, i := range append([]Identity{id}, linked...) {
		if r, k := i.realmKey(); r != "" {
			out[r] = k
		}
	}
	return out
}

// NotDistinctError explains why a review by who of requester's request
// is refused when the two may be one person.
func NotDistinctError(p People, who, requester Identity) error {
	if SamePerson(p, who, requester) || sameEmail(who, requester) {
		return Errorf(EFORBIDDEN, "you cannot review your own request")
	}
	return Errorf(EFORBIDDEN, "latch cannot tell %s (%s) from the requester %s (%s): they may be one person. "+
		"An admin can link each to its person in the policy's people section (people: [{name: NAME, oidc: [SUB], aws: [ARN]}])",
		who, who.Kind, requester, requester.Kind)
}

// Selector names identities by user, group or AWS principal pattern; an
// identity matches if any entry does. Policies use it for who may ask and
// who may approve.
type Selector struct {
	// Users are people: an identity's subject or verified email, an IAM
	// Identity Center user name, or a person's name in the people section,
	// all compared case-insensitively.
	Users         []string
	Groups        []string // identity groups (the OIDC groups claim), exact
	AWSPrincipals []string // ARN globs (* and ?) for aws-iam identities
}

// Empty reports whether s names nobody.
func (s Selector) Empty() bool {
	return len(s.Users) == 0 && len(s.Groups) == 0 && len(s.AWSPrincipals) == 0
}

// Match reports whether id, linked to the person named person ("" for
// none), is among s.
func (s Selector) Match(id Identity, person string) bool {
	if slices.ContainsFunc(s.Users, func(u string) bool { return UserIs(id, person, u) }) ||
		slices.ContainsFunc(s.Groups, id.InGroup) {
		return true
	}
	if id.Kind != KindIAM {
		return false
	}
	role := RoleARN(id.Subject)
	return slices.ContainsFunc(s.AWSPrincipals, func(pat string) bool {
		return Glob(pat, id.Subject) || (role != "" && Glob(pat, role))
	})
}

// UserIs reports whether user names id (linked to person): one of
// [UserNames], compared case-insensitively.
func UserIs(id Identity, person, user string) bool {
	return user != "" && slices.ContainsFunc(UserNames(id, person), func(name string) bool { return strings.EqualFold(name, user) })
}

// UserNames are the names a users entry may call id (linked to person) by:
// its subject, its verified email, its Identity Center user name and its
// person, those it has.
func UserNames(id Identity, person string) []string {
	sso, _ := IdentityCenterUser(id.Subject)
	if id.Kind != KindIAM {
		sso = ""
	}
	var out []string
	for _, name := range []string{id.Subject, id.Email, sso, person} {
		if name != "" {
			out = append(out, name)
		}
	}
	return out
}

// String lists the entries, e.g. "users alice@example.com; groups developers".
func (s Selector) String() string {
	var parts []string
	if len(s.Users) > 0 {
		parts = append(parts, "users "+strings.Join(s.Users, ", "))
	}
	if len(s.Groups) > 0 {
		parts = append(parts, "groups "+strings.Join(s.Groups, ", "))
	}
	if len(s.AWSPrincipals) > 0 {
		parts = append(parts, "aws_principals "+strings.Join(s.AWSPrincipals, ", "))
	}
	return strings.Join(parts, "; ")
}

// Or says who s names for people, e.g. "sre or alice@example.com".
func (s Selector) Or() string {
	all := slices.Concat(s.Groups, s.Users, s.AWSPrincipals)
	if len(all) == 0 {
		return "nobody"
	}
	return strings.Join(all, " or ")
}

// Clone returns a deep copy of s.
func (s Selector) Clone() Selector {
	return Selector{Users: slices.Clone(s.Users), Groups: slices.Clone(s.Groups), AWSPrincipals: slices.Clone(s.AWSPrincipals)}
}

// RoleARN returns the IAM role ARN behind an STS assumed-role ARN
// (arn:aws:sts::123456789012:assumed-role/dev/alice → arn:aws:iam::123456789012:role/dev),
// or "" for any other ARN. The role's path is not in an assumed-role ARN,
// so the result has none.
func RoleARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sts" || parts[3] != "" {
		return ""
	}
	rest, ok := strings.CutPrefix(parts[5], "assumed-role/")
	role, session, found := strings.Cut(rest, "/")
	if !ok || !found || role == "" || session == "" {
		return ""
	}
	return fmt.Sprintf("arn:%s:iam::%s:role/%s", parts[1], parts[4], role)
}

// Glob matches s against pattern, where * matches any run of characters
// (including / and :, as in IAM policies) and ? any one character.
func Glob(pattern, s string) bool {
	p, t := []rune(pattern), []rune(s)
	pi, ti := 0, 0
	star, mark := -1, 0 // the last * seen, and where in t it started matching
	for ti < len(t) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == t[ti]):
			pi++
			ti++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ti
			pi++
		case star >= 0:
			mark++
			pi, ti = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
