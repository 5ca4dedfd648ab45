package portal

import (
	"context"
	"crypto/subtle"
	"net/http"

	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
)

// home is the sign-in page for a signed-out browser, and My access for a
// signed-in one.
func (p *Portal) home(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(p.sessionCookie()); err == nil {
		if _, ok := p.sessions.get(c.Value); ok {
			http.Redirect(w, r, "/access", http.StatusSeeOther)
			return
		}
	}
	p.pages.render(w, r, http.StatusOK, "signin", view{Title: "Sign in", AWSAuth: p.cfg.AWSAuth, Error: r.URL.Query().Get("error") != ""})
}

// login sends the browser to the issuer: authorization code with PKCE
// (S256), a fresh state bound to this browser by a cookie, and a nonce the
// ID token must carry.
func (p *Portal) login(w http.ResponseWriter, r *http.Request) {
	verifier, nonce := oauth2.GenerateVerifier(), newToken()
	state := p.sessions.startLogin(verifier, nonce)
	p.setCookie(w, p.loginCookie(), state, p.cfg.Clock.Now().Add(loginTimeout))
	http.Redirect(w, r, p.cfg.OAuth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", nonce)), http.StatusSeeOther)
}

// callback finishes a sign-in: the state must be the one this browser
// started (its cookie) and still pending; the code is exchanged with the
// PKCE verifier; the ID token must verify, as the API verifies it, and
// carry the nonce. Then a session starts, and the code leaves the URL.
func (p *Portal) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	c, err := r.Cookie(p.loginCookie())
	p.setCookie(w, p.loginCookie(), "", p.cfg.Clock.Now())
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		p.signInFailed(w, r, "the sign-in did not start in this browser (state mismatch)")
		return
	}
	pending, ok := p.sessions.finishLogin(state)
	if !ok {
		p.signInFailed(w, r, "the sign-in expired or was already used")
		return
	}
	if e := q.Get("error"); e != "" {
		p.signInFailed(w, r, "the issuer refused the sign-in: "+e)
		return
	}
	ctx := r.Context()
	if p.cfg.HTTPClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, p.cfg.HTTPClient)
	}
	tok, err := p.cfg.OAuth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pending.verifier))
	if err != nil {
		p.signInFailed(w, r, "exchange the code: "+err.Error())
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	who, expires, err := p.cfg.Verifier.VerifyLogin(ctx, raw, pending.nonce)
	if err != nil {
		p.signInFailed(w, r, latch.ErrorMessage(err))
		return
	}
	sid, _ := p.sessions.create(who, expires)
	p.setCookie(w, p.sessionCookie(), sid, expires)
	p.cfg.Access.RecordLogin(ctx, who, p.cfg.ClientAddr(r).String())
	p.log.InfoContext(ctx, "portal: signed in", "identity", who.String(), "identity_key", who.Key())
	http.Redirect(w, r, "/access", http.StatusSeeOther)
}

// signInFailed logs why and shows the sign-in page with a generic error:
// the reason may name the issuer's internals, not the visitor's business.
func (p *Portal) signInFailed(w http.ResponseWriter, r *http.Request, why string) {
	p.log.WarnContext(r.Context(), "portal: sign-in failed", "why", why)
	p.pages.render(w, r, http.StatusUnauthorized, "signin", view{Title: "Sign in", AWSAuth: p.cfg.AWSAuth, Error: true})
}

// logout ends the session here; the issuer's own session is the issuer's.
func (p *Portal) logout(w http.ResponseWriter, r *http.Request, s session, sid string) {
	p.sessions.delete(sid)
	p.setCookie(w, p.sessionCookie(), "", p.cfg.Clock.Now())
	p.log.InfoContext(r.Context(), "portal: signed out", "identity", s.who.String())
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
