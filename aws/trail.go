package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/latchdev/latch"
)

// cloudtrailAPI is the part of the CloudTrail client the trail calls.
type cloudtrailAPI interface {
	LookupEvents(context.Context, *cloudtrail.LookupEventsInput, ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error)
}

// Trail reads EC2 management events from CloudTrail in one region.
type Trail struct {
	ct     cloudtrailAPI
	region string
}

// NewTrail returns a trail for cfg.Region.
func NewTrail(cfg aws.Config) *Trail {
	return &Trail{ct: cloudtrail.NewFromConfig(cfg), region: cfg.Region}
}

// Region is the trail's region.
func (t *Trail) Region() string { return t.region }

// TrailEvent is one EC2 ingress or tagging call, or one Session Manager
// StartSession or TerminateSession call, as CloudTrail recorded it.
type TrailEvent struct {
	ID             string
	Name           string // AuthorizeSecurityGroupIngress, RevokeSecurityGroupIngress, CreateTags, DeleteTags, StartSession, TerminateSession
	Time           time.Time
	Actor          string // the caller's ARN
	SourceIdentity string // the source identity of the caller's role session, if it had one
	AccessKey      string
	SourceIP       string
	ErrorCode      string // set when the call failed

	GroupID   string
	RuleIDs   []string          // rules created (authorize) or named (revoke, tags)
	CIDRs     []string          // sources in the call's permissions
	Ports     []string          // "tcp 22", "tcp 8000-8080", "icmp type 8 (echo request)"
	Resources []string          // CreateTags/DeleteTags: the resources tagged
	Tags      map[string]string // tags set or removed

	// Session Manager calls.
	SessionID string // StartSession's response, TerminateSession's request
	Target    string // StartSession: the instance
	Document  string // StartSession: the document's AWS name, when the call named one
	Reason    string // StartSession: the reason it was given
}

// Events returns every event named name between start and end, newest
// first, following CloudTrail's pages.
func (t *Trail) Events(ctx context.Context, name string, start, end time.Time) ([]TrailEvent, error) {
	p := cloudtrail.NewLookupEventsPaginator(t.ct, &cloudtrail.LookupEventsInput{
		LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String(name)}},
		StartTime:        aws.Time(start),
		EndTime:          aws.Time(end),
	})
	var out []TrailEvent
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, translate("look up "+name+" events", err)
		}
		for _, e := range page.Events {
			ev, err := parseEvent(e)
			if err != nil {
				return nil, err
			}
			out = append(out, ev)
		}
	}
	return out, nil
}

// record is the part of a CloudTrail record latch reads.
type record struct {
	EventID      string    `json:"eventID"`
	EventName    string    `json:"eventName"`
	EventTime    time.Time `json:"eventTime"`
	SourceIP     string    `json:"sourceIPAddress"`
	ErrorCode    string    `json:"errorCode"`
	UserIdentity struct {
		ARN            string `json:"arn"`
		AccessKeyID    string `json:"accessKeyId"`
		SessionContext struct {
			SourceIdentity string `json:"sourceIdentity"`
		} `json:"sessionContext"`
	} `json:"userIdentity"`
	RequestParameters struct {
		GroupID       string `json:"groupId"`
		IPPermissions items[struct {
			IPProtocol string          `json:"ipProtocol"`
			FromPort   *int            `json:"fromPort"`
			ToPort     *int            `json:"toPort"`
			IPRanges   items[cidrItem] `json:"ipRanges"`
			IPv6Ranges items[cidrItem] `json:"ipv6Ranges"`
		}] `json:"ipPermissions"`
		RuleIDs      items[ruleItem] `json:"securityGroupRuleIds"`
		ResourcesSet items[struct {
			ResourceID string `json:"resourceId"`
		}] `json:"resourcesSet"`
		TagSet              items[tagItem] `json:"tagSet"`
		TagSpecificationSet items[struct {
			Tags []tagItem `json:"tags"`
		}] `json:"tagSpecificationSet"`
		SessionID    string `json:"sessionId"`    // TerminateSession
		Target       string `json:"target"`       // StartSession
		DocumentName string `json:"documentName"` // StartSession
		Reason       string `json:"reason"`       // StartSession
	} `json:"requestParameters"`
	ResponseElements struct {
		RuleSet   items[ruleItem] `json:"securityGroupRuleSet"`
		SessionID string          `json:"sessionId"` // StartSession
	} `json:"responseElements"`
}

type items[T any] struct {
	Items []T `json:"items"`
}

type cidrItem struct {
	CIDRIP   string `json:"cidrIp"`
	CIDRIPv6 string `json:"cidrIpv6"`
}

type tagItem struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type ruleItem struct {
	SecurityGroupRuleID string `json:"securityGroupRuleId"`
}

func parseEvent(e types.Event) (TrailEvent, error) {
	var r record
	if err := json.Unmarshal([]byte(aws.ToString(e.CloudTrailEvent)), &r); err != nil {
		return TrailEvent{}, fmt.Errorf("read CloudTrail event %s: %w", aws.ToString(e.EventId), err)
	}
	ev := TrailEvent{
		ID: r.EventID, Name: r.EventName, Time: r.EventTime, Actor: r.UserIdentity.ARN, AccessKey: r.UserIdentity.AccessKeyID,
		SourceIP: r.SourceIP, ErrorCode: r.ErrorCode, GroupID: r.RequestParameters.GroupID,
		SourceIdentity: r.UserIdentity.SessionContext.SourceIdentity,
		SessionID:      r.ResponseElements.SessionID, Target: r.RequestParameters.Target,
		Document: r.RequestParameters.DocumentName, Reason: r.RequestParameters.Reason,
	}
	if ev.SessionID == "" {
		ev.SessionID = r.RequestParameters.SessionID
	}
	if ev.ID == "" {
		ev.ID = aws.ToString(e.EventId)
	}
	for _, p := range r.RequestParameters.IPPermissions.Items {
		ports := p.IPProtocol
		if proto, ok := protocolFromEC2(p.IPProtocol); ok && proto.IsICMP() {
			r := latch.AllICMP // icmpv6 may leave the range off: all types
			if p.FromPort != nil && p.ToPort != nil {
				r = latch.PortRange{From: *p.FromPort, To: *p.ToPort}
			}
			ports = latch.DescribePorts(proto, r)
		} else if p.FromPort != nil && p.ToPort != nil {
			ports = fmt.Sprintf("%s %d-%d", p.IPProtocol, *p.FromPort, *p.ToPort)
			if *p.FromPort == *p.ToPort {
				ports = fmt.Sprintf("%s %d", p.IPProtocol, *p.FromPort)
			}
		}
		ev.Ports = append(ev.Ports, ports)
		for _, c := range append(p.IPRanges.Items, p.IPv6Ranges.Items...) {
			ev.CIDRs = append(ev.CIDRs, c.CIDRIP+c.CIDRIPv6)
		}
	}
	for _, it := range append(r.ResponseElements.RuleSet.Items, r.RequestParameters.RuleIDs.Items...) {
		ev.RuleIDs = append(ev.RuleIDs, it.SecurityGroupRuleID)
	}
	for _, it := range r.RequestParameters.ResourcesSet.Items {
		ev.Resources = append(ev.Resources, it.ResourceID)
	}
	tags := r.RequestParameters.TagSet.Items
	for _, spec := range r.RequestParameters.TagSpecificationSet.Items {
		tags = append(tags, spec.Tags...)
	}
	if len(tags) > 0 {
		ev.Tags = map[string]string{}
		for _, t := range tags {
			ev.Tags[t.Key] = t.Value
		}
	}
	return ev, nil
}
