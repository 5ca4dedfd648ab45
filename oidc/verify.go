// Package oidc is latch's OpenID Connect identity: the server verifies ID
// tokens sent as bearer tokens ([Verifier]), and `latch login` obtains them
// with the device flow or a browser and PKCE ([Login]), caches them
// ([SaveToken], [LoadToken]) and refreshes them ([Refresh]).
//
// The ID token, not the access token, is what latch sends: its audience is
// latch's client ID, so a token minted for another application is refused.
// Tokens are secrets; nothing here logs them or puts them in an error.
package oidc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
)

// Claim defaults for [Config].
const (
	DefaultGroupsClaim  = "groups"
	DefaultSubjectClaim = "sub"

	DefaultMinKeyRefresh = 10 * time.Second
)

// signingAlgs are the algorithms an ID token may be signed with: public-key
// ones only. A shared-secret algorithm (HS256) would let anyone who knows
// the client secret mint tokens, and "none" proves nothing.
var signingAlgs = []string{
	gooidc.RS256, gooidc.RS384, gooidc.RS512,
	gooidc.ES256, gooidc.ES384, gooidc.ES512,
	gooidc.PS256, gooidc.PS384, gooidc.PS512,
	gooidc.EdDSA,
}

// Config says which tokens a [Verifier] accepts.
type Config struct {
	// Issuer is the OIDC issuer URL, exactly as tokens' iss claim spells it;
	// its discovery document is read from Issuer/.well-known/openid-configuration.
	Issuer string
	// Audience is latch's client ID at the issuer; tokens must name it in aud.
	Audience string
	// GroupsClaim names the claim holding the user's groups; "" means
	// DefaultGroupsClaim.
	GroupsClaim string
	// SubjectClaim names the claim that becomes Identity.Subject, the key
	// of the person; "" means DefaultSubjectClaim, sub, which the issuer
	// keeps for the user whatever the scopes of a login. Name another claim
	// only if the issuer keeps it as stable (a user ID, say); a token
	// without it is refused, never keyed by sub instead, or one person
	// would have two keys.
	SubjectClaim string
	// HTTPClient fetches the discovery document and signing keys; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	// Now is the clock expiry is checked against, and key fetches are
	// spaced by; nil means time.Now.
	Now func() time.Time
	// MinKeyRefresh is the least time between fetches of the issuer's
	// signing keys; 0 means DefaultMinKeyRefresh. The keys are fetched
	// again when a token names a key the verifier has not seen (or its
	// signature fails), so without this bound every forged token would
	// make a request to the issuer. With it, a token signed by a key the
	// issuer published since the last fetch may be refused for up to
	// MinKeyRefresh.
	MinKeyRefresh time.Duration
}

// Verifier checks ID tokens from one issuer. It is safe for concurrent use;
// the issuer's signing keys are fetched on first use and again when a token
// names a key it has not seen, at most once per [Config.MinKeyRefresh].
type Verifier struct {
	cfg      Config
	verifier *gooidc.IDTokenVerifier
	endpoint oauth2.Endpoint
}

// NewVerifier reads the issuer's discovery document and returns a verifier
// for its tokens. It returns EINVALID for a config without an issuer or
// audience, and EUNAVAILABLE when the discovery document cannot be read.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, latch.Invalidf("issuer", "the OIDC issuer URL is required")
	}
	if cfg.Audience == "" {
		return nil, latch.Invalidf("audience", "the OIDC client ID (audience) is required")
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = DefaultGroupsClaim
	}
	if cfg.SubjectClaim == "" {
		cfg.SubjectClaim = DefaultSubjectClaim
	}
	if cfg.MinKeyRefresh == 0 {
		cfg.MinKeyRefresh = DefaultMinKeyRefresh
	}
	provider, err := gooidc.NewProvider(clientContext(ctx, cfg.HTTPClient), cfg.Issuer)
	if err != nil {
		return nil, latch.Errorf(latch.EUNAVAILABLE, "discover OIDC issuer %s: %v", cfg.Issuer, err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil || meta.JWKSURI == "" {
		return nil, latch.Errorf(latch.EUNAVAILABLE, "OIDC issuer %s names no signing keys (jwks_uri) in its discovery document", cfg.Issuer)
	}
	keys := gooidc.NewRemoteKeySet(gooidc.ClientContext(ctx, keyClient(cfg)), meta.JWKSURI)
	v := gooidc.NewVerifier(cfg.Issuer, keys, &gooidc.Config{
		ClientID:             cfg.Audience,
		SupportedSigningAlgs: signingAlgs,
		Now:                  cfg.Now,
	})
	return &Verifier{cfg: cfg, verifier: v, endpoint: provider.Endpoint()}, nil
}

// Endpoint is the issuer's authorization and token endpoints, from its
// discovery document, for a login with the authorization code flow.
func (v *Verifier) Endpoint() oauth2.Endpoint { return v.endpoint }

// Verify checks raw, an ID token, and returns who it names: Kind KindOIDC,
// Subject from the subject claim, Issuer, Groups from the groups claim,
// Name from name, and Email from email only when email_verified is the
// JSON boolean true. Any failure (signature, issuer, audience, expiry,
// algorithm, no subject claim, an unverified email as the subject claim)
// is EUNAUTHENTICATED.
func (v *Verifier) Verify(ctx context.Context, raw string) (latch.Identity, error) {
	who, _, err := v.verify(ctx, raw)
	return who, err
}

// VerifyLogin checks raw, the ID token a login with the authorization code
// flow just obtained, as [Verifier.Verify] does, and that it carries nonce,
// the login's own. It returns who the token names, keyed exactly as the
// API keys the same token, and when the token expires. A nonce mismatch
// is EUNAUTHENTICATED.
func (v *Verifier) VerifyLogin(ctx context.Context, raw, nonce string) (latch.Identity, time.Time, error) {
	who, tok, err := v.verify(ctx, raw)
	if err != nil {
		return latch.Identity{}, time.Time{}, err
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(tok.Nonce), []byte(nonce)) != 1 {
		return latch.Identity{}, time.Time{}, unauthenticated("the ID token is not for this login (nonce mismatch)")
	}
	return who, tok.Expiry, nil
}

func (v *Verifier) verify(ctx context.Context, raw string) (latch.Identity, *gooidc.IDToken, error) {
	if raw == "" {
		return latch.Identity{}, nil, unauthenticated("the bearer token is empty")
	}
	tok, err := v.verifier.Verify(ctx, raw)
	if err != nil {
		if expired, ok := errors.AsType[*gooidc.TokenExpiredError](err); ok {
			return latch.Identity{}, nil, unauthenticated("the ID token expired at %s; run latch login", expired.Expiry.UTC().Format(time.RFC3339))
		}
		return latch.Identity{}, nil, unauthenticated("the ID token is not valid: %v", err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return latch.Identity{}, nil, unauthenticated("the ID token's claims cannot be read: %v", err)
	}
	// An issuer that lets users set an unverified address would let them
	// claim anyone's: only the boolean true vouches for it, not "true",
	// "false", 1 or nothing.
	email, _ := claims["email"].(string)
	if claims["email_verified"] != true {
		email = ""
	}
	subject, _ := claims[v.cfg.SubjectClaim].(string)
	switch {
	case v.cfg.SubjectClaim == "email" && subject != "" && email == "":
		return latch.Identity{}, nil, unauthenticated("the ID token's email %s is not verified by the issuer (email_verified is not true)", subject)
	case subject == "":
		return latch.Identity{}, nil, unauthenticated("the ID token has no %s claim, which this server keys people by; "+
			"log in again with the scopes 'latch login' asks for", v.cfg.SubjectClaim)
	}
	name, _ := claims["name"].(string)
	return latch.Identity{
		Kind:    latch.KindOIDC,
		Subject: subject,
		Issuer:  tok.Issuer,
		Email:   email,
		Name:    name,
		Groups:  groups(claims[v.cfg.GroupsClaim]),
	}, tok, nil
}

// Authenticate returns the identity in r's "Authorization: Bearer <ID
// token>" header. A missing header, another scheme or a token [Verify]
// refuses is EUNAUTHENTICATED.
func (v *Verifier) Authenticate(r *http.Request) (latch.Identity, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return latch.Identity{}, unauthenticated("no Authorization header; run latch login and send the ID token as a bearer token")
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		// The scheme is not echoed: without a space, it is the token itself.
		return latch.Identity{}, unauthenticated("the Authorization header is not \"Bearer <ID token>\"")
	}
	return v.Verify(r.Context(), strings.TrimSpace(token))
}

// groups reads a groups claim: a list of strings, or one string.
func groups(claim any) []string {
	switch c := claim.(type) {
	case string:
		return []string{c}
	case []any:
		var out []string
		for _, g := range c {
			if s, ok := g.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// keyClient is the HTTP client the issuer's keys are fetched with:
// cfg.HTTPClient's (with a timeout if it has none), refusing to fetch
// within MinKeyRefresh of the last fetch.
func keyClient(cfg Config) *http.Client {
	c := http.Client{Timeout: 30 * time.Second}
	if cfg.HTTPClient != nil {
		c = *cfg.HTTPClient
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	c.Transport = &keyGate{next: next, interval: cfg.MinKeyRefresh, now: now}
	return &c
}

// keyGate lets a request through at most once per interval. go-oidc's key
// set fetches the keys again for every token whose key it cannot verify
// with (concurrent ones share a fetch, one after another do not); this is
// the bound on that.
type keyGate struct {
	next     http.RoundTripper
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	last time.Time // guarded by mu; zero before the first fetch
}

func (g *keyGate) RoundTrip(r *http.Request) (*http.Response, error) {
	now := g.now()
	g.mu.Lock()
	if !g.last.IsZero() && now.Sub(g.last) < g.interval {
		next := g.last.Add(g.interval)
		g.mu.Unlock()
		return nil, fmt.Errorf("the issuer's keys were fetched less than %s ago, and are not fetched again before %s", g.interval, next.UTC().Format(time.RFC3339))
	}
	g.last = now
	g.mu.Unlock()
	return g.next.RoundTrip(r)
}

func clientContext(ctx context.Context, c *http.Client) context.Context {
	if c == nil {
		return ctx
	}
	return gooidc.ClientContext(ctx, c)
}

func unauthenticated(format string, args ...any) error {
	return latch.Errorf(latch.EUNAUTHENTICATED, format, args...)
}
