package ec2sim

// CloudTrail's LookupEvents over the AWS JSON 1.1 protocol: POST / with
// X-Amz-Target: CloudTrail_20131101.LookupEvents and a JSON body; errors
// are {"__type": code, "message": text}.

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CloudTrailTarget prefixes the X-Amz-Target of CloudTrail's operations.
const CloudTrailTarget = "CloudTrail_20131101."

// CloudTrail error codes the simulator returns, spelled as CloudTrail
// spells them.
const (
	CodeCTInvalidEventCategory    = "InvalidEventCategoryException"
	CodeCTInvalidLookupAttributes = "InvalidLookupAttributesException"
	CodeCTInvalidMaxResults       = "InvalidMaxResultsException"
	CodeCTInvalidNextToken        = "InvalidNextTokenException"
	CodeCTInvalidTimeRange        = "InvalidTimeRangeException"
	CodeCTInvalidSignature        = "InvalidSignatureException"
	CodeCTIncompleteSignature     = "IncompleteSignatureException"
	CodeCTUnrecognizedClient      = "UnrecognizedClientException"
	CodeCTMissingAuthToken        = "MissingAuthenticationTokenException"
	CodeCTSerialization           = "SerializationException"
	CodeCTUnknownOperation        = "UnknownOperationException"
	CodeCTThrottling              = "ThrottlingException"
	CodeCTInternalFailure         = "InternalFailure"
)

// lookupKeys are LookupEvents' attribute keys.
var lookupKeys = []string{"EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource", "AccessKeyId"}

const (
	defaultLookupResults = 50
	ctTokenPrefix        = "ec2sim-ct1:"
)

type lookupAttribute struct {
	AttributeKey   *string `json:"AttributeKey"`
	AttributeValue *string `json:"AttributeValue"`
}

type lookupEventsInput struct {
	LookupAttributes []lookupAttribute `json:"LookupAttributes"`
	StartTime        *float64          `json:"StartTime"`
	EndTime          *float64          `json:"EndTime"`
	EventCategory    string            `json:"EventCategory"`
	MaxResults       *int              `json:"MaxResults"`
	NextToken        *string           `json:"NextToken"`
}

type lookupEvent struct {
	EventID         string          `json:"EventId"`
	EventName       string          `json:"EventName"`
	ReadOnly        string          `json:"ReadOnly"`
	AccessKeyID     string          `json:"AccessKeyId,omitempty"`
	EventTime       int64           `json:"EventTime"` // epoch seconds
	EventSource     string          `json:"EventSource"`
	Username        string          `json:"Username,omitempty"`
	Resources       []trailResource `json:"Resources"`
	CloudTrailEvent string          `json:"CloudTrailEvent"`
}

type lookupEventsOutput struct {
	Events    []lookupEvent `json:"Events"`
	NextToken string        `json:"NextToken,omitempty"`
}

// serveCloudTrail answers r if it is a CloudTrail request, and reports
// whether it was. Faults apply to its operations as to EC2's actions; a
// lost response is a server error, since looking up changes nothing.
func (s *Server) serveCloudTrail(w http.ResponseWriter, r *http.Request) bool {
	j, ok := s.beginJSON(w, r, CloudTrailTarget)
	if !ok {
		return false
	}
	if !j.answer {
		return true
	}
	op, body, readErr, requestID, fault, identities := j.op, j.body, j.readErr, j.requestID, j.fault, j.identities
	var out []byte
	var aerr *apiError
	switch {
	case readErr != nil:
		aerr = errf(CodeCTSerialization, "The request body could not be read: %v", readErr)
	case fault == faultThrottle:
		aerr = errf(CodeCTThrottling, "Rate exceeded")
	case fault == faultServerError, fault == faultLostResponse:
		aerr = errf(CodeCTInternalFailure, "An internal error has occurred. (injected by ec2sim)")
	default:
		out, aerr = s.cloudTrailOperation(op, r, body, identities)
	}
	region, key := credentialScope(r)
	if aerr != nil {
		s.log().Debug("cloudtrail request", "operation", op, "region", region, "access_key_id", key,
			"request_id", requestID, "error", aerr.Code, "message", aerr.Message)
		w.WriteHeader(cloudTrailStatus(aerr.Code))
		out = marshalJSON(map[string]string{"__type": aerr.Code, "message": aerr.Message})
	} else {
		s.log().Debug("cloudtrail request", "operation", op, "region", region, "access_key_id", key, "request_id", requestID)
	}
	_, _ = w.Write(out)
	return true
}

// cloudTrailOperation checks r's signature when it is signed with a key
// added with AddIdentity (others are accepted unchecked, as EC2 here
// accepts them), then runs operation op.
func (s *Server) cloudTrailOperation(op string, r *http.Request, body []byte, identities map[string]Identity) ([]byte, *apiError) {
	if sig, err := parseSigV4(r, "cloudtrail"); err == nil {
		if _, known := identities[sig.accessKeyID]; known {
			if _, aerr := s.verifySigV4(r, body, identities, "cloudtrail"); aerr != nil {
				return nil, jsonAuthError(aerr)
			}
		}
	}
	if op != "LookupEvents" && trailOperations[op] == nil {
		return nil, errf(CodeCTUnknownOperation, "The operation %s is not supported by ec2sim.", op)
	}
	if r.Method != http.MethodPost {
		return nil, errf(CodeCTSerialization, "CloudTrail operations are POST requests.")
	}
	if aerr := s.cloudTrailDenied(op); aerr != nil {
		return nil, aerr
	}
	if out, aerr, ok := s.trailOperation(op, credentialRegion(r), body); ok {
		return out, aerr
	}
	var in lookupEventsInput
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, errf(CodeCTSerialization, "The request body is not valid: %v", err)
		}
	}
	region, _ := credentialScope(r)
	out, aerr := s.lookupEvents(region, in)
	if aerr != nil {
		return nil, aerr
	}
	return marshalJSON(out), nil
}

// lookupQuery is a validated LookupEvents request.
type lookupQuery struct {
	key, value  string
	start, end  time.Time // zero when not given
	insight     bool
	max         int
	after       int64  // return events before this seq; 0 means from the newest
	fingerprint string // of the parameters, which a NextToken must repeat
}

// parseLookup validates a LookupEvents request as CloudTrail does.
func parseLookup(region string, in lookupEventsInput) (lookupQuery, *apiError) {
	q := lookupQuery{max: defaultLookupResults}
	switch n := len(in.LookupAttributes); {
	case n > 1:
		return q, errf(CodeCTInvalidLookupAttributes, "You can specify only one lookup attribute; %d were given.", n)
	case n == 1:
		a := in.LookupAttributes[0]
		if a.AttributeKey == nil || !slices.Contains(lookupKeys, *a.AttributeKey) {
			return q, errf(CodeCTInvalidLookupAttributes, "The lookup attribute key must be one of %s.", strings.Join(lookupKeys, ", "))
		}
		if a.AttributeValue == nil || *a.AttributeValue == "" || len(*a.AttributeValue) > 2000 {
			return q, errf(CodeCTInvalidLookupAttributes, "The value of lookup attribute %s must be 1 to 2000 characters.", *a.AttributeKey)
		}
		q.key, q.value = *a.AttributeKey, *a.AttributeValue
		if q.key == "ReadOnly" && q.value != "true" && q.value != "false" {
			return q, errf(CodeCTInvalidLookupAttributes, "The value of lookup attribute ReadOnly must be true or false.")
		}
	}
	switch in.EventCategory {
	case "":
	case "insight":
		q.insight = true
	default:
		return q, errf(CodeCTInvalidEventCategory, "The event category %q is not valid; the only one is insight.", in.EventCategory)
	}
	if in.StartTime != nil {
		q.start = epochTime(*in.StartTime)
	}
	if in.EndTime != nil {
		q.end = epochTime(*in.EndTime)
	}
	if !q.start.IsZero() && !q.end.IsZero() && q.start.After(q.end) {
		return q, errf(CodeCTInvalidTimeRange, "Start time must be before end time.")
	}
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > defaultLookupResults {
			return q, errf(CodeCTInvalidMaxResults, "MaxResults must be from 1 to %d; got %d.", defaultLookupResults, *in.MaxResults)
		}
		q.max = *in.MaxResults
	}
	// A token is good only for the query that issued it, as in CloudTrail.
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s\x00%s\x00%s",
		region, q.key, q.value, formatOptional(q.start), formatOptional(q.end), in.EventCategory))
	q.fingerprint = hex.EncodeToString(sum[:6])
	if in.NextToken != nil && *in.NextToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(*in.NextToken)
		rest, ok := strings.CutPrefix(string(raw), ctTokenPrefix)
		seqStr, fp, _ := strings.Cut(rest, ":")
		seq, serr := strconv.ParseInt(seqStr, 10, 64)
		if err != nil || !ok || serr != nil || seq < 1 || fp != q.fingerprint {
			return q, errf(CodeCTInvalidNextToken, "Invalid NextToken: it must come from a LookupEvents call with the same parameters.")
		}
		q.after = seq
	}
	return q, nil
}

// lookupEvents answers LookupEvents for region: the visible events that
// match, newest first, a page at a time.
func (s *Server) lookupEvents(region string, in lookupEventsInput) (lookupEventsOutput, *apiError) {
	out := lookupEventsOutput{Events: []lookupEvent{}}
	q, aerr := parseLookup(region, in)
	if aerr != nil || q.insight {
		return out, aerr // the simulator records no Insights events
	}
	s.lock()
	defer s.unlock()
	now := s.now()
	start := len(s.trail) - 1 // trail[i].seq is i+1
	if q.after > 0 {
		start = min(start, int(q.after)-2)
	}
	var lastSeq int64
	for i := start; i >= 0; i-- {
		ev := s.trail[i]
		if ev.region != region || now.Before(ev.visibleAt) || !q.matches(ev) {
			continue
		}
		if len(out.Events) == q.max {
			out.NextToken = base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s%d:%s", ctTokenPrefix, lastSeq, q.fingerprint))
			break
		}
		out.Events = append(out.Events, ev.lookupEvent())
		lastSeq = ev.seq
	}
	return out, nil
}

func (q lookupQuery) matches(ev *trailEvent) bool {
	if !q.start.IsZero() && ev.time.Before(q.start) || !q.end.IsZero() && ev.time.After(q.end) {
		return false
	}
	switch q.key {
	case "":
		return true
	case "EventId":
		return ev.id == q.value
	case "EventName":
		return ev.name == q.value
	case "ReadOnly":
		return q.value == strconv.FormatBool(ev.readOnly)
	case "Username":
		return ev.username == q.value
	case "AccessKeyId":
		return ev.accessKeyID == q.value
	case "EventSource":
		return q.value == ev.source
	}
	for _, r := range ev.resources {
		if q.key == "ResourceName" && r.ResourceName == q.value || q.key == "ResourceType" && r.ResourceType == q.value {
			return true
		}
	}
	return false
}

func (ev *trailEvent) lookupEvent() lookupEvent {
	res := append([]trailResource{}, ev.resources...)
	return lookupEvent{
		EventID: ev.id, EventName: ev.name, ReadOnly: strconv.FormatBool(ev.readOnly), AccessKeyID: ev.accessKeyID,
		EventTime: ev.time.Unix(), EventSource: ev.source, Username: ev.username,
		Resources: res, CloudTrailEvent: ev.record,
	}
}

func formatOptional(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// epochTime converts JSON 1.1's epoch seconds to a time.
func epochTime(sec float64) time.Time {
	whole, frac := math.Modf(sec)
	return time.Unix(int64(whole), int64(frac*1e9)).UTC()
}

// jsonAuthError renames a SigV4 failure to the JSON protocol's code, which
// CloudTrail and Systems Manager share.
func jsonAuthError(e *apiError) *apiError {
	codes := map[string]string{
		CodeExpiredToken:               CodeSSMExpiredToken,
		CodeIncompleteSignature:        CodeCTIncompleteSignature,
		CodeInvalidClientTokenID:       CodeCTUnrecognizedClient,
		CodeMissingAuthenticationToken: CodeCTMissingAuthToken,
		CodeSignatureDoesNotMatch:      CodeCTInvalidSignature,
	}
	return &apiError{Code: codes[e.Code], Message: e.Message}
}

// cloudTrailStatus is the HTTP status CloudTrail sends with code.
func cloudTrailStatus(code string) int {
	switch code {
	case CodeCTInvalidSignature, CodeCTUnrecognizedClient, CodeCTMissingAuthToken, CodeCTIncompleteSignature, CodeSSMExpiredToken:
		return http.StatusForbidden
	case CodeCTInternalFailure:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}
