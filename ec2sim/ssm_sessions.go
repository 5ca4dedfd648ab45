package ec2sim

// Session Manager's sessions: StartSession, TerminateSession,
// ResumeSession and DescribeSessions. A session is Connected from the
// moment it starts (the simulator does not wait for the client to open
// its data channel) until TerminateSession or EndSession; there is no
// idle timeout and no maximum duration.

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Session statuses, as DescribeSessions reports them.
const (
	statusConnected   = "Connected"
	statusConnecting  = "Connecting"
	statusDisconnect  = "Disconnected"
	statusTerminated  = "Terminated"
	statusTerminating = "Terminating"
	statusFailed      = "Failed"
)

// DefaultSessionDocument is the document of a session started without one:
// an interactive shell.
const DefaultSessionDocument = "SSM-SessionManagerRunShell"

// sessionDocuments are the Session Manager documents the simulator knows,
// with the parameters each takes and their defaults ("" for none).
var sessionDocuments = map[string]map[string]string{
	DefaultSessionDocument:                       {},
	"AWS-StartPortForwardingSession":             {"portNumber": "80", "localPortNumber": "0"},
	"AWS-StartPortForwardingSessionToRemoteHost": {"host": "", "portNumber": "80", "localPortNumber": "0"},
	"AWS-StartSSHSession":                        {"portNumber": "22"},
	"AWS-StartInteractiveCommand":                {"command": ""},
}

// requiredParams are the parameters a document cannot do without.
var requiredParams = map[string][]string{
	"AWS-StartPortForwardingSessionToRemoteHost": {"host"},
	"AWS-StartInteractiveCommand":                {"command"},
}

const (
	ssmTokenPrefix        = "ec2sim-ssm1:"
	defaultSessionResults = 20
	maxSessionResults     = 200
	sessionTokenBytes     = 96
)

var documentNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_\-.:/]{3,128}$`)

type ssmSession struct {
	seq                                 int64
	id, token, region, target, document string
	owner, reason, status, streamURL    string
	params                              map[string][]string
	start, end                          time.Time
}

func (ss *ssmSession) active() bool {
	return ss.status != statusTerminated && ss.status != statusFailed
}

// Session is a snapshot of one Session Manager session, for tests.
type Session struct {
	ID           string
	Region       string
	Target       string // instance ID
	DocumentName string
	// Parameters are the document's parameters, defaults filled in.
	Parameters map[string][]string
	Owner      string // the caller's ARN
	Reason     string
	Status     string    // Connected, or Terminated once ended
	StreamURL  string    // ws://HOST/v1/data-channel/ID?role=publish_subscribe
	StartDate  time.Time // on Options.Now
	EndDate    time.Time // zero while active
}

// Sessions returns the sessions started in region ("" for every region),
// active and ended, in the order they started.
func (s *Server) Sessions(region string) []Session {
	s.lock()
	defer s.unlock()
	var list []*ssmSession
	for _, ss := range s.sessions {
		if region == "" || ss.region == region {
			list = append(list, ss)
		}
	}
	sortBySeq(list, func(ss *ssmSession) int64 { return ss.seq })
	out := make([]Session, len(list))
	for i, ss := range list {
		out[i] = Session{
			ID: ss.id, Region: ss.region, Target: ss.target, DocumentName: ss.document,
			Parameters: cloneParams(ss.params), Owner: ss.owner, Reason: ss.reason, Status: ss.status,
			StreamURL: ss.streamURL, StartDate: ss.start, EndDate: ss.end,
		}
	}
	return out
}

type startSessionInput struct {
	Target       *string
	DocumentName *string
	Parameters   map[string][]string
	Reason       *string
}

type sessionIDInput struct {
	SessionID *string `json:"SessionId"`
}

type sessionOutput struct {
	SessionID  string `json:"SessionId"`
	TokenValue string `json:"TokenValue,omitempty"`
	StreamURL  string `json:"StreamUrl,omitempty"`
}

// startSession checks a StartSession request in the order SSM does (the
// model's constraints, then the document, then the target) and starts
// the session.
func (s *Server) startSession(c *ssmCall, in startSessionInput) (sessionOutput, *apiError) {
	doc, params, aerr := checkStartSession(in)
	if aerr == nil {
		return s.openSession(c, in, doc, params)
	}
	s.lock()
	defer s.unlock()
	s.recordStartSession(c, in, doc, nil, aerr)
	return sessionOutput{}, aerr
}

func checkStartSession(in startSessionInput) (doc string, params map[string][]string, aerr *apiError) {
	switch {
	case in.Target == nil:
		return "", nil, validationErr("target", nullValue, "Member must not be null")
	case *in.Target == "" || len(*in.Target) > 400:
		return "", nil, validationErr("target", *in.Target, "Member must have length between 1 and 400")
	case in.Reason != nil && (len(*in.Reason) > 256 || *in.Reason == ""):
		return "", nil, validationErr("reason", *in.Reason, "Member must have length between 1 and 256")
	}
	doc = DefaultSessionDocument
	if in.DocumentName != nil {
		doc = *in.DocumentName
		if !documentNamePattern.MatchString(doc) {
			return "", nil, validationErr("documentName", doc, `Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\-.:/]{3,128}$`)
		}
	}
	defaults, ok := sessionDocuments[doc]
	if !ok {
		return doc, nil, errf(CodeSSMInvalidDocument, "Document %s does not exist in your account.", doc)
	}
	params, aerr = sessionParams(doc, defaults, in.Parameters)
	return doc, params, aerr
}

// sessionParams checks the parameters against doc's and fills in its
// defaults. Every parameter takes one value; ports are numbers, 1 to
// 65535 (0 for localPortNumber, which then picks a free port).
func sessionParams(doc string, defaults map[string]string, given map[string][]string) (map[string][]string, *apiError) {
	out := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(given)) {
		vals := given[name]
		if _, ok := defaults[name]; !ok {
			return nil, errf(CodeSSMInvalidParameters, "Parameter %q is not defined in document %s.", name, doc)
		}
		if len(vals) != 1 {
			return nil, errf(CodeSSMInvalidParameters, "Parameter %q of document %s takes one value; %d were given.", name, doc, len(vals))
		}
		if name == "portNumber" || name == "localPortNumber" {
			low := 1
			if name == "localPortNumber" {
				low = 0
			}
			if n, err := strconv.Atoi(vals[0]); err != nil || n < low || n > 65535 || strconv.Itoa(n) != vals[0] {
				return nil, errf(CodeSSMInvalidParameters, "Parameter %q has value %q, which is not a port number from %d to 65535.", name, vals[0], low)
			}
		}
		out[name] = []string{vals[0]}
	}
	for _, name := range requiredParams[doc] {
		if v := out[name]; len(v) == 0 || v[0] == "" {
			return nil, errf(CodeSSMInvalidParameters, "Parameter %q is required by document %s.", name, doc)
		}
	}
	for name, def := range defaults {
		if _, ok := out[name]; !ok && def != "" {
			out[name] = []string{def}
		}
	}
	return out, nil
}

// openSession starts a checked session if its target is connected.
func (s *Server) openSession(c *ssmCall, in startSessionInput, doc string, params map[string][]string) (sessionOutput, *apiError) {
	s.lock()
	defer s.unlock()
	target := *in.Target
	if err := s.targetConnected(c.region, target); err != nil {
		aerr := errf(CodeSSMTargetNotConnected, "%s is not connected.", target)
		s.recordStartSession(c, in, doc, nil, aerr)
		return sessionOutput{}, aerr
	}
	user := callerName(c.caller.ARN)
	ss := &ssmSession{
		seq: s.nextSeq(), id: s.secrets.resource(user), token: s.secrets.token(sessionTokenBytes),
		region: c.region, target: target, document: doc, owner: c.caller.ARN, reason: deref(in.Reason),
		status: statusConnected, params: params, start: s.now().UTC(),
	}
	ss.streamURL = c.streamBase + dataChannelPrefix + ss.id + "?role=publish_subscribe"
	s.sessions[ss.id] = ss
	out := sessionOutput{SessionID: ss.id, TokenValue: ss.token, StreamURL: ss.streamURL}
	s.recordStartSession(c, in, doc, &out, nil)
	return out, nil
}

// callerName is what SSM names sessions after: an IAM user's name, an
// assumed role's session name, the last part of any other ARN.
func callerName(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	resource := parts[len(parts)-1]
	return resource[strings.LastIndex(resource, "/")+1:]
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func checkSessionID(in sessionIDInput) *apiError {
	switch {
	case in.SessionID == nil:
		return validationErr("sessionId", nullValue, "Member must not be null")
	case *in.SessionID == "" || len(*in.SessionID) > 96:
		return validationErr("sessionId", *in.SessionID, "Member must have length between 1 and 96")
	}
	return nil
}

// terminateSession ends a session. It is idempotent, and, as the API
// reference lists no error but InternalServerError, an unknown ID is
// answered as a success too. The data channel is told after the lock is
// released, so that it may call the server.
func (s *Server) terminateSession(c *ssmCall, in sessionIDInput) (sessionOutput, *apiError) {
	if aerr := checkSessionID(in); aerr != nil {
		return sessionOutput{}, aerr
	}
	id := *in.SessionID
	s.lock()
	ss, ok := s.sessions[id]
	// Sessions are regional: another region's is not this one's to end.
	ended := ok && ss.active() && ss.region == c.region
	if ended {
		ss.status, ss.end = statusTerminated, s.now().UTC()
	}
	s.recordSSM(c, map[string]any{"sessionId": id}, map[string]any{"sessionId": id}, nil, nil)
	s.unlock()
	if ended {
		s.dataChannel().Terminate(id)
	}
	return sessionOutput{SessionID: id}, nil
}

// resumeSession issues a new token for an active session.
func (s *Server) resumeSession(c *ssmCall, in sessionIDInput) (sessionOutput, *apiError) {
	if aerr := checkSessionID(in); aerr != nil {
		return sessionOutput{}, aerr
	}
	id := *in.SessionID
	s.lock()
	defer s.unlock()
	ss, ok := s.sessions[id]
	if !ok || !ss.active() || ss.region != c.region {
		aerr := errf(CodeSSMDoesNotExist, "Session %s does not exist or is no longer active.", id)
		s.recordSSM(c, map[string]any{"sessionId": id}, nil, nil, aerr)
		return sessionOutput{}, aerr
	}
	ss.token = s.secrets.token(sessionTokenBytes)
	s.recordSSM(c, map[string]any{"sessionId": id}, map[string]any{"sessionId": id, "streamUrl": ss.streamURL}, nil, nil)
	return sessionOutput{SessionID: ss.id, TokenValue: ss.token, StreamURL: ss.streamURL}, nil
}

type sessionFilter struct {
	Key   *string `json:"key"`
	Value *string `json:"value"`
}

type describeSessionsInput struct {
	State      *string
	MaxResults *int
	NextToken  *string
	Filters    []sessionFilter
}

type sessionJSON struct {
	SessionID    string        `json:"SessionId"`
	Target       string        `json:"Target"`
	Status       string        `json:"Status"`
	StartDate    epochSeconds  `json:"StartDate"`
	EndDate      *epochSeconds `json:"EndDate,omitempty"`
	DocumentName string        `json:"DocumentName"`
	Owner        string        `json:"Owner"`
	Reason       string        `json:"Reason,omitempty"`
	AccessType   string        `json:"AccessType"`
}

type describeSessionsOutput struct {
	Sessions  []sessionJSON `json:"Sessions"`
	NextToken string        `json:"NextToken,omitempty"`
}

var sessionStatuses = []string{statusConnected, statusConnecting, statusDisconnect, statusTerminated, statusTerminating, statusFailed}

// describeSessions lists the region's Active or History sessions, newest
// first, with every filter applying (AND).
func (s *Server) describeSessions(c *ssmCall, in describeSessionsInput) (describeSessionsOutput, *apiError) {
	out := describeSessionsOutput{Sessions: []sessionJSON{}}
	var wantActive bool
	switch st := deref(in.State); {
	case in.State == nil:
		return out, validationErr("state", nullValue, "Member must not be null")
	case st == "Active":
		wantActive = true
	case st != "History":
		return out, validationErr("state", st, "Member must satisfy enum value set: [Active, History]")
	}
	limit := defaultSessionResults
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxSessionResults {
			return out, validationErr("maxResults", strconv.Itoa(*in.MaxResults), "Member must have value between 1 and 200")
		}
		limit = *in.MaxResults
	}
	if len(in.Filters) > 6 {
		return out, validationErr("filters", fmt.Sprint(len(in.Filters)), "Member must have length less than or equal to 6")
	}
	match, fp, aerr := sessionMatcher(in.Filters)
	if aerr != nil {
		return out, aerr
	}
	after, fingerprint, aerr := pageStart(in.NextToken, "DescribeSessions", c.region, deref(in.State), fp)
	if aerr != nil {
		return out, aerr
	}
	s.lock()
	defer s.unlock()
	var list []*ssmSession
	for _, ss := range s.sessions {
		if ss.region == c.region && ss.active() == wantActive && (after == 0 || ss.seq < after) && match(ss) {
			list = append(list, ss)
		}
	}
	sortBySeq(list, func(ss *ssmSession) int64 { return -ss.seq })
	if len(list) > limit {
		list = list[:limit]
		out.NextToken = pageToken(list[limit-1].seq, fingerprint)
	}
	for _, ss := range list {
		j := sessionJSON{
			SessionID: ss.id, Target: ss.target, Status: ss.status, StartDate: epochSeconds{ss.start},
			DocumentName: ss.document, Owner: ss.owner, Reason: ss.reason, AccessType: "Standard",
		}
		if !ss.end.IsZero() {
			j.EndDate = &epochSeconds{ss.end}
		}
		out.Sessions = append(out.Sessions, j)
	}
	return out, nil
}

// sessionMatcher checks DescribeSessions' filters and returns a test that
// a session passes them all, and a fingerprint of them for NextToken.
func sessionMatcher(filters []sessionFilter) (func(*ssmSession) bool, string, *apiError) {
	var tests []func(*ssmSession) bool
	var fp strings.Builder
	for i, f := range filters {
		if f.Key == nil || f.Value == nil {
			return nil, "", validationErr(fmt.Sprintf("filters.%d.member.key", i+1), nullValue, "Member must not be null")
		}
		key, val := *f.Key, *f.Value
		if val == "" || len(val) > 400 {
			return nil, "", validationErr(fmt.Sprintf("filters.%d.member.value", i+1), val, "Member must have length between 1 and 400")
		}
		fmt.Fprintf(&fp, "%s=%s\x00", key, val)
		switch key {
		case "InvokedAfter", "InvokedBefore":
			t, err := time.Parse(time.RFC3339, val)
			if err != nil {
				return nil, "", validationErr(fmt.Sprintf("filters.%d.member.value", i+1), val, "Member must be a timestamp such as 2024-08-29T00:00:00Z")
			}
			if key == "InvokedAfter" {
				tests = append(tests, func(ss *ssmSession) bool { return !ss.start.Before(t) })
			} else {
				tests = append(tests, func(ss *ssmSession) bool { return ss.start.Before(t) })
			}
		case "Target":
			tests = append(tests, func(ss *ssmSession) bool { return ss.target == val })
		case "Owner":
			tests = append(tests, func(ss *ssmSession) bool { return ss.owner == val })
		case "SessionId":
			tests = append(tests, func(ss *ssmSession) bool { return ss.id == val })
		case "Status":
			if !slices.Contains(sessionStatuses, val) {
				return nil, "", validationErr(fmt.Sprintf("filters.%d.member.value", i+1), val,
					"Member must be one of "+strings.Join(sessionStatuses, ", "))
			}
			tests = append(tests, func(ss *ssmSession) bool { return ss.status == val })
		case "AccessType":
			if val != "Standard" && val != "JustInTime" {
				return nil, "", validationErr(fmt.Sprintf("filters.%d.member.value", i+1), val, "Member must be Standard or JustInTime")
			}
			tests = append(tests, func(*ssmSession) bool { return val == "Standard" }) // every session here is Standard
		default:
			return nil, "", errf(CodeSSMInvalidFilterKey, "The filter key %s is not valid; valid keys are InvokedAfter, InvokedBefore, Target, Owner, Status, SessionId and AccessType.", key)
		}
	}
	return func(ss *ssmSession) bool {
		for _, t := range tests {
			if !t(ss) {
				return false
			}
		}
		return true
	}, fp.String(), nil
}

// pageToken and parsePageToken make and read the NextToken of SSM's
// lists: the seq of the last item returned, bound to the request's
// fingerprint so a token is good only for the query that issued it.
func pageToken(seq int64, fingerprint string) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s%d:%s", ssmTokenPrefix, seq, fingerprint))
}

// pageStart reads a list request's NextToken, if any: the seq to list
// after, bound to a fingerprint of the query (parts); action names the
// list in the error.
func pageStart(token *string, action string, parts ...string) (after int64, fingerprint string, aerr *apiError) {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	fingerprint = hex.EncodeToString(sum[:6])
	if token == nil || *token == "" {
		return 0, fingerprint, nil
	}
	seq, ok := parsePageToken(*token, fingerprint)
	if !ok {
		return 0, "", errf(CodeSSMInvalidNextToken, "The NextToken is not valid: it must come from a %s call with the same parameters.", action)
	}
	return seq, fingerprint, nil
}

func parsePageToken(token, fingerprint string) (int64, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	rest, ok := strings.CutPrefix(string(raw), ssmTokenPrefix)
	seqStr, fp, _ := strings.Cut(rest, ":")
	seq, serr := strconv.ParseInt(seqStr, 10, 64)
	if err != nil || !ok || serr != nil || seq < 1 || fp != fingerprint {
		return 0, false
	}
	return seq, true
}
