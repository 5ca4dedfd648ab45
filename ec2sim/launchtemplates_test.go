package ec2sim_test

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch/ec2sim"
)

func TestLaunchTemplateVersions(t *testing.T) {
	_, c := bareSim(t, ec2sim.Options{})
	ctx := t.Context()
	created, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("web"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{
			KeyName: aws.String("deploy"), ImageId: aws.String("ami-0123456789abcdef0"), InstanceType: types.InstanceTypeT3Micro,
			SecurityGroupIds:   []string{ec2sim.DemoWebLatchGroup},
			IamInstanceProfile: &types.LaunchTemplateIamInstanceProfileSpecificationRequest{Name: aws.String("web")},
			TagSpecifications: []types.LaunchTemplateTagSpecificationRequest{{ResourceType: types.ResourceTypeInstance,
				Tags: []types.Tag{{Key: aws.String("app"), Value: aws.String("web")}}}},
		},
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeLaunchTemplate, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("web")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	lt := created.LaunchTemplate
	id := aws.ToString(lt.LaunchTemplateId)
	if aws.ToInt64(lt.DefaultVersionNumber) != 1 || aws.ToInt64(lt.LatestVersionNumber) != 1 || tagMap(lt.Tags)["team"] != "web" {
		t.Errorf("created %+v", lt)
	}
	_, err = c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("web"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-0123456789abcdef0")}})
	wantCode(t, err, "InvalidLaunchTemplateName.AlreadyExistsException")
	_, err = c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("a b"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-0123456789abcdef0")}})
	wantCode(t, err, "InvalidLaunchTemplateName.MalformedException")

	// Version 2 from version 1, dropping the key pair's name only by
	// replacing it; version 3 from nothing.
	v2, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(id),
		SourceVersion: aws.String("1"), LaunchTemplateData: &types.RequestLaunchTemplateData{KeyName: aws.String("ops")}})
	if err != nil {
		t.Fatal(err)
	}
	d := v2.LaunchTemplateVersion.LaunchTemplateData
	if aws.ToInt64(v2.LaunchTemplateVersion.VersionNumber) != 2 || aws.ToBool(v2.LaunchTemplateVersion.DefaultVersion) ||
		aws.ToString(d.KeyName) != "ops" || aws.ToString(d.ImageId) != "ami-0123456789abcdef0" || len(d.SecurityGroupIds) != 1 ||
		d.IamInstanceProfile == nil || aws.ToString(d.IamInstanceProfile.Name) != "web" || len(d.TagSpecifications) != 1 {
		t.Errorf("version 2 = %+v, data %+v", v2.LaunchTemplateVersion, d)
	}
	if _, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateName: aws.String("web"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{InstanceType: types.InstanceTypeT3Small}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(id),
		SourceVersion: aws.String("9"), LaunchTemplateData: &types.RequestLaunchTemplateData{KeyName: aws.String("x")}})
	wantCode(t, err, "InvalidLaunchTemplateId.VersionNotFound")
	_, err = c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String("lt-0123456789abcdef0"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{}})
	wantCode(t, err, "InvalidLaunchTemplateId.NotFound")
	_, err = c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateName: aws.String("nope"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{}})
	wantCode(t, err, "InvalidLaunchTemplateName.NotFoundException")

	mod, err := c.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: aws.String(id), DefaultVersion: aws.String("2")})
	if err != nil || aws.ToInt64(mod.LaunchTemplate.DefaultVersionNumber) != 2 || aws.ToInt64(mod.LaunchTemplate.LatestVersionNumber) != 3 {
		t.Fatalf("modify = %+v, %v", mod, err)
	}
	_, err = c.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: aws.String(id), DefaultVersion: aws.String("4")})
	wantCode(t, err, "InvalidLaunchTemplateId.VersionNotFound")

	versions := func(in *ec2.DescribeLaunchTemplateVersionsInput) []string {
		t.Helper()
		out, err := c.DescribeLaunchTemplateVersions(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range out.LaunchTemplateVersions {
			got = append(got, fmt.Sprintf("%d:%t:%s", aws.ToInt64(v.VersionNumber), aws.ToBool(v.DefaultVersion), aws.ToString(v.LaunchTemplateData.KeyName)))
		}
		return got
	}
	if got := fmt.Sprint(versions(&ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(id)})); got != "[1:false:deploy 2:true:ops 3:false:]" {
		t.Errorf("all versions = %s", got)
	}
	if got := fmt.Sprint(versions(&ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateName: aws.String("web"), MinVersion: aws.String("2"), MaxVersion: aws.String("2")})); got != "[2:true:ops]" {
		t.Errorf("versions 2..2 = %s", got)
	}
	if got := fmt.Sprint(versions(&ec2.DescribeLaunchTemplateVersionsInput{Versions: []string{"$Latest", "$Default"}})); got != "[2:true:ops 3:false:]" {
		t.Errorf("account-wide $Latest and $Default = %s", got)
	}
	_, err = c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{Versions: []string{"1"}})
	wantCode(t, err, "InvalidParameterCombination")
	_, err = c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{})
	wantCode(t, err, "MissingParameter")
	_, err = c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{Versions: []string{"$Latest"}, MaxResults: aws.Int32(201)})
	wantCode(t, err, "InvalidParameterValue")

	del, err := c.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateName: aws.String("web")})
	if err != nil || aws.ToString(del.LaunchTemplate.LaunchTemplateId) != id {
		t.Errorf("delete = %+v, %v", del, err)
	}
	_, err = c.DeleteLaunchTemplate(ctx, &ec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(id)})
	wantCode(t, err, "InvalidLaunchTemplateId.NotFound")
}

// DescribeLaunchTemplates pages without skipping or repeating, and the
// account-wide DescribeLaunchTemplateVersions lists a version that is both
// default and latest once.
func TestLaunchTemplatePaging(t *testing.T) {
	sim, c := bareSim(t, ec2sim.Options{})
	ctx := t.Context()
	const n = 23
	for i := range n {
		out, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(fmt.Sprintf("lt-%02d", i)),
			LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-0123456789abcdef0")}})
		if err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 { // a newer version that is not the default
			if _, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: out.LaunchTemplate.LaunchTemplateId,
				LaunchTemplateData: &types.RequestLaunchTemplateData{KeyName: aws.String("k")}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	seen := map[string]bool{}
	for p := ec2.NewDescribeLaunchTemplatesPaginator(c, &ec2.DescribeLaunchTemplatesInput{MaxResults: aws.Int32(5)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, lt := range page.LaunchTemplates {
			if seen[aws.ToString(lt.LaunchTemplateName)] {
				t.Errorf("%s listed twice", aws.ToString(lt.LaunchTemplateName))
			}
			seen[aws.ToString(lt.LaunchTemplateName)] = true
		}
	}
	if len(seen) != n || sim.Calls("DescribeLaunchTemplates") != 5 {
		t.Errorf("listed %d templates in %d calls; want %d in 5", len(seen), sim.Calls("DescribeLaunchTemplates"), n)
	}
	var versions int
	for p := ec2.NewDescribeLaunchTemplateVersionsPaginator(c, &ec2.DescribeLaunchTemplateVersionsInput{
		Versions: []string{"$Default", "$Latest"}, MaxResults: aws.Int32(10)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		versions += len(page.LaunchTemplateVersions)
	}
	if want := n + (n+3)/4; versions != want || sim.Calls("DescribeLaunchTemplateVersions") != 3 {
		t.Errorf("listed %d versions in %d calls; want %d in 3", versions, sim.Calls("DescribeLaunchTemplateVersions"), want)
	}
	out, err := c.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{Filters: []types.Filter{filter("launch-template-name", "lt-1*")}})
	if err != nil || len(out.LaunchTemplates) != 10 {
		t.Errorf("name filter = %d, %v", len(out.LaunchTemplates), err)
	}
	_, err = c.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{"lt-01", "nope"}})
	wantCode(t, err, "InvalidLaunchTemplateName.NotFoundException")
	_, err = c.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{"lt-0123456789abcdef0"}})
	wantCode(t, err, "InvalidLaunchTemplateId.NotFound")
	_, err = c.DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{"nope"}})
	wantCode(t, err, "InvalidLaunchTemplateId.Malformed")
}
