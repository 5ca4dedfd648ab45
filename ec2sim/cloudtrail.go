package ec2sim

// CloudTrail: the management events EC2 writes for the calls that change
// something, and LookupEvents to read them back (cloudtrail_lookup.go).
// This file records events; cloudtrail_shapes.go renders their request
// parameters and response elements as CloudTrail does for EC2.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// CloudTrail constants, as CloudTrail writes them for EC2 calls.
const (
	EC2EventSource       = "ec2.amazonaws.com"
	trailEventVersion    = "1.09"
	trailTimeFormat      = "2006-01-02T15:04:05Z"
	eventIDSalt          = 0x7c1d7a11
	secretSalt           = 0x5e551075
	resourceTypeGroup    = "AWS::EC2::SecurityGroup"
	resourceTypeRule     = "AWS::EC2::SecurityGroupRule"
	resourceTypeVPC      = "AWS::EC2::VPC"
	resourceTypeInstance = "AWS::EC2::Instance"
)

// recorded are the EC2 actions CloudTrail records as write management
// events; the simulator's describes are read-only, and Event history
// holds only write events unless asked, so they are not recorded.
var recorded = map[string]bool{
	"AuthorizeSecurityGroupIngress":   true,
	"CreateSecurityGroup":             true,
	"CreateTags":                      true,
	"DeleteSecurityGroup":             true,
	"DeleteTags":                      true,
	"RevokeSecurityGroupIngress":      true,
	"ModifyInstanceAttribute":         true,
	"ModifyNetworkInterfaceAttribute": true,
}

// trailEvent is one recorded event: what LookupEvents filters on, and the
// record it returns as CloudTrailEvent.
type trailEvent struct {
	seq         int64 // 1-based position in Server.trail
	region      string
	time        time.Time // eventTime, to the second as CloudTrail writes it
	visibleAt   time.Time // when LookupEvents starts returning it
	id          string
	name        string
	source      string // eventSource
	readOnly    bool
	accessKeyID string
	username    string
	resources   []trailResource
	record      string
}

// trailResource is one of an event's Resources in LookupEvents.
type trailResource struct {
	ResourceType string `json:"ResourceType"`
	ResourceName string `json:"ResourceName"`
}

// trailRecord is a CloudTrail record, in CloudTrail's field order.
type trailRecord struct {
	EventVersion       string         `json:"eventVersion"`
	UserIdentity       userIdentity   `json:"userIdentity"`
	EventTime          string         `json:"eventTime"`
	EventSource        string         `json:"eventSource"`
	EventName          string         `json:"eventName"`
	AWSRegion          string         `json:"awsRegion"`
	SourceIPAddress    string         `json:"sourceIPAddress"`
	UserAgent          string         `json:"userAgent"`
	ErrorCode          string         `json:"errorCode,omitempty"`
	ErrorMessage       string         `json:"errorMessage,omitempty"`
	RequestParameters  map[string]any `json:"requestParameters"`
	ResponseElements   map[string]any `json:"responseElements"` // null when the call failed
	RequestID          string         `json:"requestID"`
	EventID            string         `json:"eventID"`
	ReadOnly           bool           `json:"readOnly"`
	EventType          string         `json:"eventType"`
	ManagementEvent    bool           `json:"managementEvent"`
	RecipientAccountID string         `json:"recipientAccountId"`
	EventCategory      string         `json:"eventCategory"`
}

// userIdentity is who made a call, as CloudTrail records it.
type userIdentity struct {
	Type           string          `json:"type"`
	PrincipalID    string          `json:"principalId"`
	ARN            string          `json:"arn"`
	AccountID      string          `json:"accountId"`
	AccessKeyID    string          `json:"accessKeyId"`
	UserName       string          `json:"userName,omitempty"`
	SessionContext *sessionContext `json:"sessionContext,omitempty"`
}

type sessionContext struct {
	SessionIssuer       sessionIssuer     `json:"sessionIssuer"`
	WebIDFederationData map[string]any    `json:"webIdFederationData"`
	Attributes          map[string]string `json:"attributes"`
	SourceIdentity      string            `json:"sourceIdentity,omitempty"`
}

type sessionIssuer struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn"`
	AccountID   string `json:"accountId"`
	UserName    string `json:"userName"`
}

// SetCloudTrailDelay sets how long the events of calls made from now on
// take to reach LookupEvents; events already recorded keep the delay they
// were recorded with. A negative d counts as 0.
func (s *Server) SetCloudTrailDelay(d time.Duration) {
	s.lock()
	defer s.unlock()
	s.trailDelay = max(d, 0)
}

// CloudTrailDelay returns the delay set by [Options.CloudTrailDelay] or
// [Server.SetCloudTrailDelay].
func (s *Server) CloudTrailDelay() time.Duration {
	s.lock()
	defer s.unlock()
	return s.trailDelay
}

// record writes c's CloudTrail event if c is an action CloudTrail records:
// resp is what the handler answered, or aerr why it failed. Caller holds
// s.mu.
func (s *Server) record(c *call, resp response, aerr *apiError) {
	if !recorded[c.action] {
		return
	}
	var errCode, errMsg string
	var respElems map[string]any
	if aerr != nil {
		// EC2 prefixes its codes with the fault's side in CloudTrail.
		errCode, errMsg = "Client."+aerr.Code, aerr.Message
	} else {
		respElems = s.trailResponse(c.requestID, resp)
	}
	s.appendTrail(trailCall{
		region: c.region, source: EC2EventSource, name: c.action, accessKeyID: c.accessKeyID,
		sourceIP: c.sourceIP, userAgent: c.userAgent, requestID: c.requestID,
		request: trailRequest(c.action, c.params), response: respElems,
		resources: trailResources(c.action, c.params, resp), errorCode: errCode, errorMessage: errMsg,
	})
}

// trailCall is one call to record, from any service.
type trailCall struct {
	region, source, name, accessKeyID string
	sourceIP, userAgent, requestID    string
	readOnly                          bool
	request, response                 map[string]any // response nil when the call failed
	resources                         []trailResource
	errorCode, errorMessage           string
}

// appendTrail records c as a CloudTrail management event. Caller holds
// s.mu.
func (s *Server) appendTrail(c trailCall) {
	now := s.now().UTC()
	ident, username := s.trailIdentity(c.accessKeyID)
	ev := &trailEvent{
		seq:         int64(len(s.trail)) + 1,
		region:      c.region,
		time:        now.Truncate(time.Second),
		visibleAt:   now.Add(s.trailDelay),
		id:          s.eventIDs.request(),
		name:        c.name,
		source:      c.source,
		readOnly:    c.readOnly,
		accessKeyID: c.accessKeyID,
		username:    username,
		resources:   c.resources,
	}
	rec := trailRecord{
		EventVersion:       trailEventVersion,
		UserIdentity:       ident,
		EventTime:          ev.time.Format(trailTimeFormat),
		EventSource:        c.source,
		EventName:          c.name,
		AWSRegion:          c.region,
		SourceIPAddress:    c.sourceIP,
		UserAgent:          c.userAgent,
		ErrorCode:          c.errorCode,
		ErrorMessage:       c.errorMessage,
		RequestParameters:  c.request,
		ResponseElements:   c.response,
		RequestID:          c.requestID,
		EventID:            ev.id,
		ReadOnly:           c.readOnly,
		EventType:          "AwsApiCall",
		ManagementEvent:    true,
		RecipientAccountID: s.accountID(),
		EventCategory:      "Management",
	}
	ev.record = string(marshalJSON(rec))
	s.trail = append(s.trail, ev)
}

// trailIdentity is the userIdentity of calls signed with accessKeyID, and
// the user name LookupEvents reports, from the identities added with
// AddIdentity. An unknown key is taken for an IAM user of the simulator's
// account named after the key, since EC2 here does not check signatures.
// Caller holds s.mu.
func (s *Server) trailIdentity(accessKeyID string) (userIdentity, string) {
	id, ok := s.identities[accessKeyID]
	if !ok {
		name := accessKeyID
		if name == "" {
			name = "anonymous"
		}
		arn := "arn:aws:iam::" + s.accountID() + ":user/" + name
		return userIdentity{
			Type: "IAMUser", PrincipalID: deriveUserID(arn), ARN: arn,
			AccountID: s.accountID(), AccessKeyID: accessKeyID, UserName: name,
		}, name
	}
	parts := strings.SplitN(id.ARN, ":", 6)
	partition, account, resource := parts[1], parts[4], parts[5]
	u := userIdentity{PrincipalID: id.UserID, ARN: id.ARN, AccountID: account, AccessKeyID: accessKeyID}
	last := resource[strings.LastIndex(resource, "/")+1:]
	switch {
	case strings.HasPrefix(resource, "user/"):
		u.Type, u.UserName = "IAMUser", last
		return u, last
	case strings.HasPrefix(resource, "assumed-role/"):
		role := strings.Split(resource, "/")[1]
		u.Type = "AssumedRole"
		roleID, _, _ := strings.Cut(id.UserID, ":")
		u.SessionContext = &sessionContext{
			SessionIssuer: sessionIssuer{
				Type: "Role", PrincipalID: roleID, AccountID: account, UserName: role,
				ARN: "arn:" + partition + ":iam::" + account + ":role/" + role,
			},
			WebIDFederationData: map[string]any{},
			Attributes:          map[string]string{"mfaAuthenticated": "false"},
			SourceIdentity:      id.SourceIdentity,
		}
		return u, last // Event history names an assumed role by its session
	case resource == "root":
		u.Type, u.PrincipalID = "Root", account
		return u, "root"
	case strings.HasPrefix(resource, "federated-user/"):
		u.Type = "FederatedUser"
		return u, last
	default:
		u.Type = "Unknown"
		return u, last
	}
}

// marshalJSON renders v as CloudTrail would, without escaping <, > and &.
// Only maps, strings, numbers and booleans go in, so it cannot fail; it
// says so loudly if it does.
func marshalJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("ec2sim: encode CloudTrail JSON: %v", err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
