package http

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Defaults for the connection limits in Options.
const (
	// DefaultReadHeaderTimeout bounds reading a request's headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout bounds reading a whole request, headers and body
	// (at most MaxBody, 64 KiB by default): ample for a slow link, and a
	// client trickling its body is cut off.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds a request from the end of its headers to
	// the end of its answer, handler included. Handlers call AWS (STS to
	// verify a caller, EC2 to open a rule, Instance Connect for SSH), each
	// call bounded below this.
	DefaultWriteTimeout = 60 * time.Second
	// DefaultIdleTimeout is how long a kept-alive connection may wait for
	// its next request: longer than a load balancer's usual idle timeout
	// (60 s on AWS ALB), so the balancer, not latch, closes first.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultMaxConns caps connections open at once; more wait for one to
	// close. Far above what a team's CLIs need, far below a process's
	// file descriptors.
	DefaultMaxConns = 1024
	// DefaultMaxConnsPerAddr caps the connections one source address (an
	// IPv6 /64 being one) may hold open at once, so that one address
	// cannot take every slot of MaxConns. A CLI uses one or two at a
	// time, and only while a command runs; an office NAT carries a team's
	// dozens of CLIs, seldom busy at once. 64 covers that with room, and
	// leaves 1024 slots needing 16 addresses to fill.
	DefaultMaxConnsPerAddr = 64
)

// ShutdownTimeout is how long Serve waits for requests in progress when
// its context ends.
const ShutdownTimeout = 10 * time.Second

// longPoll lists the routes ("METHOD /path", as in Routes) exempt from
// WriteTimeout because they wait for something to happen before they
// answer, each with the write deadline it gets instead, counted from the
// start of its handler. No route waits today: 'latch request --wait' polls
// GET /v1/requests/{id} every 2 s, each poll an ordinary request. A route
// that waits must be listed here, or WriteTimeout cuts it off.
var longPoll = map[string]time.Duration{}

// Serve serves the API on ln (with TLS if tlsCfg is not nil) until ctx
// ends, then shuts down gracefully, waiting up to ShutdownTimeout.
//
// Every connection is bounded: headers must arrive within
// ReadHeaderTimeout and the whole request within ReadTimeout; the answer
// must be written within WriteTimeout of the request's headers (routes in
// longPoll excepted); a kept-alive connection is closed after IdleTimeout
// without a request. At most MaxConns connections are open at once; more
// wait, unaccepted, until one closes. One source address may hold at most
// MaxConnsPerAddr of them: a connection beyond that is closed as soon as
// it is accepted, not queued. TrustedProxies, which carry many clients,
// are exempt from that share (but not from MaxConns).
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsCfg *tls.Config) error {
	srv := s.httpServer(tlsCfg)
	ln = limitListener(ln, s.opts.MaxConns, s.opts.MaxConnsPerAddr, s.trusted, s.log)
	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdown)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("serve: %w", serr))
	}
	return err
}

// httpServer is the *http.Server Serve runs: the API with every timeout
// set. net/http's own complaints (TLS handshakes, bad requests) go to the
// server's logger as warnings.
func (s *Server) httpServer(tlsCfg *tls.Config) *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// extendWriteDeadline gives h, a route in longPoll, the write deadline d
// from the start of its handler instead of WriteTimeout.
func (s *Server) extendWriteDeadline(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d)); err != nil {
			s.logger(r).WarnContext(r.Context(), "cannot extend the write deadline of a long-poll route; WriteTimeout applies", "err", err)
		}
		h.ServeHTTP(w, r)
	})
}

// limitListener accepts at most n connections open at once: Accept waits
// for one to close. Connections waiting are the kernel's backlog's. A
// connection that would give its source address (by addressKey) more than
// perAddr open at once is closed as soon as it is accepted, so it holds no
// slot; addresses exempt reports (trusted proxies) are not counted, and
// neither are connections without an IP address.
func limitListener(ln net.Listener, n, perAddr int, exempt func(netip.Addr) bool, log *slog.Logger) net.Listener {
	return &capped{Listener: ln, slots: make(chan struct{}, n), closed: make(chan struct{}),
		perAddr: perAddr, exempt: exempt, log: log, open: map[string]int{}}
}

type capped struct {
	net.Listener
	slots     chan struct{}
	closed    chan struct{}
	closeOnce sync.Once

	perAddr int
	exempt  func(netip.Addr) bool
	log     *slog.Logger
	warned  oncePerMinute

	mu   sync.Mutex
	open map[string]int // guarded by mu: connections open per addressKey
}

func (l *capped) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			return nil, err
		}
		key, ok := l.admit(c)
		if !ok {
			l.refuse(c, key) // and keep the slot for the next one
			continue
		}
		return &cappedConn{Conn: c, release: sync.OnceFunc(func() { l.leave(key); <-l.slots })}, nil
	}
}

// admit counts c against its address's share; it reports the key counted
// ("" for none) and whether the share had room.
func (l *capped) admit(c net.Conn) (key string, ok bool) {
	tcp, isTCP := c.RemoteAddr().(*net.TCPAddr)
	if !isTCP {
		return "", true
	}
	a := tcp.AddrPort().Addr().Unmap()
	if !a.IsValid() || l.exempt(a) {
		return "", true
	}
	key = addressKey(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] >= l.perAddr {
		return key, false
	}
	l.open[key]++
	return key, true
}

func (l *capped) leave(key string) {
	if key == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// refuse closes c, whose address holds its share already. It is logged as
// a warning at most once a minute: a flood is many refusals.
func (l *capped) refuse(c net.Conn, key string) {
	_ = c.Close()
	if l.warned.due(time.Now()) {
		l.log.Warn("closing connections from an address that holds its share already (logged at most once a minute)",
			"address", key, "max_conns_per_addr", l.perAddr)
	}
}

func (l *capped) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// cappedConn gives its slot (and its address's share) back when closed,
// once.
type cappedConn struct {
	net.Conn
	release func()
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
