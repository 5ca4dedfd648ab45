package portal

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/latchdev/latch"
)

// Session and sign-in limits.
const (
	// MaxSession is the longest a session lasts, however long the ID token.
	MaxSession = 8 * time.Hour
	// loginTimeout is how long a sign-in may take at the issuer.
	loginTimeout = 10 * time.Minute
	// maxPending bounds sign-ins in progress, so a flood of /login visits
	// cannot grow memory without bound; the oldest is dropped first.
	maxPending = 10000
)

// session is one signed-in browser.
type session struct {
	who     latch.Identity
	csrf    string
	expires time.Time
}

// pendingLogin is a sign-in sent to the issuer and not yet back.
type pendingLogin struct {
	verifier, nonce string
	expires         time.Time
}

// sessions holds sessions and sign-ins in progress, in memory: a restart
// signs everyone out, which costs a click.
type sessions struct {
	clock latch.Clock

	mu      sync.Mutex
	byID    map[string]session      // guarded by mu
	pending map[string]pendingLogin // guarded by mu; by state
}

func newSessions(c latch.Clock) *sessions {
	return &sessions{clock: c, byID: map[string]session{}, pending: map[string]pendingLogin{}}
}

// newToken is 256 random bits, URL-safe.
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *sessions) create(who latch.Identity, expires time.Time) (id string, sess session) {
	now := s.clock.Now()
	if limit := now.Add(MaxSession); expires.After(limit) {
		expires = limit
	}
	id, sess = newToken(), session{who: who, csrf: newToken(), expires: expires}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.byID {
		if !now.Before(v.expires) {
			delete(s.byID, k)
		}
	}
	s.byID[id] = sess
	return id, sess
}

func (s *sessions) get(id string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[id]
	if ok && !s.clock.Now().Before(sess.expires) {
		delete(s.byID, id)
		return session{}, false
	}
	return sess, ok
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

func (s *sessions) startLogin(verifier, nonce string) (state string) {
	now := s.clock.Now()
	state = newToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	oldest, oldestAt := "", time.Time{}
	for k, v := range s.pending {
		if !now.Before(v.expires) {
			delete(s.pending, k)
		} else if oldest == "" || v.expires.Before(oldestAt) {
			oldest, oldestAt = k, v.expires
		}
	}
	if len(s.pending) >= maxPending {
		delete(s.pending, oldest)
	}
	s.pending[state] = pendingLogin{verifier: verifier, nonce: nonce, expires: now.Add(loginTimeout)}
	return state
}

// finishLogin returns and forgets the sign-in state names: each is used once.
func (s *sessions) finishLogin(state string) (pendingLogin, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.pending[state]
	delete(s.pending, state)
	if !ok || !s.clock.Now().Before(l.expires) {
		return pendingLogin{}, false
	}
	return l, true
}

// Cookie names. Under TLS they carry the __Host- prefix, so that no
// subdomain and no plain-HTTP page can set them.
func (p *Portal) sessionCookie() string { return p.cookieName("latch_session") }
func (p *Portal) loginCookie() string   { return p.cookieName("latch_login") }

func (p *Portal) cookieName(n string) string {
	if p.secure {
		return "__Host-" + n
	}
	return n
}

func (p *Portal) setCookie(w http.ResponseWriter, name, value string, expires time.Time) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.MaxAge = max(1, int(expires.Sub(p.cfg.Clock.Now()).Seconds()))
	}
	http.SetCookie(w, c)
}

// sessionHandler is a page that needs a signed-in caller.
type sessionHandler func(w http.ResponseWriter, r *http.Request, s session, sid string)

// signedIn runs h with the caller's session. Without one, a GET is sent to
// the sign-in page and anything else is refused; either way nothing of
// the page is shown. A POST must pass checkCSRF.
func (p *Portal) signedIn(h sessionHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var sess session
		var sid string
		ok := false
		if c, err := r.Cookie(p.sessionCookie()); err == nil {
			sid = c.Value
			sess, ok = p.sessions.get(sid)
		}
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/", http.StatusSeeOther)
				return
			}
			http.Error(w, "You are signed out. Sign in again at /.", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !p.checkCSRF(r, sess) {
				p.log.WarnContext(r.Context(), "portal: refused a form without a valid CSRF token or from another origin",
					"path", r.URL.Path, "identity", sess.who.String(), "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
				http.Error(w, "This form is not from this portal, or it is stale: reload the page and try again.", http.StatusForbidden)
				return
			}
		}
		h(w, r, sess, sid)
	})
}

// checkCSRF reports whether a state-changing request is the portal's own
// form: the session's token in the csrf field (compared in constant
// time), and, when the browser says where it came from, this origin.
// Browsers that send neither Origin nor Sec-Fetch-Site still need the
// token, which another site cannot read.
func (p *Portal) checkCSRF(r *http.Request, s session) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	switch o := r.Header.Get("Origin"); o {
	case "":
	case "null":
		// Under Referrer-Policy: no-referrer, browsers send Origin: null even
		// on their own origin's forms; then Sec-Fetch-Site must vouch.
		if r.Header.Get("Sec-Fetch-Site") != "same-origin" {
			return false
		}
	default:
		u, err := url.Parse(o)
		if err != nil || u.Scheme+"://"+u.Host != p.origin {
			return false
		}
	}
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}
