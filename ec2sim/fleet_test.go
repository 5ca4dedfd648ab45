package ec2sim_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/latchdev/latch/ec2sim"
)

func TestParseFleet_Errors(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		field string
		line  int
		msg   string
	}{
		{name: "unknown top-level key", yaml: "regoins: {}\n", field: "regoins", line: 1, msg: "unknown field"},
		{name: "misspelt instance field", yaml: `
regions:
  us-east-1:
    security_groups: [{name: g}]
    instances:
      - security_groups: [g]
        privte_ip: 10.0.0.1
`, field: "regions.us-east-1.instances[0].privte_ip", line: 7, msg: "unknown field"},
		{name: "wrong type", yaml: `
regions:
  us-east-1:
    security_groups:
      - name: g
        rules:
          - {protocol: tcp, from_port: ssh, to_port: 22, cidr: 10.0.0.0/8}
`, field: "regions.us-east-1.security_groups[0].rules[0].from_port", line: 7, msg: "ssh"},
		{name: "unknown group", yaml: `
regions:
  us-east-1:
    security_groups: [{name: web}]
    instances:
      - id: i-0123456789abcdef0
        security_groups: [web, sg-0123456789abcdef0]
`, field: "regions.us-east-1.instances[0].security_groups[1]", line: 7, msg: "sg-0123456789abcdef0"},
		{name: "bad CIDR", yaml: `
regions:
  us-east-1:
    security_groups:
      - name: g
        rules:
          - protocol: tcp
            from_port: 22
            to_port: 22
            cidr: 10.0.0.0/33
`, field: "regions.us-east-1.security_groups[0].rules[0].cidr", line: 10, msg: "10.0.0.0/33"},
		{name: "bad group ID", yaml: `
regions:
  us-east-1:
    security_groups:
      - id: sg-123
        name: g
`, field: "regions.us-east-1.security_groups[0].id", line: 5, msg: "sg-123"},
		{name: "duplicate ID", yaml: `
regions:
  us-east-1:
    security_groups:
      - {id: sg-0123456789abcdef0, name: a}
      - {id: sg-0123456789abcdef0, name: b}
`, field: "regions.us-east-1.security_groups[1].id", line: 6, msg: "duplicate"},
		{name: "address outside VPC", yaml: `
regions:
  us-east-1:
    vpcs: [{id: vpc-0123456789abcdef0, cidr: 10.0.0.0/16, default: true}]
    security_groups: [{name: g}]
    instances:
      - security_groups: [g]
        private_ip: 10.1.0.1
`, field: "regions.us-east-1.instances[0].private_ip", line: 8, msg: "outside"},
		{name: "bad public address", yaml: `
regions:
  us-east-1:
    security_groups: [{name: g}]
    instances:
      - security_groups: [g]
        public_ip: 203.0.113.300
`, field: "regions.us-east-1.instances[0].public_ip", line: 7, msg: "not an IPv4 address"},
		{name: "IPv6 public address", yaml: `
regions:
  us-east-1:
    security_groups: [{name: g}]
    instances:
      - {security_groups: [g], public_ip: "2001:db8::1"}
`, field: "regions.us-east-1.instances[0].public_ip", line: 6, msg: "not an IPv4 address"},
		{name: "duplicate public address", yaml: `
regions:
  us-east-1:
    security_groups: [{name: g}]
    instances:
      - {security_groups: [g], public_ip: 127.0.0.1}
      - security_groups: [g]
        state: stopped
        public_ip: 127.0.0.1
`, field: "regions.us-east-1.instances[1].public_ip", line: 9, msg: "instances[0]"},
		{name: "unknown VPC", yaml: `
regions:
  us-east-1:
    security_groups: [{name: g, vpc: vpc-0123456789abcdef0}]
`, field: "regions.us-east-1.security_groups[0].vpc", line: 4, msg: "vpc-0123456789abcdef0"},
		{name: "syntax", yaml: "regions: [\n", msg: "line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ec2sim.ParseFleet([]byte(tt.yaml))
			var fe *ec2sim.FleetError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *FleetError", err)
			}
			if fe.Field != tt.field || (tt.line != 0 && fe.Line != tt.line) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q (field %q, line %d); want field %q, line %d, mentioning %q",
					err, fe.Field, fe.Line, tt.field, tt.line, tt.msg)
			}
		})
	}
}

func TestParseFleet_Defaults(t *testing.T) {
	f, err := ec2sim.ParseFleet([]byte(`
regions:
  eu-west-1:
    security_groups:
      - name: jit
        tags: {latch:managed: true}
        rules:
          - {protocol: "6", from_port: 22, to_port: 22, cidr: 192.0.2.9/24}
    instances:
      - security_groups: [jit]
        tags: {Name: a}
      - security_groups: [jit]
`))
	if err != nil {
		t.Fatal(err)
	}
	sim := ec2sim.New(ec2sim.Options{})
	if err := sim.LoadFleet(f); err != nil {
		t.Fatal(err)
	}
	rules := sim.Rules("eu-west-1", "")
	if len(rules) != 1 || rules[0].Protocol != "tcp" || rules[0].CIDR != "192.0.2.0/24" {
		t.Errorf("rules = %+v, want the one rule, canonical", rules)
	}
	c := newClient(t, mustStart(t, sim), "eu-west-1")
	out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	ips := map[string]bool{}
	for _, id := range instanceIDs(out) {
		if !strings.HasPrefix(id, "i-") {
			t.Errorf("generated ID %q", id)
		}
	}
	for _, r := range out.Reservations {
		in := r.Instances[0]
		ip := aws.ToString(in.PrivateIpAddress)
		if !strings.HasPrefix(ip, "172.31.") || ips[ip] {
			t.Errorf("address %s: want a distinct one in the default VPC 172.31.0.0/16", ip)
		}
		ips[ip] = true
	}
	g, err := c.DescribeSecurityGroups(t.Context(), &ec2.DescribeSecurityGroupsInput{GroupNames: []string{"jit"}})
	if err != nil || tagMap(g.SecurityGroups[0].Tags)["latch:managed"] != "true" {
		t.Errorf("group jit = %+v, %v; want tag latch:managed=true", g, err)
	}
}

func TestDemoFleet(t *testing.T) {
	f := ec2sim.DemoFleet()
	reg, ok := f.Regions[ec2sim.DemoRegion]
	if !ok || len(f.Regions) != 1 {
		t.Fatalf("regions %v, want only %s", f.Regions, ec2sim.DemoRegion)
	}
	managed := map[string]string{}
	for _, g := range reg.SecurityGroups {
		if g.Tags["latch:managed"] == "true" {
			managed[g.Name] = g.ID
		}
	}
	if managed["web-latch"] != ec2sim.DemoWebLatchGroup || managed["db-latch"] != ec2sim.DemoDBLatchGroup || len(managed) != 2 {
		t.Errorf("managed groups %v", managed)
	}
	if _, err := ec2sim.ParseFleet(ec2sim.DemoFleetYAML()); err != nil {
		t.Errorf("demo YAML: %v", err)
	}

	sim := ec2sim.New(ec2sim.Options{})
	if err := sim.LoadFleet(f); err != nil {
		t.Fatal(err)
	}
	// A second load reuses every ID and changes nothing.
	err := sim.LoadFleet(ec2sim.DemoFleet())
	var fe *ec2sim.FleetError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "already") {
		t.Errorf("second load = %v, want a FleetError saying the IDs exist", err)
	}
	if n := len(sim.Rules(ec2sim.DemoRegion, "")); n != 3 {
		t.Errorf("%d rules, want the demo's 3", n)
	}
}

func TestLoadFleet_RuleLimit(t *testing.T) {
	g := ec2sim.FleetGroup{Name: "g"}
	for _, cidr := range []string{"192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32"} {
		g.Rules = append(g.Rules, ec2sim.FleetRule{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: cidr})
	}
	sim := ec2sim.New(ec2sim.Options{RuleLimit: 2})
	err := sim.LoadFleet(ec2sim.Fleet{Regions: map[string]ec2sim.FleetRegion{"us-east-1": {SecurityGroups: []ec2sim.FleetGroup{g}}}})
	var fe *ec2sim.FleetError
	if !errors.As(err, &fe) || fe.Field != "regions.us-east-1.security_groups[0].rules" {
		t.Errorf("err = %v, want the rule limit, naming the rules", err)
	}
}

func TestLoadFleet_PublicIP(t *testing.T) {
	fleet := func(region, group string) ec2sim.Fleet {
		return ec2sim.Fleet{Regions: map[string]ec2sim.FleetRegion{region: {
			SecurityGroups: []ec2sim.FleetGroup{{Name: group}},
			Instances:      []ec2sim.FleetInstance{{SecurityGroups: []string{group}, PublicIP: "127.0.0.1"}},
		}}}
	}
	sim := ec2sim.New(ec2sim.Options{})
	if err := sim.LoadFleet(fleet("us-east-1", "g")); err != nil {
		t.Fatal(err)
	}
	// A later fleet may not reuse an address an instance already has…
	err := sim.LoadFleet(fleet("us-east-1", "h"))
	var fe *ec2sim.FleetError
	if !errors.As(err, &fe) || fe.Field != "regions.us-east-1.instances[0].public_ip" || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("err = %v, want the address taken, naming public_ip", err)
	}
	// …but another region's addresses are its own.
	if err := sim.LoadFleet(fleet("eu-west-1", "g")); err != nil {
		t.Errorf("same address in another region: %v", err)
	}
}
