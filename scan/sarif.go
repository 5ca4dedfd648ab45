package scan

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// ToolInfo names the program in a SARIF log.
type ToolInfo struct {
	Version        string // latch's version; "" writes "dev"
	InformationURI string // "" writes the project's home
}

const (
	sarifSchema = "https://json.schemastore.org/sarif-2.1.0.json"
	homeURI     = "https://github.com/latchdev/latch"
	// fingerprintKey holds a finding's stable ID in partialFingerprints,
	// so code scanning tracks an alert across runs (and ReadBaseline reads
	// it back).
	fingerprintKey = "latchFindingId/v1"
)

// level is SARIF's level for a severity.
func (s Severity) level() string {
	switch {
	case s >= High:
		return "error"
	case s == Medium:
		return "warning"
	}
	return "note"
}

// securitySeverity is the score GitHub code scanning reads from a rule's
// properties["security-severity"] to rank an alert: above 9.0 critical,
// 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low.
func (s Severity) securitySeverity() string {
	switch s {
	case Critical:
		return "9.5"
	case High:
		return "8.0"
	case Medium:
		return "5.5"
	case Low:
		return "2.0"
	}
	return "0.0"
}

// WriteSARIF writes r as a SARIF 2.1.0 log: one run whose driver lists
// every check as a rule (whether it found anything or not, so ruleIndex is
// stable), one result per finding located by a logical location
// ("region/resource", kind "resource"; roles, being global, by their ARN
// alone) and fingerprinted by its stable ID, and what was not checked as
// tool execution notifications (warnings) of a successful invocation.
//
// Each result also has a physical location, the relative path
// aws/REGION/RESOURCE: GitHub code scanning refuses a result without
// physicalLocation.artifactLocation.uri, and an estate has no files. It
// shows that path as the alert's file.
func WriteSARIF(w io.Writer, r Report, tool ToolInfo) error {
	driver := sarifDriver{
		Name:           "latch",
		Version:        cmp.Or(tool.Version, "dev"),
		InformationURI: cmp.Or(tool.InformationURI, homeURI),
		Rules:          make([]sarifRule, 0, len(checks)),
	}
	index := map[string]int{}
	for i, c := range checks {
		index[c.Code] = i
		driver.Rules = append(driver.Rules, sarifRule{
			ID:                   c.Code,
			Name:                 c.Name,
			ShortDescription:     sarifText{Text: c.Short},
			FullDescription:      sarifText{Text: c.Full},
			Help:                 sarifText{Text: c.Help},
			DefaultConfiguration: sarifConfig{Level: c.Severity.level()},
			Properties: sarifRuleProps{
				SecuritySeverity: c.Severity.securitySeverity(),
				Tags:             []string{"security", "aws", "ec2"},
			},
		})
	}
	results := make([]sarifResult, 0, len(r.Findings))
	for _, f := range r.Findings {
		fqn := f.Resource
		if f.Region != "" && f.Resource != f.Region {
			fqn = f.Region + "/" + f.Resource
		}
		i, ok := index[f.Check]
		if !ok {
			return fmt.Errorf("write SARIF: finding %s has unknown check %q", f.ID, f.Check)
		}
		instances := make([]string, 0, len(f.Instances))
		for _, id := range f.Instances {
			instances = append(instances, string(id))
		}
		results = append(results, sarifResult{
			RuleID:    f.Check,
			RuleIndex: i,
			Level:     f.Severity.level(),
			Message:   sarifText{Text: f.Title + ". " + f.Detail + " Fix: " + f.Fix},
			Locations: []sarifLocation{{
				PhysicalLocation: sarifPhysical{ArtifactLocation: sarifArtifact{URI: (&url.URL{Path: "aws/" + fqn}).EscapedPath()}},
				LogicalLocations: []sarifLogical{{Name: f.Resource, FullyQualifiedName: fqn, Kind: "resource"}},
			}},
			PartialFingerprints: map[string]string{fingerprintKey: f.ID},
			Properties: sarifResultProps{
				ID: f.ID, Severity: f.Severity.String(), Region: f.Region, Resource: f.Resource,
				Group: string(f.Group), Instances: instances,
			},
		})
	}
	notes := make([]sarifNotification, 0, len(r.NotChecked))
	for _, n := range r.NotChecked {
		what := string(n.Check)
		if n.Resource != "" {
			what += " of " + n.Resource
		}
		where := strings.TrimSpace(n.Region)
		if where != "" {
			where = " in " + where
		}
		notes = append(notes, sarifNotification{
			Level:   "warning",
			Message: sarifText{Text: fmt.Sprintf("not checked: %s%s: %s refused: %s", what, where, cmp.Or(n.API, "the API"), n.Reason)},
			Properties: sarifNoteProps{
				Check: string(n.Check), Region: n.Region, Resource: n.Resource, API: n.API, Reason: n.Reason,
			},
		})
	}
	doc := sarifLog{
		Schema:  sarifSchema,
		Version: "2.1.0",
		Runs: []sarifRun{{
			Tool:        sarifTool{Driver: driver},
			Invocations: []sarifInvocation{{ExecutionSuccessful: true, ToolExecutionNotifications: notes}},
			Results:     results,
			Properties:  sarifRunProps{Regions: nonNil(r.Regions)},
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write SARIF: %w", err)
	}
	return nil
}

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
	Properties  sarifRunProps     `json:"properties"`
}

type sarifRunProps struct {
	Regions []string `json:"regions"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	Name                 string         `json:"name"`
	ShortDescription     sarifText      `json:"shortDescription"`
	FullDescription      sarifText      `json:"fullDescription"`
	Help                 sarifText      `json:"help"`
	DefaultConfiguration sarifConfig    `json:"defaultConfiguration"`
	Properties           sarifRuleProps `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifRuleProps struct {
	SecuritySeverity string   `json:"security-severity"`
	Tags             []string `json:"tags"`
}

type sarifResult struct {
	RuleID              string            `json:"ruleId"`
	RuleIndex           int               `json:"ruleIndex"`
	Level               string            `json:"level"`
	Message             sarifText         `json:"message"`
	Locations           []sarifLocation   `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Properties          sarifResultProps  `json:"properties"`
}

type sarifResultProps struct {
	ID        string   `json:"id"`
	Severity  string   `json:"severity"`
	Region    string   `json:"region,omitempty"`
	Resource  string   `json:"resource"`
	Group     string   `json:"group_id,omitempty"`
	Instances []string `json:"instances"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical  `json:"physicalLocation"`
	LogicalLocations []sarifLogical `json:"logicalLocations"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifLogical struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications"`
}

type sarifNotification struct {
	Level      string         `json:"level"`
	Message    sarifText      `json:"message"`
	Properties sarifNoteProps `json:"properties"`
}

type sarifNoteProps struct {
	Check    string `json:"check"`
	Region   string `json:"region"`
	Resource string `json:"resource,omitempty"`
	API      string `json:"api"`
	Reason   string `json:"reason"`
}
