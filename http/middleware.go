package http

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyIdentity
	keyClientAddr
	keyLogInfo
)

// logInfo collects, for the request log line, what inner middleware learns.
type logInfo struct {
	who    string
	client netip.Addr
}

func requestID(ctx context.Context) string { s, _ := ctx.Value(keyRequestID).(string); return s }

func identity(ctx context.Context) (latch.Identity, bool) {
	id, ok := ctx.Value(keyIdentity).(latch.Identity)
	return id, ok
}

func clientAddr(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(keyClientAddr).(netip.Addr)
	return a
}

// ClientAddr is the address r came from, as the server's middleware
// decided it (X-Forwarded-For from a trusted proxy, else the peer); it is
// invalid outside a request the Server's Handler serves.
func ClientAddr(r *http.Request) netip.Addr { return clientAddr(r.Context()) }

func (s *Server) logger(r *http.Request) *slog.Logger {
	return s.log.With("request_id", requestID(r.Context()))
}

// withRequestID gives every request an ID, returned in X-Request-Id and
// logged with everything the request causes.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id := "req-" + hex.EncodeToString(b[:])
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyRequestID, id)))
	})
}

// recoverPanics turns a panic in a handler into a 500 and a log line; the
// server lives on.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.logger(r).ErrorContext(r.Context(), "handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				s.writeError(w, r, latch.Errorf(latch.EINTERNAL, "panic: %v", p))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// logRequests writes one line per request, with who made it.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		info := &logInfo{}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), keyLogInfo, info)))
		s.logger(r).InfoContext(r.Context(), "http", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"identity", info.who, "client", info.client.String(), "duration_ms", time.Since(start).Milliseconds())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }

// Unwrap lets http.ResponseController reach the connection (to extend a
// long poll's write deadline).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// withClientAddr records the caller's address: the connection's peer,
// unless the peer is a trusted proxy, in which case the right-most address
// in X-Forwarded-For that is not itself a trusted proxy.
func (s *Server) withClientAddr(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, err := s.clientAddr(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if info, ok := r.Context().Value(keyLogInfo).(*logInfo); ok {
			info.client = addr
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyClientAddr, addr)))
	})
}

func (s *Server) clientAddr(r *http.Request) (netip.Addr, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, latch.Errorf(latch.EINTERNAL, "unreadable peer address %q", r.RemoteAddr)
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer, nil
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		a, err := netip.ParseAddr(h)
		if err != nil {
			return netip.Addr{}, latch.Invalidf("X-Forwarded-For", "%q is not an address", h)
		}
		if a = a.Unmap(); !s.trusted(a) {
			return a, nil
		}
	}
	return peer, nil
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// authenticate requires an identity on every request it wraps. It
// verifies in one of a bounded number of slots; when all are taken it
// answers 503 at once (see limits.go).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.verifying.acquire() {
			s.overloaded(w, r)
			return
		}
		who, err := func() (latch.Identity, error) {
			defer s.verifying.release() // even if it panics
			return s.auth.Authenticate(r)
		}()
		if err != nil {
			if latch.ErrorCode(err) != latch.EUNAUTHENTICATED {
				err = latch.Errorf(latch.EUNAUTHENTICATED, "%s", latch.ErrorMessage(err))
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="latch"`)
			s.writeError(w, r, err)
			return
		}
		if info, ok := r.Context().Value(keyLogInfo).(*logInfo); ok {
			info.who = who.Subject
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyIdentity, who)))
	})
}

// rateLimit spends the caller's identity's budget.
func (s *Server) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, _ := identity(r.Context())
		if ok, wait := s.ids.take(string(who.Kind) + ":" + who.Subject); !ok {
			setRetryAfter(w, wait)
			s.writeError(w, r, latch.Errorf(codeRateLimited, "too many requests from %s; retry in %s", who.Subject, retryAfter(wait)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody caps request bodies; handlers that decode more see an error.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
		next.ServeHTTP(w, r)
	})
}
