package scan_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/scan"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// sarifSchema compiles testdata/sarif-schema-2.1.0.json (see
// testdata/README.md for where it comes from), asserting formats too.
func sarifSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("sarif-schema-2.1.0.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

func sarifOf(t *testing.T, r scan.Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := scan.WriteSARIF(&buf, r, scan.ToolInfo{Version: "1.2.3"}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func validate(sch *jsonschema.Schema, doc []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

func TestSARIFValidates(t *testing.T) {
	sch := sarifSchema(t)
	full := scan.Judge(oneOfEach(), oneOfEachOptions)
	for name, r := range map[string]scan.Report{"one of each": full, "empty": {}} {
		if err := validate(sch, sarifOf(t, r)); err != nil {
			t.Errorf("%s: SARIF does not validate: %v", name, err)
		}
	}

	// The validator does reject what the schema forbids.
	good := sarifOf(t, full)
	for name, breakIt := range map[string]func(m map[string]any){
		"no version":   func(m map[string]any) { delete(m, "version") },
		"wrong level":  func(m map[string]any) { result(m)["level"] = "critical" },
		"no message":   func(m map[string]any) { delete(result(m), "message") },
		"stray field":  func(m map[string]any) { m["findings"] = []any{} },
		"not a uri":    func(m map[string]any) { m["$schema"] = "not a uri at all" },
		"index string": func(m map[string]any) { result(m)["ruleIndex"] = "1" },
		"bad uri": func(m map[string]any) {
			result(m)["locations"].([]any)[0].(map[string]any)["physicalLocation"].(map[string]any)["artifactLocation"].(map[string]any)["uri"] = "a b\\c"
		},
	} {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		breakIt(m)
		bad, _ := json.Marshal(m)
		err := validate(sch, bad)
		if err == nil {
			t.Errorf("%s: a broken document validates", name)
			continue
		}
		if testing.Verbose() {
			t.Logf("%s: %v", name, err)
		}
	}
}

func result(m map[string]any) map[string]any {
	return m["runs"].([]any)[0].(map[string]any)["results"].([]any)[0].(map[string]any)
}

func TestSARIFContent(t *testing.T) {
	rep := scan.Judge(oneOfEach(), oneOfEachOptions)
	var log struct {
		Schema  string `json:"$schema"`
		Version string `json:"version"`
		Runs    []struct {
			Tool struct {
				Driver struct {
					Name, Version, InformationURI string
					Rules                         []struct {
						ID                   string
						Name                 string
						DefaultConfiguration struct{ Level string }
						Properties           map[string]any
					}
				}
			}
			Invocations []struct {
				ExecutionSuccessful        bool
				ToolExecutionNotifications []struct {
					Level   string
					Message struct{ Text string }
				}
			}
			Results []struct {
				RuleID    string
				RuleIndex int
				Level     string
				Message   struct{ Text string }
				Locations []struct {
					PhysicalLocation struct{ ArtifactLocation struct{ URI string } }
					LogicalLocations []struct{ Name, FullyQualifiedName, Kind string }
				}
				PartialFingerprints map[string]string
			}
		}
	}
	if err := json.Unmarshal(sarifOf(t, rep), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || log.Schema == "" || len(log.Runs) != 1 {
		t.Fatalf("version %q, schema %q, %d runs", log.Version, log.Schema, len(log.Runs))
	}
	run := log.Runs[0]
	d := run.Tool.Driver
	if d.Name != "latch" || d.Version != "1.2.3" || d.InformationURI == "" || len(d.Rules) != len(scan.Checks()) {
		t.Errorf("driver %q %q %q with %d rules", d.Name, d.Version, d.InformationURI, len(d.Rules))
	}
	for _, r := range d.Rules {
		if _, ok := r.Properties["security-severity"].(string); !ok || r.Name == "" || r.DefaultConfiguration.Level == "" {
			t.Errorf("rule %s: name %q, level %q, properties %v", r.ID, r.Name, r.DefaultConfiguration.Level, r.Properties)
		}
	}
	if len(run.Results) != len(rep.Findings) {
		t.Fatalf("%d results for %d findings", len(run.Results), len(rep.Findings))
	}
	levels := map[scan.Severity]string{scan.Critical: "error", scan.High: "error", scan.Medium: "warning", scan.Low: "note", scan.Info: "note"}
	for i, res := range run.Results {
		f := rep.Findings[i]
		if res.RuleID != f.Check || d.Rules[res.RuleIndex].ID != f.Check {
			t.Errorf("%s: ruleId %q, ruleIndex %d (%s)", f.ID, res.RuleID, res.RuleIndex, d.Rules[res.RuleIndex].ID)
		}
		if res.Level != levels[f.Severity] {
			t.Errorf("%s (%v): level %q, want %q", f.ID, f.Severity, res.Level, levels[f.Severity])
		}
		if res.PartialFingerprints["latchFindingId/v1"] != f.ID {
			t.Errorf("%s: fingerprints %v", f.ID, res.PartialFingerprints)
		}
		loc := res.Locations[0].LogicalLocations[0]
		wantFQN := f.Region + "/" + f.Resource
		if f.Region == "" {
			wantFQN = f.Resource
		}
		if f.Resource == f.Region {
			wantFQN = f.Region
		}
		if loc.FullyQualifiedName != wantFQN || loc.Kind != "resource" || loc.Name != f.Resource {
			t.Errorf("%s: logical location %+v, want %s", f.ID, loc, wantFQN)
		}
		if uri := res.Locations[0].PhysicalLocation.ArtifactLocation.URI; uri != "aws/"+wantFQN {
			t.Errorf("%s: artifact uri %q", f.ID, uri)
		}
		if !strings.Contains(res.Message.Text, f.Title) {
			t.Errorf("%s: message %q", f.ID, res.Message.Text)
		}
	}
	inv := run.Invocations[0]
	if !inv.ExecutionSuccessful || len(inv.ToolExecutionNotifications) != len(rep.NotChecked) {
		t.Fatalf("invocation: successful %v, %d notifications for %d not checked", inv.ExecutionSuccessful, len(inv.ToolExecutionNotifications), len(rep.NotChecked))
	}
	for _, n := range inv.ToolExecutionNotifications {
		if n.Level != "warning" || !strings.Contains(n.Message.Text, "not checked") {
			t.Errorf("notification %+v", n)
		}
	}
}

func jsonOf(t *testing.T, r scan.Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := scan.WriteJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var snake = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func checkKeys(t *testing.T, path string, v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if !snake.MatchString(k) {
				t.Errorf("%s: key %q is not snake_case", path, k)
			}
			checkKeys(t, path+"."+k, e)
		}
	case []any:
		for _, e := range v {
			checkKeys(t, path+"[]", e)
		}
	case nil:
		t.Errorf("%s is null", path)
	}
}

func TestJSONShape(t *testing.T) {
	rep := scan.Judge(oneOfEach(), oneOfEachOptions)
	out := jsonOf(t, rep)
	if bytes.Count(out, []byte("\n")) != 1 || !bytes.HasSuffix(out, []byte("\n")) {
		t.Errorf("want one line, got %q", out)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "", m)
	var doc struct {
		Findings []struct {
			ID, Check, Severity, Resource string
			Rule                          *struct {
				RuleID     string `json:"rule_id"`
				GroupID    string `json:"group_id"`
				Protocol   string `json:"protocol"`
				FromPort   *int   `json:"from_port"`
				ToPort     *int   `json:"to_port"`
				Source     string `json:"source"`
				SourceKind string `json:"source_kind"`
			}
			Instances []string
		}
		NotChecked []map[string]string `json:"not_checked"`
		Scanned    map[string]int
		BySeverity map[string]int `json:"by_severity"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Findings) != len(rep.Findings) || len(doc.NotChecked) != 2 || doc.BySeverity["critical"] != 2 || doc.Scanned["launch_templates"] != 2 {
		t.Fatalf("findings %d, not checked %d, by severity %v, scanned %v", len(doc.Findings), len(doc.NotChecked), doc.BySeverity, doc.Scanned)
	}
	for i, f := range doc.Findings {
		want := rep.Findings[i]
		if f.ID != want.ID || f.Severity != want.Severity.String() {
			t.Errorf("finding %d: %s %s, want %s %s", i, f.ID, f.Severity, want.ID, want.Severity)
		}
		if (f.Rule != nil) != (want.Rule != nil) {
			t.Errorf("%s: rule %v", f.ID, f.Rule)
		}
		if f.Rule != nil && (f.Rule.RuleID != want.Resource || f.Rule.FromPort == nil || f.Rule.Protocol == "" || f.Rule.Source == "" || f.Rule.GroupID == "") {
			t.Errorf("%s: rule %+v", f.ID, *f.Rule)
		}
		if f.Check == "LATCH004" && (f.Rule.SourceKind != "security-group" || f.Rule.Source != "sg-bastion") {
			t.Errorf("LATCH004 source %q (%s)", f.Rule.Source, f.Rule.SourceKind)
		}
	}
	empty := string(jsonOf(t, scan.Report{}))
	for _, k := range []string{`"findings":[]`, `"not_checked":[]`, `"regions":[]`} {
		if !strings.Contains(empty, k) {
			t.Errorf("empty report lacks %s: %s", k, empty)
		}
	}
}

func TestBaseline(t *testing.T) {
	rep := scan.Judge(oneOfEach(), oneOfEachOptions)
	n := len(rep.Findings)

	// A previous --json output accepts every finding in it, and nothing else.
	old := scan.Judge(oneOfEach()[1:], oneOfEachOptions) // us-west-2 and eu-west-1 only: LATCH010
	b, err := scan.ReadBaseline(bytes.NewReader(jsonOf(t, old)))
	if err != nil {
		t.Fatal(err)
	}
	kept, accepted := rep.Without(b)
	if accepted != len(old.Findings) || accepted != 1 || len(kept.Findings) != n-1 ||
		slices.ContainsFunc(kept.Findings, func(f scan.Finding) bool { return f.Check == "LATCH010" }) {
		t.Errorf("JSON baseline: accepted %d, kept %v", accepted, pairs(kept))
	}
	if len(kept.NotChecked) != len(rep.NotChecked) {
		t.Error("a baseline dropped what was not checked")
	}
	// All of it: nothing left.
	b, err = scan.ReadBaseline(bytes.NewReader(jsonOf(t, rep)))
	if err != nil {
		t.Fatal(err)
	}
	if kept, accepted := rep.Without(b); accepted != n || len(kept.Findings) != 0 || kept.Reaches(scan.Info) {
		t.Errorf("full JSON baseline: accepted %d of %d, kept %v", accepted, n, pairs(kept))
	}
	// A SARIF output too.
	b, err = scan.ReadBaseline(bytes.NewReader(sarifOf(t, rep)))
	if err != nil {
		t.Fatal(err)
	}
	if _, accepted := rep.Without(b); accepted != n {
		t.Errorf("SARIF baseline: accepted %d of %d", accepted, n)
	}

	// A list of IDs removes exactly those.
	list := "# accepted 2026-12-05\n\nLATCH001/us-east-1/sgr-world   # the old bastion\n  LATCH008/" + roleA + "\nLATCH001/us-east-1/sgr-gone\n"
	b, err = scan.ReadBaseline(strings.NewReader(list))
	if err != nil {
		t.Fatal(err)
	}
	kept, accepted = rep.Without(b)
	if accepted != 2 || len(kept.Findings) != n-2 {
		t.Errorf("ID list: accepted %d, kept %d of %d", accepted, len(kept.Findings), n)
	}
	for _, f := range kept.Findings {
		if f.ID == "LATCH001/us-east-1/sgr-world" || f.Check == "LATCH008" {
			t.Errorf("ID list kept %s", f.ID)
		}
	}

	for _, tc := range []struct{ in, want string }{
		{"LATCH001/us-east-1/sgr-1\nsgr-2\n", "line 2"},
		{"LATCH001/us-east-1/sgr-1\n\n# x\nLATCH1/x\n", "line 4"},
		{`{"findings":[{"id":"LATCH001/a/b"},{"check":"LATCH001"}]}`, "findings[1].id"},
		{`{"findings":[{"id":7}]}`, "findings.id"},
		{"{\n\"findings\": [\n,]}", "line 3"},
		{`{"grants":[]}`, `"findings"`},
	} {
		_, err := scan.ReadBaseline(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) || latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("ReadBaseline(%q) = %v; want an invalid error naming %s", tc.in, err, tc.want)
		}
	}
}
