package ec2sim

// sts:AssumeRole. Any identity the server knows may assume any role of the
// simulator's account (Options.AccountID), unless AllowAssume restricts
// the role; there are no trust or permission policies beyond that, no
// role catalogue (a well-formed role ARN names a role), and no role
// MaxSessionDuration (DurationSeconds may be anything from 900 to 43200).
// The credentials it issues are added as an identity, so calls signed
// with them are checked, attributed to the assumed role (with its source
// identity) and refused once they expire on Options.Now.

import (
	"encoding/xml"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	defaultAssumeDuration = time.Hour
	minAssumeSeconds      = 900
	maxAssumeSeconds      = 43200
	stsTimeFormat         = "2006-01-02T15:04:05Z"
)

var (
	assumeRoleARNPattern = regexp.MustCompile(`^arn:(aws|aws-cn|aws-us-gov):iam::([0-9]{12}):role/((?:[\w+=,.@-]+/)*)([\w+=,.@-]{1,64})$`)
	sessionNamePattern   = regexp.MustCompile(`^[\w+=,.@-]*$`)
)

// stsCall is one STS request as AssumeRole sees it.
type stsCall struct {
	region, requestID, sourceIP, userAgent string
	caller                                 Identity
}

// AllowAssume restricts who may assume roleARN to the identities whose
// ARNs are callerARNs; others are refused with AccessDenied. Calling it
// again for a role replaces its list; a role never named may be assumed by
// any identity the server knows.
func (s *Server) AllowAssume(roleARN string, callerARNs ...string) {
	s.lock()
	defer s.unlock()
	if s.assumable == nil {
		s.assumable = map[string][]string{}
	}
	s.assumable[roleARN] = slices.Clone(callerARNs)
}

// assumeRole checks an AssumeRole request as STS does and issues
// credentials; it records the call in CloudTrail either way.
func (s *Server) assumeRole(c stsCall, p map[string][]string) ([]byte, *apiError) {
	get := func(k string) (string, bool) {
		v, ok := p[k]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[0], true
	}
	roleARN, hasRole := get("RoleArn")
	session, hasSession := get("RoleSessionName")
	source, hasSource := get("SourceIdentity")
	durStr, hasDur := get("DurationSeconds")
	req := map[string]any{"roleArn": roleARN, "roleSessionName": session}
	if hasSource {
		req["sourceIdentity"] = source
	}
	duration := defaultAssumeDuration
	if hasDur {
		req["durationSeconds"] = durStr
	}
	invalid := func(member, value, constraint string) *apiError {
		v := "null"
		if value != nullValue {
			v = "'" + value + "'"
		}
		return errf(CodeSTSValidation, "1 validation error detected: Value %s at '%s' failed to satisfy constraint: %s", v, member, constraint)
	}
	var m []string
	var aerr *apiError
	switch {
	case !hasRole:
		aerr = invalid("roleArn", nullValue, "Member must not be null")
	case len(roleARN) < 20 || len(roleARN) > 2048:
		aerr = invalid("roleArn", roleARN, "Member must have length between 20 and 2048")
	case !hasSession:
		aerr = invalid("roleSessionName", nullValue, "Member must not be null")
	case len(session) < 2 || len(session) > 64:
		aerr = invalid("roleSessionName", session, "Member must have length between 2 and 64")
	case !sessionNamePattern.MatchString(session):
		aerr = invalid("roleSessionName", session, `Member must satisfy regular expression pattern: [\w+=,.@-]*`)
	case hasSource && (len(source) < 2 || len(source) > 64):
		aerr = invalid("sourceIdentity", source, "Member must have length between 2 and 64")
	case hasSource && !sessionNamePattern.MatchString(source):
		aerr = invalid("sourceIdentity", source, `Member must satisfy regular expression pattern: [\w+=,.@-]*`)
	case hasSource && strings.HasPrefix(strings.ToLower(source), "aws:"):
		aerr = errf(CodeSTSValidation, "SourceIdentity must not begin with the reserved prefix aws:")
	}
	if aerr == nil && hasDur {
		n, err := strconv.Atoi(durStr)
		switch {
		case err != nil:
			aerr = invalid("durationSeconds", durStr, "Member must be an integer")
		case n < minAssumeSeconds:
			aerr = invalid("durationSeconds", durStr, "Member must have value greater than or equal to 900")
		case n > maxAssumeSeconds:
			aerr = invalid("durationSeconds", durStr, "Member must have value less than or equal to 43200")
		}
		duration = time.Duration(n) * time.Second
	}
	if aerr == nil {
		if m = assumeRoleARNPattern.FindStringSubmatch(roleARN); m == nil {
			aerr = errf(CodeSTSValidation, "%s is invalid", roleARN)
		}
	}
	// A session that already has a source identity passes it on and
	// cannot change it, as in role chaining.
	if aerr == nil && c.caller.SourceIdentity != "" {
		if hasSource && source != c.caller.SourceIdentity {
			aerr = errf(CodeAccessDenied, "User: %s is not authorized to change its source identity from %s to %s",
				c.caller.ARN, c.caller.SourceIdentity, source)
		}
		source = c.caller.SourceIdentity
	}

	s.lock()
	defer s.unlock()
	if aerr == nil {
		allowed, restricted := s.assumable[roleARN]
		if m[2] != s.accountID() || restricted && !slices.Contains(allowed, c.caller.ARN) {
			aerr = errf(CodeAccessDenied, "User: %s is not authorized to perform: sts:AssumeRole on resource: %s", c.caller.ARN, roleARN)
		}
	}
	if aerr != nil {
		s.recordSTS(c, req, nil, roleARN, aerr)
		return nil, aerr
	}
	partition, account, roleName := m[1], m[2], m[4]
	arn := "arn:" + partition + ":sts::" + account + ":assumed-role/" + roleName + "/" + session
	id := Identity{
		AccessKeyID:     "ASIA" + strings.ToUpper(strings.TrimPrefix(s.secrets.resource("k"), "k-"))[:16],
		SecretAccessKey: s.secrets.token(30),
		SessionToken:    s.secrets.token(180),
		ARN:             arn,
		UserID:          deriveUserID(arn),
		SourceIdentity:  source,
		Expires:         s.now().UTC().Add(duration).Truncate(time.Second),
	}
	identities := maps.Clone(s.identities) // copy on write, as AddIdentity
	if identities == nil {
		identities = map[string]Identity{}
	}
	identities[id.AccessKeyID] = id
	s.identities = identities

	resp := map[string]any{
		"credentials":     map[string]any{"accessKeyId": id.AccessKeyID, "expiration": id.Expires.Format(stsTimeFormat)},
		"assumedRoleUser": map[string]any{"assumedRoleId": id.UserID, "arn": arn},
	}
	if source != "" {
		resp["sourceIdentity"] = source
	}
	s.recordSTS(c, req, resp, roleARN, nil)

	type credentials struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string `xml:"SecretAccessKey"`
		SessionToken    string `xml:"SessionToken"`
		Expiration      string `xml:"Expiration"`
	}
	type result struct {
		Credentials    credentials `xml:"Credentials"`
		AssumedRoleID  string      `xml:"AssumedRoleUser>AssumedRoleId"`
		AssumedRoleARN string      `xml:"AssumedRoleUser>Arn"`
		SourceIdentity string      `xml:"SourceIdentity,omitempty"`
	}
	type response struct {
		XMLName   xml.Name `xml:"AssumeRoleResponse"`
		NS        string   `xml:"xmlns,attr"`
		Result    result   `xml:"AssumeRoleResult"`
		RequestID string   `xml:"ResponseMetadata>RequestId"`
	}
	return encodeSTS(response{NS: STSNamespace, RequestID: c.requestID, Result: result{
		Credentials:   credentials{id.AccessKeyID, id.SecretAccessKey, id.SessionToken, id.Expires.Format(stsTimeFormat)},
		AssumedRoleID: id.UserID, AssumedRoleARN: arn, SourceIdentity: source,
	}}), nil
}

// recordSTS records an STS call; response nil and aerr set when it failed.
// Caller holds s.mu.
func (s *Server) recordSTS(c stsCall, request, response map[string]any, roleARN string, aerr *apiError) {
	tc := trailCall{
		region: c.region, source: STSEventSource, name: "AssumeRole", accessKeyID: c.caller.AccessKeyID,
		sourceIP: c.sourceIP, userAgent: c.userAgent, requestID: c.requestID, readOnly: true,
		request: request, response: response,
	}
	if roleARN != "" {
		tc.resources = []trailResource{{ResourceType: "AWS::IAM::Role", ResourceName: roleARN}}
	}
	if aerr != nil {
		tc.response, tc.errorCode, tc.errorMessage = nil, aerr.Code, aerr.Message
	}
	s.appendTrail(tc)
}
