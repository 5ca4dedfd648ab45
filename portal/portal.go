// Package portal is latch's browser portal, served by `latch server` at /
// beside the JSON API: sign-in with the server's OIDC issuer
// (authorization code and PKCE), and pages to request access, follow
// one's own access and review others' requests.
//
// Besides those pages: a decision preview before sending, a grant's
// timeline and CloudTrail proof, and for admins the audit log with its
// verification and the policy's reload status. Live lists refresh on a
// server-sent event that carries no data.
//
// It decides nothing itself. Every page and every form calls the same
// [broker.Access] methods the API's handlers call, with the identity the
// API's verifier computes from the same kind of ID token, so a rule has
// one implementation whichever door a person comes in by.
//
// # Sessions and forms
//
// A sign-in keeps the identity in a server-side session, named by a
// random 256-bit ID in an HttpOnly, SameSite=Lax cookie (Secure under
// TLS), which ends no later than the ID token. No token reaches a URL or
// the browser's storage. Every POST must carry the session's CSRF token
// in a form field and, when the browser sends them, an Origin of this
// portal and a Sec-Fetch-Site other than cross-site; else it is refused
// with 403 and nothing changes. Every answer carries a
// Content-Security-Policy without 'unsafe-inline'.
package portal

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/policy"
	"github.com/latchdev/latch/reconcile"
)

// Access is what the portal asks of the access service: the methods the
// API's handlers call, and the views (preview, timeline, audit log, policy
// status) that authorize their caller the same way. *broker.Access
// implements it.
type Access interface {
	IsAdmin(who latch.Identity) bool
	RecordLogin(ctx context.Context, who latch.Identity, from string)
	Request(ctx context.Context, who latch.Identity, in broker.RequestInput) (latch.Request, error)
	Review(ctx context.Context, who latch.Identity, id latch.RequestID, approve bool, reason string) (latch.Request, error)
	GetRequest(ctx context.Context, who latch.Identity, id latch.RequestID) (latch.Request, error)
	ListRequests(ctx context.Context, who latch.Identity, f latch.RequestFilter) ([]latch.Request, error)
	GetGrant(ctx context.Context, who latch.Identity, id latch.GrantID) (latch.Grant, error)
	ListGrants(ctx context.Context, who latch.Identity, all bool, f latch.GrantFilter) ([]latch.Grant, error)
	EndGrant(ctx context.Context, who latch.Identity, id latch.GrantID) (latch.Grant, *broker.RuleKept, error)
	Explain(ctx context.Context, who latch.Identity, as *latch.Identity, region, target string) ([]policy.Explanation, error)
	Askable(ctx context.Context, who latch.Identity) []policy.Rule
	Preview(ctx context.Context, who latch.Identity, in broker.RequestInput) (broker.Preview, error)
	GrantTimeline(ctx context.Context, who latch.Identity, id latch.GrantID) (broker.GrantTimeline, error)
	AuditLog(ctx context.Context, who latch.Identity, q broker.AuditQuery) (broker.AuditPage, error)
	VerifyAudit(ctx context.Context, who latch.Identity) (broker.AuditCheck, error)
	PolicyStatus(ctx context.Context, who latch.Identity) (broker.PolicyStatus, bool, error)
	Changed() <-chan struct{}
}

var _ Access = (*broker.Access)(nil)

// Verifier checks the ID token a sign-in obtained. *oidc.Verifier
// implements it, keying people exactly as the API does.
type Verifier interface {
	// VerifyLogin returns who raw names and when it expires, after checking
	// it carries nonce; a bad token is EUNAUTHENTICATED.
	VerifyLogin(ctx context.Context, raw, nonce string) (latch.Identity, time.Time, error)
}

// Config is the portal's settings.
type Config struct {
	Access   Access
	Verifier Verifier
	// OAuth is the portal's client at the issuer: ClientID, ClientSecret
	// ("" for a public client: PKCE alone), Endpoint and Scopes ("openid",
	// "email", "groups"... ; nil means those three). RedirectURL is ignored:
	// it is URL + CallbackPath.
	OAuth oauth2.Config
	// URL is where browsers reach the portal, e.g. https://latch.example.com;
	// the issuer redirects to URL + CallbackPath, and a POST's Origin must
	// be URL's. An https URL makes cookies Secure.
	URL string
	// ClientAddr is the address a request came from, as the API sees it
	// (the source a request opens access for).
	ClientAddr func(*http.Request) netip.Addr
	// AWSAuth says the server also accepts AWS identities, which sign in
	// with the CLI, not here; the sign-in page says so.
	AWSAuth bool
	// Prove looks a grant's rule up in CloudTrail (see reconcile.Prove),
	// given the grant's history; nil means the server has no CloudTrail
	// client, and grant pages say the proof is not configured.
	Prove  func(ctx context.Context, g latch.Grant, history []latch.GrantEvent) (reconcile.Proof, error)
	Clock  latch.Clock  // nil means latch.SystemClock
	Logger *slog.Logger // nil discards logs
	// HTTPClient talks to the issuer's token endpoint; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
}

// CallbackPath is where the issuer sends browsers back after sign-in.
const CallbackPath = "/auth/callback"

// Portal serves the portal. It is safe for concurrent use.
type Portal struct {
	cfg      Config
	origin   string // scheme://host[:port] of cfg.URL
	secure   bool
	sessions *sessions
	pages    *pages
	assets   http.Handler
	log      *slog.Logger
	proofs   *proofCache
}

//go:embed assets
var assetFS embed.FS

// New returns the portal for cfg. It returns EINVALID for a URL that is
// not absolute http(s).
func New(cfg Config) (*Portal, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, latch.Invalidf("portal-url", "%q is not the portal's URL: want http(s)://HOST[:PORT]", cfg.URL)
	}
	if cfg.Clock == nil {
		cfg.Clock = latch.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OAuth.Scopes == nil {
		cfg.OAuth.Scopes = []string{"openid", "email", "groups"}
	}
	if cfg.OAuth.ClientSecret == "" {
		cfg.OAuth.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	cfg.OAuth.RedirectURL = u.Scheme + "://" + u.Host + CallbackPath
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, err
	}
	pg, err := parsePages()
	if err != nil {
		return nil, err
	}
	return &Portal{
		cfg: cfg, origin: u.Scheme + "://" + u.Host, secure: u.Scheme == "https",
		sessions: newSessions(cfg.Clock), pages: pg,
		assets: http.StripPrefix("/assets/", http.FileServerFS(sub)), log: cfg.Logger,
		proofs: newProofCache(cfg.Clock),
	}, nil
}

// Handler returns the portal's routes, each with the security headers.
func (p *Portal) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /assets/", p.assets)
	mux.HandleFunc("GET /login", p.login)
	mux.HandleFunc("GET "+CallbackPath, p.callback)
	mux.HandleFunc("GET /{$}", p.home)
	for pattern, h := range p.pageRoutes() {
		mux.Handle(pattern, p.signedIn(h))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { p.notFound(w, r) })
	return securityHeaders(mux)
}

// pageRoutes are the routes that need a session; each POST is
// CSRF-checked by signedIn.
func (p *Portal) pageRoutes() map[string]sessionHandler {
	return map[string]sessionHandler{
		"POST /logout":                   p.logout,
		"GET /request":                   p.requestPage,
		"POST /request":                  p.createRequest,
		"POST /request/preview":          p.previewRequest,
		"GET /access":                    p.accessPage,
		"POST /grants/{id}/end":          p.endGrant,
		"GET /grants/{id}":               p.grantPage,
		"GET /approvals":                 p.approvalsPage,
		"POST /requests/{id}/{decision}": p.review,
		"GET /admin":                     p.adminPage,
		"GET /admin/audit":               p.auditPage,
		"GET /events":                    p.events,
	}
}

// csp allows the portal's own script and style only: no inline code, no
// framing, no other origin.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
