package ec2sim

// IAM policy documents: parsing, as IAM validates them on PutRolePolicy,
// CreatePolicy and CreateRole, and SimulatePrincipalPolicy's evaluation of
// a role's identity policies. What is and is not evaluated is in doc.go.

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// policyKind is what a document is for: a trust policy names principals
// and has no resources; an identity policy has resources and no principal.
type policyKind int

const (
	policyIdentity policyKind = iota
	policyTrust
)

type policyDoc struct {
	statements []policyStatement
}

type policyStatement struct {
	sid                 string
	allow               bool
	actions             []string // Action, or NotAction when notAction
	notAction           bool
	resources           []string // Resource, or NotResource when notResource
	notResource         bool
	conditionKeys       []string // the keys its Condition tests, sorted; nil when it has none
	hasCondition        bool
	hasResourceElements bool
}

func malformed(format string, args ...any) *apiError {
	return errf(CodeMalformedPolicyDocument, format, args...)
}

// parsePolicy reads a policy document and checks it as IAM does, with
// IAM's MalformedPolicyDocument messages.
func parsePolicy(doc string, kind policyKind) (policyDoc, *apiError) {
	var top map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(doc))
	if err := dec.Decode(&top); err != nil || dec.More() {
		return policyDoc{}, malformed("Syntax errors in policy.")
	}
	for k := range top {
		switch k {
		case "Version", "Id", "Statement":
		default:
			return policyDoc{}, malformed("Syntax errors in policy.")
		}
	}
	if v, ok := top["Version"]; ok {
		var s string
		if json.Unmarshal(v, &s) != nil || s != "2012-10-17" && s != "2008-10-17" {
			return policyDoc{}, malformed("The policy failed legacy parsing")
		}
	}
	raw, ok := top["Statement"]
	if !ok {
		return policyDoc{}, malformed("Syntax errors in policy.")
	}
	var stmts []map[string]json.RawMessage
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		var one map[string]json.RawMessage
		if json.Unmarshal(raw, &one) != nil {
			return policyDoc{}, malformed("Syntax errors in policy.")
		}
		stmts = append(stmts, one)
	} else if json.Unmarshal(raw, &stmts) != nil {
		return policyDoc{}, malformed("Syntax errors in policy.")
	}
	var pd policyDoc
	for _, m := range stmts {
		st, aerr := parseStatement(m, kind)
		if aerr != nil {
			return policyDoc{}, aerr
		}
		pd.statements = append(pd.statements, st)
	}
	return pd, nil
}

func parseStatement(m map[string]json.RawMessage, kind policyKind) (policyStatement, *apiError) {
	var st policyStatement
	for k := range m {
		switch k {
		case "Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition", "Principal", "NotPrincipal":
		default:
			return st, malformed("Syntax errors in policy.")
		}
	}
	if raw, ok := m["Sid"]; ok && json.Unmarshal(raw, &st.sid) != nil {
		return st, malformed("Syntax errors in policy.")
	}
	var effect string
	if json.Unmarshal(m["Effect"], &effect) != nil {
		return st, malformed("Syntax errors in policy.")
	}
	switch effect {
	case "Allow":
		st.allow = true
	case "Deny":
	default:
		return st, malformed("Invalid effect: %s", effect)
	}
	_, principal := m["Principal"]
	_, notPrincipal := m["NotPrincipal"]
	if kind == policyIdentity && (principal || notPrincipal) {
		return st, malformed("Policy document should not specify a principal.")
	}
	if kind == policyTrust && !principal && !notPrincipal {
		return st, malformed("Missing required field Principal")
	}
	var aerr *apiError
	if st.actions, st.notAction, aerr = stringsOrList(m, "Action", "NotAction"); aerr != nil {
		return st, aerr
	}
	if len(st.actions) == 0 {
		return st, malformed("Policy statement must contain actions.")
	}
	for _, a := range st.actions {
		if a != "*" && !strings.Contains(a, ":") {
			return st, malformed("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
		}
	}
	if st.resources, st.notResource, aerr = stringsOrList(m, "Resource", "NotResource"); aerr != nil {
		return st, aerr
	}
	st.hasResourceElements = len(st.resources) > 0
	if kind == policyIdentity && !st.hasResourceElements {
		return st, malformed("Policy statement must contain resources.")
	}
	for _, r := range st.resources {
		if r != "*" && !strings.HasPrefix(r, "arn:") {
			return st, malformed("Resource %s must be in ARN format or \"*\".", r)
		}
	}
	if raw, ok := m["Condition"]; ok {
		var cond map[string]map[string]json.RawMessage
		if json.Unmarshal(raw, &cond) != nil {
			return st, malformed("Syntax errors in policy.")
		}
		st.hasCondition = true
		keys := map[string]bool{}
		for _, tests := range cond {
			for k := range tests {
				keys[k] = true
			}
		}
		st.conditionKeys = slices.Sorted(maps.Keys(keys))
	}
	return st, nil
}

// stringsOrList reads the one of name and notName the statement has, each
// a string or a list of strings; both is an error.
func stringsOrList(m map[string]json.RawMessage, name, notName string) ([]string, bool, *apiError) {
	raw, has := m[name]
	notRaw, hasNot := m[notName]
	if has && hasNot {
		return nil, false, malformed("Syntax errors in policy.")
	}
	if hasNot {
		raw = notRaw
	}
	if !has && !hasNot {
		return nil, false, nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, hasNot, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		return nil, false, malformed("Syntax errors in policy.")
	}
	return list, hasNot, nil
}

// wildcardMatch reports whether s matches pattern, where * matches any run
// of characters and ? any one.
func wildcardMatch(pattern, s string) bool {
	p, t := 0, 0
	star, mark := -1, 0
	for t < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[t]):
			p++
			t++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, t
			p++
		case star >= 0:
			p = star + 1
			mark++
			t = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// actionMatches: service and action names are not case sensitive.
func (st policyStatement) actionMatches(action string) bool {
	hit := slices.ContainsFunc(st.actions, func(p string) bool {
		return wildcardMatch(strings.ToLower(p), strings.ToLower(action))
	})
	return hit != st.notAction
}

// resourceMatches: ARNs are case sensitive. A simulated resource of "*"
// (none given) is matched by every Resource pattern and by no NotResource
// one, as IAM's simulator treats it.
func (st policyStatement) resourceMatches(resource string) bool {
	hit := slices.ContainsFunc(st.resources, func(p string) bool {
		return resource == "*" || wildcardMatch(p, resource)
	})
	if st.notResource && resource == "*" {
		return !slices.Contains(st.resources, "*")
	}
	return hit != st.notResource
}

// simPolicy is one identity policy in a simulation.
type simPolicy struct {
	id, typ string // SourcePolicyId and SourcePolicyType
	doc     policyDoc
}

type xmlStatement struct {
	SourcePolicyID   string `xml:"SourcePolicyId"`
	SourcePolicyType string `xml:"SourcePolicyType"`
}

type xmlEvaluation struct {
	EvalActionName       string                `xml:"EvalActionName"`
	EvalResourceName     string                `xml:"EvalResourceName"`
	EvalDecision         string                `xml:"EvalDecision"`
	MatchedStatements    members[xmlStatement] `xml:"MatchedStatements"`
	MissingContextValues members[string]       `xml:"MissingContextValues"`
}

// evaluate decides one action on one resource: an explicit Deny wins, then
// an Allow, else implicitDeny. A statement with a Condition never applies
// (the simulator has no request context), and the keys it tests are listed
// as missing context values, as IAM lists the keys no context entry gave.
func evaluate(policies []simPolicy, action, resource string) xmlEvaluation {
	ev := xmlEvaluation{EvalActionName: action, EvalResourceName: resource, EvalDecision: "implicitDeny"}
	var allows, denies []xmlStatement
	missing := map[string]bool{}
	for _, p := range policies {
		for _, st := range p.doc.statements {
			if !st.actionMatches(action) || !st.resourceMatches(resource) {
				continue
			}
			if st.hasCondition {
				for _, k := range st.conditionKeys {
					missing[k] = true
				}
				continue
			}
			ref := xmlStatement{SourcePolicyID: p.id, SourcePolicyType: p.typ}
			if st.allow {
				allows = append(allows, ref)
			} else {
				denies = append(denies, ref)
			}
		}
	}
	switch {
	case len(denies) > 0:
		ev.EvalDecision, ev.MatchedStatements.Member = "explicitDeny", denies
	case len(allows) > 0:
		ev.EvalDecision, ev.MatchedStatements.Member = "allowed", allows
	}
	ev.MissingContextValues.Member = slices.Sorted(maps.Keys(missing))
	return ev
}

// sourcePolicyType is the SourcePolicyType IAM's simulator answers for
// every identity policy. Its API reference lists user, group, role,
// aws-managed, user-managed, resource and none, but the service sends
// "IAM Policy" (SDKs have had to accept it).
const sourcePolicyType = "IAM Policy"

// rolePolicies gathers a role's identity policies, as IAM's simulator names
// them in SourcePolicyId: inline ones as role_ROLE_POLICY, by name, then
// attached managed ones by the policy's name, in attachment order. Stored
// documents were validated when stored.
func (st *iamState) rolePolicies(r *iamRole) []simPolicy {
	var out []simPolicy
	for _, name := range slices.Sorted(maps.Keys(r.inline)) {
		doc, _ := parsePolicy(r.inline[name], policyIdentity)
		out = append(out, simPolicy{id: "role_" + r.name + "_" + name, typ: sourcePolicyType, doc: doc})
	}
	for _, arn := range r.attached {
		p := st.policy(arn)
		if p == nil {
			continue
		}
		doc, _ := parsePolicy(p.document(), policyIdentity)
		out = append(out, simPolicy{id: p.name, typ: sourcePolicyType, doc: doc})
	}
	return out
}

// iamSimulatePrincipalPolicy evaluates a role's policies for each action
// and resource asked about, in pages of results.
func (s *Server) iamSimulatePrincipalPolicy(st *iamState, c iamCall) (any, *apiError) {
	source, aerr := iamRequired(c.p, "PolicySourceArn")
	if aerr != nil {
		return nil, aerr
	}
	for _, unsupported := range []string{"ResourcePolicy", "PermissionsBoundaryPolicyInputList", "ContextEntries", "CallerArn", "ResourceHandlingOption"} {
		if slices.ContainsFunc(slices.Collect(maps.Keys(c.p)), func(k string) bool { return k == unsupported || strings.HasPrefix(k, unsupported+".") }) {
			return nil, errf(CodeInvalidInput, "%s is not evaluated by ec2sim's SimulatePrincipalPolicy (identity policies of roles only)", unsupported)
		}
	}
	actions := c.p.list("ActionNames.member")
	if len(actions) == 0 {
		return nil, errf(CodeIAMValidation, "1 validation error detected: Value null at 'actionNames' failed to satisfy constraint: Member must not be null")
	}
	resources := c.p.list("ResourceArns.member")
	if len(resources) == 0 {
		resources = []string{"*"}
	}
	pg, aerr := iamPaging(c.p)
	if aerr != nil {
		return nil, aerr
	}
	prefix := "arn:aws:iam::" + c.account + ":role/"
	rest, ok := strings.CutPrefix(source, prefix)
	if !ok {
		return nil, errf(CodeInvalidInput, "Invalid Entity Arn: %s does not clearly define entity type and name (ec2sim simulates the roles of account %s only).", source, c.account)
	}
	name := rest[strings.LastIndex(rest, "/")+1:]
	r := st.roles[strings.ToLower(name)]
	if r == nil || r.arn != source {
		return nil, errf(CodeNoSuchEntity, "The role with name %s cannot be found.", name)
	}
	policies := st.rolePolicies(r)
	for i, doc := range c.p.list("PolicyInputList.member") {
		pd, aerr := parsePolicy(doc, policyIdentity)
		if aerr != nil {
			return nil, aerr
		}
		policies = append(policies, simPolicy{id: "PolicyInputList." + strconv.Itoa(i+1), typ: sourcePolicyType, doc: pd})
	}
	type keyed struct {
		key string
		ev  xmlEvaluation
	}
	var all []keyed
	for i, a := range actions {
		for j, res := range resources {
			all = append(all, keyed{seqKey(int64(i*len(resources) + j)), evaluate(policies, a, res)})
		}
	}
	items, l := pageOf(all, func(k keyed) string { return k.key }, pg)
	out := struct {
		EvaluationResults members[xmlEvaluation] `xml:"EvaluationResults"`
		listed
	}{listed: l}
	for _, it := range items {
		out.EvaluationResults.Member = append(out.EvaluationResults.Member, it.ev)
	}
	return out, nil
}
