package aws

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
)

// goneTrailAPI lists two trails, one of which is deleted before its
// selectors are read: a race the simulator cannot stage between two calls.
type goneTrailAPI struct{}

func (goneTrailAPI) DescribeTrails(context.Context, *cloudtrail.DescribeTrailsInput, ...func(*cloudtrail.Options)) (*cloudtrail.DescribeTrailsOutput, error) {
	return &cloudtrail.DescribeTrailsOutput{TrailList: []cttypes.Trail{
		{Name: aws.String("gone"), TrailARN: aws.String("arn:aws:cloudtrail:us-east-1:123456789012:trail/gone"), HomeRegion: aws.String("us-east-1")},
		{Name: aws.String("kept"), TrailARN: aws.String("arn:aws:cloudtrail:us-east-1:123456789012:trail/kept"), HomeRegion: aws.String("us-east-1")},
	}}, nil
}

func (goneTrailAPI) GetEventSelectors(_ context.Context, in *cloudtrail.GetEventSelectorsInput, _ ...func(*cloudtrail.Options)) (*cloudtrail.GetEventSelectorsOutput, error) {
	if aws.ToString(in.TrailName) == "arn:aws:cloudtrail:us-east-1:123456789012:trail/gone" {
		return nil, &cttypes.TrailNotFoundException{Message: aws.String("Unknown trail")}
	}
	return &cloudtrail.GetEventSelectorsOutput{EventSelectors: []cttypes.EventSelector{
		{ReadWriteType: cttypes.ReadWriteTypeAll, IncludeManagementEvents: aws.Bool(true)}}}, nil
}

// A trail deleted between DescribeTrails and GetEventSelectors is left
// out; the scan is not failed for it.
func TestReadTrailsSkipsADeletedTrail(t *testing.T) {
	got, err := readTrails(t.Context(), goneTrailAPI{}, "us-east-1")
	if err != nil || len(got) != 1 || got[0].Name != "kept" || !got[0].ManagementEvents {
		t.Errorf("read %+v, %v; want the kept trail only", got, err)
	}
}
