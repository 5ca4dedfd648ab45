package iampolicy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/latchdev/latch/iampolicy"
)

var cfnDir = filepath.Join("..", "deploy", "cloudformation")

// intrinsics maps CloudFormation's YAML short forms to their long names.
var intrinsics = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition",
	"!Base64": "Fn::Base64", "!Cidr": "Fn::Cidr", "!FindInMap": "Fn::FindInMap", "!GetAtt": "Fn::GetAtt",
	"!GetAZs": "Fn::GetAZs", "!ImportValue": "Fn::ImportValue", "!Join": "Fn::Join", "!Select": "Fn::Select",
	"!Split": "Fn::Split", "!Sub": "Fn::Sub", "!Transform": "Fn::Transform", "!Length": "Fn::Length",
	"!And": "Fn::And", "!Equals": "Fn::Equals", "!If": "Fn::If", "!Not": "Fn::Not", "!Or": "Fn::Or",
}

// yaml11Bools are plain scalars YAML 1.1 parsers, CloudFormation's among
// them, read as booleans, while yaml.v3 reads them as strings: in the
// template, a bare OFF would reach CloudFormation as false.
var yaml11Bools = []string{"y", "n", "yes", "no", "on", "off"}

// decode turns a YAML node into plain values, each short-form intrinsic
// into its long form ({"Fn::GetAtt": [resource, attribute]} and so on).
func decode(t *testing.T, n *yaml.Node) any {
	t.Helper()
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		return decode(t, n.Content[0])
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i < len(n.Content); i += 2 {
			key := n.Content[i]
			if key.Style == 0 && (key.Tag == "!!null" || key.Tag == "!!bool" || slices.Contains(yaml11Bools, strings.ToLower(key.Value))) {
				t.Errorf("line %d: bare key %q is not a string to CloudFormation; quote it", key.Line, key.Value)
			}
			m[key.Value] = decode(t, n.Content[i+1])
		}
		v = m
	case yaml.SequenceNode:
		l := []any{}
		for _, c := range n.Content {
			if n.Style&yaml.FlowStyle != 0 && c.Kind == yaml.ScalarNode && c.Style == 0 && strings.Contains(c.Value, ":") {
				t.Errorf("line %d: quote %s: YAML 1.1 parsers refuse ':' in a plain scalar inside [ ]", c.Line, c.Value)
			}
			l = append(l, decode(t, c))
		}
		v = l
	case yaml.ScalarNode:
		if n.Style == 0 && slices.Contains(yaml11Bools, strings.ToLower(n.Value)) {
			t.Errorf("line %d: bare %q is a boolean to CloudFormation; quote it", n.Line, n.Value)
		}
		tag := n.Tag
		if _, intrinsic := intrinsics[tag]; intrinsic {
			tag = "!!str"
		}
		var s any
		node := *n
		node.Tag = tag
		if err := node.Decode(&s); err != nil {
			t.Fatalf("line %d: %v", n.Line, err)
		}
		v = s
	case yaml.AliasNode:
		t.Fatalf("line %d: YAML aliases are not CloudFormation", n.Line)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		name, ok := intrinsics[n.Tag]
		if !ok {
			t.Fatalf("line %d: unknown tag %s", n.Line, n.Tag)
		}
		if name == "Fn::GetAtt" {
			if s, ok := v.(string); ok {
				res, attr, _ := strings.Cut(s, ".")
				v = []any{res, attr}
			}
		}
		return map[string]any{name: v}
	}
	return v
}

type cfnSchema struct {
	ResourceTypes map[string]struct {
		Properties []string `json:"properties"`
		Required   []string `json:"required"`
		Attributes []string `json:"attributes"`
	} `json:"resourceTypes"`
}

type template struct {
	top        map[string]any
	parameters map[string]map[string]any
	conditions map[string]any
	resources  map[string]map[string]any
	outputs    map[string]map[string]any
}

func loadTemplate(t *testing.T) template {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(cfnDir, "latch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		t.Fatal(err)
	}
	top, ok := decode(t, &root).(map[string]any)
	if !ok {
		t.Fatal("the template is not a mapping")
	}
	section := func(name string) map[string]map[string]any {
		out := map[string]map[string]any{}
		m, _ := top[name].(map[string]any)
		for k, v := range m {
			body, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%s.%s is not a mapping", name, k)
			}
			out[k] = body
		}
		return out
	}
	conditions, _ := top["Conditions"].(map[string]any)
	return template{top: top, parameters: section("Parameters"), conditions: conditions,
		resources: section("Resources"), outputs: section("Outputs")}
}

func loadSchema(t *testing.T) cfnSchema {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(cfnDir, "schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s cfnSchema
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

var pseudoParameters = []string{
	"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition",
	"AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix",
}

var subVariable = regexp.MustCompile(`\$\{([^}]*)\}`)

// TestCloudFormationTemplate checks latch.yaml as CloudFormation would
// before creating anything: known sections, resource types and properties
// from schema.json, required properties present, and every Ref, GetAtt,
// Sub variable, condition and DependsOn naming something that exists.
func TestCloudFormationTemplate(t *testing.T) {
	tpl := loadTemplate(t)
	schema := loadSchema(t)

	for k := range tpl.top {
		if !slices.Contains([]string{"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Rules",
			"Mappings", "Conditions", "Transform", "Resources", "Outputs"}, k) {
			t.Errorf("unknown top-level section %s", k)
		}
	}
	if tpl.top["AWSTemplateFormatVersion"] != "2010-09-09" {
		t.Errorf("AWSTemplateFormatVersion %v", tpl.top["AWSTemplateFormatVersion"])
	}
	for name, p := range tpl.parameters {
		if !slices.Contains([]string{"String", "Number", "CommaDelimitedList", "List<Number>"}, fmt.Sprint(p["Type"])) {
			t.Errorf("parameter %s: Type %v", name, p["Type"])
		}
	}
	if len(tpl.resources) == 0 {
		t.Fatal("no resources")
	}

	refOK := func(name string) bool {
		_, param := tpl.parameters[name]
		_, res := tpl.resources[name]
		return param || res || slices.Contains(pseudoParameters, name)
	}
	getAttOK := func(res, attr string) error {
		r, ok := tpl.resources[res]
		if !ok {
			return fmt.Errorf("no resource %s", res)
		}
		typ := fmt.Sprint(r["Type"])
		if !slices.Contains(schema.ResourceTypes[typ].Attributes, attr) {
			return fmt.Errorf("%s has no attribute %s (schema.json: %v)", typ, attr, schema.ResourceTypes[typ].Attributes)
		}
		return nil
	}
	conditionOK := func(name string) bool { _, ok := tpl.conditions[name]; return ok }

	// walk checks every intrinsic under v.
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch v := v.(type) {
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", at, i), e)
			}
		case map[string]any:
			for k, e := range v {
				switch k {
				case "Ref":
					if name, _ := e.(string); !refOK(name) {
						t.Errorf("%s: Ref to unknown %v", at, e)
					}
				case "Fn::GetAtt":
					l, _ := e.([]any)
					if len(l) != 2 {
						t.Errorf("%s: GetAtt %v", at, e)
					} else if err := getAttOK(fmt.Sprint(l[0]), fmt.Sprint(l[1])); err != nil {
						t.Errorf("%s: GetAtt: %v", at, err)
					}
				case "Fn::Sub":
					text, vars := e, map[string]any{}
					if l, ok := e.([]any); ok && len(l) == 2 {
						text = l[0]
						vars, _ = l[1].(map[string]any)
						walk(at+".Sub", l[1])
					}
					s, ok := text.(string)
					if !ok {
						t.Errorf("%s: Sub of %T", at, text)
						continue
					}
					for _, m := range subVariable.FindAllStringSubmatch(s, -1) {
						name := m[1]
						if strings.HasPrefix(name, "!") {
							continue // ${!Literal}
						}
						if _, ok := vars[name]; ok || refOK(name) {
							continue
						}
						if res, attr, ok := strings.Cut(name, "."); ok {
							if err := getAttOK(res, attr); err != nil {
								t.Errorf("%s: Sub ${%s}: %v", at, name, err)
							}
							continue
						}
						t.Errorf("%s: Sub ${%s} names nothing", at, name)
					}
					continue
				case "Fn::If":
					if l, _ := e.([]any); len(l) != 3 || !conditionOK(fmt.Sprint(l[0])) {
						t.Errorf("%s: If %v: want [known condition, then, else]", at, e)
					}
				case "Condition":
					if s, ok := e.(string); ok && !conditionOK(s) {
						t.Errorf("%s: unknown condition %s", at, s)
					}
				}
				walk(at+"."+k, e)
			}
		}
	}

	for name, r := range tpl.resources {
		at := "Resources." + name
		for k := range r {
			if !slices.Contains([]string{"Type", "Properties", "DependsOn", "Condition", "DeletionPolicy",
				"UpdateReplacePolicy", "Metadata", "CreationPolicy", "UpdatePolicy"}, k) {
				t.Errorf("%s: unknown resource attribute %s", at, k)
			}
		}
		typ := fmt.Sprint(r["Type"])
		spec, known := schema.ResourceTypes[typ]
		if !known {
			t.Errorf("%s: type %s is not in schema.json", at, typ)
			continue
		}
		props, _ := r["Properties"].(map[string]any)
		for p := range props {
			if !slices.Contains(spec.Properties, p) {
				t.Errorf("%s: %s has no property %s (schema.json: %v)", at, typ, p, spec.Properties)
			}
		}
		for _, p := range spec.Required {
			if _, ok := props[p]; !ok {
				t.Errorf("%s: %s requires %s", at, typ, p)
			}
		}
		deps, _ := r["DependsOn"].([]any)
		if s, ok := r["DependsOn"].(string); ok {
			deps = []any{s}
		}
		for _, d := range deps {
			if _, ok := tpl.resources[fmt.Sprint(d)]; !ok {
				t.Errorf("%s: DependsOn unknown %v", at, d)
			}
		}
		walk(at, r)
	}
	for name, c := range tpl.conditions {
		walk("Conditions."+name, c)
	}
	for name, o := range tpl.outputs {
		if _, ok := o["Value"]; !ok {
			t.Errorf("Outputs.%s has no Value", name)
		}
		walk("Outputs."+name, o)
	}
}

// cfnContext is what resolve substitutes for a stack's values, so that a
// resolved policy can be compared with one built from the same values.
var cfnContext = map[string]string{
	"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::StackName": "latch-stack",
}

// noValue stands for AWS::NoValue until resolve drops it.
type noValue struct{}

// resolve evaluates the intrinsics a policy may hold: Ref to a parameter
// (its default), a pseudo parameter (cfnContext) or a resource
// ("ref(Name)"), GetAtt ("arn:getatt:Name.Attr") and Sub.
func resolve(t *testing.T, tpl template, v any) any {
	t.Helper()
	ref := func(name string) any {
		if name == "AWS::NoValue" {
			return noValue{}
		}
		if s, ok := cfnContext[name]; ok {
			return s
		}
		if p, ok := tpl.parameters[name]; ok {
			return fmt.Sprint(p["Default"])
		}
		if _, ok := tpl.resources[name]; ok {
			return "ref(" + name + ")"
		}
		t.Fatalf("Ref to unknown %s", name)
		return nil
	}
	switch v := v.(type) {
	case []any:
		var out []any
		for _, e := range v {
			if r := resolve(t, tpl, e); r != (noValue{}) {
				out = append(out, r)
			}
		}
		return out
	case map[string]any:
		if len(v) == 1 {
			for k, e := range v {
				switch k {
				case "Ref":
					return ref(e.(string))
				case "Fn::GetAtt":
					l := e.([]any)
					return fmt.Sprintf("arn:getatt:%v.%v", l[0], l[1])
				case "Fn::Sub":
					s, ok := e.(string)
					if !ok {
						t.Fatalf("Sub with a variable map in a policy: %v", e)
					}
					return subVariable.ReplaceAllStringFunc(s, func(m string) string {
						name := m[2 : len(m)-1]
						if strings.HasPrefix(name, "!") {
							return "${" + name[1:] + "}"
						}
						if res, attr, ok := strings.Cut(name, "."); ok {
							return fmt.Sprintf("arn:getatt:%s.%s", res, attr)
						}
						return fmt.Sprint(ref(name))
					})
				}
				if strings.HasPrefix(k, "Fn::") {
					t.Fatalf("%s in a policy: resolve does not evaluate it", k)
				}
			}
		}
		out := map[string]any{}
		for k, e := range v {
			if r := resolve(t, tpl, e); r != (noValue{}) {
				out[k] = r
			}
		}
		return out
	}
	return v
}

// TestCloudFormationPoliciesAreIampolicys checks that each role's policy
// in latch.yaml is, statement for statement, the document this package
// builds for that role from the same stack values: same Sids, effects,
// actions, resources and conditions. Every role in the template must be
// one of them.
func TestCloudFormationPoliciesAreIampolicys(t *testing.T) {
	tpl := loadTemplate(t)
	param := func(name string) string { return fmt.Sprint(tpl.parameters[name]["Default"]) }
	opts := iampolicy.Options{
		Partition: cfnContext["AWS::Partition"], Account: cfnContext["AWS::AccountId"], Region: cfnContext["AWS::Region"],
		ScheduleGroup:      "ref(ScheduleGroup)",
		SchedulerRoleARN:   "arn:getatt:SchedulerRole.Arn",
		LogGroupARN:        "arn:aws:logs:us-east-1:123456789012:log-group:ref(LogGroup)",
		FunctionARN:        "arn:getatt:Function.Arn",
		DeadLetterQueueARN: "arn:getatt:DeadLetterQueue.Arn",
		SessionRoleARN:     "arn:aws:iam::123456789012:role/" + param("FunctionName") + "-session",
	}
	if param("ScheduleGroupName") != iampolicy.DefaultScheduleGroup {
		t.Errorf("ScheduleGroupName defaults to %q, latch to %q", param("ScheduleGroupName"), iampolicy.DefaultScheduleGroup)
	}
	roles := map[string]iampolicy.Document{
		"FunctionRole":  iampolicy.Lambda(opts),
		"SchedulerRole": iampolicy.Scheduler(opts),
		"SweepRole":     iampolicy.Sweeper(opts),
		"SessionRole":   iampolicy.SessionRole(opts),
	}
	// Trust policies this package writes; the others are the services'.
	trusts := map[string]iampolicy.Document{
		"SessionRole": iampolicy.SessionRoleTrust("arn:getatt:FunctionRole.Arn"),
	}
	for name, r := range tpl.resources {
		if r["Type"] != "AWS::IAM::Role" {
			continue
		}
		want, ok := roles[name]
		if !ok {
			t.Errorf("role %s has no iampolicy document to match; add one", name)
			continue
		}
		delete(roles, name)
		props := r["Properties"].(map[string]any)
		policies, _ := props["Policies"].([]any)
		if len(policies) != 1 {
			t.Errorf("%s: %d inline policies, want 1", name, len(policies))
			continue
		}
		if _, ok := props["ManagedPolicyArns"]; ok {
			t.Errorf("%s: managed policies grant beyond iampolicy's", name)
		}
		raw, err := json.Marshal(resolve(t, tpl, policies[0].(map[string]any)["PolicyDocument"]))
		if err != nil {
			t.Fatal(err)
		}
		var got iampolicy.Document
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if want, ok := trusts[name]; ok {
			raw, err := json.Marshal(resolve(t, tpl, props["AssumeRolePolicyDocument"]))
			if err != nil {
				t.Fatal(err)
			}
			var trust iampolicy.Document
			if err := json.Unmarshal(raw, &trust); err != nil {
				t.Fatalf("%s trust: %v", name, err)
			}
			g, _ := json.MarshalIndent(trust, "", "  ")
			w, _ := json.MarshalIndent(want, "", "  ")
			if string(g) != string(w) {
				t.Errorf("%s's trust policy differs from iampolicy's\n template:\n%s\n iampolicy:\n%s", name, g, w)
			}
		}
		if !slices.Equal(iampolicy.Actions(got), iampolicy.Actions(want)) {
			t.Errorf("%s allows %v; iampolicy: %v", name, iampolicy.Actions(got), iampolicy.Actions(want))
		}
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		if string(g) != string(w) {
			t.Errorf("%s's policy differs from iampolicy's\n template:\n%s\n iampolicy:\n%s", name, g, w)
		}
	}
	for name := range roles {
		t.Errorf("the template has no role %s", name)
	}
}
