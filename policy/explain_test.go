package policy_test

import (
	"testing"

	"github.com/latchdev/latch/policy"
)

// line is an Explanation without the rule's details.
type line struct {
	rule    string
	applies bool
	why     string
}

func explainLines(es []policy.Explanation) []line {
	out := make([]line, len(es))
	for i, e := range es {
		out[i] = line{e.Rule.Name, e.Applies, e.Why}
	}
	return out
}

func TestExplain(t *testing.T) {
	p := mustParse(t, decidePolicy)
	tests := []struct {
		name string
		got  func() []line
		want []line
	}{
		{
			name: "developer on call, prod box",
			want: []line{
				{"dev-ssh", false, "does not apply: i-0f0e0d0c0b0a00002 (sg-0f0e0d0c0b0a00002) in us-east-1 is not among its targets (tags env=dev,team=web)"},
				{"office-rdp", false, "does not apply: i-0f0e0d0c0b0a00002 (sg-0f0e0d0c0b0a00002) in us-east-1 is not among its targets (groups sg-0f00dcafe0000b001)"},
				{"prod-ssh", true, "allows tcp/22 for 30m by default, at most 1h; needs 1 approval from sre within 15m; break-glass allowed with a reason; reason required"},
				{"oncall-ssh", true, `allows tcp/22 (decided first by rule "prod-ssh") for 1h by default, at most 4h; auto-approved; reason required`},
				{"prod-db", false, "does not apply: alice@example.com is not among its callers (groups dba)"},
				{"lab-ssh", false, "does not apply: i-0f0e0d0c0b0a00002 (sg-0f0e0d0c0b0a00002) in us-east-1 is not among its targets (tags env=lab)"},
			},
			got: func() []line { return explainLines(p.Explain(both, prodBox)) },
		},
		{
			name: "developer, dev box",
			want: []line{
				{"dev-ssh", true, "allows tcp/22, tcp/8000-8080, icmp type 8 (echo request) for 30m by default, at most 2h; auto-approved; only from 198.51.100.0/24 or 2001:db8::/48; reason required; at most 2 active grants per requester"},
				{"office-rdp", false, "does not apply: i-0a0b0c0d0e0f00001 (sg-0a0b0c0d0e0f00001) in us-east-1 is not among its targets (groups sg-0f00dcafe0000b001)"},
				{"prod-ssh", false, "does not apply: i-0a0b0c0d0e0f00001 (sg-0a0b0c0d0e0f00001) in us-east-1 is not among its targets (instances i-0f0e0d0c0b0a00002; tags env=prod)"},
				{"oncall-ssh", false, "does not apply: i-0a0b0c0d0e0f00001 (sg-0a0b0c0d0e0f00001) in us-east-1 is not among its targets (tags env=prod), and alice@example.com is not among its callers (groups oncall)"},
				{"prod-db", false, "does not apply: i-0a0b0c0d0e0f00001 (sg-0a0b0c0d0e0f00001) in us-east-1 is not among its targets (tags env=prod), and alice@example.com is not among its callers (groups dba)"},
				{"lab-ssh", false, "does not apply: i-0a0b0c0d0e0f00001 (sg-0a0b0c0d0e0f00001) in us-east-1 is not among its targets (tags env=lab)"},
			},
			got: func() []line { return explainLines(p.Explain(alice, devBox)) },
		},
		{
			name: "office group",
			want: []line{
				{"dev-ssh", false, "does not apply: sg-0f00dcafe0000b001 is not among its targets (tags env=dev,team=web)"},
				{"office-rdp", true, "allows tcp/3389 for 1h by default, at most 1h; auto-approved; only from 192.0.2.0/24 (prefixes allowed)"},
				{"prod-ssh", false, "does not apply: sg-0f00dcafe0000b001 is not among its targets (instances i-0f0e0d0c0b0a00002; tags env=prod)"},
				{"oncall-ssh", false, "does not apply: sg-0f00dcafe0000b001 is not among its targets (tags env=prod), and alice@example.com is not among its callers (groups oncall)"},
				{"prod-db", false, "does not apply: sg-0f00dcafe0000b001 is not among its targets (tags env=prod), and alice@example.com is not among its callers (groups dba)"},
				{"lab-ssh", false, "does not apply: sg-0f00dcafe0000b001 is not among its targets (tags env=lab)"},
			},
			got: func() []line { return explainLines(p.Explain(alice, office)) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.got()
			if len(got) != len(tt.want) {
				t.Fatalf("Explain returned %d rules, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("rule %d:\n\tgot  %+v\n\twant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}
