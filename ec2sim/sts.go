package ec2sim

// STS: just enough of AWS Security Token Service for a caller to prove who
// it is. The SDK sends every service to one base endpoint, so
// sts:GetCallerIdentity arrives at the same server as EC2's actions; it is
// the one STS action served, and unlike EC2's it checks the SigV4
// signature (Authorization header or presigned query) against the
// identities added with [Server.AddIdentity].

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// STSAPIVersion is the STS API version the simulator speaks.
const STSAPIVersion = "2011-06-15"

// STSNamespace is the XML namespace of STS responses.
const STSNamespace = "https://sts.amazonaws.com/doc/" + STSAPIVersion + "/"

// STS error codes the simulator returns, spelled as STS spells them.
const (
	CodeAccessDenied               = "AccessDenied"
	CodeExpiredToken               = "ExpiredToken"
	CodeIncompleteSignature        = "IncompleteSignature"
	CodeInvalidClientTokenID       = "InvalidClientTokenId"
	CodeMissingAuthenticationToken = "MissingAuthenticationToken"
	CodeSignatureDoesNotMatch      = "SignatureDoesNotMatch"
	CodeSTSValidation              = "ValidationError"
)

// stsWindow is how far a request's X-Amz-Date may be from now. STS holds
// GetCallerIdentity to it whatever X-Amz-Expires a presigned URL says.
const stsWindow = 15 * time.Minute

const amzDateFormat = "20060102T150405Z"

// Identity is a caller STS knows: the access key it signs with, and who
// GetCallerIdentity says it is.
type Identity struct {
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken, when set, must come with every request
	// (X-Amz-Security-Token), as with temporary credentials from
	// AssumeRole; when empty, a request carrying one is refused.
	SessionToken string
	// ARN is arn:PARTITION:iam::ACCOUNT:user/NAME,
	// arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION, or any other
	// principal ARN; GetCallerIdentity's Account is taken from it.
	ARN string
	// UserID is GetCallerIdentity's UserId; "" derives a stable one from
	// the ARN (AIDA… for users, AROA…:SESSION for assumed roles).
	UserID string
	// SourceIdentity is the source identity set when the role was
	// assumed; CloudTrail records it in the sessionContext of every call
	// made with these credentials.
	SourceIdentity string
	// Expires, when set, is when temporary credentials stop working:
	// requests signed with them from then on are refused with
	// ExpiredToken, on Options.Now.
	Expires time.Time
}

// AddIdentity lets id's access key call sts:GetCallerIdentity, replacing
// any identity with the same key. It fails for an empty key or secret or
// an ARN without an account.
func (s *Server) AddIdentity(id Identity) error {
	if id.AccessKeyID == "" || id.SecretAccessKey == "" {
		return errors.New("ec2sim: identity needs an access key ID and a secret")
	}
	if arnAccount(id.ARN) == "" {
		return fmt.Errorf("ec2sim: identity ARN %q names no account", id.ARN)
	}
	if id.UserID == "" {
		id.UserID = deriveUserID(id.ARN)
	}
	s.lock()
	defer s.unlock()
	// Copy on write: requests read the map they were handed without the lock.
	identities := maps.Clone(s.identities)
	if identities == nil {
		identities = map[string]Identity{}
	}
	identities[id.AccessKeyID] = id
	s.identities = identities
	return nil
}

// serveSTS answers r, whose body ServeHTTP has read, if it is an STS
// request, and reports whether it was. The signature covers the body's
// exact bytes.
func (s *Server) serveSTS(w http.ResponseWriter, r *http.Request, body []byte) bool {
	if !isSTS(r, body) {
		return false
	}
	params, formErr := stsParams(r, body)
	action := params.Get("Action")
	s.lock()
	requestID := s.ids.request()
	s.calls[action]++
	identities := s.identities
	s.unlock()

	var out []byte
	var aerr *apiError
	if formErr != nil {
		aerr = errf("MalformedQueryString", "The request body could not be parsed: %v", formErr)
	} else {
		out, aerr = s.stsAction(r, body, params, identities, requestID)
	}
	w.Header().Set("x-amzn-RequestId", requestID)
	w.Header().Set("Content-Type", "text/xml")
	if aerr != nil {
		s.log().Debug("sts request", "action", action, "request_id", requestID, "error", aerr.Code, "message", aerr.Message)
		w.WriteHeader(stsStatus(aerr.Code))
		out = encodeSTSError(aerr, requestID)
	} else {
		s.log().Debug("sts request", "action", action, "request_id", requestID)
	}
	_, _ = w.Write(out)
	return true
}

// isSTS reports whether r is meant for STS: its credential scope names the
// sts service, or it asks for GetCallerIdentity, in the query or in body.
func isSTS(r *http.Request, body []byte) bool {
	q := r.URL.Query()
	if a, ok := parseAuthHeader(r.Header.Get("Authorization")); ok && scopeService(a["Credential"]) == "sts" {
		return true
	}
	if scopeService(q.Get("X-Amz-Credential")) == "sts" || q.Get("Action") == "GetCallerIdentity" {
		return true
	}
	form, err := url.ParseQuery(string(body))
	return err == nil && form.Get("Action") == "GetCallerIdentity"
}

func scopeService(cred string) string {
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return ""
	}
	return parts[3]
}

// stsParams merges the query and, for a POST, the form in body.
func stsParams(r *http.Request, body []byte) (url.Values, error) {
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return params, err
		}
		for k, v := range form {
			params[k] = append(params[k], v...)
		}
	}
	return params, nil
}

// stsAction authenticates r and runs its action. identities is a snapshot
// that AddIdentity never modifies, so it needs no lock.
func (s *Server) stsAction(r *http.Request, body []byte, params url.Values, identities map[string]Identity, requestID string) ([]byte, *apiError) {
	id, aerr := s.verifySigV4(r, body, identities, "sts")
	if aerr != nil {
		return nil, aerr
	}
	action := params.Get("Action")
	switch {
	case action == "":
		return nil, errf(CodeMissingAction, "The request must contain the parameter Action")
	case params.Get("Version") != STSAPIVersion || action != "GetCallerIdentity" && action != "AssumeRole":
		return nil, errf(CodeInvalidAction, "Could not find operation %s for version %s", action, params.Get("Version"))
	case action == "AssumeRole":
		region, _ := credentialScope(r)
		return s.assumeRole(stsCall{region: region, requestID: requestID, sourceIP: clientIP(r), userAgent: r.UserAgent(), caller: id}, params)
	}
	type result struct {
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
	}
	type response struct {
		XMLName   xml.Name `xml:"GetCallerIdentityResponse"`
		NS        string   `xml:"xmlns,attr"`
		Result    result   `xml:"GetCallerIdentityResult"`
		RequestID string   `xml:"ResponseMetadata>RequestId"`
	}
	return encodeSTS(response{NS: STSNamespace, Result: result{id.ARN, id.UserID, arnAccount(id.ARN)}, RequestID: requestID}), nil
}

// sigV4 is the signature a request carries, from its Authorization header
// or its presigned query.
type sigV4 struct {
	accessKeyID, scope, date, region, service string
	signedHeaders                             []string
	signature, sessionToken, amzDate          string
	query                                     url.Values // without X-Amz-Signature
}

// verifySigV4 checks r's signature for service as AWS documents Signature
// Version 4: canonical request, string to sign, then the HMAC chain from
// the secret.
func (s *Server) verifySigV4(r *http.Request, body []byte, identities map[string]Identity, service string) (Identity, *apiError) {
	sig, aerr := parseSigV4(r, service)
	if aerr != nil {
		return Identity{}, aerr
	}
	id, ok := identities[sig.accessKeyID]
	if !ok || id.SessionToken != sig.sessionToken {
		return Identity{}, errf(CodeInvalidClientTokenID, "The security token included in the request is invalid.")
	}
	if !id.Expires.IsZero() && !s.now().Before(id.Expires) {
		return Identity{}, errf(CodeExpiredToken, "The security token included in the request is expired")
	}
	at, err := time.Parse(amzDateFormat, sig.amzDate)
	if err != nil || at.Format("20060102") != sig.date {
		return Identity{}, errf(CodeIncompleteSignature, "Date %q must be in ISO 8601 basic format and match the credential scope.", sig.amzDate)
	}
	now := s.now().UTC()
	if at.Before(now.Add(-stsWindow)) {
		return Identity{}, errf(CodeSignatureDoesNotMatch, "Signature expired: %s is now earlier than %s (%s - 15 min.)",
			sig.amzDate, now.Add(-stsWindow).Format(amzDateFormat), now.Format(amzDateFormat))
	}
	if at.After(now.Add(stsWindow)) {
		return Identity{}, errf(CodeSignatureDoesNotMatch, "Signature not yet current: %s is still later than %s (%s + 15 min.)",
			sig.amzDate, now.Add(stsWindow).Format(amzDateFormat), now.Format(amzDateFormat))
	}
	payload := sha256.Sum256(body)
	canonical := strings.Join([]string{
		r.Method,
		canonicalURI(r.URL),
		canonicalQuery(sig.query),
		canonicalHeaders(r, sig.signedHeaders),
		strings.Join(sig.signedHeaders, ";"),
		hex.EncodeToString(payload[:]),
	}, "\n")
	hashed := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + sig.amzDate + "\n" + sig.scope + "\n" + hex.EncodeToString(hashed[:])
	key := hmacSHA256([]byte("AWS4"+id.SecretAccessKey), sig.date)
	for _, part := range []string{sig.region, sig.service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(sig.signature)) {
		return Identity{}, errf(CodeSignatureDoesNotMatch, "The request signature we calculated does not match the signature you provided. "+
			"Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return id, nil
}

// parseSigV4 reads the signature's parts and checks their shape and that
// its credential is scoped to service.
func parseSigV4(r *http.Request, service string) (*sigV4, *apiError) {
	sig := &sigV4{query: r.URL.Query()}
	var cred, signed string
	if h := r.Header.Get("Authorization"); h != "" {
		a, ok := parseAuthHeader(h)
		if !ok {
			return nil, errf(CodeIncompleteSignature, "Authorization header requires the AWS4-HMAC-SHA256 algorithm with Credential, SignedHeaders and Signature.")
		}
		cred, signed, sig.signature = a["Credential"], a["SignedHeaders"], a["Signature"]
		if !slices.Contains(strings.Split(signed, ";"), "x-amz-date") {
			return nil, errf(CodeIncompleteSignature, "SignedHeaders must include x-amz-date.")
		}
		sig.amzDate = r.Header.Get("X-Amz-Date")
		sig.sessionToken = r.Header.Get("X-Amz-Security-Token")
	} else {
		q := sig.query
		if q.Get("X-Amz-Signature") == "" {
			return nil, errf(CodeMissingAuthenticationToken, "Request is missing Authentication Token")
		}
		if q.Get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" {
			return nil, errf(CodeIncompleteSignature, "X-Amz-Algorithm must be AWS4-HMAC-SHA256.")
		}
		cred, signed, sig.signature = q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature")
		sig.amzDate = q.Get("X-Amz-Date")
		sig.sessionToken = q.Get("X-Amz-Security-Token")
		q.Del("X-Amz-Signature")
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" {
		return nil, errf(CodeIncompleteSignature, "Credential must have the form ACCESS_KEY_ID/DATE/REGION/SERVICE/aws4_request.")
	}
	sig.accessKeyID, sig.date, sig.region, sig.service = parts[0], parts[1], parts[2], parts[3]
	sig.scope = strings.Join(parts[1:], "/")
	if sig.service != service {
		return nil, errf(CodeSignatureDoesNotMatch, "Credential should be scoped to correct service: '%s'.", service)
	}
	sig.signedHeaders = strings.Split(signed, ";")
	if !slices.Contains(sig.signedHeaders, "host") || !slices.IsSorted(sig.signedHeaders) {
		return nil, errf(CodeIncompleteSignature, "SignedHeaders must be sorted, lower case, and include host.")
	}
	if sig.signature == "" || sig.amzDate == "" {
		return nil, errf(CodeIncompleteSignature, "The request must carry a signature and X-Amz-Date.")
	}
	return sig, nil
}

// parseAuthHeader splits "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…" into its named parts.
func parseAuthHeader(h string) (map[string]string, bool) {
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return nil, false
	}
	parts := map[string]string{}
	for field := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(field), "=")
		parts[k] = v
	}
	return parts, parts["Credential"] != "" && parts["SignedHeaders"] != "" && parts["Signature"] != ""
}

// canonicalURI is the path URI-encoded twice, as every service but S3
// signs it.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	return uriEncode(p, false)
}

// canonicalQuery sorts parameters by name, then value, each URI-encoded.
func canonicalQuery(q url.Values) string {
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, uriEncode(k, true)+"="+uriEncode(v, true))
		}
	}
	slices.Sort(pairs)
	return strings.Join(pairs, "&")
}

// canonicalHeaders lists the signed headers as name:value lines, values
// trimmed with inner runs of spaces collapsed and repeats joined by commas.
func canonicalHeaders(r *http.Request, names []string) string {
	var b strings.Builder
	for _, name := range names {
		var values []string
		switch name {
		case "host":
			values = []string{cmp.Or(r.Host, r.URL.Host)}
		case "content-length":
			values = []string{strconv.FormatInt(r.ContentLength, 10)}
		default:
			values = r.Header.Values(name)
		}
		for i, v := range values {
			values[i] = strings.Join(strings.Fields(v), " ")
		}
		b.WriteString(name + ":" + strings.Join(values, ",") + "\n")
	}
	return b.String()
}

// uriEncode escapes every byte but the unreserved ones (and "/" in paths).
func uriEncode(s string, encodeSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// arnAccount returns the account field of an ARN, "" if it has none.
func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return ""
	}
	return parts[4]
}

// deriveUserID makes a stable unique ID in the shape STS uses: AROA and
// the role's ID, a colon and the session name, for assumed roles; AIDA and
// an ID otherwise.
func deriveUserID(arn string) string {
	hash := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return base32.StdEncoding.EncodeToString(sum[:])[:17]
	}
	resource := strings.SplitN(arn, ":", 6)[5]
	if path, ok := strings.CutPrefix(resource, "assumed-role/"); ok {
		role := strings.Split(path, "/")
		return "AROA" + hash(role[0]) + ":" + role[len(role)-1]
	}
	return "AIDA" + hash(arn)
}

// stsStatus is the HTTP status STS sends with code: 403 for every failure
// to authenticate, 400 for other mistakes.
func stsStatus(code string) int {
	switch code {
	case CodeInvalidClientTokenID, CodeSignatureDoesNotMatch, CodeMissingAuthenticationToken, CodeIncompleteSignature, CodeAccessDenied:
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// encodeSTSError renders STS's ErrorResponse document.
func encodeSTSError(e *apiError, requestID string) []byte {
	type detail struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	doc := struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		NS        string   `xml:"xmlns,attr"`
		Error     detail   `xml:"Error"`
		RequestID string   `xml:"RequestId"`
	}{NS: STSNamespace, Error: detail{"Sender", e.Code, e.Message}, RequestID: requestID}
	return encodeSTS(doc)
}

// encodeSTS renders an STS document. Only strings go in, so it cannot
// fail; it says so loudly if it does.
func encodeSTS(doc any) []byte {
	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("ec2sim: encode STS document: %v", err))
	}
	return append(append([]byte(xml.Header), out...), '\n')
}
