package ec2sim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Fleet is the starting inventory of a simulated account: per region, its
// VPCs, security groups (with any pre-existing ingress rules) and
// instances. IDs may be left empty to be generated. Load one with
// [Server.LoadFleet]; read one from YAML with [ParseFleet].
type Fleet struct {
	// Regions maps a region name (us-east-1) to its resources. YAML key:
	// regions.
	Regions map[string]FleetRegion
	// Trails are the account's CloudTrail trails, each with its home
	// region (see FleetTrail). YAML key: trails.
	Trails []FleetTrail
	// IAM is the account's roles, instance profiles and policies; nil for
	// none. YAML key: iam (see iam_fleet.go).
	IAM *FleetIAM
}

// FleetRegion is one region's resources. YAML keys: vpcs,
// security_groups, instances.
type FleetRegion struct {
	VPCs           []FleetVPC
	SecurityGroups []FleetGroup
	Instances      []FleetInstance
	// KeyPairs and LaunchTemplates: YAML keys key_pairs, launch_templates
	// (see fleet_keys.go).
	KeyPairs        []FleetKeyPair
	LaunchTemplates []FleetLaunchTemplate
	pos
}

// FleetVPC is a VPC. YAML keys: id, cidr, default, tags. A region has one
// default VPC: the one marked default, or else one the simulator adds
// (172.31.0.0/16), so that calls without a VpcId behave as in EC2.
type FleetVPC struct {
	ID      string
	CIDR    string
	Default bool
	Tags    map[string]string
	pos
}

// FleetGroup is a security group. YAML keys: id, name, vpc, description,
// tags, rules. VPC empty means the region's default VPC; Description
// empty means the name.
type FleetGroup struct {
	ID          string
	Name        string
	VPC         string
	Description string
	Tags        map[string]string
	Rules       []FleetRule
	pos
}

// FleetRule is a pre-existing ingress rule, validated and canonicalised
// as AuthorizeSecurityGroupIngress would. YAML keys: id, protocol,
// from_port, to_port, cidr, source_group, prefix_list, description, tags.
// Its source is one of CIDR, SourceGroup (the ID or name of a group of
// the fleet's region; a name is looked up in the rule's VPC) and
// PrefixList (a pl- ID).
type FleetRule struct {
	ID          string
	Protocol    string
	FromPort    int
	ToPort      int
	CIDR        string
	Description string
	Tags        map[string]string
	SourceGroup string
	PrefixList  string
	pos
}

// FleetInstance is an instance with one network interface. YAML keys: id,
// vpc, subnet, private_ip, public_ip, security_groups, tags, state, type,
// image, host_keys. SecurityGroups holds group IDs or names (names are
// looked up in the instance's VPC). VPC empty means the VPC of its first group; an
// empty subnet is generated; an empty private_ip is picked from the VPC's
// CIDR; State empty means running. public_ip is an optional public IPv4
// address, unique in the region; any address is accepted (127.0.0.1 lets
// a local sshd stand in for the instance), and, as EC2 releases a public
// address when an instance stops, it is shown only while running.
// HostKeys are its SSH host public keys, one "TYPE BASE64 [comment]" line
// each, which GetConsoleOutput shows as cloud-init prints them at boot.
// Agent, when set, is its SSM agent (YAML: agent: online, or a mapping;
// see FleetAgent); without one it is not a managed node.
type FleetInstance struct {
	ID             string
	VPC            string
	Subnet         string
	PrivateIP      string
	PublicIP       string
	SecurityGroups []string
	Tags           map[string]string
	State          string
	Type           string
	Image          string
	HostKeys       []string
	Agent          *FleetAgent
	// KeyName (YAML key_name) is the key pair it was launched with; it
	// need not be one of the fleet's key pairs, as EC2 keeps the name
	// after the key pair is deleted. InstanceProfile (YAML
	// instance_profile) is its instance profile, an ARN or a name in the
	// account, which the simulator's IAM need not know.
	KeyName         string
	InstanceProfile string
	// Interfaces are its network interfaces beyond the primary one
	// (YAML: interfaces; see FleetInterface).
	Interfaces []FleetInterface
	pos
}

// FleetAgent is an instance's SSM agent. YAML keys: status (online,
// offline or inactive; default online), platform (Linux, Windows or
// MacOS; default Linux), version (default DefaultAgentVersion). The short
// form "agent: online" (or offline, inactive) sets the status alone.
// Offline is SSM's ConnectionLost.
type FleetAgent struct {
	Status   string
	Platform string
	Version  string
	pos
}

// pos remembers where an item was in its YAML file, so that validation
// errors can point at the line. Fleets built in Go have no positions.
type pos struct {
	line   int
	fields map[string]int
}

func (p pos) lineOf(field string) int {
	if l, ok := p.fields[field]; ok {
		return l
	}
	return p.line
}

// FleetError is a problem with a fleet: the path of the field at fault
// (regions.us-east-1.instances[2].private_ip) and, for a fleet read from
// YAML, its line.
type FleetError struct {
	Line  int // 0 when unknown
	Field string
	Err   error
}

// Error reads "fleet: line N: path: problem".
func (e *FleetError) Error() string {
	var b strings.Builder
	b.WriteString("fleet: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying problem.
func (e *FleetError) Unwrap() error { return e.Err }

func fleetErr(line int, field, format string, args ...any) *FleetError {
	return &FleetError{Line: line, Field: field, Err: fmt.Errorf(format, args...)}
}

// ParseFleet reads a fleet from YAML and validates it. Errors are
// *FleetError values naming the field and line at fault; unknown keys are
// errors, so a misspelt field is not silently ignored.
func ParseFleet(data []byte) (Fleet, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Fleet{}, &FleetError{Err: fmt.Errorf("parse YAML: %w", err)}
	}
	f := Fleet{Regions: map[string]FleetRegion{}}
	if len(doc.Content) == 0 {
		return f, nil
	}
	err := decodeMapping(doc.Content[0], "", nil, map[string]decodeFunc{
		"trails": decodeTrails(&f),
		"regions": func(n *yaml.Node, path string) error {
			return decodeMap(n, path, func(name string, n *yaml.Node, path string) error {
				reg, err := decodeRegion(n, path)
				f.Regions[name] = reg
				return err
			})
		},
		"iam": func(n *yaml.Node, path string) (err error) {
			f.IAM, err = decodeIAM(n, path)
			return err
		},
	})
	if err != nil {
		return Fleet{}, err
	}
	if _, err := f.check(); err != nil {
		return Fleet{}, err
	}
	return f, nil
}

type decodeFunc func(n *yaml.Node, path string) error

// decodeMapping walks a mapping whose keys must all be in fields, and
// records each key's line in lines (when non-nil).
func decodeMapping(n *yaml.Node, path string, lines map[string]int, fields map[string]decodeFunc) error {
	if n.Kind != yaml.MappingNode {
		return fleetErr(n.Line, path, "want a mapping with keys %s", strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		fn, ok := fields[k.Value]
		if !ok {
			return fleetErr(k.Line, join(path, k.Value), "unknown field (want one of %s)",
				strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
		}
		if lines != nil {
			lines[k.Value] = k.Line
		}
		if err := fn(v, join(path, k.Value)); err != nil {
			return err
		}
	}
	return nil
}

// decodeMap walks a mapping with arbitrary keys (region names).
func decodeMap(n *yaml.Node, path string, each func(key string, n *yaml.Node, path string) error) error {
	if n.Kind != yaml.MappingNode {
		return fleetErr(n.Line, path, "want a mapping")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if err := each(k, n.Content[i+1], join(path, k)); err != nil {
			return err
		}
	}
	return nil
}

func decodeSeq(n *yaml.Node, path string, each func(n *yaml.Node, path string) error) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		return fleetErr(n.Line, path, "want a list")
	}
	for i, item := range n.Content {
		if err := each(item, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	return nil
}

// scalar decodes a leaf value into out, naming the field if it has the
// wrong type.
func scalar(out any) decodeFunc {
	return func(n *yaml.Node, path string) error {
		if err := n.Decode(out); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) && len(te.Errors) > 0 {
				err = errors.New(strings.TrimPrefix(te.Errors[0], fmt.Sprintf("line %d: ", n.Line)))
			}
			return &FleetError{Line: n.Line, Field: path, Err: err}
		}
		return nil
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func decodeRegion(n *yaml.Node, path string) (FleetRegion, error) {
	r := FleetRegion{pos: pos{line: n.Line, fields: map[string]int{}}}
	err := decodeMapping(n, path, r.fields, map[string]decodeFunc{
		"key_pairs": decodeKeyPairs(&r), "launch_templates": decodeLaunchTemplates(&r),
		"vpcs": func(n *yaml.Node, path string) error {
			return decodeSeq(n, path, func(n *yaml.Node, path string) error {
				v := FleetVPC{pos: pos{line: n.Line, fields: map[string]int{}}}
				err := decodeMapping(n, path, v.fields, map[string]decodeFunc{
					"id": scalar(&v.ID), "cidr": scalar(&v.CIDR), "default": scalar(&v.Default), "tags": scalar(&v.Tags),
				})
				r.VPCs = append(r.VPCs, v)
				return err
			})
		},
		"security_groups": func(n *yaml.Node, path string) error {
			return decodeSeq(n, path, func(n *yaml.Node, path string) error {
				g, err := decodeGroup(n, path)
				r.SecurityGroups = append(r.SecurityGroups, g)
				return err
			})
		},
		"instances": func(n *yaml.Node, path string) error {
			return decodeSeq(n, path, func(n *yaml.Node, path string) error {
				in := FleetInstance{pos: pos{line: n.Line, fields: map[string]int{}}}
				err := decodeMapping(n, path, in.fields, map[string]decodeFunc{
					"id": scalar(&in.ID), "vpc": scalar(&in.VPC), "subnet": scalar(&in.Subnet),
					"private_ip": scalar(&in.PrivateIP), "public_ip": scalar(&in.PublicIP),
					"security_groups": scalar(&in.SecurityGroups), "tags": scalar(&in.Tags),
					"state": scalar(&in.State), "type": scalar(&in.Type), "image": scalar(&in.Image),
					"host_keys": decodeHostKeys(&in), "agent": decodeAgent(&in),
					"key_name": scalar(&in.KeyName), "instance_profile": scalar(&in.InstanceProfile),
					"interfaces": decodeInterfaces(&in),
				})
				r.Instances = append(r.Instances, in)
				return err
			})
		},
	})
	return r, err
}

func decodeGroup(n *yaml.Node, path string) (FleetGroup, error) {
	g := FleetGroup{pos: pos{line: n.Line, fields: map[string]int{}}}
	err := decodeMapping(n, path, g.fields, map[string]decodeFunc{
		"id": scalar(&g.ID), "name": scalar(&g.Name), "vpc": scalar(&g.VPC),
		"description": scalar(&g.Description), "tags": scalar(&g.Tags),
		"rules": func(n *yaml.Node, path string) error {
			return decodeSeq(n, path, func(n *yaml.Node, path string) error {
				ru := FleetRule{pos: pos{line: n.Line, fields: map[string]int{}}}
				err := decodeMapping(n, path, ru.fields, map[string]decodeFunc{
					"id": scalar(&ru.ID), "protocol": scalar(&ru.Protocol),
					"from_port": scalar(&ru.FromPort), "to_port": scalar(&ru.ToPort),
					"cidr": scalar(&ru.CIDR), "description": scalar(&ru.Description), "tags": scalar(&ru.Tags),
					"source_group": scalar(&ru.SourceGroup), "prefix_list": scalar(&ru.PrefixList),
				})
				g.Rules = append(g.Rules, ru)
				return err
			})
		},
	})
	return g, err
}

// decodeAgent reads an instance's agent, in its short form (a status) or
// as a mapping.
func decodeAgent(in *FleetInstance) decodeFunc {
	return func(n *yaml.Node, path string) error {
		a := &FleetAgent{pos: pos{line: n.Line, fields: map[string]int{}}}
		in.Agent = a
		if n.Kind == yaml.ScalarNode {
			a.fields["status"] = n.Line
			return scalar(&a.Status)(n, path)
		}
		return decodeMapping(n, path, a.fields, map[string]decodeFunc{
			"status": scalar(&a.Status), "platform": scalar(&a.Platform), "version": scalar(&a.Version),
		})
	}
}
