package ec2sim_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/latchdev/latch/ec2sim"
)

const keysFleet = `
trails:
  - {name: org, home_region: us-west-2, multi_region: true}
  - {name: reads, home_region: us-east-1, read_write: ReadOnly}
  - {name: adv, home_region: us-east-1, advanced: true, read_write: WriteOnly}
  - {name: quiet, home_region: us-east-1, management_events: false}
regions:
  us-east-1:
    key_pairs:
      - name: deploy
        id: key-0123456789abcdef0
        public_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPXjuIwJBWRx3hMWxqpcf1GSVc2fzhLPLb/GRk8IJ/yT ops@example
      - name: made
    launch_templates:
      - name: web
        id: lt-0123456789abcdef0
        default_version: 1
        versions:
          - {key_name: deploy, image: ami-0123456789abcdef0, type: t3.micro, instance_profile: web}
          - {type: t3.small, instance_profile: "arn:aws:iam::123456789012:instance-profile/web2"}
    security_groups: [{name: box}]
    instances:
      - {id: i-0123456789abcdef0, security_groups: [box], key_name: deploy, instance_profile: web}
      - {id: i-0123456789abcdef1, security_groups: [box], key_name: deleted-long-ago, instance_profile: "arn:aws:iam::123456789012:instance-profile/db"}
      - {id: i-0123456789abcdef2, security_groups: [box]}
`

func TestFleetKeysTemplatesTrails(t *testing.T) {
	f, err := ec2sim.ParseFleet([]byte(keysFleet))
	if err != nil {
		t.Fatal(err)
	}
	sim := ec2sim.New(ec2sim.Options{})
	if err := sim.LoadFleet(f); err != nil {
		t.Fatal(err)
	}
	url := mustStart(t, sim)
	c := newClient(t, url, "us-east-1")
	ctx := t.Context()

	keys, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{IncludePublicKey: aws.Bool(true)})
	if err != nil || len(keys.KeyPairs) != 2 {
		t.Fatalf("key pairs = %+v, %v", keys, err)
	}
	if k := keys.KeyPairs[0]; aws.ToString(k.KeyPairId) != "key-0123456789abcdef0" || !strings.HasPrefix(aws.ToString(k.PublicKey), "ssh-ed25519 AAAAC3") {
		t.Errorf("deploy = %+v", k)
	}
	if k := keys.KeyPairs[1]; aws.ToString(k.KeyName) != "made" || !strings.HasPrefix(aws.ToString(k.PublicKey), "ssh-ed25519 ") {
		t.Errorf("made = %+v", k)
	}

	desc, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range desc.Reservations {
		in := r.Instances[0]
		arn := ""
		if in.IamInstanceProfile != nil {
			arn = aws.ToString(in.IamInstanceProfile.Arn)
		}
		got = append(got, aws.ToString(in.KeyName)+"|"+arn)
	}
	want := []string{"deploy|arn:aws:iam::123456789012:instance-profile/web", "deleted-long-ago|arn:aws:iam::123456789012:instance-profile/db", "|"}
	if !slices.Equal(got, want) {
		t.Errorf("instances = %q, want %q", got, want)
	}

	vs, err := c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String("web")})
	if err != nil || len(vs.LaunchTemplateVersions) != 2 {
		t.Fatalf("versions = %+v, %v", vs, err)
	}
	v1, v2 := vs.LaunchTemplateVersions[0], vs.LaunchTemplateVersions[1]
	if !aws.ToBool(v1.DefaultVersion) || aws.ToString(v1.LaunchTemplateData.KeyName) != "deploy" || aws.ToString(v1.LaunchTemplateData.IamInstanceProfile.Name) != "web" ||
		aws.ToBool(v2.DefaultVersion) || v2.LaunchTemplateData.KeyName != nil || aws.ToString(v2.LaunchTemplateData.IamInstanceProfile.Arn) == "" {
		t.Errorf("versions = %+v / %+v", v1.LaunchTemplateData, v2.LaunchTemplateData)
	}

	ct := cloudtrail.NewFromConfig(simConfig(t, url, "us-east-1"))
	trails, err := ct.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{})
	if err != nil || len(trails.TrailList) != 4 {
		t.Fatalf("trails = %+v, %v", trails, err)
	}
	var sels []string
	for _, tr := range trails.TrailList {
		s, err := ct.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: tr.TrailARN})
		if err != nil {
			t.Fatal(err)
		}
		line := aws.ToString(tr.Name) + "@" + aws.ToString(tr.HomeRegion) + ":"
		for _, e := range s.EventSelectors {
			line += fmt.Sprintf(" %s/%t", e.ReadWriteType, aws.ToBool(e.IncludeManagementEvents))
		}
		for _, a := range s.AdvancedEventSelectors {
			for _, f := range a.FieldSelectors {
				line += fmt.Sprintf(" %s=%s", aws.ToString(f.Field), strings.Join(f.Equals, ","))
			}
		}
		sels = append(sels, line)
	}
	wantSels := []string{"org@us-west-2: All/true", "reads@us-east-1: ReadOnly/true", "adv@us-east-1: eventCategory=Management readOnly=false", "quiet@us-east-1: All/false"}
	if !slices.Equal(sels, wantSels) {
		t.Errorf("trails:\n%s\nwant\n%s", strings.Join(sels, "\n"), strings.Join(wantSels, "\n"))
	}

	// Loading it again clashes, and changes nothing.
	err = sim.LoadFleet(ec2sim.Fleet{Trails: f.Trails[:1]})
	var fe *ec2sim.FleetError
	if !errors.As(err, &fe) || fe.Field != "trails[0].name" {
		t.Errorf("second load = %v, want the trail name named", err)
	}
	err = sim.LoadFleet(ec2sim.Fleet{Regions: map[string]ec2sim.FleetRegion{"us-east-1": {KeyPairs: []ec2sim.FleetKeyPair{{Name: "deploy"}}}}})
	if !errors.As(err, &fe) || fe.Field != "regions.us-east-1.key_pairs[0].name" {
		t.Errorf("second key pair = %v, want its name named", err)
	}
}

func TestFleetKeysErrors(t *testing.T) {
	for _, tt := range []struct{ yaml, field, msg string }{
		{"regions: {us-east-1: {key_pairs: [{name: a}, {name: a}]}}", "regions.us-east-1.key_pairs[1].name", "duplicate"},
		{"regions: {us-east-1: {key_pairs: [{name: a, public_key: ssh-dss AAAA}]}}", "regions.us-east-1.key_pairs[0].public_key", "OpenSSH"},
		{"regions: {us-east-1: {key_pairs: [{name: a, id: k-1}]}}", "regions.us-east-1.key_pairs[0].id", "key-"},
		{"regions: {us-east-1: {launch_templates: [{name: x}]}}", "regions.us-east-1.launch_templates[0].name", "launch template name"},
		{"regions: {us-east-1: {launch_templates: [{name: web}]}}", "regions.us-east-1.launch_templates[0].versions", "at least one"},
		{"regions: {us-east-1: {launch_templates: [{name: web, default_version: 3, versions: [{type: t3.micro}]}]}}", "regions.us-east-1.launch_templates[0].default_version", "version 3"},
		{"regions: {us-east-1: {launch_templates: [{name: web, versions: [{security_groups: [web]}]}]}}", "regions.us-east-1.launch_templates[0].versions[0].security_groups", "IDs"},
		{"regions: {us-east-1: {launch_templates: [{name: web, versions: [{kee_name: a}]}]}}", "regions.us-east-1.launch_templates[0].versions[0].kee_name", "unknown field"},
		{"regions: {us-east-1: {security_groups: [{name: g}], instances: [{security_groups: [g], instance_profile: 'arn:aws:iam::1:role/x'}]}}", "regions.us-east-1.instances[0].instance_profile", "ARN"},
		{"trails: [{name: tr1, home_region: us-east-1, read_write: Both}]", "trails[0].read_write", "Both"},
		{"trails: [{name: tr1}]", "trails[0].home_region", "home region"},
		{"trails: [{name: tr1, home_region: us-east-1}, {name: tr1, home_region: eu-west-1}]", "trails[1].name", "duplicate"},
	} {
		_, err := ec2sim.ParseFleet([]byte(tt.yaml))
		var fe *ec2sim.FleetError
		if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s:\n  error %v\n  want field %s, mentioning %q", tt.yaml, err, tt.field, tt.msg)
		}
	}
}
