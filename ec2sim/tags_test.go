package ec2sim_test

import (
	"fmt"
	"maps"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch/ec2sim"
)

func tags(kv ...string) []types.Tag {
	var out []types.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

func TestTags_OnRules(t *testing.T) {
	sim, c := mustSim(t, ec2sim.Options{})
	ctx := t.Context()
	id := ruleIDs(mustAuthorize(t, c, web, ssh("192.0.2.1/32")))[0]

	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id},
		Tags: tags("latch:grant-id", "g1", "latch:expires-at", "2026-11-23T10:00:00Z", "note", "x")}); err != nil {
		t.Fatalf("create tags: %v", err)
	}
	out, err := c.DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []types.Filter{filter("resource-id", id)}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, td := range out.Tags {
		if aws.ToString(td.ResourceId) != id || td.ResourceType != types.ResourceTypeSecurityGroupRule {
			t.Errorf("tag description %+v", td)
		}
		got[aws.ToString(td.Key)] = aws.ToString(td.Value)
	}
	want := map[string]string{"latch:grant-id": "g1", "latch:expires-at": "2026-11-23T10:00:00Z", "note": "x"}
	if !maps.Equal(got, want) {
		t.Errorf("tags %v, want %v", got, want)
	}

	// A value given must match; no value deletes whatever is there.
	if _, err := c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: []types.Tag{
		{Key: aws.String("latch:grant-id"), Value: aws.String("other")},
		{Key: aws.String("note")},
	}}); err != nil {
		t.Fatalf("delete tags: %v", err)
	}
	want = map[string]string{"latch:grant-id": "g1", "latch:expires-at": "2026-11-23T10:00:00Z"}
	if got := sim.Rules("us-east-1", web)[0].Tags; !maps.Equal(got, want) {
		t.Errorf("after delete: %v, want %v", got, want)
	}
	if _, err := c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: tags("latch:grant-id", "g1")}); err != nil {
		t.Fatal(err)
	}
	if got := sim.Rules("us-east-1", web)[0].Tags; len(got) != 1 {
		t.Errorf("after matching delete: %v", got)
	}

	rules, err := c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{Filters: []types.Filter{filter("tag-key", "latch:expires-at")}})
	if err != nil || len(rules.SecurityGroupRules) != 1 {
		t.Errorf("rules by tag after CreateTags = %v, %v", ruleIDs(rules.SecurityGroupRules), err)
	}
}

func TestTags_UnknownResources(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	tests := []struct {
		id, code string
	}{
		{"sgr-0123456789abcdef0", "InvalidSecurityGroupRuleId.NotFound"},
		{"sg-0123456789abcdef0", "InvalidGroup.NotFound"},
		{"i-0123456789abcdef0", "InvalidInstanceID.NotFound"},
		{"vpc-0123456789abcdef0", "InvalidVpcID.NotFound"},
		{"sgr-12", "InvalidID"},
		{"bogus-1", "InvalidID"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			// Nothing is tagged when one resource is unknown.
			_, err := c.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{web, tt.id}, Tags: tags("k", "v")})
			wantCode(t, err, tt.code)
			_, err = c.DeleteTags(t.Context(), &ec2.DeleteTagsInput{Resources: []string{tt.id}})
			wantCode(t, err, tt.code)
		})
	}
	out, err := c.DescribeTags(t.Context(), &ec2.DescribeTagsInput{Filters: []types.Filter{filter("key", "k")}})
	if err != nil || len(out.Tags) != 0 {
		t.Errorf("tags after refused calls: %v, %v", out.Tags, err)
	}
	_, err = c.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{web}, Tags: tags("aws:x", "v")})
	wantCode(t, err, "InvalidParameterValue")
}

func TestDescribeTags_FiltersAndPaging(t *testing.T) {
	_, c := mustSim(t, ec2sim.Options{})
	ctx := t.Context()
	out, err := c.DescribeTags(ctx, &ec2.DescribeTagsInput{Filters: []types.Filter{
		filter("resource-type", "instance"), filter("key", "env"), filter("value", "dev"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, td := range out.Tags {
		ids = append(ids, aws.ToString(td.ResourceId))
	}
	if fmt.Sprint(ids) != fmt.Sprint([]string{ec2sim.DemoWeb1, ec2sim.DemoWeb2}) {
		t.Errorf("dev instances by tag = %v", ids)
	}

	all := 0
	seen := map[string]bool{}
	p := ec2.NewDescribeTagsPaginator(c, &ec2.DescribeTagsInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, td := range page.Tags {
			k := aws.ToString(td.ResourceId) + "/" + aws.ToString(td.Key)
			if seen[k] {
				t.Errorf("%s on two pages", k)
			}
			seen[k] = true
			all++
		}
	}
	// Demo fleet: VPC 1, groups 1+2+2+1, instances 3+3+3+2.
	if all != 18 {
		t.Errorf("paged through %d tags, want 18", all)
	}
}
