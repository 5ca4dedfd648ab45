package main

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/awstest"
)

// scanWorld is a world whose commands run in a region of their own, which
// the test builds through the SDK (so it runs against an external
// endpoint too): a scan reads a whole region, and other tests share
// us-east-1.
type scanWorld struct {
	*world
	region string
	ec2    *ec2.Client
	iam    *iam.Client
	ct     *cloudtrail.Client
}

func newScanWorld(t *testing.T, region string) *scanWorld {
	t.Helper()
	w := newWorld(t)
	cfg := w.env.Config()
	cfg.Region = region
	w.vars["AWS_REGION"] = region
	return &scanWorld{world: w, region: region, ec2: ec2.NewFromConfig(cfg), iam: iam.NewFromConfig(cfg), ct: cloudtrail.NewFromConfig(cfg)}
}

// group creates a security group in the region's default VPC with tags
// and inbound perms; it is deleted at cleanup (after the instances that
// use it, which are made later and so cleaned up first).
func (s *scanWorld) group(t *testing.T, tags map[string]string, perms ...types.IpPermission) latch.GroupID {
	t.Helper()
	ctx := context.Background()
	in := &ec2.CreateSecurityGroupInput{GroupName: aws.String(awstest.Unique("scan")), Description: aws.String("latch scan test")}
	if len(tags) > 0 {
		in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: ec2TagList(tags)}}
	}
	out, err := s.ec2.CreateSecurityGroup(ctx, in)
	if err != nil {
		t.Fatalf("create group: %v", err)
	}
	id := aws.ToString(out.GroupId)
	t.Cleanup(func() { _, _ = s.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)}) })
	if len(perms) > 0 {
		if _, err := s.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: perms}); err != nil {
			t.Fatalf("authorize %s: %v", id, err)
		}
	}
	return latch.GroupID(id)
}

func ec2TagList(tags map[string]string) []types.Tag {
	var out []types.Tag
	for k, v := range tags {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return out
}

// tcp is an inbound permission for a TCP port from a CIDR.
func tcp(port int32, cidr, description string) types.IpPermission {
	p := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port)}
	if cidr == "::/0" {
		p.Ipv6Ranges = []types.Ipv6Range{{CidrIpv6: aws.String(cidr), Description: aws.String(description)}}
	} else {
		p.IpRanges = []types.IpRange{{CidrIp: aws.String(cidr), Description: aws.String(description)}}
	}
	return p
}

// launch is how scanWorld.instance launches one.
type launch struct {
	name    string
	groups  []latch.GroupID
	key     string // a key pair to create and launch with
	profile string // an instance profile's ARN
	public  bool
	tags    map[string]string
}

func (s *scanWorld) instance(t *testing.T, l launch) latch.InstanceID {
	t.Helper()
	ctx := context.Background()
	groups := make([]string, len(l.groups))
	for i, g := range l.groups {
		groups[i] = string(g)
	}
	tags := map[string]string{"Name": l.name}
	for k, v := range l.tags {
		tags[k] = v
	}
	in := &ec2.RunInstancesInput{ImageId: aws.String("ami-0123456789abcdef0"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		InstanceType:      types.InstanceTypeT3Micro,
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: ec2TagList(tags)}}}
	if l.public {
		in.NetworkInterfaces = []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), AssociatePublicIpAddress: aws.Bool(true), Groups: groups}}
	} else {
		in.SecurityGroupIds = groups
	}
	if l.key != "" {
		if _, err := s.ec2.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String(l.key), KeyType: types.KeyTypeEd25519}); err != nil {
			t.Fatalf("create key pair: %v", err)
		}
		t.Cleanup(func() { _, _ = s.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(l.key)}) })
		in.KeyName = aws.String(l.key)
	}
	if l.profile != "" {
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: aws.String(l.profile)}
	}
	out, err := s.ec2.RunInstances(ctx, in)
	if err != nil {
		t.Fatalf("run instance %s: %v", l.name, err)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	t.Cleanup(func() { _, _ = s.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}) })
	return latch.InstanceID(id)
}

// role creates a role with managed policies and inline ones, and an
// instance profile holding it; it returns the profile's ARN and the
// role's.
func (s *scanWorld) role(t *testing.T, managed []string, inline map[string]string) (profile, role string) {
	t.Helper()
	ctx := context.Background()
	name := awstest.Unique("scan-role")
	const trust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	r, err := s.iam.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)})
	if err != nil {
		t.Fatalf("create role: %v", err)
	}
	for _, arn := range managed {
		if _, err := s.iam.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)}); err != nil {
			t.Fatalf("attach %s: %v", arn, err)
		}
	}
	for pname, doc := range inline {
		if _, err := s.iam.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pname), PolicyDocument: aws.String(doc)}); err != nil {
			t.Fatalf("put %s: %v", pname, err)
		}
	}
	p, err := s.iam.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(name)})
	if err != nil {
		t.Fatalf("create instance profile: %v", err)
	}
	if _, err := s.iam.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(name), RoleName: aws.String(name)}); err != nil {
		t.Fatalf("add role to profile: %v", err)
	}
	t.Cleanup(func() {
		_, _ = s.iam.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: aws.String(name), RoleName: aws.String(name)})
		_, _ = s.iam.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: aws.String(name)})
		for _, arn := range managed {
			_, _ = s.iam.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(name), PolicyArn: aws.String(arn)})
		}
		for pname := range inline {
			_, _ = s.iam.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pname)})
		}
		_, _ = s.iam.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(name)})
	})
	return aws.ToString(p.InstanceProfile.Arn), aws.ToString(r.Role.Arn)
}

// trail creates a single-region trail homed in the world's region,
// logging management events.
func (s *scanWorld) trail(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	name := awstest.Unique("scan-trail")
	if _, err := s.ct.CreateTrail(ctx, &cloudtrail.CreateTrailInput{Name: aws.String(name), S3BucketName: aws.String("latch-test-trail")}); err != nil {
		t.Fatalf("create trail: %v", err)
	}
	t.Cleanup(func() { _, _ = s.ct.DeleteTrail(ctx, &cloudtrail.DeleteTrailInput{Name: aws.String(name)}) })
}

// foreignTrail reports whether a trail homed elsewhere covers the region
// (another test's multi-region trail on a shared endpoint).
func (s *scanWorld) foreignTrail(t *testing.T) bool {
	t.Helper()
	out, err := s.ct.DescribeTrails(context.Background(), &cloudtrail.DescribeTrailsInput{IncludeShadowTrails: aws.Bool(true)})
	if err != nil {
		t.Fatalf("describe trails: %v", err)
	}
	return slices.ContainsFunc(out.TrailList, func(tr cttypes.Trail) bool { return aws.ToString(tr.HomeRegion) != s.region })
}

// scanJSON is what a test reads of `latch scan --json`.
type scanJSON struct {
	Findings []struct {
		ID        string   `json:"id"`
		Check     string   `json:"check"`
		Severity  string   `json:"severity"`
		Resource  string   `json:"resource"`
		Instances []string `json:"instances"`
		Rule      *struct {
			RuleID string `json:"rule_id"`
		} `json:"rule"`
	} `json:"findings"`
	NotChecked []struct {
		Check    string `json:"check"`
		Resource string `json:"resource"`
		API      string `json:"api"`
		Reason   string `json:"reason"`
	} `json:"not_checked"`
}

func parseScan(t *testing.T, out string) scanJSON {
	t.Helper()
	var s scanJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("scan --json: %v\n%s", err, out)
	}
	return s
}
