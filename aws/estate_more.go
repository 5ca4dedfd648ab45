package aws

// The scan's reads of launch templates, trails and Session Manager's
// agents (see estate.go for the orchestrator). Each pages at the API's
// maximum and never makes a call per template or instance; errors name the
// refused call as IAM names it and wrap the SDK's, so that errors.As finds
// the smithy.APIError (UnauthorizedOperation, AccessDeniedException).

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/latchdev/latch"
)

// launchTemplatesAPI is the part of the EC2 client readLaunchTemplates calls.
type launchTemplatesAPI interface {
	DescribeLaunchTemplateVersions(context.Context, *ec2.DescribeLaunchTemplateVersionsInput, ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error)
}

// maxLaunchTemplateResults is DescribeLaunchTemplateVersions' largest page.
const maxLaunchTemplateResults = 200

// readLaunchTemplates reads the default and the latest version of every
// launch template in the region. DescribeLaunchTemplateVersions without a
// template ID or name, asking for $Default and $Latest, lists those
// versions of every template (a version that is both comes once), so the
// reads are ceil(versions/200) calls, not one per template. Older versions
// are not read: no instance launches from them unless a caller names the
// version, which a scan cannot see.
func readLaunchTemplates(ctx context.Context, c launchTemplatesAPI) ([]latch.LaunchTemplate, error) {
	p := ec2.NewDescribeLaunchTemplateVersionsPaginator(c, &ec2.DescribeLaunchTemplateVersionsInput{
		Versions:   []string{"$Default", "$Latest"},
		MaxResults: aws.Int32(maxLaunchTemplateResults),
	})
	var out []latch.LaunchTemplate
	seen := map[string]bool{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ec2:DescribeLaunchTemplateVersions: %w", err)
		}
		for _, v := range page.LaunchTemplateVersions {
			lt := latch.LaunchTemplate{
				ID: aws.ToString(v.LaunchTemplateId), Name: aws.ToString(v.LaunchTemplateName),
				Version: aws.ToInt64(v.VersionNumber), Default: aws.ToBool(v.DefaultVersion),
			}
			if d := v.LaunchTemplateData; d != nil {
				lt.KeyName = aws.ToString(d.KeyName)
			}
			// EC2 lists a version that is both default and latest once;
			// guard anyway, so that a finding is never doubled.
			k := fmt.Sprintf("%s/%d", lt.ID, lt.Version)
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, lt)
		}
	}
	return out, nil
}

// trailsAPI is the part of the CloudTrail client readTrails calls.
type trailsAPI interface {
	DescribeTrails(context.Context, *cloudtrail.DescribeTrailsInput, ...func(*cloudtrail.Options)) (*cloudtrail.DescribeTrailsOutput, error)
	GetEventSelectors(context.Context, *cloudtrail.GetEventSelectorsInput, ...func(*cloudtrail.Options)) (*cloudtrail.GetEventSelectorsOutput, error)
}

// readTrails reads the trails that apply to region, its own and other
// regions' multi-region trails (shadow trails), and each one's event
// selectors. GetEventSelectors takes one trail, so this makes one call per
// trail: an account has a handful (CloudTrail allows five per region), so
// this is not a call per resource that grows with the estate. Selectors
// are asked for by ARN, which finds a shadow trail from any region.
func readTrails(ctx context.Context, c trailsAPI, region string) ([]latch.Trail, error) {
	out, err := c.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{IncludeShadowTrails: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("cloudtrail:DescribeTrails in %s: %w", region, err)
	}
	var trails []latch.Trail
	for _, t := range out.TrailList {
		tr := latch.Trail{
			Name: aws.ToString(t.Name), ARN: aws.ToString(t.TrailARN), HomeRegion: aws.ToString(t.HomeRegion),
			MultiRegion: aws.ToBool(t.IsMultiRegionTrail),
		}
		ref := tr.ARN
		if ref == "" {
			ref = tr.Name
		}
		sel, err := c.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String(ref)})
		var gone *cttypes.TrailNotFoundException
		if errors.As(err, &gone) {
			continue // deleted since DescribeTrails: it logs nothing now
		}
		if err != nil {
			return nil, fmt.Errorf("cloudtrail:GetEventSelectors of trail %s in %s: %w", ref, region, err)
		}
		tr.ManagementEvents = logsManagementWrites(sel.EventSelectors, sel.AdvancedEventSelectors)
		trails = append(trails, tr)
	}
	return trails, nil
}

// logsManagementWrites reports whether selectors log management write
// events: a basic selector including management events whose
// ReadWriteType is All or WriteOnly, or an advanced selector on
// eventCategory = Management that does not keep read-only events alone.
// Narrowing by event source (eventSource, ExcludeManagementEventSources)
// is not judged: the sources it can exclude (KMS, RDS Data) are not EC2's.
func logsManagementWrites(basic []cttypes.EventSelector, advanced []cttypes.AdvancedEventSelector) bool {
	for _, s := range basic {
		if aws.ToBool(s.IncludeManagementEvents) && (s.ReadWriteType == cttypes.ReadWriteTypeAll || s.ReadWriteType == cttypes.ReadWriteTypeWriteOnly) {
			return true
		}
	}
	for _, a := range advanced {
		management, readOnly := false, false
		for _, f := range a.FieldSelectors {
			switch aws.ToString(f.Field) {
			case "eventCategory":
				management = slices.ContainsFunc(f.Equals, func(v string) bool { return strings.EqualFold(v, "Management") })
			case "readOnly":
				readOnly = slices.Contains(f.Equals, "true") || slices.Contains(f.NotEquals, "false")
			}
		}
		if management && !readOnly {
			return true
		}
	}
	return false
}

// ssmInfoAPI is the part of the Systems Manager client readSSM calls.
type ssmInfoAPI interface {
	DescribeInstanceInformation(context.Context, *ssm.DescribeInstanceInformationInput, ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
}

// maxInstanceInformationResults is DescribeInstanceInformation's largest page.
const maxInstanceInformationResults = 50

// readSSM reads the PingStatus of every EC2 instance that has a Session
// Manager agent, in pages of 50; an instance without an agent is absent.
// Managed nodes that are not EC2 instances (mi-…) are left out.
func readSSM(ctx context.Context, c ssmInfoAPI) (map[latch.InstanceID]string, error) {
	p := ssm.NewDescribeInstanceInformationPaginator(c, &ssm.DescribeInstanceInformationInput{
		MaxResults: aws.Int32(maxInstanceInformationResults),
	})
	out := map[latch.InstanceID]string{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ssm:DescribeInstanceInformation: %w", err)
		}
		for _, info := range page.InstanceInformationList {
			id := aws.ToString(info.InstanceId)
			if !strings.HasPrefix(id, "i-") {
				continue
			}
			out[latch.InstanceID(id)] = string(info.PingStatus)
		}
	}
	return out, nil
}
