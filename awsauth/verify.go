package awsauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

// MaxAge is how long after signing a proof is accepted, by its X-Amz-Date;
// it is also how far ahead of the server's clock a proof may be dated.
// STS holds GetCallerIdentity to the same window.
const MaxAge = 15 * time.Minute

const (
	stsVersion    = "2011-06-15"
	amzDateFormat = "20060102T150405Z"
	maxProof      = 16 << 10 // bytes of header; a presigned request is ~2 KiB
	maxAnswer     = 64 << 10 // bytes of STS response read
)

// awsSTSHost matches STS's global and regional endpoints in the commercial
// partition: sts.amazonaws.com and sts.REGION.amazonaws.com.
var awsSTSHost = regexp.MustCompile(`^sts(\.[a-z]{2}-[a-z]+-[0-9]+)?\.amazonaws\.com(:443)?$`)

// Verifier checks AWS IAM proofs made by [Header], by sending them to STS.
// Its zero value refuses every proof: ServerID must be set.
type Verifier struct {
	// ServerID names this latch server; a proof must carry it in its
	// signed X-Latch-Server-ID header.
	ServerID string
	// TrustedHosts are the STS endpoints a proof may be addressed to. An
	// entry is a host[:port], reached over HTTPS, or a scheme://host[:port]
	// origin (such as a simulator's http://127.0.0.1:8080). nil means AWS's
	// commercial endpoints over HTTPS: sts.amazonaws.com and
	// sts.REGION.amazonaws.com.
	TrustedHosts []string
	// HTTPClient sends proofs to STS; nil means a client with a 30-second
	// timeout. Redirects are never followed, whatever it says.
	HTTPClient *http.Client
	// Now is the clock proofs are dated against; nil means time.Now.
	Now func() time.Time
}

// Authenticate returns the identity proven by r's "Authorization:
// LatchAWS …" header. It returns EUNAUTHENTICATED when the header is
// missing or the proof is refused, and EUNAVAILABLE when STS cannot be
// asked.
func (v *Verifier) Authenticate(r *http.Request) (latch.Identity, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return latch.Identity{}, unauthenticated("no Authorization header; send an AWS identity proof (LatchAWS)")
	}
	return v.Verify(r.Context(), h)
}

// Verify checks the proof in header, an Authorization value as [Header]
// makes it, and returns the identity STS vouches for: Kind KindIAM,
// Subject the normalised ARN ([NormalizeARN]), Issuer the account ID. A
// proof addressed elsewhere than a trusted STS endpoint, for another
// action or another latch server, or older than [MaxAge] is refused
// without being sent.
func (v *Verifier) Verify(ctx context.Context, header string) (latch.Identity, error) {
	if v.ServerID == "" {
		return latch.Identity{}, latch.Errorf(latch.EINTERNAL, "awsauth: the verifier has no ServerID")
	}
	sr, err := decode(header)
	if err != nil {
		return latch.Identity{}, err
	}
	if err := v.check(sr); err != nil {
		return latch.Identity{}, err
	}
	return v.ask(ctx, sr)
}

func decode(header string) (signedRequest, error) {
	scheme, payload, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, Scheme) {
		return signedRequest{}, unauthenticated("the Authorization scheme is not %s", Scheme)
	}
	if len(payload) > maxProof {
		return signedRequest{}, unauthenticated("the AWS identity proof is longer than %d bytes", maxProof)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(payload))
	if err != nil {
		return signedRequest{}, unauthenticated("the AWS identity proof is not base64")
	}
	var sr signedRequest
	if err := json.Unmarshal(raw, &sr); err != nil {
		return signedRequest{}, unauthenticated("the AWS identity proof is not a signed request")
	}
	canonical := http.Header{}
	for k, vs := range sr.Headers {
		canonical[http.CanonicalHeaderKey(k)] = vs
	}
	sr.Headers = canonical
	return sr, nil
}

// check refuses a proof that STS would accept but latch must not: one
// addressed to an untrusted host, for another action, for another latch
// server, or too old.
func (v *Verifier) check(sr signedRequest) error {
	u, err := url.Parse(sr.URL)
	if err != nil || u.User != nil || u.Opaque != "" || u.Fragment != "" || u.Host == "" {
		return unauthenticated("the AWS identity proof's URL is malformed")
	}
	if u.Path != "" && u.Path != "/" {
		return unauthenticated("the AWS identity proof's URL has a path; STS's is /")
	}
	if !v.trusted(u) {
		return unauthenticated("the AWS identity proof is addressed to %s://%s, which is not a trusted STS endpoint", u.Scheme, u.Host)
	}
	if host := sr.Headers.Get("Host"); host != "" && !strings.EqualFold(host, u.Host) {
		return unauthenticated("the AWS identity proof's Host header does not match its URL")
	}
	query := u.Query()
	params := url.Values{}
	switch sr.Method {
	case http.MethodGet:
		if len(sr.Body) > 0 {
			return unauthenticated("the AWS identity proof is a GET with a body")
		}
	case http.MethodPost:
		form, err := url.ParseQuery(string(sr.Body))
		if err != nil {
			return unauthenticated("the AWS identity proof's body is not a form")
		}
		params = form
	default:
		return unauthenticated("the AWS identity proof's method is not GET or POST")
	}
	for k, vs := range query {
		params[k] = append(params[k], vs...)
	}
	for k, vs := range params {
		if k != "Action" && k != "Version" && !(strings.HasPrefix(k, "X-Amz-") && query.Has(k)) {
			return unauthenticated("the AWS identity proof carries parameters other than sts:GetCallerIdentity's")
		}
		if len(vs) != 1 {
			return unauthenticated("the AWS identity proof repeats the parameter %s", k)
		}
	}
	if params.Get("Action") != "GetCallerIdentity" || params.Get("Version") != stsVersion {
		return unauthenticated("the AWS identity proof is not an sts:GetCallerIdentity request")
	}

	switch ids := sr.Headers.Values(ServerIDHeader); {
	case len(ids) == 0:
		return unauthenticated("the AWS identity proof names no latch server (%s); sign it with this server's ID, %q", ServerIDHeader, v.ServerID)
	case len(ids) != 1 || ids[0] != v.ServerID:
		return unauthenticated("the AWS identity proof is for latch server %q, not this one (%q)", strings.Join(ids, ","), v.ServerID)
	case !slices.Contains(signedHeaders(query, sr.Headers), strings.ToLower(ServerIDHeader)):
		return unauthenticated("the AWS identity proof does not sign %s", ServerIDHeader)
	}

	date := query.Get("X-Amz-Date")
	if date == "" {
		date = sr.Headers.Get("X-Amz-Date")
	}
	signed, err := time.Parse(amzDateFormat, date)
	if err != nil {
		return unauthenticated("the AWS identity proof has no valid X-Amz-Date")
	}
	now := v.now()
	if now.Sub(signed) > MaxAge {
		return unauthenticated("the AWS identity proof was signed at %s, more than %v ago; sign a new one", signed.Format(time.RFC3339), MaxAge)
	}
	if signed.Sub(now) > MaxAge {
		return unauthenticated("the AWS identity proof is dated %s, in the future; check the client's clock", signed.Format(time.RFC3339))
	}
	return nil
}

// signedHeaders lists the headers a request's signature covers, from its
// presigned query or its Authorization header.
func signedHeaders(query url.Values, h http.Header) []string {
	if s := query.Get("X-Amz-SignedHeaders"); s != "" {
		return strings.Split(s, ";")
	}
	for field := range strings.SplitSeq(h.Get("Authorization"), ",") {
		if _, s, ok := strings.Cut(field, "SignedHeaders="); ok {
			return strings.Split(strings.TrimSpace(s), ";")
		}
	}
	return nil
}

func (v *Verifier) trusted(u *url.URL) bool {
	if v.TrustedHosts == nil {
		return u.Scheme == "https" && awsSTSHost.MatchString(u.Host)
	}
	for _, t := range v.TrustedHosts {
		scheme, host, ok := strings.Cut(t, "://")
		if !ok {
			scheme, host = "https", t
		}
		if strings.EqualFold(u.Scheme, scheme) && strings.EqualFold(u.Host, host) {
			return true
		}
	}
	return false
}

// ask sends the proof to STS exactly as it was signed, and reads who STS
// says signed it.
func (v *Verifier) ask(ctx context.Context, sr signedRequest) (latch.Identity, error) {
	req, err := http.NewRequestWithContext(ctx, sr.Method, sr.URL, bytes.NewReader(sr.Body))
	if err != nil {
		return latch.Identity{}, unauthenticated("the AWS identity proof is not a valid request")
	}
	for k, vs := range sr.Headers {
		if k != "Host" && k != "Content-Length" {
			req.Header[k] = vs
		}
	}
	resp, err := v.client().Do(req)
	if err != nil {
		// A *url.Error quotes the URL, whose query holds the signature and
		// any session token: keep only the cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return latch.Identity{}, latch.Errorf(latch.EUNAVAILABLE, "ask AWS STS who the caller is: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return latch.Identity{}, latch.Errorf(latch.EUNAVAILABLE, "read AWS STS's answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return latch.Identity{}, stsError(resp.StatusCode, body)
	}
	var answer struct {
		Arn     string `xml:"GetCallerIdentityResult>Arn"`
		Account string `xml:"GetCallerIdentityResult>Account"`
	}
	if err := xml.Unmarshal(body, &answer); err != nil || answer.Arn == "" || answer.Account == "" {
		return latch.Identity{}, latch.Errorf(latch.EUNAVAILABLE, "AWS STS answered GetCallerIdentity without an ARN and account")
	}
	subject, err := NormalizeARN(answer.Arn)
	if err != nil || arnAccount(answer.Arn) != answer.Account {
		return latch.Identity{}, unauthenticated("AWS STS answered with ARN %q for account %q, which latch cannot use", answer.Arn, answer.Account)
	}
	return latch.Identity{Kind: latch.KindIAM, Subject: subject, Issuer: answer.Account}, nil
}

// stsError translates STS's refusal. Its client errors (an unknown key, a
// bad signature, an expired token or signature) mean the proof is no
// good; throttling and server errors mean STS could not say.
func stsError(status int, body []byte) error {
	var doc struct {
		Code    string `xml:"Error>Code"`
		Message string `xml:"Error>Message"`
	}
	_ = xml.Unmarshal(body, &doc) // a body that is not STS's leaves the status to go on
	if status >= 500 || status == http.StatusTooManyRequests || doc.Code == "Throttling" {
		return latch.Errorf(latch.EUNAVAILABLE, "AWS STS could not check the identity (HTTP %d %s); try again", status, doc.Code)
	}
	if doc.Code == "" {
		return unauthenticated("AWS STS refused the AWS identity proof (HTTP %d)", status)
	}
	return unauthenticated("AWS STS refused the AWS identity proof: %s: %s", doc.Code, doc.Message)
}

func (v *Verifier) client() *http.Client {
	c := http.Client{Timeout: 30 * time.Second}
	if v.HTTPClient != nil {
		c = *v.HTTPClient
	}
	// A trusted endpoint's redirect could point anywhere.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func unauthenticated(format string, args ...any) error {
	return latch.Errorf(latch.EUNAUTHENTICATED, format, args...)
}
