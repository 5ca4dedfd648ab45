package ec2sim

// AWS Systems Manager over the AWS JSON 1.1 protocol: POST / with
// X-Amz-Target: AmazonSSM.ACTION and a JSON body; errors are
// {"__type": code, "Message": text}. Only Session Manager's actions and
// DescribeInstanceInformation are served (ssm_sessions.go, ssm_agent.go).
// Unlike EC2 here, every request must be signed, with SigV4 for service
// "ssm", by an identity the server knows, as STS's are: sessions are
// named after their caller.

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"
)

// SSMTarget prefixes the X-Amz-Target of Systems Manager's actions.
const SSMTarget = "AmazonSSM."

// Systems Manager error codes the simulator returns, spelled as SSM
// spells them. Authentication failures use the JSON protocol's common
// codes (UnrecognizedClientException, InvalidSignatureException, …), as
// CloudTrail's do.
const (
	CodeSSMDoesNotExist              = "DoesNotExistException"
	CodeSSMExpiredToken              = "ExpiredTokenException"
	CodeSSMInternalServerError       = "InternalServerError"
	CodeSSMInvalidDocument           = "InvalidDocument"
	CodeSSMInvalidFilterKey          = "InvalidFilterKey"
	CodeSSMInvalidInstanceID         = "InvalidInstanceId"
	CodeSSMInvalidInstanceInfoFilter = "InvalidInstanceInformationFilterValue"
	CodeSSMInvalidNextToken          = "InvalidNextToken"
	CodeSSMInvalidParameters         = "InvalidParameters"
	CodeSSMTargetNotConnected        = "TargetNotConnected"
	CodeSSMThrottling                = "ThrottlingException"
	CodeSSMValidation                = "ValidationException"
)

// ssmCall is one SSM request as the actions see it.
type ssmCall struct {
	op, region, requestID string
	caller                Identity
	sourceIP, userAgent   string
	streamBase            string // ws://HOST or wss://HOST, for StreamUrls
}

// jsonCall is a JSON 1.1 request (X-Amz-Target SERVICE.OP) as every
// such service of the simulator first takes it.
type jsonCall struct {
	op         string
	body       []byte
	readErr    error
	requestID  string
	fault      faultKind
	identities map[string]Identity
	answer     bool // false: the client left during an injected delay
}

// beginJSON takes r if its target has prefix: it reads the body, counts
// the call, draws a fault, and sets the headers every answer has. ok is
// false for a request of another service.
func (s *Server) beginJSON(w http.ResponseWriter, r *http.Request, prefix string) (jsonCall, bool) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), prefix)
	if !ok {
		return jsonCall{}, false
	}
	j := jsonCall{op: op}
	j.body, j.readErr = io.ReadAll(r.Body)
	var latency time.Duration
	s.lock()
	j.requestID = s.ids.request()
	s.calls[op]++
	j.fault, latency = s.drawFault(op)
	j.identities = s.identities
	s.unlock()
	w.Header().Set("x-amzn-RequestId", j.requestID)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	j.answer = latency <= 0 || wait(r.Context(), latency)
	return j, true
}

// serveSSM answers r if it is a Systems Manager request, and reports
// whether it was. Faults apply as to EC2's actions: a lost response has
// taken effect but answers InternalServerError.
func (s *Server) serveSSM(w http.ResponseWriter, r *http.Request) bool {
	j, ok := s.beginJSON(w, r, SSMTarget)
	if !ok {
		return false
	}
	if !j.answer {
		return true
	}
	op, body, readErr, requestID, fault, identities := j.op, j.body, j.readErr, j.requestID, j.fault, j.identities
	region, key := credentialScope(r)
	scheme := "ws"
	if r.TLS != nil {
		scheme = "wss"
	}
	c := &ssmCall{op: op, region: region, requestID: requestID, sourceIP: clientIP(r), userAgent: r.UserAgent(),
		streamBase: scheme + "://" + r.Host}
	var out []byte
	var aerr *apiError
	switch {
	case readErr != nil:
		aerr = errf(CodeCTSerialization, "The request body could not be read: %v", readErr)
	case fault == faultThrottle:
		aerr = errf(CodeSSMThrottling, "Rate exceeded")
	case fault == faultServerError:
		aerr = errf(CodeSSMInternalServerError, "An internal error has occurred. (injected by ec2sim)")
	default:
		id, serr := s.verifySigV4(r, body, identities, "ssm")
		if serr != nil {
			aerr = jsonAuthError(serr)
			break
		}
		c.caller = id
		out, aerr = s.ssmOperation(c, body)
		if fault == faultLostResponse {
			out, aerr = nil, errf(CodeSSMInternalServerError, "An internal error has occurred. (response lost, injected by ec2sim)")
		}
	}
	if aerr != nil {
		s.log().Debug("ssm request", "operation", op, "region", region, "access_key_id", key,
			"request_id", requestID, "error", aerr.Code, "message", aerr.Message)
		w.WriteHeader(ssmStatus(aerr.Code))
		out = ssmErrorBody(aerr)
	} else {
		s.log().Debug("ssm request", "operation", op, "region", region, "access_key_id", key, "request_id", requestID)
	}
	_, _ = w.Write(out)
	return true
}

// ssmOperation decodes body and runs operation c.op.
func (s *Server) ssmOperation(c *ssmCall, body []byte) ([]byte, *apiError) {
	decode := func(v any) *apiError {
		if len(strings.TrimSpace(string(body))) == 0 {
			return nil
		}
		if err := json.Unmarshal(body, v); err != nil {
			return errf(CodeCTSerialization, "The request body is not valid JSON for %s: %v", c.op, err)
		}
		return nil
	}
	// Deny refuses any SSM action named as IAM names it (ssm:…), as IAM
	// does before SSM reads the request.
	s.lock()
	denied := s.deniedLocked("ssm:" + c.op)
	s.unlock()
	if denied {
		return nil, errf(CodeCTAccessDenied, "User: %s is not authorized to perform: ssm:%s (denied by ec2sim)", c.caller.ARN, c.op)
	}
	var out any
	var aerr *apiError
	switch c.op {
	case "StartSession":
		var in startSessionInput
		if aerr = decode(&in); aerr == nil {
			out, aerr = s.startSession(c, in)
		}
	case "TerminateSession":
		var in sessionIDInput
		if aerr = decode(&in); aerr == nil {
			out, aerr = s.terminateSession(c, in)
		}
	case "ResumeSession":
		var in sessionIDInput
		if aerr = decode(&in); aerr == nil {
			out, aerr = s.resumeSession(c, in)
		}
	case "DescribeSessions":
		var in describeSessionsInput
		if aerr = decode(&in); aerr == nil {
			out, aerr = s.describeSessions(c, in)
		}
	case "DescribeInstanceInformation":
		var in describeInstanceInfoInput
		if aerr = decode(&in); aerr == nil {
			out, aerr = s.describeInstanceInformation(c, in)
		}
	default:
		return nil, errf(CodeCTUnknownOperation, "The operation %s is not modelled by ec2sim.", c.op)
	}
	if aerr != nil {
		return nil, aerr
	}
	return marshalJSON(out), nil
}

// ssmLowerMessage are the codes whose message member SSM spells
// "message"; its own exceptions mostly spell it "Message".
var ssmLowerMessage = map[string]bool{
	CodeSSMInvalidInstanceInfoFilter: true,
	CodeSSMValidation:                true,
	CodeSSMThrottling:                true,
	CodeSSMExpiredToken:              true,
	CodeCTSerialization:              true,
	CodeCTUnknownOperation:           true,
	CodeCTUnrecognizedClient:         true,
	CodeCTInvalidSignature:           true,
	CodeCTIncompleteSignature:        true,
	CodeCTMissingAuthToken:           true,
	CodeCTAccessDenied:               true,
}

func ssmErrorBody(e *apiError) []byte {
	key := "Message"
	if ssmLowerMessage[e.Code] {
		key = "message"
	}
	return marshalJSON(map[string]string{"__type": e.Code, key: e.Message})
}

// ssmStatus is the HTTP status SSM sends with code.
func ssmStatus(code string) int {
	switch code {
	case CodeCTUnrecognizedClient, CodeCTInvalidSignature, CodeCTIncompleteSignature, CodeCTMissingAuthToken, CodeSSMExpiredToken:
		return http.StatusForbidden
	case CodeSSMInternalServerError:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// validationErr is the JSON services' ValidationException, worded as
// AWS words a failed model constraint.
func validationErr(member, value, constraint string) *apiError {
	v := "null"
	if value != "\x00" {
		v = "'" + value + "'"
	}
	return errf(CodeSSMValidation, "1 validation error detected: Value %s at '%s' failed to satisfy constraint: %s", v, member, constraint)
}

// nullValue stands for a missing member in validationErr.
const nullValue = "\x00"
