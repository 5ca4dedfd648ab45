package policy

import (
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/latchdev/latch"
)

// Person is one entry of a policy's people section: the identities of
// different kinds that one person uses. latch can then tell that an IAM
// user and an OIDC login are, or are not, the same person, which it
// otherwise cannot (see latch.Distinct).
//
//	people:
//	  - name: alice
//	    oidc: [u-alice]                                    # sub claims at the server's issuer
//	    aws: ["arn:aws:iam::111122223333:user/alice"]      # ARNs as latch whoami prints them
//	    slack: [U0123ABCD, alice@example.com]              # a Slack user ID, or the email Slack holds for them
//
// A Slack user is someone only through this section: a button click
// counts as a review only from a Slack user linked here, by user ID or
// by the email their Slack workspace holds (and has confirmed) for them.
// Slack proves no groups, so a Slack reviewer matches approvers only by
// users entries (their email, their ID, or the person's name).
type Person struct {
	Name  string
	OIDC  []string // subjects at the server's OIDC issuer
	AWS   []string // exact principal ARNs; an Identity Center session ARN stands for its user under every permission set
	Slack []string // Slack user IDs (U…, W…) or emails, matched against a Slack identity's ID or verified email
}

// Person returns the person id is linked to, and every identity linked
// to them. It implements latch.People.
func (p *Policy) Person(id latch.Identity) (string, []latch.Identity) {
	for _, person := range p.people {
		linked := person.identities(id.Issuer, id.Kind)
		if id.Kind == latch.KindSlack {
			if person.slackUser(id) {
				return person.Name, append(linked, id)
			}
			continue
		}
		for _, l := range linked {
			if l.Key() == id.Key() {
				return person.Name, linked
			}
		}
	}
	return "", nil
}

// identities returns the person's identities, OIDC ones at issuer when
// the identity being looked up is an OIDC login (a server trusts one
// issuer, which the policy does not name).
func (person Person) identities(issuer string, kind latch.IdentityKind) []latch.Identity {
	if kind != latch.KindOIDC {
		issuer = ""
	}
	var out []latch.Identity
	for _, sub := range person.OIDC {
		out = append(out, latch.Identity{Kind: latch.KindOIDC, Issuer: issuer, Subject: sub})
	}
	for _, arn := range person.AWS {
		out = append(out, latch.Identity{Kind: latch.KindIAM, Issuer: latch.ARNAccount(arn), Subject: arn})
	}
	return out
}

// slackUser reports whether id, a Slack identity, is one of the person's
// slack entries: its user ID, or its verified email. Slack user IDs are
// unique across workspaces, and the slack package vouches for the email.
func (person Person) slackUser(id latch.Identity) bool {
	for _, s := range person.Slack {
		if strings.EqualFold(s, id.Subject) || (id.Email != "" && strings.EqualFold(s, id.Email)) {
			return true
		}
	}
	return false
}

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// people reads the people section; it may be absent.
func (d *decoder) people(n *yaml.Node, path string) []Person {
	if n == nil {
		return nil
	}
	items := d.list(n, path)
	out := make([]Person, 0, len(items))
	names := map[string]int{}     // lower-cased name → index
	owners := map[string]string{} // identity key → person
	for i, item := range items {
		p := index(path, i)
		m := d.mapping(item, p, "name", "oidc", "aws", "slack")
		if m == nil {
			continue
		}
		var person Person
		if v := d.require(item, m, p, "name", "a name for the person, such as alice"); v != nil {
			person.Name = d.str(v, join(p, "name"))
			if j, dup := names[strings.ToLower(person.Name)]; dup {
				d.failf(v, join(p, "name"), "%q is already the name of people[%d]; names must be unique", person.Name, j)
			}
			names[strings.ToLower(person.Name)] = i
		}
		person.OIDC = d.strs(m["oidc"], join(p, "oidc"), nil)
		person.AWS = d.strs(m["aws"], join(p, "aws"), d.linkARN)
		person.Slack = d.strs(m["slack"], join(p, "slack"), func(n *yaml.Node, path, s string) bool {
			if slackUserID.MatchString(s) || (strings.Count(s, "@") == 1 && !strings.HasPrefix(s, "@") && !strings.HasSuffix(s, "@")) {
				return true
			}
			d.failf(n, path, "%q is not a Slack user; want a user ID such as U0123ABCD (Slack: profile, ⋮, Copy member ID) or the email Slack holds for them", s)
			return false
		})
		if n := len(person.OIDC) + len(person.AWS) + len(person.Slack); n < 2 {
			d.failf(item, p, "links %d identities; a person links two or more (oidc subjects, aws ARNs and slack users)", n)
		}
		for _, s := range person.Slack {
			k := "slack|" + strings.ToLower(s)
			if other, dup := owners[k]; dup && other != person.Name {
				d.failf(item, p, "slack user %s is already linked to %s; an identity belongs to one person", s, other)
			}
			owners[k] = person.Name
		}
		for _, id := range person.identities("", "") {
			k := id.Key()
			if other, dup := owners[k]; dup && other != person.Name {
				d.failf(item, p, "%s is already linked to %s; an identity belongs to one person", id.Subject, other)
			}
			owners[k] = person.Name
		}
		out = append(out, person)
	}
	return out
}

// linkARN checks one aws entry of a person: an IAM user or an Identity
// Center session, exactly. A role session or federated user is refused:
// whoever may assume the role (or get the federation token) names the
// session, so a link would make anyone who can assume it that person.
func (d *decoder) linkARN(n *yaml.Node, path, s string) bool {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[4] == "" || parts[5] == "" || strings.ContainsAny(s, "*?[]") {
		d.failf(n, path, "%q is not a principal ARN; want one exact ARN as latch whoami prints it, e.g. arn:aws:iam::123456789012:user/alice (no wildcards: a link names one identity)", s)
		return false
	}
	if _, sso := latch.IdentityCenterUser(s); sso || (parts[2] == "iam" && strings.HasPrefix(parts[5], "user/")) {
		return true
	}
	d.failf(n, path, "%q is not an IAM user or an IAM Identity Center session; a role session's name is chosen by whoever assumes the role, "+
		"so linking it would make anyone who can assume the role this person. Link IAM users (arn:aws:iam::ACCOUNT:user/NAME) "+
		"or Identity Center sessions (arn:aws:sts::ACCOUNT:assumed-role/AWSReservedSSO_SET_ID/NAME)", s)
	return false
}

// Warnings lists what is legal in p but cannot work as written: rules
// whose approval no set of identities could ever give.
func (p *Policy) Warnings() []string {
	var out []string
	for _, r := range p.rules {
		if r.Approvals == 0 {
			continue
		}
		n, unbounded := p.approvers(r.Approvers)
		if !unbounded && n < r.Approvals {
			what := fmt.Sprintf("at most %d distinct people", n)
			if n == 0 {
				what = "no identity"
			}
			out = append(out, fmt.Sprintf("line %d: rules[%q]: approval needs %d approval(s) but %s could ever give them (%s): "+
				"a role's sessions are never told apart, since whoever assumes a role names the session",
				r.Line, r.Name, r.Approvals, what, r.Approvers))
		}
	}
	out = append(out, p.webhookWarnings()...)
	return append(out, p.slackWarnings()...)
}

// approvers counts the distinct people who could approve under a: a group
// or a pattern that covers IAM users or Identity Center sessions may hold
// any number; a user entry is one person; a pattern that covers only
// other role sessions counts none, as latch cannot tell them apart.
func (p *Policy) approvers(a Who) (n int, unbounded bool) {
	if len(a.Groups) > 0 {
		return 0, true
	}
	for _, pat := range a.AWSPrincipals {
		if latch.Glob(pat, "arn:aws:iam::000000000000:user/x") || latch.Glob(pat, "arn:aws:sts::000000000000:assumed-role/AWSReservedSSO_x_0/x") ||
			strings.Contains(pat, ":user/") || strings.Contains(pat, "AWSReservedSSO") {
			return 0, true
		}
	}
	seen := map[string]bool{}
	for _, u := range a.Users {
		seen[strings.ToLower(u)] = true
	}
	return len(seen), false
}
