package aws_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

// template creates a launch template (deleted at cleanup) whose version 1
// launches with key ("" for none), and returns its ID.
func template(t *testing.T, env *awstest.Env, key string) string {
	t.Helper()
	data := &types.RequestLaunchTemplateData{ImageId: aws.String(awstest.TestImage), InstanceType: types.InstanceTypeT3Micro}
	if key != "" {
		data.KeyName = aws.String(key)
	}
	out, err := env.EC2.CreateLaunchTemplate(t.Context(), &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(awstest.Unique("latch-test")), LaunchTemplateData: data})
	if err != nil {
		t.Fatalf("create launch template: %v", err)
	}
	id := aws.ToString(out.LaunchTemplate.LaunchTemplateId)
	t.Cleanup(func() {
		_, _ = env.EC2.DeleteLaunchTemplate(t.Context(), &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(id)})
	})
	return id
}

func addVersion(t *testing.T, env *awstest.Env, id, key string, makeDefault bool) {
	t.Helper()
	ctx := t.Context()
	out, err := env.EC2.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(id),
		SourceVersion: aws.String("1"), LaunchTemplateData: &types.RequestLaunchTemplateData{KeyName: aws.String(key)}})
	if err != nil {
		t.Fatalf("create launch template version: %v", err)
	}
	if makeDefault {
		v := fmt.Sprint(aws.ToInt64(out.LaunchTemplateVersion.VersionNumber))
		if _, err := env.EC2.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: aws.String(id), DefaultVersion: aws.String(v)}); err != nil {
			t.Fatalf("set default version: %v", err)
		}
	}
}

// The default and the latest version of every template are read, each
// once, with the key pair it names; older versions are not.
func TestReadLaunchTemplates(t *testing.T) {
	env := awstest.New(t)
	withKey := template(t, env, "deploy")
	newerKey := template(t, env, "")
	addVersion(t, env, newerKey, "ops", false) // latest names a key, default does not
	movedDefault := template(t, env, "old")
	addVersion(t, env, movedDefault, "", true) // default and latest: version 2; version 1's key is history
	// An empty key name in the data stays a key name of ""; EC2 keeps it so.

	got, err := latchaws.ReadLaunchTemplates(t.Context(), env.EC2)
	if err != nil {
		t.Fatal(err)
	}
	mine := map[string]bool{withKey: true, newerKey: true, movedDefault: true}
	var lines []string
	for _, lt := range got {
		if mine[lt.ID] {
			lines = append(lines, fmt.Sprintf("%s v%d default=%t key=%q", lt.ID, lt.Version, lt.Default, lt.KeyName))
		}
	}
	slices.Sort(lines)
	want := []string{
		fmt.Sprintf("%s v1 default=true key=%q", withKey, "deploy"),
		fmt.Sprintf("%s v1 default=true key=%q", newerKey, ""),
		fmt.Sprintf("%s v2 default=false key=%q", newerKey, "ops"),
		fmt.Sprintf("%s v2 default=true key=%q", movedDefault, ""),
	}
	slices.Sort(want)
	if !slices.Equal(lines, want) {
		t.Errorf("read\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// socketless is env's configuration calling sim without a socket, for
// tests that count calls: over TCP the SDK now and then retries a call
// whose connection it closed itself while reading a large answer (the
// smithy-go race ec2sim's helpers_test.go describes), which would count
// twice.
func socketless(env *awstest.Env, sim *ec2sim.Server) aws.Config {
	cfg := env.Config()
	cfg.HTTPClient = sim.Client()
	return cfg
}

// 450 templates, 50 with a newer version, are read in ceil(500/200) = 3
// calls, not one per template.
func TestReadLaunchTemplatesPages(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{})
	sim := env.RequireSim(t, "counts the simulator's calls")
	const n = 450
	keyed := 0
	for i := range n {
		key := ""
		if i%3 == 0 {
			key, keyed = "deploy", keyed+1
		}
		id := template(t, env, key)
		if i%9 == 0 {
			addVersion(t, env, id, "ops", false)
		}
	}
	got, err := latchaws.ReadLaunchTemplates(t.Context(), ec2.NewFromConfig(socketless(env, sim)))
	if err != nil {
		t.Fatal(err)
	}
	var defaults, withKey int
	for _, lt := range got {
		if lt.Default {
			defaults++
			if lt.KeyName == "deploy" {
				withKey++
			}
		}
	}
	if len(got) != n+n/9 || defaults != n || withKey != keyed {
		t.Errorf("read %d versions, %d default, %d default with a key; want %d, %d, %d", len(got), defaults, withKey, n+n/9, n, keyed)
	}
	if calls := sim.Calls("DescribeLaunchTemplateVersions"); calls != 3 {
		t.Errorf("%d calls to DescribeLaunchTemplateVersions, want 3", calls)
	}
	if calls := sim.Calls("DescribeLaunchTemplates"); calls != 0 {
		t.Errorf("%d calls to DescribeLaunchTemplates, want none", calls)
	}
}

// trail creates a trail in c's region (deleted at cleanup) and sets its
// selectors: basic ones, advanced ones, or (both nil) CloudTrail's default.
func trail(t *testing.T, c *cloudtrail.Client, multi bool, basic []cttypes.EventSelector, advanced []cttypes.AdvancedEventSelector) string {
	t.Helper()
	ctx := t.Context()
	name := awstest.Unique("latch-test")
	if _, err := c.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String(name), S3BucketName: aws.String("latch-test-trails"),
		IsMultiRegionTrail: aws.Bool(multi)}); err != nil {
		t.Fatalf("create trail: %v", err)
	}
	t.Cleanup(func() { _, _ = c.DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: aws.String(name)}) })
	if basic != nil || advanced != nil {
		if _, err := c.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String(name),
			EventSelectors: basic, AdvancedEventSelectors: advanced}); err != nil {
			t.Fatalf("put event selectors: %v", err)
		}
	}
	return name
}

func ctClient(env *awstest.Env, region string) *cloudtrail.Client {
	cfg := env.Config()
	cfg.Region = region
	return cloudtrail.NewFromConfig(cfg)
}

func advanced(fields ...string) []cttypes.AdvancedEventSelector {
	var fs []cttypes.AdvancedFieldSelector
	for i := 0; i+1 < len(fields); i += 2 {
		fs = append(fs, cttypes.AdvancedFieldSelector{Field: aws.String(fields[i]), Equals: []string{fields[i+1]}})
	}
	return []cttypes.AdvancedEventSelector{{Name: aws.String("latch-test"), FieldSelectors: fs}}
}

// Trails that log management writes are told from those that do not,
// through basic and advanced selectors, and another region's multi-region
// trail counts, as a shadow trail.
func TestReadTrails(t *testing.T) {
	env := awstest.New(t)
	east, west := ctClient(env, awstest.Region), ctClient(env, "us-west-2")
	want := map[string]bool{
		trail(t, west, true, nil, nil):  true, // shadow, default selectors
		trail(t, east, false, nil, nil): true,
		trail(t, east, false, []cttypes.EventSelector{{ReadWriteType: cttypes.ReadWriteTypeReadOnly, IncludeManagementEvents: aws.Bool(true)}}, nil):  false,
		trail(t, east, false, []cttypes.EventSelector{{ReadWriteType: cttypes.ReadWriteTypeWriteOnly, IncludeManagementEvents: aws.Bool(true)}}, nil): true,
		trail(t, east, false, []cttypes.EventSelector{{ReadWriteType: cttypes.ReadWriteTypeAll, IncludeManagementEvents: aws.Bool(false),
			DataResources: []cttypes.DataResource{{Type: aws.String("AWS::S3::Object"), Values: []string{"arn:aws:s3"}}}}}, nil): false,
		trail(t, east, false, nil, advanced("eventCategory", "Management")):                                true,
		trail(t, east, false, nil, advanced("eventCategory", "Management", "readOnly", "false")):           true,
		trail(t, east, false, nil, advanced("eventCategory", "Management", "readOnly", "true")):            false,
		trail(t, east, false, nil, advanced("eventCategory", "Data", "resources.type", "AWS::S3::Object")): false,
	}
	westOnly := trail(t, west, false, nil, nil)

	got, err := latchaws.ReadTrails(t.Context(), east, awstest.Region)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tr := range got {
		if tr.Name == westOnly {
			t.Errorf("us-west-2's single-region trail %s read in us-east-1", tr.Name)
		}
		w, ok := want[tr.Name]
		if !ok {
			continue // another test's, on a shared endpoint
		}
		seen[tr.Name] = true
		if tr.ManagementEvents != w {
			t.Errorf("trail %s (home %s): ManagementEvents = %t, want %t", tr.Name, tr.HomeRegion, tr.ManagementEvents, w)
		}
		shadow := tr.HomeRegion == "us-west-2"
		if shadow != tr.MultiRegion || !strings.HasSuffix(tr.ARN, ":trail/"+tr.Name) {
			t.Errorf("trail %+v: want only the us-west-2 trail multi-region, and its ARN", tr)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("read %d of the %d trails that apply to us-east-1", len(seen), len(want))
	}
}

// Session Manager's agents are read 50 at a time; an instance without one
// is absent.
func TestReadSSM(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{})
	sim := env.RequireSim(t, "instances with SSM agents come from a fleet")
	env.Identity(t, "AKIDLATCHTEST", "secret", "arn:aws:iam::123456789012:user/latch-server")
	statuses := []string{"online", "offline", "inactive"}
	want := map[string]string{"online": "Online", "offline": "ConnectionLost", "inactive": "Inactive"}
	fleet := ec2sim.FleetRegion{SecurityGroups: []ec2sim.FleetGroup{{Name: "box"}}}
	const n = 62
	for i := range n {
		in := ec2sim.FleetInstance{ID: fmt.Sprintf("i-%017x", i+1), SecurityGroups: []string{"box"}}
		if i < 60 {
			in.Agent = &ec2sim.FleetAgent{Status: statuses[i%3]}
		}
		fleet.Instances = append(fleet.Instances, in)
	}
	if err := sim.LoadFleet(ec2sim.Fleet{Regions: map[string]ec2sim.FleetRegion{awstest.Region: fleet}}); err != nil {
		t.Fatal(err)
	}
	got, err := latchaws.ReadSSM(t.Context(), ssm.NewFromConfig(socketless(env, sim)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 60 {
		t.Errorf("read %d agents, want 60", len(got))
	}
	for i := range n {
		id := latch.InstanceID(fmt.Sprintf("i-%017x", i+1))
		w := ""
		if i < 60 {
			w = want[statuses[i%3]]
		}
		if got[id] != w {
			t.Errorf("%s: %q, want %q", id, got[id], w)
		}
	}
	if calls := sim.Calls("DescribeInstanceInformation"); calls != 2 {
		t.Errorf("%d calls to DescribeInstanceInformation, want 2 (pages of 50)", calls)
	}
}

// A refused read is an error the orchestrator can classify: errors.As
// finds the smithy.APIError with AWS's code, and the message names the
// refused call as IAM names it.
func TestRefusedReadsAreClassifiable(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{})
	sim := env.RequireSim(t, "Deny refuses APIs, as a read-only role's policy would")
	env.Identity(t, "AKIDLATCHTEST", "secret", "arn:aws:iam::123456789012:user/latch-server")
	ctx := t.Context()
	east := ctClient(env, awstest.Region)
	trail(t, east, false, nil, nil)

	check := func(name string, err error, code, api string) {
		t.Helper()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != code || !strings.Contains(err.Error(), api) {
			t.Errorf("%s: %v; want an APIError %s naming %s", name, err, code, api)
		}
	}
	sim.Deny("ec2:DescribeLaunchTemplateVersions", "cloudtrail:GetEventSelectors", "ssm:DescribeInstanceInformation")
	_, err := latchaws.ReadLaunchTemplates(ctx, env.EC2)
	check("launch templates", err, "UnauthorizedOperation", "ec2:DescribeLaunchTemplateVersions")
	_, err = latchaws.ReadTrails(ctx, east, awstest.Region)
	check("event selectors", err, "AccessDeniedException", "cloudtrail:GetEventSelectors")
	_, err = latchaws.ReadSSM(ctx, ssm.NewFromConfig(env.Config()))
	check("ssm", err, "AccessDeniedException", "ssm:DescribeInstanceInformation")
	sim.Deny("cloudtrail:DescribeTrails")
	_, err = latchaws.ReadTrails(ctx, east, awstest.Region)
	check("trails", err, "AccessDeniedException", "cloudtrail:DescribeTrails")
	// A refusal is not retried: it is one call, then the error.
	if calls := sim.Calls("DescribeTrails"); calls != 2 {
		t.Errorf("%d calls to DescribeTrails, want 2 (one allowed, one refused)", calls)
	}
}
