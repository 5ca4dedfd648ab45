package awsauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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

// replaySkew is how much longer than a proof's validity the store keeps
// its digest: replicas (and the store, which prunes by its own clock) may
// run this far ahead of the clock that accepted the proof without
// forgetting it while another replica would still accept it.
const replaySkew = 5 * time.Minute

const (
	stsVersion    = "2011-06-15"
	amzDateFormat = "20060102T150405Z"
	maxProof      = 16 << 10 // bytes of header; a presigned request is ~2 KiB
	maxAnswer     = 64 << 10 // bytes of STS response read
)

var (
	accountID = regexp.MustCompile(`^[0-9]{12}$`)
	hexNonce  = regexp.MustCompile(`^[0-9a-f]{32}$`)
	hexSig    = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

// IsAccountID reports whether s is an AWS account ID: 12 digits.
func IsAccountID(s string) bool { return accountID.MatchString(s) }

// UsedProofs remembers which proofs have been accepted, so that each is
// accepted once; [latch.Store] is one, shared by replicas.
type UsedProofs interface {
	// UseOnce records key until the time until and reports whether it was
	// fresh: not recorded before, or expired. Of racing calls with one
	// key, exactly one is fresh.
	UseOnce(ctx context.Context, key string, until time.Time) (fresh bool, err error)
}

// awsSTSHost matches STS's global and regional endpoints in the commercial
// partition: sts.amazonaws.com and sts.REGION.amazonaws.com.
var awsSTSHost = regexp.MustCompile(`^sts(\.[a-z]{2}-[a-z]+-[0-9]+)?\.amazonaws\.com(:443)?$`)

// Verifier checks AWS IAM proofs made by [Header], by sending them to STS.
// Its zero value refuses every proof: ServerID, Accounts and Used must be
// set.
type Verifier struct {
	// ServerID names this latch server, by default its URL; a proof must
	// carry it in its signed X-Latch-Server-ID header. Both are compared
	// as [ServerID] normalises them.
	ServerID string
	// Accounts are the AWS account IDs whose identities are accepted. An
	// identity from any other account is refused, whoever it is, as if
	// its proof were forged.
	Accounts []string
	// Used records each accepted proof's digest until the proof expires,
	// and refuses a proof seen before.
	Used UsedProofs
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
// missing or the proof is refused, and EUNAVAILABLE when STS or the record
// of used proofs cannot be asked.
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
// action or another latch server, without a signed nonce, or older than
// [MaxAge] is refused without being sent. An identity from an account not
// in Accounts, and a proof accepted before, are refused after STS answers.
func (v *Verifier) Verify(ctx context.Context, header string) (latch.Identity, error) {
	serverID, err := ServerID(v.ServerID)
	if err != nil {
		return latch.Identity{}, latch.Errorf(latch.EINTERNAL, "awsauth: the verifier's ServerID: %s", latch.ErrorMessage(err))
	}
	if len(v.Accounts) == 0 || v.Used == nil {
		return latch.Identity{}, latch.Errorf(latch.EINTERNAL, "awsauth: the verifier needs Accounts and Used, or it would accept any account's proofs, or any proof again")
	}
	sr, err := decode(header)
	if err != nil {
		return latch.Identity{}, err
	}
	p, err := v.check(sr, serverID)
	if err != nil {
		return latch.Identity{}, err
	}
	id, err := v.ask(ctx, sr)
	if err != nil {
		return latch.Identity{}, err
	}
	if !slices.Contains(v.Accounts, id.Issuer) {
		// The allowed accounts are not named to a caller from outside them.
		return latch.Identity{}, unauthenticated("AWS account %s is not one this latch server accepts identities from", id.Issuer)
	}
	// The proof is recorded only now that STS has vouched for it and its
	// account is allowed: a forged, foreign or otherwise refused proof
	// costs no write, so nobody without credentials of an allowed account
	// can fill the record. Replays racing the first use may all reach STS
	// (a read, harmless to repeat), but UseOnce inserts atomically, so
	// exactly one of them gets past this point.
	fresh, err := v.Used.UseOnce(ctx, p.key(), p.signed.Add(MaxAge+replaySkew))
	if err != nil {
		return latch.Identity{}, latch.Errorf(latch.EUNAVAILABLE, "cannot check that the AWS identity proof was not used before; try again: %s", latch.ErrorMessage(err))
	}
	if !fresh {
		return latch.Identity{}, unauthenticated("the AWS identity proof was used before; each is accepted once: sign a new one")
	}
	return id, nil
}

// proof is what check learns of a proof for the record of used ones.
type proof struct {
	signature string    // lower-case hex
	signed    time.Time // its X-Amz-Date
}

// key is the proof's entry in the record of used proofs: a digest of its
// signature, which STS has checked and which nobody without the signing
// key can make for another request. The signature itself is not stored:
// until it expires, it is a credential.
func (p proof) key() string {
	sum := sha256.Sum256([]byte(p.signature))
	return "awsauth-proof:" + hex.EncodeToString(sum[:])
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
// server, without a nonce, or too old.
func (v *Verifier) check(sr signedRequest, serverID string) (proof, error) {
	u, err := url.Parse(sr.URL)
	if err != nil || u.User != nil || u.Opaque != "" || u.Fragment != "" || u.Host == "" {
		return proof{}, unauthenticated("the AWS identity proof's URL is malformed")
	}
	if u.Path != "" && u.Path != "/" {
		return proof{}, unauthenticated("the AWS identity proof's URL has a path; STS's is /")
	}
	if !v.trusted(u) {
		return proof{}, unauthenticated("the AWS identity proof is addressed to %s://%s, which is not a trusted STS endpoint: "+
			"the server trusts AWS's own, and others only when started with --aws-sts-host %s://%s; "+
			"or sign with AWS's STS (unset AWS_ENDPOINT_URL or --endpoint)", u.Scheme, u.Host, u.Scheme, u.Host)
	}
	if host := sr.Headers.Get("Host"); host != "" && !strings.EqualFold(host, u.Host) {
		return proof{}, unauthenticated("the AWS identity proof's Host header does not match its URL")
	}
	query := u.Query()
	params := url.Values{}
	switch sr.Method {
	case http.MethodGet:
		if len(sr.Body) > 0 {
			return proof{}, unauthenticated("the AWS identity proof is a GET with a body")
		}
	case http.MethodPost:
		form, err := url.ParseQuery(string(sr.Body))
		if err != nil {
			return proof{}, unauthenticated("the AWS identity proof's body is not a form")
		}
		params = form
	default:
		return proof{}, unauthenticated("the AWS identity proof's method is not GET or POST")
	}
	for k, vs := range query {
		params[k] = append(params[k], vs...)
	}
	for k, vs := range params {
		if k != "Action" && k != "Version" && !(strings.HasPrefix(k, "X-Amz-") && query.Has(k)) {
			return proof{}, unauthenticated("the AWS identity proof carries parameters other than sts:GetCallerIdentity's")
		}
		if len(vs) != 1 {
			return proof{}, unauthenticated("the AWS identity proof repeats the parameter %s", k)
		}
	}
	if params.Get("Action") != "GetCallerIdentity" || params.Get("Version") != stsVersion {
		return proof{}, unauthenticated("the AWS identity proof is not an sts:GetCallerIdentity request")
	}

	signed := signedHeaders(query, sr.Headers)
	switch ids := sr.Headers.Values(ServerIDHeader); {
	case len(ids) == 0:
		return proof{}, unauthenticated("the AWS identity proof names no latch server (%s); sign it with this server's ID, %q", ServerIDHeader, serverID)
	case len(ids) != 1 || !sameServer(ids[0], serverID):
		return proof{}, unauthenticated("the AWS identity proof is for latch server %q, not this one (%q); clients sign the URL they were given (--server) unless told another ID (--server-id)", strings.Join(ids, ","), serverID)
	case !slices.Contains(signed, strings.ToLower(ServerIDHeader)):
		return proof{}, unauthenticated("the AWS identity proof does not sign %s", ServerIDHeader)
	}
	switch nonces := sr.Headers.Values(NonceHeader); {
	case len(nonces) == 0:
		return proof{}, unauthenticated("the AWS identity proof carries no nonce (%s); sign it with a latch that sends one", NonceHeader)
	case len(nonces) != 1 || !hexNonce.MatchString(nonces[0]):
		return proof{}, unauthenticated("the AWS identity proof's %s is not 32 lower-case hex digits", NonceHeader)
	case !slices.Contains(signed, strings.ToLower(NonceHeader)):
		return proof{}, unauthenticated("the AWS identity proof does not sign %s", NonceHeader)
	}
	// One signature, so that the digest recorded for it is the one STS
	// checked, not a second one added to make a replay look new.
	if query.Has("X-Amz-Signature") && sr.Headers.Get("Authorization") != "" {
		return proof{}, unauthenticated("the AWS identity proof carries two signatures, in its URL and its Authorization header")
	}
	sig := signature(query, sr.Headers)
	if !hexSig.MatchString(sig) {
		return proof{}, unauthenticated("the AWS identity proof has no well-formed signature")
	}

	date := query.Get("X-Amz-Date")
	if date == "" {
		date = sr.Headers.Get("X-Amz-Date")
	}
	at, err := time.Parse(amzDateFormat, date)
	if err != nil {
		return proof{}, unauthenticated("the AWS identity proof has no valid X-Amz-Date")
	}
	now := v.now()
	if now.Sub(at) > MaxAge {
		return proof{}, unauthenticated("the AWS identity proof was signed at %s, more than %v ago; sign a new one", at.Format(time.RFC3339), MaxAge)
	}
	if at.Sub(now) > MaxAge {
		return proof{}, unauthenticated("the AWS identity proof is dated %s, in the future; check the client's clock", at.Format(time.RFC3339))
	}
	return proof{signature: strings.ToLower(sig), signed: at}, nil
}

// sameServer reports whether a proof's server ID names the server whose
// normalised ID is want.
func sameServer(got, want string) bool {
	if n, err := ServerID(got); err == nil {
		got = n
	}
	return got == want
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

// signature returns a request's signature, from its presigned query or its
// Authorization header.
func signature(query url.Values, h http.Header) string {
	if s := query.Get("X-Amz-Signature"); s != "" {
		return s
	}
	for field := range strings.SplitSeq(h.Get("Authorization"), ",") {
		if _, s, ok := strings.Cut(field, "Signature="); ok {
			return strings.TrimSpace(s)
		}
	}
	return ""
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
	if err != nil || latch.ARNAccount(answer.Arn) != answer.Account {
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
