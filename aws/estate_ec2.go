package aws

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch"
)

// maxDescribe is the largest page EC2's Describe calls return.
const maxDescribe = 1000

// groupsAPI is what readGroups calls.
type groupsAPI interface {
	ec2.DescribeSecurityGroupsAPIClient
	ec2.DescribeSecurityGroupRulesAPIClient
}

// instancesAPI is what readInstances calls.
type instancesAPI interface {
	ec2.DescribeInstancesAPIClient
}

var (
	_ groupsAPI    = (*ec2.Client)(nil)
	_ instancesAPI = (*ec2.Client)(nil)
)

// readGroups reads every security group of the region with its inbound
// rules: the groups' names, VPCs and tags from DescribeSecurityGroups, and
// the rules, with their IDs and tags (which DescribeSecurityGroups does
// not give), from DescribeSecurityGroupRules over the whole region, so
// that the number of calls grows with pages, not groups. Outbound rules
// are dropped. Errors wrap the SDK's, so a refusal can be told apart.
func readGroups(ctx context.Context, c groupsAPI) ([]latch.EstateGroup, error) {
	var groups []latch.EstateGroup
	index := map[latch.GroupID]int{}
	gp := ec2.NewDescribeSecurityGroupsPaginator(c, &ec2.DescribeSecurityGroupsInput{MaxResults: aws.Int32(maxDescribe)})
	for gp.HasMorePages() {
		page, err := gp.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe security groups: %w", err)
		}
		for _, g := range page.SecurityGroups {
			id := latch.GroupID(aws.ToString(g.GroupId))
			if _, dup := index[id]; dup {
				continue // a group listed twice across pages that shifted
			}
			index[id] = len(groups)
			groups = append(groups, latch.EstateGroup{
				ID: id, Name: aws.ToString(g.GroupName), Description: aws.ToString(g.Description),
				VPC: aws.ToString(g.VpcId), Tags: tagMap(g.Tags),
			})
		}
	}
	rp := ec2.NewDescribeSecurityGroupRulesPaginator(c, &ec2.DescribeSecurityGroupRulesInput{MaxResults: aws.Int32(maxDescribe)})
	for rp.HasMorePages() {
		page, err := rp.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe security group rules: %w", err)
		}
		for _, r := range page.SecurityGroupRules {
			if aws.ToBool(r.IsEgress) {
				continue
			}
			rule, err := ingressRule(r)
			if err != nil {
				return nil, err
			}
			i, ok := index[rule.GroupID]
			if !ok {
				continue // its group was created after the groups were read
			}
			groups[i].Ingress = append(groups[i].Ingress, rule)
		}
	}
	return groups, nil
}

// ingressRule converts an EC2 inbound rule, whose source is a CIDR, a
// security group or a prefix list.
func ingressRule(r types.SecurityGroupRule) (latch.IngressRule, error) {
	out := latch.IngressRule{
		ID:          latch.RuleID(aws.ToString(r.SecurityGroupRuleId)),
		GroupID:     latch.GroupID(aws.ToString(r.GroupId)),
		Protocol:    aws.ToString(r.IpProtocol),
		FromPort:    int(aws.ToInt32(r.FromPort)),
		ToPort:      int(aws.ToInt32(r.ToPort)),
		PrefixList:  aws.ToString(r.PrefixListId),
		Description: aws.ToString(r.Description),
		Tags:        tagMap(r.Tags),
	}
	if g := r.ReferencedGroupInfo; g != nil {
		out.SourceGroup = latch.GroupID(aws.ToString(g.GroupId))
	}
	if cidr := cmp.Or(aws.ToString(r.CidrIpv4), aws.ToString(r.CidrIpv6)); cidr != "" {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return latch.IngressRule{}, fmt.Errorf("rule %s of %s: EC2 gave the source %q, not a CIDR: %w", out.ID, out.GroupID, cidr, err)
		}
		out.CIDR = p
	}
	return out, nil
}

// liveStates are the instance states a scan reads: all but terminated.
var liveStates = []string{"pending", "running", "shutting-down", "stopping", "stopped"}

// readInstances reads every instance of the region that is not
// terminated, with its interfaces and their groups, narrowed by filters.
// SSM is not read here.
func readInstances(ctx context.Context, c instancesAPI, filters ...types.Filter) ([]latch.EstateInstance, error) {
	var out []latch.EstateInstance
	p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{
		MaxResults: aws.Int32(maxDescribe),
		Filters:    append([]types.Filter{{Name: aws.String("instance-state-name"), Values: liveStates}}, filters...),
	})
	seen := map[latch.InstanceID]bool{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, res := range page.Reservations {
			for _, in := range res.Instances {
				ei, err := estateInstance(in)
				if err != nil {
					return nil, err
				}
				if !seen[ei.ID] {
					seen[ei.ID] = true
					out = append(out, ei)
				}
			}
		}
	}
	return out, nil
}

func estateInstance(in types.Instance) (latch.EstateInstance, error) {
	tags := tagMap(in.Tags)
	ei := latch.EstateInstance{
		ID:      latch.InstanceID(aws.ToString(in.InstanceId)),
		Name:    tags["Name"],
		VPC:     aws.ToString(in.VpcId),
		Subnet:  aws.ToString(in.SubnetId),
		KeyName: aws.ToString(in.KeyName),
		Tags:    tags,
	}
	if in.State != nil {
		ei.State = string(in.State.Name)
	}
	if in.IamInstanceProfile != nil {
		ei.InstanceProfile = aws.ToString(in.IamInstanceProfile.Arn)
	}
	var err error
	if ei.PrivateIP, err = parseAddr(aws.ToString(in.PrivateIpAddress)); err != nil {
		return ei, fmt.Errorf("instance %s: private address: %w", ei.ID, err)
	}
	if ei.PublicIP, err = parseAddr(aws.ToString(in.PublicIpAddress)); err != nil {
		return ei, fmt.Errorf("instance %s: public address: %w", ei.ID, err)
	}
	addGroup := func(id latch.GroupID) {
		if id != "" && !slices.Contains(ei.Groups, id) {
			ei.Groups = append(ei.Groups, id)
		}
	}
	for _, nic := range in.NetworkInterfaces {
		ni := latch.NetworkInterface{ID: aws.ToString(nic.NetworkInterfaceId)}
		if nic.Attachment != nil {
			ni.DeviceIndex = int(aws.ToInt32(nic.Attachment.DeviceIndex))
		}
		for _, g := range nic.Groups {
			ni.Groups = append(ni.Groups, latch.GroupID(aws.ToString(g.GroupId)))
		}
		ei.Interfaces = append(ei.Interfaces, ni)
	}
	slices.SortStableFunc(ei.Interfaces, func(a, b latch.NetworkInterface) int { return cmp.Compare(a.DeviceIndex, b.DeviceIndex) })
	for _, ni := range ei.Interfaces {
		for _, g := range ni.Groups {
			addGroup(g)
		}
	}
	// An instance described without its interfaces still names its groups.
	for _, g := range in.SecurityGroups {
		addGroup(latch.GroupID(aws.ToString(g.GroupId)))
	}
	return ei, nil
}

// parseAddr parses an address EC2 gave; "" is the zero Addr.
func parseAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	return netip.ParseAddr(s)
}
