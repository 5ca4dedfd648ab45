// Package aws implements latch.Firewall on EC2 security-group rules with
// aws-sdk-go-v2. It is the only package that speaks EC2; its error codes
// are translated to latch's at this boundary (errors.go).
package aws

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch"
)

// ec2API is the part of the EC2 client the firewall calls.
type ec2API interface {
	AuthorizeSecurityGroupIngress(context.Context, *ec2.AuthorizeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.AuthorizeSecurityGroupIngressOutput, error)
	RevokeSecurityGroupIngress(context.Context, *ec2.RevokeSecurityGroupIngressInput, ...func(*ec2.Options)) (*ec2.RevokeSecurityGroupIngressOutput, error)
	DescribeSecurityGroupRules(context.Context, *ec2.DescribeSecurityGroupRulesInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupRulesOutput, error)
	CreateTags(context.Context, *ec2.CreateTagsInput, ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	ModifySecurityGroupRules(context.Context, *ec2.ModifySecurityGroupRulesInput, ...func(*ec2.Options)) (*ec2.ModifySecurityGroupRulesOutput, error)
}

// Firewall opens and closes rules in one region.
type Firewall struct {
	ec2    ec2API
	region string
	log    *slog.Logger
}

// NewFirewall returns a firewall for cfg.Region. log may be nil.
func NewFirewall(cfg aws.Config, log *slog.Logger) *Firewall {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Firewall{ec2: ec2.NewFromConfig(cfg), region: cfg.Region, log: log}
}

// Region returns the firewall's region.
func (f *Firewall) Region() string { return f.region }

// Authorize opens o with tags on the new rule, or returns the identical rule
// that already exists (EC2 refuses duplicates) with created false.
func (f *Firewall) Authorize(ctx context.Context, o latch.Opening, tags map[string]string) (latch.Rule, bool, error) {
	out, err := f.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId:       aws.String(string(o.GroupID)),
		IpPermissions: []types.IpPermission{permission(o, description(tags[latch.TagGrantID]))},
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeSecurityGroupRule,
			Tags:         ec2Tags(tags),
		}},
	})
	err = translate("authorize ingress", err)
	if isRuleExists(err) {
		r, err := f.find(ctx, o)
		return r, false, err
	}
	if err != nil {
		return latch.Rule{}, false, err
	}
	f.log.DebugContext(ctx, "authorized", "group_id", o.GroupID, "source", o.Source.String())
	for _, r := range out.SecurityGroupRules {
		if rule, ok := f.rule(r); ok && rule.Opening == o {
			return rule, true, nil
		}
	}
	return latch.Rule{}, false, fmt.Errorf("authorize ingress on %s: the response named no rule for %s", o.GroupID, o.Source)
}

// find returns the existing ingress rule for o.
func (f *Firewall) find(ctx context.Context, o latch.Opening) (latch.Rule, error) {
	var found *latch.Rule
	err := f.describe(ctx, []types.Filter{{Name: aws.String("group-id"), Values: []string{string(o.GroupID)}}}, func(r latch.Rule) {
		if r.Opening == o {
			found = &r
		}
	})
	if err != nil {
		return latch.Rule{}, err
	}
	if found == nil {
		// EC2 said duplicate, then did not list it: it was revoked in between,
		// or is too new for Describe, which lags (EC2 is eventually consistent).
		return latch.Rule{}, latch.Errorf(latch.EUNAVAILABLE, "the rule for %s in %s was revoked while being opened, or EC2 does not list it yet; try again", o.Source, o.GroupID)
	}
	return *found, nil
}

// Tag sets tags on a rule. When they name a grant, the rule's description
// ("latch g-…", set by Authorize) follows, so that a person reading the
// console sees the grant that holds the rule now. The tags are the
// contract and the description a courtesy: failing to update it (a policy
// without ec2:ModifySecurityGroupRules, say) is logged, not returned.
func (f *Firewall) Tag(ctx context.Context, id latch.RuleID, tags map[string]string) error {
	_, err := f.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{string(id)}, Tags: ec2Tags(tags)})
	if err := translate("tag rule "+string(id), err); err != nil {
		return err
	}
	if grant, ok := tags[latch.TagGrantID]; ok {
		if err := f.setDescription(ctx, id, description(grant)); err != nil {
			f.log.WarnContext(ctx, "rule description not updated", "rule_id", id, "grant_id", grant, "err", err)
		}
	}
	return nil
}

// description is the description of a rule held by grant.
func description(grant string) string { return "latch " + grant }

// setDescription sets a rule's description, unless it already has it.
// ModifySecurityGroupRules replaces the whole rule, so the rest is sent as
// it is.
func (f *Firewall) setDescription(ctx context.Context, id latch.RuleID, desc string) error {
	out, err := f.ec2.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{SecurityGroupRuleIds: []string{string(id)}})
	if err != nil {
		return translate("describe rule "+string(id), err)
	}
	if len(out.SecurityGroupRules) != 1 {
		return latch.Errorf(latch.ENOTFOUND, "rule %s not found", id)
	}
	r := out.SecurityGroupRules[0]
	if aws.ToString(r.Description) == desc {
		return nil
	}
	_, err = f.ec2.ModifySecurityGroupRules(ctx, &ec2.ModifySecurityGroupRulesInput{
		GroupId: r.GroupId,
		SecurityGroupRules: []types.SecurityGroupRuleUpdate{{
			SecurityGroupRuleId: r.SecurityGroupRuleId,
			SecurityGroupRule: &types.SecurityGroupRuleRequest{
				IpProtocol: r.IpProtocol, FromPort: r.FromPort, ToPort: r.ToPort,
				CidrIpv4: r.CidrIpv4, CidrIpv6: r.CidrIpv6, Description: aws.String(desc),
			},
		}},
	})
	return translate("set the description of rule "+string(id), err)
}

// Revoke removes a rule by ID. A rule, or group, that is already gone counts
// as revoked.
func (f *Firewall) Revoke(ctx context.Context, group latch.GroupID, id latch.RuleID) error {
	_, err := f.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
		GroupId:              aws.String(string(group)),
		SecurityGroupRuleIds: []string{string(id)},
	})
	err = translate("revoke ingress", err)
	if isRuleGone(err) {
		return nil
	}
	return err
}

// RevokeMany removes rules of one group with one RevokeSecurityGroupIngress.
// EC2 fails the whole call with InvalidSecurityGroupRuleId.NotFound when any
// one of the IDs does not exist (in that group), revoking none of them; then
// RevokeMany asks which of them are still there (one Describe, filtered by
// group and rule ID, which does not fail on unknown IDs) and revokes those,
// counting the rest as gone. Rules can vanish between the two calls (another
// sweeper, a person), so it tries up to three times before giving up.
func (f *Firewall) RevokeMany(ctx context.Context, group latch.GroupID, ids []latch.RuleID) ([]latch.RuleID, error) {
	if len(ids) > latch.MaxRevokeBatch {
		return nil, latch.Errorf(latch.EINVALID, "revoke %d rules in one batch: at most %d", len(ids), latch.MaxRevokeBatch)
	}
	var gone []latch.RuleID
	left := ids
	for range 3 {
		if len(left) == 0 {
			return gone, nil
		}
		_, err := f.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
			GroupId:              aws.String(string(group)),
			SecurityGroupRuleIds: ruleIDs(left),
		})
		err = translate(fmt.Sprintf("revoke %d ingress rules", len(left)), err)
		if err == nil {
			f.log.DebugContext(ctx, "revoked", "group_id", group, "rules", len(left))
			return gone, nil
		}
		if !isRuleGone(err) {
			return nil, err
		}
		present, err := f.present(ctx, group, left)
		if err != nil {
			return nil, err
		}
		var still []latch.RuleID
		for _, id := range left {
			if present[id] {
				still = append(still, id)
			} else {
				gone = append(gone, id)
			}
		}
		left = still
	}
	// Describe lags revokes (EC2 is eventually consistent) and may list
	// rules already gone; revoked alone, a rule's NotFound is the truth.
	for _, id := range left {
		_, err := f.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
			GroupId: aws.String(string(group)), SecurityGroupRuleIds: []string{string(id)},
		})
		switch err = translate("revoke ingress", err); {
		case isRuleGone(err):
			gone = append(gone, id)
		case err != nil:
			return nil, err
		}
	}
	return gone, nil
}

// present returns which of ids are ingress rules of group now.
func (f *Firewall) present(ctx context.Context, group latch.GroupID, ids []latch.RuleID) (map[latch.RuleID]bool, error) {
	present := map[latch.RuleID]bool{}
	err := f.describe(ctx, []types.Filter{
		{Name: aws.String("group-id"), Values: []string{string(group)}},
		{Name: aws.String("security-group-rule-id"), Values: ruleIDs(ids)},
	}, func(r latch.Rule) { present[r.ID] = true })
	return present, err
}

func ruleIDs(ids []latch.RuleID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

// Rules lists every ingress rule in the region tagged latch:expires-at.
func (f *Firewall) Rules(ctx context.Context) ([]latch.Rule, error) {
	var rules []latch.Rule
	err := f.describe(ctx, []types.Filter{{Name: aws.String("tag-key"), Values: []string{latch.TagExpiresAt}}}, func(r latch.Rule) {
		rules = append(rules, r)
	})
	return rules, err
}

// describe pages through DescribeSecurityGroupRules, calling fn on every
// ingress rule latch can represent.
func (f *Firewall) describe(ctx context.Context, filters []types.Filter, fn func(latch.Rule)) error {
	p := ec2.NewDescribeSecurityGroupRulesPaginator(f.ec2, &ec2.DescribeSecurityGroupRulesInput{
		Filters:    filters,
		MaxResults: aws.Int32(1000),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return translate("describe security group rules", err)
		}
		for _, r := range page.SecurityGroupRules {
			if rule, ok := f.rule(r); ok {
				fn(rule)
			}
		}
	}
	return nil
}

// rule converts an EC2 rule; ok is false for egress rules and for rules
// latch never makes (group references, prefix lists, all protocols).
func (f *Firewall) rule(r types.SecurityGroupRule) (latch.Rule, bool) {
	if aws.ToBool(r.IsEgress) {
		return latch.Rule{}, false
	}
	cidr := aws.ToString(r.CidrIpv4)
	if cidr == "" {
		cidr = aws.ToString(r.CidrIpv6)
	}
	src, err := netip.ParsePrefix(cidr)
	if err != nil {
		return latch.Rule{}, false
	}
	proto, ok := protocolFromEC2(aws.ToString(r.IpProtocol))
	if !ok {
		return latch.Rule{}, false
	}
	tags := tagMap(r.Tags)
	return latch.Rule{
		ID: latch.RuleID(aws.ToString(r.SecurityGroupRuleId)),
		Opening: latch.Opening{
			Region: f.region, GroupID: latch.GroupID(aws.ToString(r.GroupId)), Protocol: proto,
			Ports:  latch.PortRange{From: int(aws.ToInt32(r.FromPort)), To: int(aws.ToInt32(r.ToPort))},
			Source: src.Masked(),
		},
		Tags: tags,
	}, true
}

// protocolFromEC2 reads a rule's IpProtocol. EC2 answers with the name a
// rule was made with (tcp, udp, icmp, icmpv6) or its IANA number, so both
// count; ok is false for protocols latch never opens (-1, others).
func protocolFromEC2(s string) (latch.Protocol, bool) {
	switch s {
	case "6":
		return latch.TCP, true
	case "17":
		return latch.UDP, true
	case "1":
		return latch.ICMP, true
	case "58":
		return latch.ICMPv6, true
	}
	p, err := latch.ParseProtocol(s)
	return p, err == nil
}

// permission is o as an IpPermission: for icmp and icmpv6, FromPort and
// ToPort carry the type and code, -1 meaning all.
func permission(o latch.Opening, desc string) types.IpPermission {
	p := types.IpPermission{
		IpProtocol: aws.String(string(o.Protocol)),
		FromPort:   aws.Int32(int32(o.Ports.From)),
		ToPort:     aws.Int32(int32(o.Ports.To)),
	}
	if o.Source.Addr().Is4() {
		p.IpRanges = []types.IpRange{{CidrIp: aws.String(o.Source.String()), Description: aws.String(desc)}}
	} else {
		p.Ipv6Ranges = []types.Ipv6Range{{CidrIpv6: aws.String(o.Source.String()), Description: aws.String(desc)}}
	}
	return p
}

func ec2Tags(tags map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(tags))
	for k, v := range tags {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return out
}

var _ latch.Firewall = (*Firewall)(nil)

// GroupRules lists every ingress rule of a group latch can represent,
// tagged by latch or not.
func (f *Firewall) GroupRules(ctx context.Context, group latch.GroupID) ([]latch.Rule, error) {
	var rules []latch.Rule
	err := f.describe(ctx, []types.Filter{{Name: aws.String("group-id"), Values: []string{string(group)}}}, func(r latch.Rule) {
		rules = append(rules, r)
	})
	return rules, err
}
