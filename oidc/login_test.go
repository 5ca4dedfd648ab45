package oidc_test

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/oidctest"
	"github.com/latchdev/latch/oidc"
)

// clientID is latch's CLI as registered at the test provider.
const clientID = "latch-cli"

// The people the test provider knows.
var (
	alice = oidctest.User{Username: "alice", Password: "alice-password",
		Email: "alice@example.com", EmailVerified: true, Groups: []string{"dev", "oncall"}}
	bob = oidctest.User{Username: "bob", Password: "bob-password",
		Email: "bob@example.com", EmailVerified: false, Groups: []string{"ops"}}
)

// newTestOP starts an OpenID provider that knows clientID, alice and bob.
func newTestOP(t *testing.T) *oidctest.OP {
	t.Helper()
	return oidctest.New(t, clientID, alice, bob)
}

// loginPKCE logs u in to o with the browser flow and returns the tokens.
func loginPKCE(t *testing.T, o *oidctest.OP, u oidctest.User) *oauth2.Token {
	t.Helper()
	tok, err := oidc.Login(t.Context(), oidc.LoginConfig{Issuer: o.Issuer(), ClientID: clientID, Method: oidc.MethodPKCE, Open: o.Browser(u)})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return tok
}

func idToken(t *testing.T, tok *oauth2.Token) string {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("the token has no ID token")
	}
	return raw
}

func TestLogin_PKCE(t *testing.T) {
	o := newTestOP(t)
	var out strings.Builder
	var opened string
	tok, err := oidc.Login(t.Context(), oidc.LoginConfig{
		Issuer: o.Issuer(), ClientID: clientID, Method: oidc.MethodPKCE, Out: &out,
		Open: func(u string) error { opened = u; return o.Browser(alice)(u) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), opened) || !strings.Contains(opened, "code_challenge_method=S256") {
		t.Errorf("printed %q; opened %q, want the PKCE authorization URL printed and opened", out.String(), opened)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token; offline_access should have been requested")
	}
	wantIdentity(t, verifierFor(t, o, nil), idToken(t, tok), alice)
}

func TestLogin_PKCEIgnoresForeignRedirects(t *testing.T) {
	o := newTestOP(t)
	// Before the real browser gets there, something else on this machine
	// hits the loopback listener with a code of its own.
	open := func(authURL string) error {
		redirect, _ := urlParam(authURL, "redirect_uri")
		resp, err := http.Get(redirect + "?code=planted&state=guessed")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("foreign redirect answered %s, want 400", resp.Status)
		}
		return o.Browser(bob)(authURL)
	}
	tok, err := oidc.Login(t.Context(), oidc.LoginConfig{Issuer: o.Issuer(), ClientID: clientID, Method: oidc.MethodPKCE, Open: open})
	if err != nil {
		t.Fatal(err)
	}
	v := verifierFor(t, o, func(c *oidc.Config) { c.SubjectClaim = "sub" })
	if id, err := v.Verify(t.Context(), idToken(t, tok)); err != nil || id.Subject != bob.ID() {
		t.Fatalf("Verify = %+v, %v; want bob's login, not the planted code", id, err)
	}
}

func TestLogin_PKCEWaitsForContext(t *testing.T) {
	o := newTestOP(t)
	ctx, cancel := context.WithCancel(t.Context())
	_, err := oidc.Login(ctx, oidc.LoginConfig{Issuer: o.Issuer(), ClientID: clientID, Method: oidc.MethodPKCE,
		Open: func(string) error { cancel(); return nil }}) // the user never comes back
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestLogin_Device(t *testing.T) {
	tests := []struct {
		name    string
		allow   bool
		wantErr string
	}{
		{name: "approved", allow: true},
		{name: "denied", allow: false, wantErr: "denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each waits one poll interval of real time
			o := newTestOP(t)
			out := &lineWriter{lines: make(chan string, 10)}
			type result struct {
				tok *oauth2.Token
				err error
			}
			done := make(chan result, 1)
			go func() {
				tok, err := oidc.Login(t.Context(), oidc.LoginConfig{Issuer: o.Issuer(), ClientID: clientID, Out: out})
				done <- result{tok, err}
			}()

			code := waitForCode(t, out.lines)
			if err := o.ApproveDevice(alice, code, tt.allow); err != nil {
				t.Fatal(err)
			}
			var res result
			select {
			case res = <-done:
			case <-time.After(30 * time.Second): // a deadline for a hung test, not a sleep
				t.Fatal("Login did not return after the device was approved")
			}
			if tt.wantErr != "" {
				if latch.ErrorCode(res.err) != latch.EUNAUTHENTICATED || !strings.Contains(res.err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want EUNAUTHENTICATED mentioning %q", res.err, tt.wantErr)
				}
				return
			}
			if res.err != nil {
				t.Fatal(res.err)
			}
			wantIdentity(t, verifierFor(t, o, nil), idToken(t, res.tok), alice)
		})
	}
}

func TestLogin_RefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  oidc.LoginConfig
	}{
		{name: "unknown method", cfg: oidc.LoginConfig{Issuer: "http://127.0.0.1:1", ClientID: clientID, Method: "password", Out: &strings.Builder{}}},
		{name: "device flow without output", cfg: oidc.LoginConfig{Issuer: "http://127.0.0.1:1", ClientID: clientID}},
		{name: "no client ID", cfg: oidc.LoginConfig{Issuer: "http://127.0.0.1:1", Out: &strings.Builder{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := oidc.Login(t.Context(), tt.cfg); latch.ErrorCode(err) != latch.EINVALID {
				t.Errorf("err = %v, want EINVALID", err)
			}
		})
	}
}

func TestLogin_DefaultScopesFollowDiscovery(t *testing.T) {
	o := newTestOP(t)
	var scope string
	_, err := oidc.Login(t.Context(), oidc.LoginConfig{Issuer: o.Issuer(), ClientID: clientID, Method: oidc.MethodPKCE,
		Open: func(u string) error { scope, _ = urlParam(u, "scope"); return o.Browser(alice)(u) }})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(scope)
	slices.Sort(got)
	if want := []string{"email", "groups", "offline_access", "openid"}; !slices.Equal(got, want) {
		t.Errorf("requested scopes %v, want %v", got, want)
	}
}

// waitForCode reads Login's instructions until they show the user code.
func waitForCode(t *testing.T, lines <-chan string) string {
	t.Helper()
	re := regexp.MustCompile(`enter the code (\S+)`)
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line := <-lines:
			if m := re.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		case <-deadline:
			t.Fatal("Login printed no device code")
		}
	}
}

// lineWriter passes each line written to it to lines.
type lineWriter struct {
	mu    sync.Mutex
	buf   string
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf += string(p)
	for {
		line, rest, ok := strings.Cut(w.buf, "\n")
		if !ok {
			return len(p), nil
		}
		w.lines <- line
		w.buf = rest
	}
}
