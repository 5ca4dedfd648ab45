package aws

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch"
)

// inventoryAPI is the part of the EC2 client the inventory calls.
type inventoryAPI interface {
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error)
}

// Inventory looks up instances and security groups in one region.
type Inventory struct {
	ec2 inventoryAPI
	log *slog.Logger
}

// NewInventory returns an inventory for cfg.Region. log may be nil.
func NewInventory(cfg aws.Config, log *slog.Logger) *Inventory {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Inventory{ec2: ec2.NewFromConfig(cfg), log: log}
}

// Instance returns an instance and its security groups, with their tags.
func (v *Inventory) Instance(ctx context.Context, id latch.InstanceID) (latch.Instance, error) {
	out, err := v.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{string(id)}})
	if err != nil {
		return latch.Instance{}, translateLookup("describe instance "+string(id), err)
	}
	for _, res := range out.Reservations {
		for _, in := range res.Instances {
			if aws.ToString(in.InstanceId) == string(id) {
				return v.instance(ctx, in)
			}
		}
	}
	return latch.Instance{}, latch.Errorf(latch.ENOTFOUND, "instance %s not found", id)
}

// InstancesNamed returns the instances, but terminated ones, whose Name tag
// is name. EC2 filters treat * and ? as wildcards, so they are escaped.
func (v *Inventory) InstancesNamed(ctx context.Context, name string) ([]latch.Instance, error) {
	esc := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`).Replace(name)
	p := ec2.NewDescribeInstancesPaginator(v.ec2, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:Name"), Values: []string{esc}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
	}})
	var found []latch.Instance
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, translateLookup("find instances named "+name, err)
		}
		for _, res := range page.Reservations {
			for _, in := range res.Instances {
				inst, err := v.instance(ctx, in)
				if err != nil {
					return nil, err
				}
				if inst.Name == name { // the filter's matching is the endpoint's; check it
					found = append(found, inst)
				}
			}
		}
	}
	return found, nil
}

// instance converts an EC2 instance, looking up its groups' tags.
func (v *Inventory) instance(ctx context.Context, in types.Instance) (latch.Instance, error) {
	inst := latch.Instance{ID: latch.InstanceID(aws.ToString(in.InstanceId)), Tags: tagMap(in.Tags)}
	inst.Name = inst.Tags["Name"]
	if in.State != nil {
		inst.State = string(in.State.Name)
	}
	inst.PrivateIP, _ = netip.ParseAddr(aws.ToString(in.PrivateIpAddress))
	inst.PublicIP, _ = netip.ParseAddr(aws.ToString(in.PublicIpAddress))
	var ids []string
	for _, g := range in.SecurityGroups {
		ids = append(ids, aws.ToString(g.GroupId))
	}
	var err error
	if inst.Groups, err = v.groups(ctx, ids); err != nil {
		return latch.Instance{}, err
	}
	return inst, nil
}

// Group returns one security group with its tags.
func (v *Inventory) Group(ctx context.Context, id latch.GroupID) (latch.Group, error) {
	gs, err := v.groups(ctx, []string{string(id)})
	if err != nil {
		return latch.Group{}, err
	}
	if len(gs) != 1 {
		return latch.Group{}, latch.Errorf(latch.ENOTFOUND, "security group %s not found", id)
	}
	return gs[0], nil
}

func (v *Inventory) groups(ctx context.Context, ids []string) ([]latch.Group, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := v.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: ids})
	if err != nil {
		return nil, translateLookup("describe security groups", err)
	}
	var gs []latch.Group
	for _, g := range out.SecurityGroups {
		gs = append(gs, latch.Group{ID: latch.GroupID(aws.ToString(g.GroupId)), Name: aws.ToString(g.GroupName), Tags: tagMap(g.Tags)})
	}
	return gs, nil
}

func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

var _ latch.Inventory = (*Inventory)(nil)

// ManagedGroups lists every security group tagged latch:managed=true.
func (v *Inventory) ManagedGroups(ctx context.Context) ([]latch.Group, error) {
	p := ec2.NewDescribeSecurityGroupsPaginator(v.ec2, &ec2.DescribeSecurityGroupsInput{
		Filters:    []types.Filter{{Name: aws.String("tag:" + latch.TagManaged), Values: []string{"true"}}},
		MaxResults: aws.Int32(1000),
	})
	var gs []latch.Group
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, translate("describe managed security groups", err)
		}
		for _, g := range page.SecurityGroups {
			gs = append(gs, latch.Group{ID: latch.GroupID(aws.ToString(g.GroupId)), Name: aws.ToString(g.GroupName), Tags: tagMap(g.Tags)})
		}
	}
	return gs, nil
}
