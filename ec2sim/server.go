package ec2sim

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/latchdev/latch/ec2sim/datachannel"
)

// DefaultRuleLimit is EC2's default quota of inbound rules per security
// group, counted separately for IPv4 and IPv6 CIDRs.
const DefaultRuleLimit = 60

// DefaultAccountID is the account that owns everything when
// [Options.AccountID] is empty.
const DefaultAccountID = "123456789012"

// maxBody bounds a request body; EC2 itself refuses much smaller ones.
const maxBody = 1 << 20

// Options are the simulator's settings. The zero value is ready to use.
type Options struct {
	// RuleLimit is the number of inbound rules a group may hold per address
	// family; 0 means DefaultRuleLimit.
	RuleLimit int
	// AccountID owns every resource; "" means DefaultAccountID.
	AccountID string
	// Logger receives one debug line per request; nil discards logs.
	Logger *slog.Logger
	// Now stamps instance launch times and CloudTrail events, and is the
	// clock CloudTrailDelay is measured on; nil means time.Now.
	Now func() time.Time
	// Seed, when non-zero, makes generated resource and request IDs a
	// fixed sequence, so tests can compare responses byte for byte. 0
	// means random IDs.
	Seed int64
	// CloudTrailDelay is how long after an EC2 call its CloudTrail event
	// becomes visible to LookupEvents, on the clock Now; 0 means at once.
	// Real CloudTrail typically takes about five minutes.
	CloudTrailDelay time.Duration
	// Invoke is called when a schedule whose target is not one of the
	// simulator's own universal targets fires (see scheduler_fire.go),
	// with the target's ARN and Input; an error fails the run, which is
	// then retried. It is called without any lock held, so it may call
	// the server. nil means such runs fail.
	Invoke func(targetARN string, input []byte) error
	// DataChannel serves the WebSocket StreamUrl of sessions (path
	// /v1/data-channel/{SessionId}); nil means StartSession still works
	// but nothing answers the StreamUrl.
	DataChannel DataChannel
	// Dial connects a session's agent to a port on an instance; nil
	// refuses every connection. See [Server.DialTarget].
	Dial func(ctx context.Context, region, instanceID string, port int) (net.Conn, error)
	// Throttle turns on EC2's request throttling with these buckets,
	// refilled on the clock Now (see throttle.go and [EC2Throttle]); nil
	// means off. [Server.SetThrottle] changes it later.
	Throttle *Throttle
	// DescribeLag delays what DescribeSecurityGroupRules and
	// DescribeSecurityGroups show, on the clock Now, as EC2's eventual
	// consistency does (see consistency.go); 0 means they show every
	// change at once.
	DescribeLag time.Duration
}

// Server is an in-memory EC2 that speaks the Query API over HTTP. It is an
// [http.Handler]; all methods are safe for concurrent use. The zero value
// is a server with default [Options]; use [New] to set them.
type Server struct {
	opts Options

	// mu guards everything below. One lock for the whole account keeps
	// every action atomic, which is what callers rely on from EC2.
	mu        sync.Mutex
	ready     bool
	ids       *idGen
	seq       int64
	regions   map[string]*region
	calls     map[string]int
	faults    Faults
	faultRand *rand.Rand
	faulted   int // requests failed since SetFaults, for Faults.Limit
	// throttle is EC2's request throttling, nil when off; buckets are its
	// token buckets by account, region and bucket name, and throttled
	// counts the requests refused, by action (see throttle.go).
	throttle  *Throttle
	buckets   map[string]*tokens
	throttled map[string]int
	// identities are STS's callers by access key ID (see sts.go); the map
	// is replaced, never modified, so a request may keep reading it.
	identities map[string]Identity
	// trail is CloudTrail's event history in recording order, and
	// trailDelay the delivery delay of events recorded from now on (see
	// cloudtrail.go). eventIDs is apart from ids so that recording events
	// does not shift the seeded resource and request IDs.
	trail      []*trailEvent
	trailDelay time.Duration
	eventIDs   *idGen
	// schedulers are EventBridge Scheduler's schedules by region (see
	// scheduler.go), created on first use.
	schedulers map[string]*schedRegion
	// pushed are the keys sent with EC2 Instance Connect, by region and
	// instance (see instanceconnect.go).
	pushed map[string][]PushedKey
	// sessions are Session Manager's sessions by ID, across regions (see
	// ssm_sessions.go); secrets makes their IDs and tokens and the keys
	// AssumeRole issues, apart from ids so that they do not shift the
	// seeded resource IDs.
	sessions map[string]*ssmSession
	secrets  *idGen
	// assumable restricts who may assume a role, by role ARN (see
	// AllowAssume); a role not in it may be assumed by anyone.
	assumable map[string][]string
	// channel is the data channel when Options.DataChannel is nil.
	channel     *datachannel.Server
	channelOnce sync.Once
	dial        func(ctx context.Context, region, instanceID string, port int) (net.Conn, error) // SetDial's; nil means Options.Dial
	denied      map[string]bool                                                                  // Deny's: APIs refused to every caller (deny.go)
	// trails are CloudTrail's trails by name, account-wide (cloudtrail_trails.go).
	trails map[string]*trailConfig
	iam    *iamState // IAM's roles, profiles and policies (iam.go); nil until first used
}

var _ http.Handler = (*Server)(nil)

// New returns a server with no resources beyond each region's default VPC,
// which is created when the region is first used.
func New(opts Options) *Server {
	return &Server{opts: opts}
}

// lock takes s.mu, initialising the zero value on first use.
func (s *Server) lock() {
	s.mu.Lock()
	if s.ready {
		return
	}
	s.ids = newIDGen(s.opts.Seed)
	s.regions = map[string]*region{}
	s.calls = map[string]int{}
	s.faultRand = newFaultRand(0)
	s.eventIDs = newIDGen(salted(s.opts.Seed, eventIDSalt))
	s.secrets = newIDGen(salted(s.opts.Seed, secretSalt))
	s.sessions = map[string]*ssmSession{}
	s.trailDelay = max(s.opts.CloudTrailDelay, 0)
	s.throttle = s.opts.Throttle.clone()
	s.buckets = map[string]*tokens{}
	s.throttled = map[string]int{}
	s.ready = true
}

func (s *Server) unlock() { s.mu.Unlock() }

// salted is seed for a generator of its own, or 0 (random) when seed is:
// unseeded tokens and keys must not be the same in every simulator.
func salted(seed, salt int64) int64 {
	if seed == 0 {
		return 0
	}
	return seed ^ salt
}

func (s *Server) ruleLimit() int {
	if s.opts.RuleLimit > 0 {
		return s.opts.RuleLimit
	}
	return DefaultRuleLimit
}

func (s *Server) accountID() string {
	if s.opts.AccountID != "" {
		return s.opts.AccountID
	}
	return DefaultAccountID
}

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

func (s *Server) log() *slog.Logger {
	if s.opts.Logger != nil {
		return s.opts.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// nextSeq numbers resources in creation order, which is the order the
// simulator lists them in (and pages over). Caller holds s.mu.
func (s *Server) nextSeq() int64 {
	s.seq++
	return s.seq
}

// region returns the named region, creating it with a default VPC on first
// use. Caller holds s.mu.
func (s *Server) region(name string) *region {
	if r, ok := s.regions[name]; ok {
		return r
	}
	r := newRegion(name)
	s.regions[name] = r
	return r
}

// ensureDefaultVPC gives r a default VPC if it has none, so that
// CreateSecurityGroup without VpcId works in a fresh region. Caller holds
// s.mu.
func (s *Server) ensureDefaultVPC(r *region) {
	if r.defaultVPC != "" {
		return
	}
	v := &vpc{id: s.ids.resource("vpc"), cidr: mustPrefix(defaultVPCCIDR), tags: map[string]string{}}
	r.vpcs[v.id] = v
	r.defaultVPC = v.id
}

// Calls returns how many requests named action the server has received,
// including those answered with an injected fault and those that failed.
func (s *Server) Calls(action string) int {
	s.lock()
	defer s.unlock()
	return s.calls[action]
}

// Rules returns a snapshot of the ingress rules of groupID in region, in
// creation order; an empty groupID means every group in the region.
func (s *Server) Rules(region, groupID string) []Rule {
	s.lock()
	defer s.unlock()
	r, ok := s.regions[region]
	if !ok {
		return nil
	}
	var rules []*rule
	for _, ru := range r.rules {
		if groupID == "" || ru.groupID == groupID {
			rules = append(rules, ru)
		}
	}
	sortBySeq(rules, func(ru *rule) int64 { return ru.seq })
	out := make([]Rule, len(rules))
	for i, ru := range rules {
		out[i] = ru.snapshot()
	}
	return out
}

// Client returns an HTTP client whose transport calls the server directly,
// with no socket. Pass it as the SDK's HTTPClient (any BaseEndpoint will
// do); it works inside a testing/synctest bubble, where TCP does not.
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: handlerTransport{s}}
}

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// A RoundTripper must not modify the caller's request; the handler
	// parses the form into it.
	in := req.Clone(req.Context())
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, in)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// call is one EC2 request as the handlers see it.
type call struct {
	action      string
	region      string
	accessKeyID string // for CloudTrail's userIdentity
	sourceIP    string // for CloudTrail's sourceIPAddress
	userAgent   string
	requestID   string
	params      params
}

// ServeHTTP answers EC2 Query API requests, STS's GetCallerIdentity and
// AssumeRole, IAM's Query API (iam.go), CloudTrail's LookupEvents, EventBridge Scheduler's REST API,
// Systems Manager's session actions, sessions' data channels (through
// Options.DataChannel), and the simulator's own control endpoints under
// /_sim/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, adminPrefix) {
		if !s.serveSchedulerAdmin(w, r) {
			s.serveAdmin(w, r)
		}
		return
	}
	if strings.HasPrefix(r.URL.Path, dataChannelPrefix) {
		s.serveDataChannel(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if s.serveScheduler(w, r) || s.serveSSM(w, r) {
		return
	}
	// STS and IAM tell their requests from EC2's by the form, and STS's
	// signature covers the body's exact bytes: the body is read once here,
	// for them, and handed on to whichever reads it next with any read error.
	reqBody, err := io.ReadAll(r.Body)
	if err != nil {
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(reqBody), errReader{err}))
	} else {
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		if s.serveSTS(w, r, reqBody) || s.serveIAM(w, r, reqBody) {
			return
		}
	}
	if s.serveCloudTrail(w, r) || s.serveInstanceConnect(w, r) {
		return
	}
	formErr := r.ParseForm()
	c := &call{params: params(r.Form), sourceIP: clientIP(r), userAgent: r.UserAgent()}
	c.action = c.params.str("Action")
	c.region, c.accessKeyID = credentialScope(r)

	s.lock()
	c.requestID = s.ids.request()
	s.calls[c.action]++
	var fault faultKind
	var latency time.Duration
	limited := formErr == nil && !s.takeToken(c)
	if !limited {
		fault, latency = s.drawFault(c.action)
	}
	s.unlock()

	w.Header().Set("x-amzn-RequestId", c.requestID)
	if latency > 0 && !wait(r.Context(), latency) {
		return // the client has gone; nobody to answer
	}

	var body []byte
	var aerr *apiError
	switch {
	case formErr != nil:
		aerr = errf("MalformedQueryString", "The request body could not be parsed: %v", formErr)
	case limited, fault == faultThrottle:
		aerr = errf(CodeRequestLimitExceeded, "Request limit exceeded.")
	case fault == faultServerError:
		aerr = errf(CodeInternalError, "An internal error has occurred. (injected by ec2sim)")
	default:
		body, aerr = s.handle(c)
		if fault == faultLostResponse {
			// The effect stays; only the answer is lost, as when a
			// connection drops after EC2 has acted.
			body, aerr = nil, errf(CodeInternalError, "An internal error has occurred. (response lost, injected by ec2sim)")
		}
	}

	log := s.log()
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	if aerr != nil {
		log.Debug("ec2 request", "action", c.action, "region", c.region, "access_key_id", c.accessKeyID,
			"request_id", c.requestID, "error", aerr.Code, "message", aerr.Message)
		w.WriteHeader(aerr.status())
		_, _ = w.Write(encodeError(aerr, c.requestID))
		return
	}
	log.Debug("ec2 request", "action", c.action, "region", c.region, "access_key_id", c.accessKeyID,
		"request_id", c.requestID)
	_, _ = w.Write(body)
}

// errReader fails every read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// handle runs one action under the lock, records it in CloudTrail, and
// renders its answer.
func (s *Server) handle(c *call) ([]byte, *apiError) {
	h, aerr := c.handler()
	var resp response
	s.lock()
	if aerr == nil && s.deniedLocked("ec2:"+c.action) {
		aerr = unauthorized("ec2:" + c.action)
	}
	if aerr == nil {
		reg := s.region(c.region)
		s.ensureDefaultVPC(reg)
		resp, aerr = h(s, reg, c.params)
	}
	s.record(c, resp, aerr)
	s.unlock()
	if aerr != nil {
		return nil, aerr
	}
	body, err := encodeResponse(c.action, c.requestID, resp)
	if err != nil {
		return nil, errf(CodeInternalError, "%v", err)
	}
	return body, nil
}

// handler finds c's action and checks what every action requires.
func (c *call) handler() (handler, *apiError) {
	if c.action == "" {
		return nil, errf(CodeMissingAction, "The request must contain the parameter Action")
	}
	h, ok := actions[c.action]
	if !ok {
		return nil, errf(CodeInvalidAction, "The action %s is not valid for this web service.", c.action)
	}
	switch v, ok := c.params.get("Version"); {
	case !ok:
		return nil, missing("Version")
	case v != APIVersion:
		return nil, errf(CodeNoSuchVersion, "The requested version (%s) of service AmazonEC2 does not exist", v)
	}
	if c.params.boolean("DryRun") {
		return nil, errf(CodeDryRunOperation, "Request would have succeeded, but DryRun flag is set.")
	}
	return h, nil
}

// handler is one EC2 action. It runs with s.mu held, and must change
// nothing when it returns an error.
type handler func(s *Server, r *region, p params) (response, *apiError)

// actions is the dispatch table; it is never modified.
var actions = map[string]handler{
	"AuthorizeSecurityGroupIngress":   (*Server).authorizeIngress,
	"CreateSecurityGroup":             (*Server).createSecurityGroup,
	"CreateTags":                      (*Server).createTags,
	"DeleteSecurityGroup":             (*Server).deleteSecurityGroup,
	"DeleteTags":                      (*Server).deleteTags,
	"DescribeInstances":               (*Server).describeInstances,
	"DescribeSecurityGroupRules":      (*Server).describeSecurityGroupRules,
	"DescribeSecurityGroups":          (*Server).describeSecurityGroups,
	"DescribeTags":                    (*Server).describeTags,
	"GetConsoleOutput":                (*Server).getConsoleOutput,
	"ModifyInstanceAttribute":         (*Server).modifyInstanceAttribute,
	"ModifyNetworkInterfaceAttribute": (*Server).modifyNetworkInterfaceAttribute,
	"ModifySecurityGroupRules":        (*Server).modifySecurityGroupRules,
	"RevokeSecurityGroupIngress":      (*Server).revokeIngress,
	"RunInstances":                    (*Server).runInstances,
	"TerminateInstances":              (*Server).terminateInstances,

	// Key pairs and launch templates (keypairs.go, launchtemplates.go).
	"CreateKeyPair":                  (*Server).createKeyPair,
	"CreateLaunchTemplate":           (*Server).createLaunchTemplate,
	"CreateLaunchTemplateVersion":    (*Server).createLaunchTemplateVersion,
	"DeleteKeyPair":                  (*Server).deleteKeyPair,
	"DeleteLaunchTemplate":           (*Server).deleteLaunchTemplate,
	"DescribeKeyPairs":               (*Server).describeKeyPairs,
	"DescribeLaunchTemplates":        (*Server).describeLaunchTemplates,
	"DescribeLaunchTemplateVersions": (*Server).describeLaunchTemplateVersions,
	"ImportKeyPair":                  (*Server).importKeyPair,
	"ModifyLaunchTemplate":           (*Server).modifyLaunchTemplate,
}

// credentialScope reads the region and access key from the SigV4
// credential (Credential=AKID/DATE/REGION/ec2/aws4_request), in the
// Authorization header or a presigned query. The signature is not checked.
func credentialScope(r *http.Request) (region, accessKeyID string) {
	cred := r.Form.Get("X-Amz-Credential")
	if auth := r.Header.Get("Authorization"); auth != "" {
		if _, after, ok := strings.Cut(auth, "Credential="); ok {
			cred, _, _ = strings.Cut(after, ",")
		}
	}
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) >= 3 && parts[2] != "" {
		return parts[2], parts[0]
	}
	if len(parts) >= 1 {
		accessKeyID = parts[0]
	}
	return DefaultRegion, accessKeyID
}

// clientIP is the address the request came from, without its port.
func clientIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// wait blocks for d, or until ctx ends; it reports whether d passed.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
