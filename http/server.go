// Package http serves latch's JSON API under /v1 and is its client.
//
// Every request gets an ID (X-Request-Id, and in every log line it
// causes). Every request spends its source address's budget first
// (limits.go); every route but health and readiness then authenticates the
// caller, and every handler hands the identity to the access service,
// which authorizes it explicitly. Errors are {code, message, field,
// request_id}. Serve bounds every connection in time, their number, and
// each address's share of them.
package http

import (
	"cmp"
	"context"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"time"

	"golang.org/x/time/rate"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
)

// Authenticator proves who made a request. It returns EUNAUTHENTICATED
// for missing or bad credentials.
type Authenticator interface {
	Authenticate(r *http.Request) (latch.Identity, error)
}

// Options are the server's settings.
type Options struct {
	Logger         *slog.Logger   // nil discards logs
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-For is believed
	RateLimit      rate.Limit     // requests per second per identity; 0 means DefaultRateLimit
	Burst          int            // 0 means DefaultBurst
	MaxBody        int64          // bytes; 0 means DefaultMaxBody
	// AddrRateLimit is requests per second per source address (an IPv6
	// /64 being one), spent before authentication; 0 means
	// DefaultAddrRateLimit. AddrBurst: 0 means DefaultAddrBurst.
	AddrRateLimit rate.Limit
	AddrBurst     int
	// MaxVerifications bounds identity verifications (STS calls, ID-token
	// checks) in progress at once; 0 means DefaultMaxVerifications.
	MaxVerifications int
	// Connection limits, applied by Serve; 0 means the Default of each.
	// MaxConnsPerAddr is a source address's share of MaxConns (an IPv6
	// /64 being one address; TrustedProxies exempt).
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxConns, MaxConnsPerAddr                                 int
	// Ready reports whether the server can serve (its store answers).
	Ready func(ctx context.Context) error
	// Portal, if set, serves every path outside /v1/ (the browser portal),
	// behind the same per-address budget, body limit, request IDs and
	// logs as the API; it authenticates its own callers. nil leaves those
	// paths to the API, which answers 404 to an authenticated caller.
	Portal http.Handler
	// Mount adds handlers by pattern (e.g. "POST /slack/interactions")
	// that authenticate requests themselves, as Slack's signed
	// interactivity does: no identity is asked for, but the address
	// budget and the body limit apply, as they do to every route.
	Mount map[string]http.Handler
}

// Defaults for Options.
const (
	DefaultRateLimit = rate.Limit(5)
	DefaultBurst     = 20
	DefaultMaxBody   = 64 << 10

	// A source address may spend twice an identity's rate: one person
	// never meets it first, and a few share an address (NAT) in comfort.
	DefaultAddrRateLimit = rate.Limit(10)
	DefaultAddrBurst     = 50
	// Verifications take tens of milliseconds (an STS round trip), so 32
	// at once is hundreds a second: far above a team's need, and a bound
	// on what a flood from many addresses can ask of STS or the issuer.
	DefaultMaxVerifications = 32
)

// Server is the API server.
type Server struct {
	access *broker.Access
	auth   Authenticator
	log    *slog.Logger
	opts   Options

	ids, addrs *limiter // budgets per identity and per source address
	verifying  *verifying
	longPoll   map[string]time.Duration // routes exempt from WriteTimeout; see longPoll
}

// NewServer returns a server for access, authenticating with auth.
func NewServer(access *broker.Access, auth Authenticator, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = DefaultRateLimit
	}
	if opts.Burst == 0 {
		opts.Burst = DefaultBurst
	}
	if opts.MaxBody == 0 {
		opts.MaxBody = DefaultMaxBody
	}
	opts.AddrRateLimit = cmp.Or(opts.AddrRateLimit, DefaultAddrRateLimit)
	opts.AddrBurst = cmp.Or(opts.AddrBurst, DefaultAddrBurst)
	opts.MaxVerifications = cmp.Or(opts.MaxVerifications, DefaultMaxVerifications)
	opts.ReadHeaderTimeout = cmp.Or(opts.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	opts.ReadTimeout = cmp.Or(opts.ReadTimeout, DefaultReadTimeout)
	opts.WriteTimeout = cmp.Or(opts.WriteTimeout, DefaultWriteTimeout)
	opts.IdleTimeout = cmp.Or(opts.IdleTimeout, DefaultIdleTimeout)
	opts.MaxConns = cmp.Or(opts.MaxConns, DefaultMaxConns)
	opts.MaxConnsPerAddr = cmp.Or(opts.MaxConnsPerAddr, DefaultMaxConnsPerAddr)
	return &Server{access: access, auth: auth, log: opts.Logger, opts: opts, longPoll: maps.Clone(longPoll),
		ids:       newLimiter(opts.RateLimit, opts.Burst),
		addrs:     newLimiter(opts.AddrRateLimit, opts.AddrBurst),
		verifying: &verifying{slots: make(chan struct{}, opts.MaxVerifications)},
	}
}

// Routes lists every route as "METHOD /path"; the OpenAPI test checks the
// document against it.
func (s *Server) Routes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /v1/whoami":                  s.whoami,
		"POST /v1/login":                  s.login,
		"POST /v1/requests":               s.createRequest,
		"GET /v1/requests":                s.listRequests,
		"GET /v1/requests/{id}":           s.getRequest,
		"POST /v1/requests/{id}/approve":  s.review(true),
		"POST /v1/requests/{id}/deny":     s.review(false),
		"POST /v1/requests/{id}/withdraw": s.withdraw,
		"GET /v1/grants":                  s.listGrants,
		"GET /v1/grants/{id}":             s.getGrant,
		"POST /v1/grants/{id}/revoke":     s.revokeGrant,
		"POST /v1/grants/{id}/ssh":        s.sshLogin,
		"POST /v1/grants/{id}/session":    s.startSession,
		"GET /v1/policy/explain":          s.explain,
		"POST /v1/requests/preview":       s.previewRequest,
		"GET /v1/rules":                   s.askable,
		"GET /v1/grants/{id}/timeline":    s.grantTimeline,
		"GET /v1/audit":                   s.auditLog,
		"GET /v1/audit/verify":            s.verifyAudit,
		"GET /v1/policy/status":           s.policyStatus,
	}
}

// Open routes need no identity.
func (s *Server) openRoutes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /v1/health": s.health,
		"GET /v1/ready":  s.ready,
	}
}

// Handler returns the API with its middleware.
func (s *Server) Handler() http.Handler {
	authed := http.NewServeMux()
	for pattern, h := range s.Routes() {
		authed.Handle(pattern, s.route(pattern, h))
	}
	authed.HandleFunc("/", s.notFound)
	protected := s.authenticate(s.rateLimit(authed))

	mux := http.NewServeMux()
	for pattern, h := range s.openRoutes() {
		mux.Handle(pattern, s.route(pattern, h))
	}
	for pattern, h := range s.opts.Mount {
		mux.Handle(pattern, h)
	}
	if s.opts.Portal != nil {
		mux.Handle("/v1/", protected)
		mux.Handle("/", s.opts.Portal)
	} else {
		mux.Handle("/", protected)
	}
	// The order is the defence: every request, probes included, spends its
	// address's budget before anything is done for it: before any
	// verification (STS, the issuer's keys) is paid for, and before
	// readiness asks the store. See limits.go.
	return withRequestID(s.recoverPanics(s.logRequests(s.withClientAddr(s.limitAddress(s.limitBody(mux))))))
}

// route is h, with its write deadline extended if it is a long poll.
func (s *Server) route(pattern string, h http.Handler) http.Handler {
	if d, ok := s.longPoll[pattern]; ok {
		return s.extendWriteDeadline(d, h)
	}
	return h
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, latch.Errorf(latch.ENOTFOUND, "no such endpoint: %s %s", r.Method, r.URL.Path))
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(r.Context()); err != nil {
			s.writeError(w, r, latch.Errorf(latch.EUNAVAILABLE, "not ready: %v", err))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
