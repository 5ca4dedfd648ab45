package scan

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/latchdev/latch"
)

// WriteJSON writes r as `latch scan --json` prints it: one compact object
// on one line (docs/JSON.md), keys in this order:
//
//	{"regions": [string],
//	 "findings": [{"id", "check", "name", "severity", "region", "resource",
//	   "title", "detail", "fix",
//	   "rule": {"rule_id", "group_id", "protocol", "from_port", "to_port",
//	     "source", "source_kind", "description", "latch"},
//	   "instances": [string]}],
//	 "not_checked": [{"check", "region", "resource", "api", "reason"}],
//	 "scanned": {"groups", "rules", "instances", "launch_templates", "roles", "trails"},
//	 "by_severity": {"critical", "high", "medium", "low", "info"}}
//
// severity is info, low, medium, high or critical. region is "" for IAM
// roles (global). rule is present for rule findings only (LATCH001-004);
// its source is a CIDR, a security group (sg-…) or a prefix list (pl-…),
// which source_kind names (cidr, security-group, prefix-list); latch is
// true when latch opened the rule. resource in not_checked is "" when the
// whole check was refused. Lists are [] when empty, never null. Fields are
// added, never renamed: baselines and scripts read them.
func WriteJSON(w io.Writer, r Report) error {
	doc := jsonReport{
		Regions:    nonNil(r.Regions),
		Findings:   make([]jsonFinding, 0, len(r.Findings)),
		NotChecked: make([]jsonNotChecked, 0, len(r.NotChecked)),
		Scanned: jsonCounts{
			Groups: r.Scanned.Groups, Rules: r.Scanned.Rules, Instances: r.Scanned.Instances,
			Templates: r.Scanned.Templates, Roles: r.Scanned.Roles, Trails: r.Scanned.Trails,
		},
		BySeverity: jsonBySeverity{
			Critical: r.Count(Critical), High: r.Count(High), Medium: r.Count(Medium), Low: r.Count(Low), Info: r.Count(Info),
		},
	}
	for _, f := range r.Findings {
		jf := jsonFinding{
			ID: f.ID, Check: f.Check, Name: f.Name, Severity: f.Severity, Region: f.Region, Resource: f.Resource,
			Title: f.Title, Detail: f.Detail, Fix: f.Fix, Instances: make([]string, 0, len(f.Instances)),
		}
		for _, id := range f.Instances {
			jf.Instances = append(jf.Instances, string(id))
		}
		if f.Rule != nil {
			jf.Rule = jsonRuleOf(*f.Rule, f.Group)
		}
		doc.Findings = append(doc.Findings, jf)
	}
	for _, n := range r.NotChecked {
		doc.NotChecked = append(doc.NotChecked, jsonNotChecked{
			Check: string(n.Check), Region: n.Region, Resource: n.Resource, API: n.API, Reason: n.Reason,
		})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode scan report: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write scan report: %w", err)
	}
	return nil
}

type jsonReport struct {
	Regions    []string         `json:"regions"`
	Findings   []jsonFinding    `json:"findings"`
	NotChecked []jsonNotChecked `json:"not_checked"`
	Scanned    jsonCounts       `json:"scanned"`
	BySeverity jsonBySeverity   `json:"by_severity"`
}

type jsonFinding struct {
	ID        string    `json:"id"`
	Check     string    `json:"check"`
	Name      string    `json:"name"`
	Severity  Severity  `json:"severity"`
	Region    string    `json:"region"`
	Resource  string    `json:"resource"`
	Title     string    `json:"title"`
	Detail    string    `json:"detail"`
	Fix       string    `json:"fix"`
	Rule      *jsonRule `json:"rule,omitempty"`
	Instances []string  `json:"instances"`
}

type jsonRule struct {
	RuleID      string `json:"rule_id"`
	GroupID     string `json:"group_id"`
	Protocol    string `json:"protocol"`
	FromPort    int    `json:"from_port"`
	ToPort      int    `json:"to_port"`
	Source      string `json:"source"`
	SourceKind  string `json:"source_kind"`
	Description string `json:"description"`
	Latch       bool   `json:"latch"`
}

func jsonRuleOf(r latch.IngressRule, group latch.GroupID) *jsonRule {
	kind := "cidr"
	switch {
	case r.SourceGroup != "":
		kind = "security-group"
	case r.PrefixList != "":
		kind = "prefix-list"
	}
	return &jsonRule{
		RuleID: string(r.ID), GroupID: string(group), Protocol: r.Protocol, FromPort: r.FromPort, ToPort: r.ToPort,
		Source: r.Source(), SourceKind: kind, Description: r.Description, Latch: r.Latch(),
	}
}

type jsonNotChecked struct {
	Check    string `json:"check"`
	Region   string `json:"region"`
	Resource string `json:"resource"`
	API      string `json:"api"`
	Reason   string `json:"reason"`
}

type jsonCounts struct {
	Groups    int `json:"groups"`
	Rules     int `json:"rules"`
	Instances int `json:"instances"`
	Templates int `json:"launch_templates"`
	Roles     int `json:"roles"`
	Trails    int `json:"trails"`
}

type jsonBySeverity struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	Info     int `json:"info"`
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
