package ec2sim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// FleetIAM is the account's IAM in a fleet (IAM is global, so it sits
// beside regions, not in one). YAML keys: policies, roles,
// instance_profiles.
type FleetIAM struct {
	Policies         []FleetPolicy
	Roles            []FleetRole
	InstanceProfiles []FleetInstanceProfile
	pos
}

// FleetPolicy is a customer managed policy. YAML keys: name, path
// (default /), description, document (a JSON string, or the policy
// written as YAML).
type FleetPolicy struct {
	Name, Path, Description string
	Document                string
	pos
}

// FleetRole is a role. YAML keys: name, path (default /), trust (its
// assume-role policy; default: ec2.amazonaws.com may assume it),
// managed_policies (ARNs of AWS managed policies, or of the fleet's
// policies, which may also be named by their name alone) and
// inline_policies (policy name to document, JSON or YAML).
type FleetRole struct {
	Name, Path      string
	Trust           string
	ManagedPolicies []string
	InlinePolicies  map[string]string
	inlineOrder     []string
	pos
}

// FleetInstanceProfile is an instance profile. YAML keys: name, path
// (default /), role (a role's name; empty for none).
type FleetInstanceProfile struct {
	Name, Path, Role string
	pos
}

// ec2Trust is the trust policy of an instance role.
const ec2Trust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

// decodePolicyDocument reads a document written as a JSON string or as
// YAML, and stores it as JSON.
func decodePolicyDocument(out *string) decodeFunc {
	return func(n *yaml.Node, path string) error {
		if n.Kind == yaml.ScalarNode {
			return scalar(out)(n, path)
		}
		var v any
		if err := n.Decode(&v); err != nil {
			return &FleetError{Line: n.Line, Field: path, Err: err}
		}
		b, err := json.Marshal(v)
		if err != nil {
			return &FleetError{Line: n.Line, Field: path, Err: fmt.Errorf("not a policy document: %w", err)}
		}
		*out = string(b)
		return nil
	}
}

func decodeIAM(n *yaml.Node, path string) (*FleetIAM, error) {
	f := &FleetIAM{pos: pos{line: n.Line, fields: map[string]int{}}}
	err := decodeMapping(n, path, f.fields, map[string]decodeFunc{
		"policies": func(n *yaml.Node, path string) error {
			return decodeSeq(n, path, func(n *yaml.Node, path string) error {
				p := FleetPolicy{pos: pos{line: n.Line, fields: map[string]int{}}}
				err := decodeMapping(n, path, p.fields, map[string]decodeFunc{
					"name": scalar(&p.Name), "path": scalar(&p.Path), "description": scalar(&p.Description),
					"document": decodePolicyDocument(&p.Document),
				})
				f.Policies = append(f.Policies, p)
				return err
			})
		},
		"roles": func(n *yaml.Node, path string) error {
			return decodeSeq(n, path, func(n *yaml.Node, path string) error {
				r := FleetRole{pos: pos{line: n.Line, fields: map[string]int{}}}
				err := decodeMapping(n, path, r.fields, map[string]decodeFunc{
					"name": scalar(&r.Name), "path": scalar(&r.Path), "trust": decodePolicyDocument(&r.Trust),
					"managed_policies": scalar(&r.ManagedPolicies),
					"inline_policies": func(n *yaml.Node, path string) error {
						r.InlinePolicies = map[string]string{}
						return decodeMap(n, path, func(name string, n *yaml.Node, path string) error {
							var doc string
							err := decodePolicyDocument(&doc)(n, path)
							r.InlinePolicies[name] = doc
							r.inlineOrder = append(r.inlineOrder, name)
							return err
						})
					},
				})
				f.Roles = append(f.Roles, r)
				return err
			})
		},
		"instance_profiles": func(n *yaml.Node, path string) error {
			return decodeSeq(n, path, func(n *yaml.Node, path string) error {
				p := FleetInstanceProfile{pos: pos{line: n.Line, fields: map[string]int{}}}
				err := decodeMapping(n, path, p.fields, map[string]decodeFunc{
					"name": scalar(&p.Name), "path": scalar(&p.Path), "role": scalar(&p.Role),
				})
				f.InstanceProfiles = append(f.InstanceProfiles, p)
				return err
			})
		},
	})
	return f, err
}

// check validates the fleet's IAM on its own: names, paths, documents,
// references between its parts, and duplicates. Conflicts with what the
// server already has are found by iamConflicts.
func (f *FleetIAM) check() error {
	if f == nil {
		return nil
	}
	fieldErr := func(p pos, path, field string, aerr *apiError) error {
		return fleetErr(p.lineOf(field), path+"."+field, "%s", aerr.Message)
	}
	name := func(p pos, path, v string, maxLen int) error {
		if _, aerr := iamName(params{"Name": {v}}, "Name", maxLen); aerr != nil {
			return fieldErr(p, path, "name", aerr)
		}
		return nil
	}
	pathOK := func(p pos, path, v string) error {
		if _, aerr := iamPath(params{"Path": {v}}, "Path"); aerr != nil {
			return fieldErr(p, path, "path", aerr)
		}
		return nil
	}
	policies := map[string]bool{}
	for i, p := range f.Policies {
		path := fmt.Sprintf("iam.policies[%d]", i)
		if err := name(p.pos, path, p.Name, 128); err != nil {
			return err
		}
		if err := pathOK(p.pos, path, p.Path); err != nil {
			return err
		}
		if policies[strings.ToLower(p.Name)] {
			return fleetErr(p.lineOf("name"), path+".name", "policy %q appears twice", p.Name)
		}
		policies[strings.ToLower(p.Name)] = true
		if _, aerr := parsePolicy(p.Document, policyIdentity); aerr != nil {
			return fieldErr(p.pos, path, "document", aerr)
		}
	}
	roles := map[string]bool{}
	for i, r := range f.Roles {
		path := fmt.Sprintf("iam.roles[%d]", i)
		if err := name(r.pos, path, r.Name, 64); err != nil {
			return err
		}
		if err := pathOK(r.pos, path, r.Path); err != nil {
			return err
		}
		if roles[strings.ToLower(r.Name)] {
			return fleetErr(r.lineOf("name"), path+".name", "role %q appears twice", r.Name)
		}
		roles[strings.ToLower(r.Name)] = true
		if r.Trust != "" {
			if _, aerr := parsePolicy(r.Trust, policyTrust); aerr != nil {
				return fieldErr(r.pos, path, "trust", aerr)
			}
		}
		for j, arn := range r.ManagedPolicies {
			_, aws := awsManagedPolicies[arn]
			local := !strings.HasPrefix(arn, "arn:") && policies[strings.ToLower(arn)] ||
				strings.Contains(arn, ":policy/") && policies[strings.ToLower(arn[strings.LastIndex(arn, "/")+1:])]
			if !aws && !local {
				return fleetErr(r.lineOf("managed_policies"), fmt.Sprintf("%s.managed_policies[%d]", path, j),
					"%q is neither an AWS managed policy the simulator knows nor one of the fleet's policies", arn)
			}
		}
		for _, n := range r.inlineOrder {
			if _, aerr := iamName(params{"Name": {n}}, "Name", 128); aerr != nil {
				return fleetErr(r.lineOf("inline_policies"), path+".inline_policies."+n, "%s", aerr.Message)
			}
			if _, aerr := parsePolicy(r.InlinePolicies[n], policyIdentity); aerr != nil {
				return fleetErr(r.lineOf("inline_policies"), path+".inline_policies."+n, "%s", aerr.Message)
			}
		}
	}
	profiles := map[string]bool{}
	for i, p := range f.InstanceProfiles {
		path := fmt.Sprintf("iam.instance_profiles[%d]", i)
		if err := name(p.pos, path, p.Name, 128); err != nil {
			return err
		}
		if err := pathOK(p.pos, path, p.Path); err != nil {
			return err
		}
		if profiles[strings.ToLower(p.Name)] {
			return fleetErr(p.lineOf("name"), path+".name", "instance profile %q appears twice", p.Name)
		}
		profiles[strings.ToLower(p.Name)] = true
		if p.Role != "" && !roles[strings.ToLower(p.Role)] {
			return fleetErr(p.lineOf("role"), path+".role", "no role %q in iam.roles", p.Role)
		}
	}
	return nil
}

// iamConflicts reports what in f clashes with the server's IAM. Caller
// holds s.mu.
func (s *Server) iamConflicts(f *FleetIAM) error {
	if f == nil {
		return nil
	}
	st := s.iamLocked()
	for i, p := range f.Policies {
		for _, have := range st.policies {
			if strings.EqualFold(have.name, p.Name) {
				return fleetErr(p.lineOf("name"), fmt.Sprintf("iam.policies[%d].name", i), "policy %s already exists", p.Name)
			}
		}
	}
	for i, r := range f.Roles {
		if st.roles[strings.ToLower(r.Name)] != nil {
			return fleetErr(r.lineOf("name"), fmt.Sprintf("iam.roles[%d].name", i), "role %s already exists", r.Name)
		}
	}
	for i, p := range f.InstanceProfiles {
		if st.profiles[strings.ToLower(p.Name)] != nil {
			return fleetErr(p.lineOf("name"), fmt.Sprintf("iam.instance_profiles[%d].name", i), "instance profile %s already exists", p.Name)
		}
	}
	return nil
}

// applyIAM adds a checked, conflict-free fleet IAM. Caller holds s.mu.
func (s *Server) applyIAM(f *FleetIAM) {
	if f == nil {
		return
	}
	st, account, now := s.iamLocked(), s.accountID(), s.now().UTC().Truncate(1e9)
	orSlash := func(p string) string {
		if p == "" {
			return "/"
		}
		return p
	}
	byName := map[string]string{} // the fleet's policies' ARNs by lowercased name
	for _, p := range f.Policies {
		ip := st.addPolicy(account, p.Name, orSlash(p.Path), p.Document, now)
		ip.description = p.Description
		byName[strings.ToLower(p.Name)] = ip.arn
	}
	for _, r := range f.Roles {
		trust := r.Trust
		if trust == "" {
			trust = ec2Trust
		}
		role := st.addRole(account, r.Name, orSlash(r.Path), trust, now)
		for _, arn := range r.ManagedPolicies {
			if _, ok := awsManagedPolicies[arn]; !ok {
				arn = byName[strings.ToLower(arn[strings.LastIndex(arn, "/")+1:])]
			}
			if !slices.Contains(role.attached, arn) {
				role.attached = append(role.attached, arn)
			}
		}
		for n, doc := range r.InlinePolicies {
			role.inline[n] = doc
		}
	}
	for _, p := range f.InstanceProfiles {
		ip := st.addProfile(account, p.Name, orSlash(p.Path), now)
		ip.role = strings.ToLower(p.Role)
	}
}
