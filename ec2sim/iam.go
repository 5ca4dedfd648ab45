package ec2sim

// IAM: the roles, instance profiles and policies of the account, served
// over IAM's Query API (version 2010-05-08) at the simulator's one
// endpoint, and SimulatePrincipalPolicy over a role's identity policies
// (iam_policy_eval.go). IAM is global: one set per server, whatever the
// region of the request. See doc.go's IAM section for what is modelled.

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/xml"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// IAMAPIVersion is the IAM API version the simulator speaks.
const IAMAPIVersion = "2010-05-08"

// IAMNamespace is the XML namespace of IAM responses.
const IAMNamespace = "https://iam.amazonaws.com/doc/" + IAMAPIVersion + "/"

// IAM error codes, spelled as IAM spells them.
const (
	CodeNoSuchEntity            = "NoSuchEntity"
	CodeEntityAlreadyExists     = "EntityAlreadyExists"
	CodeMalformedPolicyDocument = "MalformedPolicyDocument"
	CodeInvalidInput            = "InvalidInput"
	CodeIAMValidation           = "ValidationError"
	CodeDeleteConflict          = "DeleteConflict"
	CodeLimitExceeded           = "LimitExceeded"
)

// iamStatus is the HTTP status IAM sends with code.
func iamStatus(code string) int {
	switch code {
	case CodeNoSuchEntity:
		return http.StatusNotFound
	case CodeEntityAlreadyExists, CodeDeleteConflict, CodeLimitExceeded:
		return http.StatusConflict
	case CodeAccessDenied:
		return http.StatusForbidden
	case CodeInternalError:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// iamState is the account's IAM. Names are unique without regard to case,
// as IAM's are, so the maps are keyed by the lowercased name. Guarded by
// Server.mu.
type iamState struct {
	roles    map[string]*iamRole
	profiles map[string]*iamProfile
	policies map[string]*iamPolicy // customer managed, by ARN
	seq      int64                 // makes unique IDs without touching the seeded generator
}

type iamRole struct {
	name, path, id, arn string
	trust               string // the assume-role policy document, as given
	description         string
	maxSession          int
	created             time.Time
	attached            []string          // managed policy ARNs, in attachment order
	inline              map[string]string // inline policy documents by name
}

type iamProfile struct {
	name, path, id, arn string
	created             time.Time
	role                string // the lowercased name of its role; "" for none
}

type iamPolicy struct {
	name, path, id, arn, description string
	created, updated                 time.Time
	versions                         []iamPolicyVersion
	defaultVersion                   string
	awsManaged                       bool
}

type iamPolicyVersion struct {
	id      string
	doc     string
	created time.Time
}

func (p *iamPolicy) document() string {
	for _, v := range p.versions {
		if v.id == p.defaultVersion {
			return v.doc
		}
	}
	return ""
}

// iamLocked returns the account's IAM, creating it on first use. Caller
// holds s.mu.
func (s *Server) iamLocked() *iamState {
	if s.iam == nil {
		s.iam = &iamState{roles: map[string]*iamRole{}, profiles: map[string]*iamProfile{}, policies: map[string]*iamPolicy{}}
	}
	return s.iam
}

// InstanceProfileARN returns the ARN of the instance profile named name,
// with its path, and whether the account has it; for a profile it does not
// have, the ARN it would have at path /.
func (s *Server) InstanceProfileARN(name string) (string, bool) {
	s.lock()
	defer s.unlock()
	return s.instanceProfileARNLocked(name)
}

// instanceProfileARNLocked is InstanceProfileARN; it returns the ARN of the instance profile named
// name (its path included), and whether the account has it. Caller holds
// s.mu.
func (s *Server) instanceProfileARNLocked(name string) (string, bool) {
	if ip := s.iamLocked().profiles[strings.ToLower(name)]; ip != nil {
		return ip.arn, true
	}
	return iamARN(s.accountID(), "instance-profile", "/", name), false
}

// iamID makes an ID in IAM's shape: a four-letter prefix (AROA for roles,
// AIPA for instance profiles, ANPA for policies) and 17 characters, unique
// in the server and stable for a given sequence of creations.
func (st *iamState) iamID(prefix, arn string) string {
	st.seq++
	sum := sha256.Sum256([]byte(arn + "\x00" + strconv.FormatInt(st.seq, 10)))
	return prefix + base32.StdEncoding.EncodeToString(sum[:])[:17]
}

func iamARN(account, kind, path, name string) string {
	return "arn:aws:iam::" + account + ":" + kind + path + name
}

// iamCall is one IAM request as the handlers see it.
type iamCall struct {
	action, caller string
	p              params
	now            time.Time
	account        string
}

type iamHandler func(s *Server, st *iamState, c iamCall) (any, *apiError)

var iamActions = map[string]iamHandler{
	"AddRoleToInstanceProfile":      (*Server).iamAddRoleToInstanceProfile,
	"AttachRolePolicy":              (*Server).iamAttachRolePolicy,
	"CreateInstanceProfile":         (*Server).iamCreateInstanceProfile,
	"CreatePolicy":                  (*Server).iamCreatePolicy,
	"CreateRole":                    (*Server).iamCreateRole,
	"DeleteInstanceProfile":         (*Server).iamDeleteInstanceProfile,
	"DeletePolicy":                  (*Server).iamDeletePolicy,
	"DeleteRole":                    (*Server).iamDeleteRole,
	"DeleteRolePolicy":              (*Server).iamDeleteRolePolicy,
	"DetachRolePolicy":              (*Server).iamDetachRolePolicy,
	"GetInstanceProfile":            (*Server).iamGetInstanceProfile,
	"GetPolicy":                     (*Server).iamGetPolicy,
	"GetPolicyVersion":              (*Server).iamGetPolicyVersion,
	"GetRole":                       (*Server).iamGetRole,
	"GetRolePolicy":                 (*Server).iamGetRolePolicy,
	"ListAttachedRolePolicies":      (*Server).iamListAttachedRolePolicies,
	"ListInstanceProfiles":          (*Server).iamListInstanceProfiles,
	"ListInstanceProfilesForRole":   (*Server).iamListInstanceProfilesForRole,
	"ListRolePolicies":              (*Server).iamListRolePolicies,
	"ListRoles":                     (*Server).iamListRoles,
	"PutRolePolicy":                 (*Server).iamPutRolePolicy,
	"RemoveRoleFromInstanceProfile": (*Server).iamRemoveRoleFromInstanceProfile,
	"SimulatePrincipalPolicy":       (*Server).iamSimulatePrincipalPolicy,
}

// serveIAM answers r if it is an IAM request, and reports whether it was:
// its SigV4 credential scope names the iam service, or its form says
// Version=2010-05-08. Like EC2's, IAM requests are not authenticated.
// ServeHTTP has read body.
func (s *Server) serveIAM(w http.ResponseWriter, r *http.Request, body []byte) bool {
	form, ferr := url.ParseQuery(string(body))
	a, _ := parseAuthHeader(r.Header.Get("Authorization"))
	if scopeService(a["Credential"]) != "iam" && scopeService(r.URL.Query().Get("X-Amz-Credential")) != "iam" &&
		(ferr != nil || form.Get("Version") != IAMAPIVersion) {
		return false
	}
	for k, v := range r.URL.Query() {
		form[k] = append(form[k], v...)
	}
	p := params(form)
	action := p.str("Action")
	_, accessKey := credentialScope(&http.Request{Header: r.Header, Form: url.Values(form)})

	s.lock()
	requestID := s.ids.request()
	s.calls[action]++
	c := iamCall{action: action, p: p, now: s.now().UTC().Truncate(time.Second), account: s.accountID(), caller: s.iamCaller(accessKey)}
	var result any
	var aerr *apiError
	h, ok := iamActions[action]
	switch {
	case ferr != nil:
		aerr = errf("MalformedQueryString", "The request body could not be parsed: %v", ferr)
	case action == "":
		aerr = errf(CodeMissingAction, "The request must contain the parameter Action")
	case !ok || p.str("Version") != IAMAPIVersion:
		aerr = errf(CodeInvalidAction, "Could not find operation %s for version %s", action, p.str("Version"))
	case s.deniedLocked("iam:" + action):
		aerr = errf(CodeAccessDenied, "User: %s is not authorized to perform: iam:%s on resource: * because no identity-based policy allows the iam:%s action (denied by ec2sim)", c.caller, action, action)
	default:
		result, aerr = h(s, s.iamLocked(), c)
	}
	s.unlock()

	w.Header().Set("x-amzn-RequestId", requestID)
	w.Header().Set("Content-Type", "text/xml")
	if aerr != nil {
		s.log().Debug("iam request", "action", action, "request_id", requestID, "error", aerr.Code, "message", aerr.Message)
		w.WriteHeader(iamStatus(aerr.Code))
		_, _ = w.Write(encodeIAMError(aerr, requestID))
		return true
	}
	s.log().Debug("iam request", "action", action, "request_id", requestID)
	_, _ = w.Write(encodeIAM(action, requestID, result))
	return true
}

// iamCaller names the caller of a request for AccessDenied's message.
// Caller holds s.mu.
func (s *Server) iamCaller(accessKey string) string {
	if id, ok := s.identities[accessKey]; ok {
		return id.ARN
	}
	return "arn:aws:iam::" + s.accountID() + ":user/" + accessKey
}

// encodeIAM renders <ActionResponse><ActionResult>…</ActionResult>
// <ResponseMetadata>…; actions with nothing to say (result nil) have no
// Result element, as IAM's do not.
func encodeIAM(action, requestID string, result any) []byte {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	start := xml.StartElement{Name: xml.Name{Local: action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: IAMNamespace}}}
	type metadata struct {
		RequestID string `xml:"RequestId"`
	}
	err := enc.EncodeToken(start)
	if err == nil && result != nil {
		err = enc.EncodeElement(result, xml.StartElement{Name: xml.Name{Local: action + "Result"}})
	}
	if err == nil {
		err = enc.EncodeElement(metadata{requestID}, xml.StartElement{Name: xml.Name{Local: "ResponseMetadata"}})
	}
	if err == nil {
		err = enc.EncodeToken(start.End())
	}
	if err == nil {
		err = enc.Flush()
	}
	if err != nil {
		panic(fmt.Sprintf("ec2sim: encode IAM %s response: %v", action, err)) // only strings and numbers go in
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// encodeIAMError renders IAM's ErrorResponse document, which is STS's shape
// in IAM's namespace.
func encodeIAMError(e *apiError, requestID string) []byte {
	typ := "Sender"
	if iamStatus(e.Code) >= 500 {
		typ = "Receiver"
	}
	type detail struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	return encodeSTS(struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		NS        string   `xml:"xmlns,attr"`
		Error     detail   `xml:"Error"`
		RequestID string   `xml:"RequestId"`
	}{NS: IAMNamespace, Error: detail{typ, e.Code, e.Message}, RequestID: requestID})
}

// urlEncodeDoc encodes a policy document as IAM returns one: percent-
// encoded (RFC 3986), spaces as %20.
func urlEncodeDoc(doc string) string {
	return strings.ReplaceAll(url.QueryEscape(doc), "+", "%20")
}

func iamTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// Validation, with IAM's ValidationError wording.

var (
	iamNameRE = regexp.MustCompile(`^[\w+=,.@-]+$`)
	iamPathRE = regexp.MustCompile(`^(/|/[\x21-\x7E]*/)$`)
)

func iamInvalid(member, value, constraint string) *apiError {
	return errf(CodeIAMValidation, "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", value, member, constraint)
}

// iamName reads a required name parameter (RoleName, PolicyName…).
func iamName(p params, param string, maxLen int) (string, *apiError) {
	v, ok := p.get(param)
	member := strings.ToLower(param[:1]) + param[1:]
	switch {
	case !ok:
		return "", errf(CodeIAMValidation, "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
	case len(v) < 1 || len(v) > maxLen:
		return "", iamInvalid(member, v, fmt.Sprintf("Member must have length between 1 and %d", maxLen))
	case !iamNameRE.MatchString(v):
		return "", iamInvalid(member, v, `Member must satisfy regular expression pattern: [\w+=,.@-]+`)
	}
	return v, nil
}

// iamPath reads an optional Path (or PathPrefix), "/" by default.
func iamPath(p params, param string) (string, *apiError) {
	v, ok := p.get(param)
	if !ok || v == "" {
		return "/", nil
	}
	if len(v) > 512 || !iamPathRE.MatchString(v) && param == "Path" || !strings.HasPrefix(v, "/") {
		return "", iamInvalid(strings.ToLower(param[:1])+param[1:], v, "Member must begin and end with / and contain only printable ASCII characters")
	}
	return v, nil
}

func iamRequired(p params, param string) (string, *apiError) {
	v, ok := p.get(param)
	if !ok {
		return "", errf(CodeIAMValidation, "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", strings.ToLower(param[:1])+param[1:])
	}
	return v, nil
}

// iamPaging reads MaxItems (1 to 1000, 100 by default) and Marker.
func iamPaging(p params) (page, *apiError) {
	pg := page{max: 100}
	n, ok, _ := p.integer("MaxItems")
	if ok {
		if n < 1 || n > 1000 {
			return pg, iamInvalid("maxItems", p.str("MaxItems"), "Member must have value between 1 and 1000")
		}
		pg.max = n
	}
	if m, ok := p.get("Marker"); ok && m != "" {
		after, ok := decodeToken(m)
		if !ok {
			return pg, errf(CodeInvalidInput, "Invalid Marker: %s", m)
		}
		pg.after = after
	}
	return pg, nil
}

// listed is a page of a list: Marker is set when IsTruncated.
type listed struct {
	IsTruncated bool   `xml:"IsTruncated"`
	Marker      string `xml:"Marker,omitempty"`
}

func pageOf[T any](items []T, key func(T) string, pg page) ([]T, listed) {
	out, next := paginate(items, key, pg)
	return out, listed{IsTruncated: next != "", Marker: next}
}

// Lookups.

func (st *iamState) role(p params) (*iamRole, *apiError) {
	name, aerr := iamName(p, "RoleName", 64)
	if aerr != nil {
		return nil, aerr
	}
	r := st.roles[strings.ToLower(name)]
	if r == nil {
		return nil, errf(CodeNoSuchEntity, "The role with name %s cannot be found.", name)
	}
	return r, nil
}

func (st *iamState) profile(p params) (*iamProfile, *apiError) {
	name, aerr := iamName(p, "InstanceProfileName", 128)
	if aerr != nil {
		return nil, aerr
	}
	ip := st.profiles[strings.ToLower(name)]
	if ip == nil {
		return nil, errf(CodeNoSuchEntity, "Instance Profile %s cannot be found.", name)
	}
	return ip, nil
}

// policy finds a managed policy, customer or AWS, by ARN.
func (st *iamState) policy(arn string) *iamPolicy {
	if p, ok := st.policies[arn]; ok {
		return p
	}
	return awsManagedPolicies[arn]
}

func (st *iamState) attachments(arn string) int {
	n := 0
	for _, r := range st.roles {
		if slices.Contains(r.attached, arn) {
			n++
		}
	}
	return n
}

// XML shapes.

type xmlIAMRole struct {
	Path                     string `xml:"Path"`
	RoleName                 string `xml:"RoleName"`
	RoleID                   string `xml:"RoleId"`
	Arn                      string `xml:"Arn"`
	CreateDate               string `xml:"CreateDate"`
	AssumeRolePolicyDocument string `xml:"AssumeRolePolicyDocument,omitempty"`
	Description              string `xml:"Description,omitempty"`
	MaxSessionDuration       int    `xml:"MaxSessionDuration,omitempty"`
}

func (r *iamRole) xml() xmlIAMRole {
	return xmlIAMRole{Path: r.path, RoleName: r.name, RoleID: r.id, Arn: r.arn, CreateDate: iamTime(r.created),
		AssumeRolePolicyDocument: urlEncodeDoc(r.trust), Description: r.description, MaxSessionDuration: r.maxSession}
}

// members is an IAM list, written even when empty.
type members[T any] struct {
	Member []T `xml:"member"`
}

type xmlIAMProfile struct {
	Path                string              `xml:"Path"`
	InstanceProfileName string              `xml:"InstanceProfileName"`
	InstanceProfileID   string              `xml:"InstanceProfileId"`
	Arn                 string              `xml:"Arn"`
	CreateDate          string              `xml:"CreateDate"`
	Roles               members[xmlIAMRole] `xml:"Roles"`
}

func (st *iamState) profileXML(ip *iamProfile) xmlIAMProfile {
	x := xmlIAMProfile{Path: ip.path, InstanceProfileName: ip.name, InstanceProfileID: ip.id, Arn: ip.arn, CreateDate: iamTime(ip.created)}
	if r := st.roles[ip.role]; r != nil {
		x.Roles.Member = []xmlIAMRole{r.xml()}
	}
	return x
}

type xmlIAMPolicy struct {
	PolicyName                    string `xml:"PolicyName"`
	PolicyID                      string `xml:"PolicyId"`
	Arn                           string `xml:"Arn"`
	Path                          string `xml:"Path"`
	DefaultVersionID              string `xml:"DefaultVersionId"`
	AttachmentCount               int    `xml:"AttachmentCount"`
	PermissionsBoundaryUsageCount int    `xml:"PermissionsBoundaryUsageCount"`
	IsAttachable                  bool   `xml:"IsAttachable"`
	Description                   string `xml:"Description,omitempty"`
	CreateDate                    string `xml:"CreateDate"`
	UpdateDate                    string `xml:"UpdateDate"`
}

func (st *iamState) policyXML(p *iamPolicy) xmlIAMPolicy {
	return xmlIAMPolicy{PolicyName: p.name, PolicyID: p.id, Arn: p.arn, Path: p.path, DefaultVersionID: p.defaultVersion,
		AttachmentCount: st.attachments(p.arn), IsAttachable: true, Description: p.description,
		CreateDate: iamTime(p.created), UpdateDate: iamTime(p.updated)}
}

// Roles.

func (s *Server) iamCreateRole(st *iamState, c iamCall) (any, *apiError) {
	name, aerr := iamName(c.p, "RoleName", 64)
	if aerr != nil {
		return nil, aerr
	}
	path, aerr := iamPath(c.p, "Path")
	if aerr != nil {
		return nil, aerr
	}
	trust, aerr := iamRequired(c.p, "AssumeRolePolicyDocument")
	if aerr != nil {
		return nil, aerr
	}
	if _, aerr := parsePolicy(trust, policyTrust); aerr != nil {
		return nil, aerr
	}
	maxSession := 3600
	if n, ok, _ := c.p.integer("MaxSessionDuration"); ok {
		if n < 3600 || n > 43200 {
			return nil, iamInvalid("maxSessionDuration", c.p.str("MaxSessionDuration"), "Member must have value between 3600 and 43200")
		}
		maxSession = n
	}
	if st.roles[strings.ToLower(name)] != nil {
		return nil, errf(CodeEntityAlreadyExists, "Role with name %s already exists.", name)
	}
	r := st.addRole(c.account, name, path, trust, c.now)
	r.description, r.maxSession = c.p.str("Description"), maxSession
	return struct {
		Role xmlIAMRole `xml:"Role"`
	}{r.xml()}, nil
}

func (st *iamState) addRole(account, name, path, trust string, now time.Time) *iamRole {
	arn := iamARN(account, "role", path, name)
	r := &iamRole{name: name, path: path, arn: arn, id: st.iamID("AROA", arn), trust: trust, created: now,
		maxSession: 3600, inline: map[string]string{}}
	st.roles[strings.ToLower(name)] = r
	return r
}

func (s *Server) iamGetRole(st *iamState, c iamCall) (any, *apiError) {
	r, aerr := st.role(c.p)
	if aerr != nil {
		return nil, aerr
	}
	return struct {
		Role xmlIAMRole `xml:"Role"`
	}{r.xml()}, nil
}

func (s *Server) iamListRoles(st *iamState, c iamCall) (any, *apiError) {
	prefix, aerr := iamPath(c.p, "PathPrefix")
	if aerr != nil {
		return nil, aerr
	}
	pg, aerr := iamPaging(c.p)
	if aerr != nil {
		return nil, aerr
	}
	var roles []*iamRole
	for _, r := range st.roles {
		if strings.HasPrefix(r.path, prefix) {
			roles = append(roles, r)
		}
	}
	slices.SortFunc(roles, func(a, b *iamRole) int { return strings.Compare(strings.ToLower(a.name), strings.ToLower(b.name)) })
	roles, l := pageOf(roles, func(r *iamRole) string { return strings.ToLower(r.name) }, pg)
	out := struct {
		Roles members[xmlIAMRole] `xml:"Roles"`
		listed
	}{listed: l}
	for _, r := range roles {
		out.Roles.Member = append(out.Roles.Member, r.xml())
	}
	return out, nil
}

func (s *Server) iamDeleteRole(st *iamState, c iamCall) (any, *apiError) {
	r, aerr := st.role(c.p)
	if aerr != nil {
		return nil, aerr
	}
	key := strings.ToLower(r.name)
	switch {
	case len(r.attached) > 0:
		return nil, errf(CodeDeleteConflict, "Cannot delete entity, must detach all policies first.")
	case len(r.inline) > 0:
		return nil, errf(CodeDeleteConflict, "Cannot delete entity, must delete policies first.")
	case slices.ContainsFunc(slices.Collect(maps.Values(st.profiles)), func(ip *iamProfile) bool { return ip.role == key }):
		return nil, errf(CodeDeleteConflict, "Cannot delete entity, must remove roles from instance profile first.")
	}
	delete(st.roles, key)
	return nil, nil
}

// Instance profiles.

func (s *Server) iamCreateInstanceProfile(st *iamState, c iamCall) (any, *apiError) {
	name, aerr := iamName(c.p, "InstanceProfileName", 128)
	if aerr != nil {
		return nil, aerr
	}
	path, aerr := iamPath(c.p, "Path")
	if aerr != nil {
		return nil, aerr
	}
	if st.profiles[strings.ToLower(name)] != nil {
		return nil, errf(CodeEntityAlreadyExists, "Instance Profile %s already exists.", name)
	}
	ip := st.addProfile(c.account, name, path, c.now)
	return struct {
		InstanceProfile xmlIAMProfile `xml:"InstanceProfile"`
	}{st.profileXML(ip)}, nil
}

func (st *iamState) addProfile(account, name, path string, now time.Time) *iamProfile {
	arn := iamARN(account, "instance-profile", path, name)
	ip := &iamProfile{name: name, path: path, arn: arn, id: st.iamID("AIPA", arn), created: now}
	st.profiles[strings.ToLower(name)] = ip
	return ip
}

func (s *Server) iamGetInstanceProfile(st *iamState, c iamCall) (any, *apiError) {
	ip, aerr := st.profile(c.p)
	if aerr != nil {
		return nil, aerr
	}
	return struct {
		InstanceProfile xmlIAMProfile `xml:"InstanceProfile"`
	}{st.profileXML(ip)}, nil
}

// iamListInstanceProfiles lists profiles by path, then name, with their
// roles, in pages.
func (s *Server) iamListInstanceProfiles(st *iamState, c iamCall) (any, *apiError) {
	prefix, aerr := iamPath(c.p, "PathPrefix")
	if aerr != nil {
		return nil, aerr
	}
	return st.listProfiles(c.p, func(ip *iamProfile) bool { return strings.HasPrefix(ip.path, prefix) })
}

func (s *Server) iamListInstanceProfilesForRole(st *iamState, c iamCall) (any, *apiError) {
	r, aerr := st.role(c.p)
	if aerr != nil {
		return nil, aerr
	}
	key := strings.ToLower(r.name)
	return st.listProfiles(c.p, func(ip *iamProfile) bool { return ip.role == key })
}

func (st *iamState) listProfiles(p params, keep func(*iamProfile) bool) (any, *apiError) {
	pg, aerr := iamPaging(p)
	if aerr != nil {
		return nil, aerr
	}
	var profiles []*iamProfile
	for _, ip := range st.profiles {
		if keep(ip) {
			profiles = append(profiles, ip)
		}
	}
	key := func(ip *iamProfile) string { return strings.ToLower(ip.name) }
	slices.SortFunc(profiles, func(a, b *iamProfile) int { return strings.Compare(key(a), key(b)) })
	profiles, l := pageOf(profiles, key, pg)
	out := struct {
		InstanceProfiles members[xmlIAMProfile] `xml:"InstanceProfiles"`
		listed
	}{listed: l}
	for _, ip := range profiles {
		out.InstanceProfiles.Member = append(out.InstanceProfiles.Member, st.profileXML(ip))
	}
	return out, nil
}

func (s *Server) iamAddRoleToInstanceProfile(st *iamState, c iamCall) (any, *apiError) {
	ip, aerr := st.profile(c.p)
	if aerr != nil {
		return nil, aerr
	}
	r, aerr := st.role(c.p)
	if aerr != nil {
		return nil, aerr
	}
	if ip.role != "" {
		return nil, errf(CodeLimitExceeded, "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1")
	}
	ip.role = strings.ToLower(r.name)
	return nil, nil
}

func (s *Server) iamRemoveRoleFromInstanceProfile(st *iamState, c iamCall) (any, *apiError) {
	ip, aerr := st.profile(c.p)
	if aerr != nil {
		return nil, aerr
	}
	r, aerr := st.role(c.p)
	if aerr != nil {
		return nil, aerr
	}
	if ip.role != strings.ToLower(r.name) {
		return nil, errf(CodeNoSuchEntity, "The role with name %s cannot be found.", r.name)
	}
	ip.role = ""
	return nil, nil
}

func (s *Server) iamDeleteInstanceProfile(st *iamState, c iamCall) (any, *apiError) {
	ip, aerr := st.profile(c.p)
	if aerr != nil {
		return nil, aerr
	}
	if ip.role != "" {
		return nil, errf(CodeDeleteConflict, "Cannot delete entity, must remove roles from instance profile first.")
	}
	delete(st.profiles, strings.ToLower(ip.name))
	return nil, nil
}

// Managed policies.

func (s *Server) iamCreatePolicy(st *iamState, c iamCall) (any, *apiError) {
	name, aerr := iamName(c.p, "PolicyName", 128)
	if aerr != nil {
		return nil, aerr
	}
	path, aerr := iamPath(c.p, "Path")
	if aerr != nil {
		return nil, aerr
	}
	doc, aerr := iamRequired(c.p, "PolicyDocument")
	if aerr != nil {
		return nil, aerr
	}
	if _, aerr := parsePolicy(doc, policyIdentity); aerr != nil {
		return nil, aerr
	}
	for _, p := range st.policies {
		if strings.EqualFold(p.name, name) {
			return nil, errf(CodeEntityAlreadyExists, "A policy called %s already exists. Duplicate names are not allowed.", name)
		}
	}
	p := st.addPolicy(c.account, name, path, doc, c.now)
	p.description = c.p.str("Description")
	return struct {
		Policy xmlIAMPolicy `xml:"Policy"`
	}{st.policyXML(p)}, nil
}

func (st *iamState) addPolicy(account, name, path, doc string, now time.Time) *iamPolicy {
	arn := iamARN(account, "policy", path, name)
	p := &iamPolicy{name: name, path: path, arn: arn, id: st.iamID("ANPA", arn), created: now, updated: now,
		versions: []iamPolicyVersion{{id: "v1", doc: doc, created: now}}, defaultVersion: "v1"}
	st.policies[arn] = p
	return p
}

func (st *iamState) policyArg(p params) (*iamPolicy, string, *apiError) {
	arn, aerr := iamRequired(p, "PolicyArn")
	if aerr != nil {
		return nil, "", aerr
	}
	if !strings.HasPrefix(arn, "arn:") {
		return nil, "", errf(CodeInvalidInput, "ARN %s is not valid.", arn)
	}
	return st.policy(arn), arn, nil
}

func (s *Server) iamGetPolicy(st *iamState, c iamCall) (any, *apiError) {
	p, arn, aerr := st.policyArg(c.p)
	if aerr != nil {
		return nil, aerr
	}
	if p == nil {
		return nil, errf(CodeNoSuchEntity, "Policy %s was not found.", arn)
	}
	return struct {
		Policy xmlIAMPolicy `xml:"Policy"`
	}{st.policyXML(p)}, nil
}

func (s *Server) iamGetPolicyVersion(st *iamState, c iamCall) (any, *apiError) {
	p, arn, aerr := st.policyArg(c.p)
	if aerr != nil {
		return nil, aerr
	}
	vid, aerr := iamRequired(c.p, "VersionId")
	if aerr != nil {
		return nil, aerr
	}
	if p == nil {
		return nil, errf(CodeNoSuchEntity, "Policy %s was not found.", arn)
	}
	for _, v := range p.versions {
		if v.id == vid {
			type version struct {
				Document         string `xml:"Document"`
				VersionID        string `xml:"VersionId"`
				IsDefaultVersion bool   `xml:"IsDefaultVersion"`
				CreateDate       string `xml:"CreateDate"`
			}
			return struct {
				PolicyVersion version `xml:"PolicyVersion"`
			}{version{urlEncodeDoc(v.doc), v.id, v.id == p.defaultVersion, iamTime(v.created)}}, nil
		}
	}
	return nil, errf(CodeNoSuchEntity, "Policy %s version %s does not exist or is not attachable.", arn, vid)
}

func (s *Server) iamDeletePolicy(st *iamState, c iamCall) (any, *apiError) {
	p, arn, aerr := st.policyArg(c.p)
	if aerr != nil {
		return nil, aerr
	}
	switch {
	case p == nil:
		return nil, errf(CodeNoSuchEntity, "Policy %s was not found.", arn)
	case p.awsManaged:
		return nil, errf(CodeAccessDenied, "User: %s is not authorized to perform: iam:DeletePolicy on resource: policy %s", c.caller, arn)
	case st.attachments(arn) > 0:
		return nil, errf(CodeDeleteConflict, "Cannot delete a policy attached to entities.")
	}
	delete(st.policies, arn)
	return nil, nil
}

func (s *Server) iamAttachRolePolicy(st *iamState, c iamCall) (any, *apiError) {
	r, aerr := st.role(c.p)
	if aerr != nil {
		return nil, aerr
	}
	p, arn, aerr := st.policyArg(c.p)
	if aerr != nil {
		return nil, aerr
	}
	if p == nil {
		return nil, errf(CodeNoSuchEntity, "Policy %s does not exist or is not attachable.", arn)
	}
	if !slices.Contains(r.attached, arn) {
		r.attached = append(r.attached, arn)
	}
	return nil, nil
}

func (s *Server) iamDetachRolePolicy(st *iamState, c iamCall) (any, *apiError) {
	r, aerr := st.role(c.p)
	if aerr != nil {
		return nil, aerr
	}
	_, arn, aerr := st.policyArg(c.p)
	if aerr != nil {
		return nil, aerr
	}
	i := slices.Index(r.attached, arn)
	if i < 0 {
		return nil, errf(CodeNoSuchEntity, "Policy %s was not found.", arn)
	}
	r.attached = slices.Delete(r.attached, i, i+1)
	return nil, nil
}

func (s *Server) iamListAttachedRolePolicies(st *iamState, c iamCall) (any, *apiError) {
	r, aerr := st.role(c.p)
	if aerr != nil {
		return nil, aerr
	}
	prefix, aerr := iamPath(c.p, "PathPrefix")
	if aerr != nil {
		return nil, aerr
	}
	pg, aerr := iamPaging(c.p)
	if aerr != nil {
		return nil, aerr
	}
	type attached struct {
		PolicyName string `xml:"PolicyName"`
		PolicyArn  string `xml:"PolicyArn"`
	}
	var all []attached
	for _, arn := range r.attached {
		if p := st.policy(arn); p != nil && strings.HasPrefix(p.path, prefix) {
			all = append(all, attached{p.name, arn})
		}
	}
	slices.SortFunc(all, func(a, b attached) int { return strings.Compare(a.PolicyArn, b.PolicyArn) })
	items, l := pageOf(all, func(a attached) string { return a.PolicyArn }, pg)
	return struct {
		AttachedPolicies members[attached] `xml:"AttachedPolicies"`
		listed
	}{members[attached]{items}, l}, nil
}

// Inline policies.

func (s *Server) iamPutRolePolicy(st *iamState, c iamCall) (any, *apiError) {
	r, aerr := st.role(c.p)
	if aerr != nil {
		return nil, aerr
	}
	name, aerr := iamName(c.p, "PolicyName", 128)
	if aerr != nil {
		return nil, aerr
	}
	doc, aerr := iamRequired(c.p, "PolicyDocument")
	if aerr != nil {
		return nil, aerr
	}
	if _, aerr := parsePolicy(doc, policyIdentity); aerr != nil {
		return nil, aerr
	}
	// A policy's name keeps its first spelling; IAM matches it without case.
	for n := range r.inline {
		if strings.EqualFold(n, name) {
			name = n
		}
	}
	r.inline[name] = doc
	return nil, nil
}

func (st *iamState) inlineName(r *iamRole, p params) (string, *apiError) {
	name, aerr := iamName(p, "PolicyName", 128)
	if aerr != nil {
		return "", aerr
	}
	for n := range r.inline {
		if strings.EqualFold(n, name) {
			return n, nil
		}
	}
	return "", errf(CodeNoSuchEntity, "The role policy with name %s cannot be found.", name)
}

func (s *Server) iamGetRolePolicy(st *iamState, c iamCall) (any, *apiError) {
	r, aerr := st.role(c.p)
	if aerr != nil {
		return nil, aerr
	}
	name, aerr := st.inlineName(r, c.p)
	if aerr != nil {
		return nil, aerr
	}
	return struct {
		RoleName       string `xml:"RoleName"`
		PolicyName     string `xml:"PolicyName"`
		PolicyDocument string `xml:"PolicyDocument"`
	}{r.name, name, urlEncodeDoc(r.inline[name])}, nil
}

func (s *Server) iamDeleteRolePolicy(st *iamState, c iamCall) (any, *apiError) {
	r, aerr := st.role(c.p)
	if aerr != nil {
		return nil, aerr
	}
	name, aerr := st.inlineName(r, c.p)
	if aerr != nil {
		return nil, aerr
	}
	delete(r.inline, name)
	return nil, nil
}

func (s *Server) iamListRolePolicies(st *iamState, c iamCall) (any, *apiError) {
	r, aerr := st.role(c.p)
	if aerr != nil {
		return nil, aerr
	}
	pg, aerr := iamPaging(c.p)
	if aerr != nil {
		return nil, aerr
	}
	names := slices.Sorted(maps.Keys(r.inline))
	names, l := pageOf(names, func(n string) string { return n }, pg)
	return struct {
		PolicyNames members[string] `xml:"PolicyNames"`
		listed
	}{members[string]{names}, l}, nil
}
