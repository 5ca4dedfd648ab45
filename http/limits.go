package http

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/latchdev/latch"
)

// How a flood is made cheap. Proving an identity costs latch a call to
// someone else: STS for an AWS proof, and for an ID token naming a key the
// verifier has not seen, the issuer's key set. So the authenticated routes
// are guarded in this order (see Handler):
//
//  1. limitAddress: the source address's budget, before anything costs. A
//     refused caller is answered 429 without a verification. Every request
//     spends it, the open routes too: a load balancer's probes, a few
//     addresses every few seconds, are far under it, and a flood of
//     probes is answered 429 without asking the store if it is ready.
//  2. authenticate, holding one of MaxVerifications slots while it
//     verifies. With every slot taken (a flood from many addresses), the
//     caller is answered 503 at once, not queued.
//  3. rateLimit: the identity's budget.
//
// The OIDC verifier also bounds how often it refetches keys (see
// oidc.Config.MinKeyRefresh), since a flood from many addresses passes 1.
// Before any request, Serve's listener bounds the connections open at
// once, and each address's share of them (MaxConnsPerAddr; serve.go).

// maxBuckets bounds a limiter's memory. When it is reached, buckets that
// have refilled (idle callers) are forgotten; if none have, all are.
const maxBuckets = 100_000

// limiter keeps one token bucket (a rate.Limiter) per key: an identity,
// or a source address.
type limiter struct {
	rate  rate.Limit // tokens per second
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter // guarded by mu
}

func newLimiter(r rate.Limit, burst int) *limiter {
	return &limiter{rate: r, burst: burst, now: time.Now, buckets: map[string]*rate.Limiter{}}
}

// take spends a token of key's bucket. When there is none, it reports how
// long until there will be.
func (l *limiter) take(key string) (ok bool, wait time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[key]
	if !found {
		if len(l.buckets) >= maxBuckets {
			l.forgetIdle(now)
		}
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[key] = b
	}
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refused call spends nothing
		return false, d
	}
	return true, 0
}

// forgetIdle drops the buckets that are full again, which a new bucket
// would equal; if that frees nothing, it drops them all. Callers hold mu.
func (l *limiter) forgetIdle(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}

// addressKey is the budget an address spends: an IPv4 address, or the /64
// an IPv6 address is in, since one host commonly holds a whole /64.
func addressKey(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}

// limitAddress spends the source address's budget before anything else is
// done for the request.
func (s *Server) limitAddress(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := clientAddr(r.Context())
		if ok, wait := s.addrs.take(addressKey(addr)); !ok {
			setRetryAfter(w, wait)
			s.writeError(w, r, latch.Errorf(codeRateLimited, "too many requests from %s; retry in %s", addr, retryAfter(wait)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// verifying holds a slot while an identity is verified; it refuses at once
// when all are taken. Refusals are logged as a warning at most once a
// minute.
type verifying struct {
	slots  chan struct{}
	warned oncePerMinute
}

func (v *verifying) acquire() bool {
	select {
	case v.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (v *verifying) release() { <-v.slots }

// oncePerMinute lets a warning about a flood, which is many refusals, be
// logged at most once a minute.
type oncePerMinute struct{ last atomic.Int64 } // unix seconds of the last warning

// due reports whether a minute has passed since the last warning, and if so
// counts this one.
func (o *oncePerMinute) due(now time.Time) bool {
	last := o.last.Load()
	return now.Unix()-last >= 60 && o.last.CompareAndSwap(last, now.Unix())
}

// overloaded answers 503 with Retry-After when every verification slot is
// taken. It writes the error itself: writeError would log every refusal as
// an error, and a flood is many refusals.
func (s *Server) overloaded(w http.ResponseWriter, r *http.Request) {
	if s.verifying.warned.due(time.Now()) {
		s.logger(r).WarnContext(r.Context(), "identity verifications at their bound; refusing callers with 503 (logged at most once a minute)",
			"max_verifications", cap(s.verifying.slots))
	}
	setRetryAfter(w, time.Second)
	writeJSON(w, http.StatusServiceUnavailable, ErrorBody{
		Code:      latch.EUNAVAILABLE,
		Message:   "the server is verifying as many callers as it allows; retry in 1s",
		RequestID: requestID(r.Context()),
	})
}

// setRetryAfter says, in whole seconds rounded up, when to retry.
func setRetryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.FormatInt(int64(retryAfter(wait)/time.Second), 10))
}

// retryAfter is wait in whole seconds, rounded up, at least one.
func retryAfter(wait time.Duration) time.Duration {
	return time.Duration(max(math.Ceil(wait.Seconds()), 1)) * time.Second
}
