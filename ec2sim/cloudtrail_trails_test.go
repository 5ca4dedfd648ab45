package ec2sim_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/latchdev/latch/ec2sim"
)

func ctClients(t *testing.T, sim *ec2sim.Server) (east, west *cloudtrail.Client) {
	t.Helper()
	url := mustStart(t, sim)
	return cloudtrail.NewFromConfig(simConfig(t, url, "us-east-1")), cloudtrail.NewFromConfig(simConfig(t, url, "us-west-2"))
}

// A multi-region trail shows in every region, as a shadow trail outside
// its home; a single-region trail only at home. New trails log all
// management events; PutEventSelectors replaces them, basic or advanced.
func TestTrails(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	east, west := ctClients(t, sim)
	ctx := t.Context()
	mk := func(c *cloudtrail.Client, name string, multi bool) *cloudtrail.CreateTrailOutput {
		t.Helper()
		out, err := c.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String(name), S3BucketName: aws.String("logs"), IsMultiRegionTrail: aws.Bool(multi)})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	org := mk(west, "org", true)
	if aws.ToString(org.TrailARN) != "arn:aws:cloudtrail:us-west-2:123456789012:trail/org" || !aws.ToBool(org.IsMultiRegionTrail) || !aws.ToBool(org.IncludeGlobalServiceEvents) {
		t.Errorf("created %+v", org)
	}
	mk(east, "local", false)
	mk(west, "west-only", false)
	_, err := east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("local"), S3BucketName: aws.String("logs")})
	wantCode(t, err, "TrailAlreadyExistsException")
	_, err = east.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String("-x"), S3BucketName: aws.String("logs")})
	wantCode(t, err, "InvalidTrailNameException")

	names := func(c *cloudtrail.Client, in *cloudtrail.DescribeTrailsInput) []string {
		t.Helper()
		out, err := c.DescribeTrails(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tr := range out.TrailList {
			got = append(got, aws.ToString(tr.Name)+"@"+aws.ToString(tr.HomeRegion))
		}
		slices.Sort(got)
		return got
	}
	if got := fmt.Sprint(names(east, &cloudtrail.DescribeTrailsInput{})); got != "[local@us-east-1 org@us-west-2]" {
		t.Errorf("us-east-1 trails = %s", got)
	}
	if got := fmt.Sprint(names(east, &cloudtrail.DescribeTrailsInput{IncludeShadowTrails: aws.Bool(false)})); got != "[local@us-east-1]" {
		t.Errorf("us-east-1 trails without shadows = %s", got)
	}
	if got := fmt.Sprint(names(west, &cloudtrail.DescribeTrailsInput{TrailNameList: []string{"org", "nope"}})); got != "[org@us-west-2]" {
		t.Errorf("us-west-2 trails named = %s", got)
	}

	sel, err := east.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("local")})
	if err != nil || len(sel.EventSelectors) != 1 || sel.EventSelectors[0].ReadWriteType != cttypes.ReadWriteTypeAll || !aws.ToBool(sel.EventSelectors[0].IncludeManagementEvents) {
		t.Errorf("default selectors = %+v, %v", sel, err)
	}
	// A shadow trail's selectors, by ARN from another region.
	if _, err := east.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: org.TrailARN}); err != nil {
		t.Errorf("shadow trail's selectors by ARN: %v", err)
	}
	_, err = east.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("west-only")})
	wantCode(t, err, "TrailNotFoundException")

	// Only the home region may change a trail.
	_, err = east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: org.TrailARN,
		EventSelectors: []cttypes.EventSelector{{ReadWriteType: cttypes.ReadWriteTypeReadOnly}}})
	wantCode(t, err, "InvalidHomeRegionException")
	put, err := east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("local"),
		EventSelectors: []cttypes.EventSelector{{ReadWriteType: cttypes.ReadWriteTypeReadOnly, IncludeManagementEvents: aws.Bool(true)}}})
	if err != nil || len(put.EventSelectors) != 1 || put.EventSelectors[0].ReadWriteType != cttypes.ReadWriteTypeReadOnly {
		t.Errorf("put basic = %+v, %v", put, err)
	}
	adv := []cttypes.AdvancedEventSelector{{Name: aws.String("mgmt"), FieldSelectors: []cttypes.AdvancedFieldSelector{
		{Field: aws.String("eventCategory"), Equals: []string{"Management"}},
		{Field: aws.String("readOnly"), Equals: []string{"false"}},
	}}}
	if _, err := east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("local"), AdvancedEventSelectors: adv}); err != nil {
		t.Fatal(err)
	}
	sel, err = east.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("local")})
	if err != nil || len(sel.EventSelectors) != 0 || len(sel.AdvancedEventSelectors) != 1 || len(sel.AdvancedEventSelectors[0].FieldSelectors) != 2 {
		t.Errorf("advanced selectors = %+v, %v", sel, err)
	}
	_, err = east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("local"), AdvancedEventSelectors: adv,
		EventSelectors: []cttypes.EventSelector{{}}})
	wantCode(t, err, "InvalidParameterCombinationException")
	_, err = east.PutEventSelectors(ctx, &cloudtrail.PutEventSelectorsInput{TrailName: aws.String("local"),
		AdvancedEventSelectors: []cttypes.AdvancedEventSelector{{FieldSelectors: []cttypes.AdvancedFieldSelector{{Field: aws.String("colour"), Equals: []string{"x"}}}}}})
	wantCode(t, err, "InvalidEventSelectorsException")

	_, err = east.DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: org.TrailARN})
	wantCode(t, err, "InvalidHomeRegionException")
	if _, err := west.DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: aws.String("org")}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(names(east, &cloudtrail.DescribeTrailsInput{})); got != "[local@us-east-1]" {
		t.Errorf("after delete, us-east-1 trails = %s", got)
	}
	_, err = west.DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: aws.String("org")})
	wantCode(t, err, "TrailNotFoundException")
}

// Deny refuses CloudTrail's and SSM's calls with AccessDeniedException,
// EC2's new ones with UnauthorizedOperation.
func TestDenyNewAPIs(t *testing.T) {
	sim := ec2sim.New(ec2sim.Options{})
	east, _ := ctClients(t, sim)
	c := newClient(t, mustStart(t, sim), "us-east-1")
	ctx := t.Context()
	sim.Deny("cloudtrail:DescribeTrails", "ec2:DescribeKeyPairs", "ec2:DescribeLaunchTemplateVersions")
	_, err := east.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{})
	wantCode(t, err, "AccessDeniedException")
	if _, err := east.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("nope")}); errorCode(err) != "TrailNotFoundException" {
		t.Errorf("GetEventSelectors, not denied: %v", err)
	}
	_, err = c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	wantCode(t, err, "UnauthorizedOperation")
	_, err = c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{Versions: []string{"$Latest"}})
	wantCode(t, err, "UnauthorizedOperation")
	sim.Allow("cloudtrail:DescribeTrails")
	if _, err := east.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{}); err != nil {
		t.Errorf("allowed again: %v", err)
	}
}
