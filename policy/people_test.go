package policy_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/policy"
)

const peoplePolicy = `version: 1
people:
  - name: alice
    oidc: [u-alice]
    aws: ["arn:aws:iam::111122223333:user/alice", "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev_01/alice@example.com"]
rules:
  - name: prod-ssh
    targets: {tags: {env: prod}}
    who: {users: [alice]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval:
      approvals: 2
      from: {groups: [sre], users: [carol@example.com], aws_principals: ["arn:aws:iam::111122223333:user/*"]}
`

func TestPeopleAndApprovers(t *testing.T) {
	p, err := policy.Parse("policy.yaml", []byte(peoplePolicy))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := p.Rule("prod-ssh")
	want := latch.Selector{Groups: []string{"sre"}, Users: []string{"carol@example.com"}, AWSPrincipals: []string{"arn:aws:iam::111122223333:user/*"}}
	if !slices.Equal(r.Approvers.Groups, want.Groups) || !slices.Equal(r.Approvers.Users, want.Users) || !slices.Equal(r.Approvers.AWSPrincipals, want.AWSPrincipals) {
		t.Fatalf("approvers = %+v, want %+v", r.Approvers, want)
	}
	for _, id := range []latch.Identity{
		{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "U-Alice"},
		{Kind: latch.KindIAM, Issuer: "111122223333", Subject: "arn:aws:iam::111122223333:user/alice"},
		{Kind: latch.KindIAM, Issuer: "111122223333", Subject: "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_02/alice@example.com"},
	} {
		name, linked := p.Person(id)
		if name != "alice" || len(linked) != 3 {
			t.Errorf("Person(%s) = %q, %d linked; want alice and her 3 identities", id.Subject, name, len(linked))
		}
		// who: {users: [alice]} names the person, whichever identity asks.
		if d := p.Decide(policy.Query{Who: id, Target: prodBox, Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22},
			Source: netip.MustParsePrefix("198.51.100.9/32"), Reason: "x"}); d.Outcome != policy.NeedsApproval {
			t.Errorf("%s asks: %s (%s), want needs-approval", id.Subject, d.Outcome, d.Why)
		}
	}
	if name, _ := p.Person(latch.Identity{Kind: latch.KindIAM, Issuer: "111122223333", Subject: "arn:aws:sts::111122223333:assumed-role/dev/alice"}); name != "" {
		t.Errorf("an ordinary role session named alice is linked to %q; want nobody", name)
	}
	if len(p.Warnings()) != 0 {
		t.Errorf("warnings: %v", p.Warnings())
	}
}

func TestPeopleErrors(t *testing.T) {
	rule := `rules:
  - name: r
    targets: {tags: {env: prod}}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: auto
`
	tests := []struct{ name, people, want string }{
		{"a wildcard in a link", "people:\n  - {name: a, oidc: [u-a], aws: [\"arn:aws:iam::111122223333:user/*\"]}\n",
			`policy.yaml:3: people[0].aws[0]: "arn:aws:iam::111122223333:user/*" is not a principal ARN`},
		{"one identity, two people", "people:\n  - {name: a, oidc: [u-a], aws: [\"arn:aws:iam::111122223333:user/a\"]}\n  - {name: b, oidc: [u-a, u-b]}\n",
			`policy.yaml:4: people[1]: u-a is already linked to a`},
		{"a person of one identity", "people:\n  - {name: a, oidc: [u-a]}\n", "links 1 identities; a person links two or more"},
		{"a role session", "people:\n  - {name: alice, oidc: [u-a], aws: [\"arn:aws:sts::111122223333:assumed-role/ops/alice\"]}\n",
			`"arn:aws:sts::111122223333:assumed-role/ops/alice" is not an IAM user or an IAM Identity Center session; a role session's name is chosen by whoever assumes the role`},
		{"a federated user", "people:\n  - {name: alice, oidc: [u-a], aws: [\"arn:aws:sts::111122223333:federated-user/alice\"]}\n", "is not an IAM user"},
		{"two people of one name", "people:\n  - {name: a, oidc: [u-a, u-a2]}\n  - {name: A, oidc: [u-b, u-c]}\n", `"A" is already the name of people[0]`},
		{"a bracket in an approver pattern", strings.Replace(rule, "approval: auto",
			"approval: {approvals: 1, from: {aws_principals: [\"arn:aws:iam::1:user/[ab]\"]}}", 1), "has [ or ]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "version: 1\n" + tt.people
			if !strings.Contains(tt.people, "rules:") {
				doc += rule
			}
			_, err := policy.Parse("policy.yaml", []byte(doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v\nwant an error containing %q", err, tt.want)
			}
		})
	}
}

// policy check warns of rules no set of identities could ever approve.
func TestWarningsForUnapprovableRules(t *testing.T) {
	doc := func(from string, approvals int, people string) string {
		return "version: 1\n" + people + `rules:
  - name: r
    targets: {tags: {env: prod}}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: {approvals: ` + string(rune('0'+approvals)) + `, from: ` + from + `}
`
	}
	link := "people:\n  - {name: frank, oidc: [u-frank], aws: [\"arn:aws:iam::111122223333:user/frank\"]}\n"
	tests := []struct {
		name, doc string
		warn      bool
	}{
		{"groups", doc("[sre]", 2, ""), false},
		{"two users for two approvals", doc("{users: [a, b]}", 2, ""), false},
		{"one user for two approvals", doc("{users: [a]}", 2, ""), true},
		{"the same user twice", doc("{users: [a, A]}", 2, ""), true},
		{"IAM users", doc(`{aws_principals: ["arn:aws:iam::111122223333:user/*"]}`, 2, ""), false},
		{"Identity Center users", doc(`{aws_principals: ["arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Ops_*/*"]}`, 1, ""), false},
		{"sessions of one role, nobody linked", doc(`{aws_principals: ["arn:aws:sts::111122223333:assumed-role/ops/*"]}`, 1, ""), true},
		{"the role itself, nobody linked", doc(`{aws_principals: ["arn:aws:iam::111122223333:role/ops"]}`, 1, ""), true},
		{"sessions of one role, people linked", doc(`{aws_principals: ["arn:aws:sts::111122223333:assumed-role/ops/*"]}`, 1, link), true},
		{"a person named in users", doc(`{users: [frank]}`, 1, link), false},
	}
	for _, tt := range tests {
		p, err := policy.Parse("policy.yaml", []byte(tt.doc))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := len(p.Warnings()) > 0; got != tt.warn {
			t.Errorf("%s: warnings %v, want a warning: %v", tt.name, p.Warnings(), tt.warn)
		}
	}
}

func TestPeopleSlack(t *testing.T) {
	p, err := policy.Parse("policy.yaml", []byte(`version: 1
people:
  - name: alice
    oidc: [u-alice]
    slack: [U0ALICE]
  - name: bob
    oidc: [u-bob]
    slack: [bob@example.com]
rules:
  - name: r
    targets: {tags: {env: prod}}
    who: {users: [alice]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: auto
`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		id   latch.Identity
		want string
	}{
		{"by user ID", latch.Identity{Kind: latch.KindSlack, Issuer: "T1", Subject: "U0ALICE", Email: "someone@example.com"}, "alice"},
		{"by verified email", latch.Identity{Kind: latch.KindSlack, Issuer: "T1", Subject: "U0BOB", Email: "Bob@Example.com"}, "bob"},
		{"a Slack user without a verified email", latch.Identity{Kind: latch.KindSlack, Issuer: "T1", Subject: "U0BOB"}, ""},
		{"a Slack user nobody linked", latch.Identity{Kind: latch.KindSlack, Issuer: "T1", Subject: "U0MALLORY", Email: "mallory@example.com"}, ""},
		{"an OIDC login with a linked Slack email is not linked by it", latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "u-x", Email: "bob@example.com"}, ""},
		{"an OIDC subject that looks like a Slack ID", latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "U0ALICE"}, ""},
	}
	for _, tt := range tests {
		if got, _ := p.Person(tt.id); got != tt.want {
			t.Errorf("%s: Person = %q, want %q", tt.name, got, tt.want)
		}
	}
	slackAlice := latch.Identity{Kind: latch.KindSlack, Issuer: "T1", Subject: "U0ALICE"}
	if latch.Distinct(p, slackAlice, latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "u-alice"}) {
		t.Error("alice in Slack and alice's OIDC login are distinct; want one person")
	}
	if !latch.Distinct(p, slackAlice, latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp", Subject: "u-bob"}) {
		t.Error("alice in Slack and bob's OIDC login are not distinct; want two people")
	}

	for _, bad := range []struct{ yaml, want string }{
		{"people:\n  - name: a\n    oidc: [u-a]\n    slack: ['#ops']\n", "not a Slack user"},
		{"people:\n  - name: a\n    slack: [U0A]\n", "links 1 identities"},
		{"people:\n  - name: a\n    oidc: [u-a]\n    slack: [U0A]\n  - name: b\n    oidc: [u-b]\n    slack: [U0A]\n", "already linked to a"},
	} {
		_, err := policy.Parse("policy.yaml", []byte("version: 1\n"+bad.yaml+`rules:
  - name: r
    targets: {tags: {env: prod}}
    who: {users: [alice]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: auto
`))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: err = %v, want it to mention %q", bad.yaml, err, bad.want)
		}
	}
}
