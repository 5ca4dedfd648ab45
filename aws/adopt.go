package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/latchdev/latch"
)

// adoptAPI is the part of the EC2 client an adoption calls.
type adoptAPI interface {
	CreateSecurityGroup(context.Context, *ec2.CreateSecurityGroupInput, ...func(*ec2.Options)) (*ec2.CreateSecurityGroupOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
	DeleteSecurityGroup(context.Context, *ec2.DeleteSecurityGroupInput, ...func(*ec2.Options)) (*ec2.DeleteSecurityGroupOutput, error)
	ModifyInstanceAttribute(context.Context, *ec2.ModifyInstanceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyInstanceAttributeOutput, error)
	ModifyNetworkInterfaceAttribute(context.Context, *ec2.ModifyNetworkInterfaceAttributeInput, ...func(*ec2.Options)) (*ec2.ModifyNetworkInterfaceAttributeOutput, error)
	AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	RevokeSecurityGroupIngress(context.Context, *ec2.RevokeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error)
	DescribeSecurityGroupRules(context.Context, *ec2.DescribeSecurityGroupRulesInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupRulesOutput, error)
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// Adopter makes the changes of an adoption plan in one region
// (latch.AdoptCloud).
type Adopter struct {
	ec2 adoptAPI
}

var _ latch.AdoptCloud = (*Adopter)(nil)

// NewAdopter returns an adopter for cfg.Region.
func NewAdopter(cfg aws.Config) *Adopter {
	return &Adopter{ec2: ec2.NewFromConfig(cfg)}
}

// CreateGroup creates a group with its tags set at creation, so that it is
// never seen untagged. It adds no inbound rule and revokes nothing: the
// default outbound rule EC2 gives a new group stays. A group of that name
// already in the VPC (a retry after a lost answer) is returned when it
// carries every tag asked for, and refused otherwise.
func (a *Adopter) CreateGroup(ctx context.Context, vpc, name, description string, tags map[string]string) (latch.GroupID, error) {
	in := &ec2.CreateSecurityGroupInput{
		GroupName:   aws.String(name),
		Description: aws.String(description),
		VpcId:       aws.String(vpc),
	}
	if len(tags) > 0 {
		in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: ec2Tags(tags)}}
	}
	out, err := a.ec2.CreateSecurityGroup(ctx, in)
	if apiCode(err) == "InvalidGroup.Duplicate" {
		return a.existingGroup(ctx, vpc, name, tags)
	}
	if err != nil {
		return "", adoptError("create security group "+name+" in "+vpc, err)
	}
	return latch.GroupID(aws.ToString(out.GroupId)), nil
}

func (a *Adopter) existingGroup(ctx context.Context, vpc, name string, tags map[string]string) (latch.GroupID, error) {
	out, err := a.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}},
		{Name: aws.String("group-name"), Values: []string{name}},
	}})
	if err != nil {
		return "", adoptError("find security group "+name+" in "+vpc, err)
	}
	if len(out.SecurityGroups) != 1 {
		return "", latch.Errorf(latch.EUNAVAILABLE, "create security group %s in %s: EC2 says it exists but does not list it yet; try again", name, vpc)
	}
	g := out.SecurityGroups[0]
	have := tagMap(g.Tags)
	for k, v := range tags {
		if have[k] != v {
			return "", latch.Errorf(latch.ECONFLICT, "create security group %s in %s: %s already has that name without the tag %s=%s; rename one of them",
				name, vpc, aws.ToString(g.GroupId), k, v)
		}
	}
	return latch.GroupID(aws.ToString(g.GroupId)), nil
}

// SetInstanceGroups sets the groups of an instance's only interface. EC2
// refuses an instance with several; use SetInterfaceGroups for those.
func (a *Adopter) SetInstanceGroups(ctx context.Context, id latch.InstanceID, groups []latch.GroupID) error {
	_, err := a.ec2.ModifyInstanceAttribute(ctx, &ec2.ModifyInstanceAttributeInput{
		InstanceId: aws.String(string(id)),
		Groups:     groupIDs(groups),
	})
	return adoptError("set the security groups of "+string(id), err)
}

// SetInterfaceGroups sets the groups of one network interface.
func (a *Adopter) SetInterfaceGroups(ctx context.Context, eni string, groups []latch.GroupID) error {
	_, err := a.ec2.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(eni),
		Groups:             groupIDs(groups),
	})
	return adoptError("set the security groups of "+eni, err)
}

// RemoveRule revokes one inbound rule by ID; a rule (or group) already
// gone is success.
func (a *Adopter) RemoveRule(ctx context.Context, group latch.GroupID, id latch.RuleID) error {
	_, err := a.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId:              aws.String(string(group)),
		SecurityGroupRuleIds: []string{string(id)},
	})
	if isRuleGone(translate("", err)) {
		return nil
	}
	return adoptError("revoke rule "+string(id)+" of "+string(group), err)
}

// RestoreRule authorizes r again with exactly its protocol, ports, source,
// description and tags, and returns the new rule's ID. When EC2 says the
// rule exists already, it returns the ID of the existing one (whose
// description and tags are left as they are).
func (a *Adopter) RestoreRule(ctx context.Context, r latch.IngressRule) (latch.RuleID, error) {
	perm, err := ipPermission(r)
	if err != nil {
		return "", err
	}
	in := &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId:       aws.String(string(r.GroupID)),
		IpPermissions: []types.IpPermission{perm},
	}
	if len(r.Tags) > 0 {
		in.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroupRule, Tags: ec2Tags(r.Tags)}}
	}
	op := fmt.Sprintf("restore rule %s of %s", r.ID, r.GroupID)
	out, err := a.ec2.AuthorizeSecurityGroupIngress(ctx, in)
	if isRuleExists(translate("", err)) {
		return a.sameRule(ctx, r)
	}
	if err != nil {
		return "", adoptError(op, err)
	}
	for _, got := range out.SecurityGroupRules {
		if rule, err := ingressRule(got); err == nil && !aws.ToBool(got.IsEgress) && sameSource(rule, r) {
			return rule.ID, nil
		}
	}
	return "", latch.Errorf(latch.EUNAVAILABLE, "%s: the response named no rule for it", op)
}

// sameRule finds the inbound rule of r's group with r's protocol, ports
// and source: what EC2 calls a duplicate (the description is not part of
// it).
func (a *Adopter) sameRule(ctx context.Context, r latch.IngressRule) (latch.RuleID, error) {
	p := ec2.NewDescribeSecurityGroupRulesPaginator(a.ec2, &ec2.DescribeSecurityGroupRulesInput{
		Filters:    []types.Filter{{Name: aws.String("group-id"), Values: []string{string(r.GroupID)}}},
		MaxResults: aws.Int32(maxDescribe),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", adoptError("find the existing rule for "+string(r.ID), err)
		}
		for _, got := range page.SecurityGroupRules {
			if aws.ToBool(got.IsEgress) {
				continue
			}
			if rule, err := ingressRule(got); err == nil && sameSource(rule, r) {
				return rule.ID, nil
			}
		}
	}
	return "", latch.Errorf(latch.EUNAVAILABLE, "restore rule %s of %s: EC2 says it exists but does not list it yet; try again", r.ID, r.GroupID)
}

// sameSource reports whether two rules are the same to EC2: protocol,
// ports and source.
func sameSource(a, b latch.IngressRule) bool {
	return a.Protocol == b.Protocol && a.FromPort == b.FromPort && a.ToPort == b.ToPort &&
		a.CIDR == b.CIDR && a.SourceGroup == b.SourceGroup && a.PrefixList == b.PrefixList
}

// ipPermission is the IpPermission that authorizes exactly r.
func ipPermission(r latch.IngressRule) (types.IpPermission, error) {
	p := types.IpPermission{IpProtocol: aws.String(r.Protocol)}
	if r.Protocol != "-1" {
		p.FromPort, p.ToPort = aws.Int32(int32(r.FromPort)), aws.Int32(int32(r.ToPort))
	}
	var desc *string
	if r.Description != "" {
		desc = aws.String(r.Description)
	}
	n := 0
	if r.CIDR.IsValid() {
		n++
		if r.CIDR.Addr().Is4() {
			p.IpRanges = []types.IpRange{{CidrIp: aws.String(r.CIDR.String()), Description: desc}}
		} else {
			p.Ipv6Ranges = []types.Ipv6Range{{CidrIpv6: aws.String(r.CIDR.String()), Description: desc}}
		}
	}
	if r.SourceGroup != "" {
		n++
		p.UserIdGroupPairs = []types.UserIdGroupPair{{GroupId: aws.String(string(r.SourceGroup)), Description: desc}}
	}
	if r.PrefixList != "" {
		n++
		p.PrefixListIds = []types.PrefixListId{{PrefixListId: aws.String(r.PrefixList), Description: desc}}
	}
	if n != 1 {
		return p, latch.Invalidf("rule", "rule %s of %s has %d sources; a rule has exactly one: a CIDR, a security group or a prefix list", r.ID, r.GroupID, n)
	}
	return p, nil
}

// DeleteGroup deletes a group; one already gone is success.
func (a *Adopter) DeleteGroup(ctx context.Context, id latch.GroupID) error {
	_, err := a.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(string(id))})
	if apiCode(err) == "InvalidGroup.NotFound" {
		return nil
	}
	return adoptError("delete security group "+string(id), err)
}

func groupIDs(groups []latch.GroupID) []string {
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if !slices.Contains(out, string(g)) {
			out = append(out, string(g))
		}
	}
	return out
}

// adoptCodes are the codes of the attach and group calls, beyond the rule
// codes translate knows.
var adoptCodes = map[string]string{
	"InvalidInstanceID":                       latch.ECONFLICT, // several interfaces: name one
	"InvalidInstanceID.NotFound":              latch.ENOTFOUND,
	"InvalidInstanceID.Malformed":             latch.EINVALID,
	"InvalidNetworkInterfaceID.NotFound":      latch.ENOTFOUND,
	"InvalidNetworkInterfaceID.Malformed":     latch.EINVALID,
	"InvalidVpcID.NotFound":                   latch.ENOTFOUND,
	"InvalidParameter":                        latch.EINVALID, // a group of another VPC
	"InvalidPrefixListId.Malformed":           latch.EINVALID,
	"SecurityGroupsPerInterfaceLimitExceeded": latch.ECONFLICT,
	"IncorrectInstanceState":                  latch.ECONFLICT,
	"DependencyViolation":                     latch.ECONFLICT, // a group still attached or referenced
	"InvalidGroup.Duplicate":                  latch.ECONFLICT,
}

// adoptError translates err into latch's codes, as the firewall does, and
// keeps the SDK's error reachable with errors.As.
func adoptError(op string, err error) error {
	if err == nil {
		return nil
	}
	if code, ok := adoptCodes[apiCode(err)]; ok {
		apiErr, _ := errors.AsType[smithy.APIError](err)
		return withCause{latch.Errorf(code, "%s: %s: %s", op, apiErr.ErrorCode(), apiErr.ErrorMessage()), err}
	}
	t := translate(op, err)
	if _, ok := errors.AsType[smithy.APIError](t); ok {
		return t
	}
	return withCause{t, err}
}

// withCause is a translated error that unwraps to both latch's error and
// the SDK's, so callers can read the latch code or AWS's.
type withCause struct {
	err   error
	cause error
}

func (e withCause) Error() string   { return e.err.Error() }
func (e withCause) Unwrap() []error { return []error{e.err, e.cause} }

// InstanceInterfaces reads the interfaces of ids, with their groups, in
// paged DescribeInstances calls by ID (adopt.Reader): undo checks that
// an interface still has the groups a plan gave it before setting them
// back. An instance gone is absent.
func (a *Adopter) InstanceInterfaces(ctx context.Context, ids []latch.InstanceID) (map[latch.InstanceID][]latch.NetworkInterface, error) {
	out := map[latch.InstanceID][]latch.NetworkInterface{}
	for chunk := range slices.Chunk(ids, latch.MaxRevokeBatch) { // as many values as latch puts in any one filter
		names := make([]string, len(chunk))
		for i, id := range chunk {
			names[i] = string(id)
		}
		// Not by InstanceIds: EC2 answers InvalidInstanceID.NotFound for
		// the whole call when one of them is gone.
		ins, err := readInstances(ctx, a.ec2, types.Filter{Name: aws.String("instance-id"), Values: names})
		if err != nil {
			return nil, translate("describe instances", err)
		}
		for _, in := range ins {
			out[in.ID] = in.Interfaces
		}
	}
	return out, nil
}
