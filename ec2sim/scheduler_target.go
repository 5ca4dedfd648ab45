package ec2sim

// Universal targets: arn:aws:scheduler:::aws-sdk:SERVICE:apiAction calls
// an AWS API with the target's Input, JSON named as the AWS SDKs name the
// API's members, as its request. The simulator serves EC2's
// AuthorizeSecurityGroupIngress and RevokeSecurityGroupIngress, and
// Systems Manager's TerminateSession, this way: against its own state,
// through the same handler, validation and CloudTrail record as a call
// over HTTP, made by a session of the schedule's role.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// universalTargetPrefix starts every universal target's ARN.
const universalTargetPrefix = "arn:aws:scheduler:::aws-sdk:"

// SchedulerPrincipal is Scheduler's service principal. CloudTrail records
// the calls of universal targets with it as sourceIPAddress and userAgent.
const SchedulerPrincipal = "scheduler.amazonaws.com"

func isUniversalTarget(arn string) bool { return strings.HasPrefix(arn, universalTargetPrefix) }

// universalEC2 are the EC2 actions a universal target may call, by the
// name in its ARN.
var universalEC2 = map[string]string{
	"authorizeSecurityGroupIngress": "AuthorizeSecurityGroupIngress",
	"revokeSecurityGroupIngress":    "RevokeSecurityGroupIngress",
}

// callUniversalTarget makes the call a universal target names, in region,
// signed with the access key of the role's session. Like a request over
// HTTP it counts in Calls and meets injected faults (without latency): a
// throttled call fails unrecorded, a lost response fails the run after
// taking effect.
func (s *Server) callUniversalTarget(region, accessKeyID, arn, input string) error {
	service, api, _ := strings.Cut(strings.TrimPrefix(arn, universalTargetPrefix), ":")
	if service == "ssm" && api == "terminateSession" {
		return s.callTerminateSession(region, accessKeyID, arn, input)
	}
	action, ok := universalEC2[api]
	if service != "ec2" || !ok {
		return fmt.Errorf("ec2sim: universal target %s is not modelled; only ec2:authorizeSecurityGroupIngress, ec2:revokeSecurityGroupIngress and ssm:terminateSession are", arn)
	}
	p, err := ec2Params(action, []byte(input))
	if err != nil {
		return fmt.Errorf("universal target %s: Input: %w", arn, err)
	}
	c := &call{action: action, region: region, accessKeyID: accessKeyID, sourceIP: SchedulerPrincipal, userAgent: SchedulerPrincipal, params: p}
	s.lock()
	c.requestID = s.ids.request()
	s.calls[action]++
	fault, _ := s.drawFault(action)
	s.unlock()
	switch fault {
	case faultThrottle:
		return &TargetError{CodeRequestLimitExceeded, "Request limit exceeded."}
	case faultServerError:
		return &TargetError{CodeInternalError, "An internal error has occurred. (injected by ec2sim)"}
	}
	_, aerr := s.handle(c)
	switch {
	case fault == faultLostResponse:
		return &TargetError{CodeInternalError, "An internal error has occurred. (response lost, injected by ec2sim)"}
	case aerr != nil:
		return &TargetError{aerr.Code, aerr.Message}
	}
	return nil
}

// callTerminateSession runs the universal target ssm:terminateSession:
// Systems Manager's TerminateSession, as callUniversalTarget runs EC2's
// actions (counted, recorded in CloudTrail as the role's session, meeting
// injected faults).
func (s *Server) callTerminateSession(region, accessKeyID, arn, input string) error {
	var in sessionIDInput
	dec := json.NewDecoder(strings.NewReader(input))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("universal target %s: Input: %w", arn, err)
	}
	const op = "TerminateSession"
	c := &ssmCall{op: op, region: region, sourceIP: SchedulerPrincipal, userAgent: SchedulerPrincipal}
	s.lock()
	c.requestID = s.ids.request()
	c.caller = s.identities[accessKeyID]
	s.calls[op]++
	fault, _ := s.drawFault(op)
	s.unlock()
	switch fault {
	case faultThrottle:
		return &TargetError{CodeSSMThrottling, "Rate exceeded"}
	case faultServerError:
		return &TargetError{CodeSSMInternalServerError, "An internal error has occurred. (injected by ec2sim)"}
	}
	_, aerr := s.terminateSession(c, in)
	switch {
	case fault == faultLostResponse:
		return &TargetError{CodeSSMInternalServerError, "An internal error has occurred. (response lost, injected by ec2sim)"}
	case aerr != nil:
		return &TargetError{aerr.Code, aerr.Message}
	}
	return nil
}

// schedulerSession returns the access key of the session Scheduler holds
// in sc's role, adding it as an identity (an STS assumed role, with a
// temporary key) so that CloudTrail records its calls as the role's. The
// session is named by a hash of the schedule's ARN, so each schedule's
// calls can be told apart. Caller holds s.mu.
func (s *Server) schedulerSession(sc *schedule) string {
	roleARN := *sc.spec.Target.RoleArn // validated: arn:PARTITION:iam::ACCOUNT:role/PATH/NAME
	parts := strings.SplitN(roleARN, ":", 6)
	sum := sha256.Sum256([]byte(sc.arn + "\n" + roleARN))
	key := "ASIA" + base32.StdEncoding.EncodeToString(sum[16:])[:16]
	if _, ok := s.identities[key]; ok {
		return key
	}
	session := hex.EncodeToString(sum[:16])
	id := Identity{
		AccessKeyID: key, SecretAccessKey: rand.Text(), SessionToken: rand.Text(),
		ARN: "arn:" + parts[1] + ":sts::" + parts[4] + ":assumed-role/" + path.Base(parts[5]) + "/" + session,
	}
	id.UserID = deriveUserID(id.ARN)
	identities := maps.Clone(s.identities) // copy on write, as AddIdentity
	if identities == nil {
		identities = map[string]Identity{}
	}
	identities[key] = id
	s.identities = identities
	return key
}

// ec2IngressInput holds the members AuthorizeSecurityGroupIngress and
// RevokeSecurityGroupIngress share. Fields are named as the SDKs name the
// API's members (GroupId, not GroupID), since JSON decoding matches them.
type ec2IngressInput struct {
	CidrIp                     *string
	DryRun                     *bool
	FromPort                   *int
	GroupId                    *string
	GroupName                  *string
	IpPermissions              []ec2IPPermJSON
	IpProtocol                 *string
	SourceSecurityGroupName    *string
	SourceSecurityGroupOwnerId *string
	ToPort                     *int
}

type ec2IPPermJSON struct {
	FromPort         *int
	IpProtocol       *string
	IpRanges         []struct{ CidrIp, Description *string }
	Ipv6Ranges       []struct{ CidrIpv6, Description *string }
	PrefixListIds    []struct{ PrefixListId, Description *string }
	ToPort           *int
	UserIdGroupPairs []struct{ GroupId, GroupName, UserId, Description *string }
}

type ec2RevokeInput struct {
	ec2IngressInput
	SecurityGroupRuleIds []string
}

type ec2AuthorizeInput struct {
	ec2IngressInput
	TagSpecifications []struct {
		ResourceType *string
		Tags         []struct{ Key, Value *string }
	}
}

// ec2Params turns a universal target's Input into the Query parameters
// the SDK would send for action. Members the action does not have are an
// error, as they would be for the SDK.
func ec2Params(action string, input []byte) (params, error) {
	q := url.Values{"Action": {action}, "Version": {APIVersion}}
	str := func(name string, v *string) {
		if v != nil {
			q.Set(name, *v)
		}
	}
	num := func(name string, v *int) {
		if v != nil {
			q.Set(name, strconv.Itoa(*v))
		}
	}
	n := func(prefix string, i int) string { return prefix + "." + strconv.Itoa(i+1) }

	var common *ec2IngressInput
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.DisallowUnknownFields()
	switch action {
	case "RevokeSecurityGroupIngress":
		var in ec2RevokeInput
		if err := dec.Decode(&in); err != nil {
			return nil, err
		}
		for i, id := range in.SecurityGroupRuleIds {
			q.Set(n("SecurityGroupRuleId", i), id)
		}
		common = &in.ec2IngressInput
	case "AuthorizeSecurityGroupIngress":
		var in ec2AuthorizeInput
		if err := dec.Decode(&in); err != nil {
			return nil, err
		}
		for i, ts := range in.TagSpecifications {
			str(n("TagSpecification", i)+".ResourceType", ts.ResourceType)
			for j, tg := range ts.Tags {
				str(n(n("TagSpecification", i)+".Tag", j)+".Key", tg.Key)
				str(n(n("TagSpecification", i)+".Tag", j)+".Value", tg.Value)
			}
		}
		common = &in.ec2IngressInput
	}
	str("CidrIp", common.CidrIp)
	if common.DryRun != nil {
		q.Set("DryRun", strconv.FormatBool(*common.DryRun))
	}
	num("FromPort", common.FromPort)
	str("GroupId", common.GroupId)
	str("GroupName", common.GroupName)
	str("IpProtocol", common.IpProtocol)
	str("SourceSecurityGroupName", common.SourceSecurityGroupName)
	str("SourceSecurityGroupOwnerId", common.SourceSecurityGroupOwnerId)
	num("ToPort", common.ToPort)
	for i, pm := range common.IpPermissions {
		m := n("IpPermissions", i)
		num(m+".FromPort", pm.FromPort)
		str(m+".IpProtocol", pm.IpProtocol)
		num(m+".ToPort", pm.ToPort)
		for j, r := range pm.IpRanges {
			str(n(m+".IpRanges", j)+".CidrIp", r.CidrIp)
			str(n(m+".IpRanges", j)+".Description", r.Description)
		}
		for j, r := range pm.Ipv6Ranges {
			str(n(m+".Ipv6Ranges", j)+".CidrIpv6", r.CidrIpv6)
			str(n(m+".Ipv6Ranges", j)+".Description", r.Description)
		}
		for j, r := range pm.PrefixListIds {
			str(n(m+".PrefixListIds", j)+".PrefixListId", r.PrefixListId)
			str(n(m+".PrefixListIds", j)+".Description", r.Description)
		}
		for j, r := range pm.UserIdGroupPairs {
			str(n(m+".Groups", j)+".GroupId", r.GroupId)
			str(n(m+".Groups", j)+".GroupName", r.GroupName)
			str(n(m+".Groups", j)+".UserId", r.UserId)
			str(n(m+".Groups", j)+".Description", r.Description)
		}
	}
	return params(q), nil
}
