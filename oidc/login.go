package oidc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
)

// Login methods for [LoginConfig].
const (
	// MethodDevice is the device authorization flow (RFC 8628): latch
	// prints a code, the user enters it in any browser, latch polls. It
	// works over SSH and on machines without a browser.
	MethodDevice = "device"
	// MethodPKCE is the authorization code flow with PKCE (RFC 7636) and a
	// loopback redirect (RFC 8252): a browser on this machine logs in and
	// the issuer redirects it back to a listener on 127.0.0.1.
	MethodPKCE = "pkce"
)

// CallbackPath is the path of the loopback redirect URI,
// http://127.0.0.1:PORT/callback. Register http://127.0.0.1/callback at
// the issuer; issuers that follow RFC 8252 accept any port.
const CallbackPath = "/callback"

// LoginConfig says how `latch login` obtains a token.
type LoginConfig struct {
	// Issuer is the OIDC issuer URL; endpoints come from its discovery
	// document.
	Issuer string
	// ClientID is latch's client ID at the issuer.
	ClientID string
	// ClientSecret is for issuers that give even native apps a secret; ""
	// means a public client, which sends its client ID alone.
	ClientSecret string
	// Scopes are requested; nil means openid, email, groups and
	// offline_access, less any the issuer's discovery document leaves out
	// of a scopes_supported list it publishes.
	Scopes []string
	// Method is MethodDevice or MethodPKCE; "" means MethodDevice.
	Method string
	// Out receives the instructions for the user: the device code, or the
	// address to open. The device flow requires it; nil discards otherwise.
	Out io.Writer
	// Open opens a URL in the user's browser, for MethodPKCE. nil, or an
	// error from it, leaves the user to open the printed address.
	Open func(url string) error
	// ListenAddr is where MethodPKCE listens for the redirect; "" means
	// 127.0.0.1:0, a free loopback port.
	ListenAddr string
	// HTTPClient talks to the issuer; nil means http.DefaultClient.
	HTTPClient *http.Client
	// Now is the clock the received ID token is checked against; nil
	// means time.Now.
	Now func() time.Time
}

// Login runs cfg.Method's flow and returns the issuer's tokens. The ID
// token, which is what latch sends as a bearer token, is
// token.Extra("id_token"); it has been verified (signature, issuer,
// audience, expiry, and the nonce for MethodPKCE). [NewCachedToken] turns
// the result into what [SaveToken] stores. Login ends when the user is
// done or ctx is.
func Login(ctx context.Context, cfg LoginConfig) (*oauth2.Token, error) {
	if cfg.Method != "" && cfg.Method != MethodDevice && cfg.Method != MethodPKCE {
		return nil, latch.Invalidf("method", "login method %q is neither %s nor %s", cfg.Method, MethodDevice, MethodPKCE)
	}
	if cfg.Method != MethodPKCE && cfg.Out == nil {
		return nil, latch.Invalidf("out", "the device flow needs somewhere to show its code")
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	ctx = clientContext(ctx, cfg.HTTPClient)
	c, err := newClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var tok *oauth2.Token
	var nonce string
	if cfg.Method == MethodPKCE {
		tok, nonce, err = c.pkce(ctx)
	} else {
		tok, err = c.device(ctx)
	}
	if err != nil {
		return nil, err
	}
	if _, err := c.verifyIDToken(ctx, tok, nonce); err != nil {
		return nil, err
	}
	return tok, nil
}

// client is one login's view of the issuer.
type client struct {
	cfg      LoginConfig
	provider *gooidc.Provider
	oauth    oauth2.Config
}

// newClient reads the issuer's discovery document. ctx carries the HTTP
// client.
func newClient(ctx context.Context, cfg LoginConfig) (*client, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, latch.Invalidf("issuer", "logging in needs the OIDC issuer URL and latch's client ID")
	}
	provider, err := gooidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, latch.Errorf(latch.EUNAVAILABLE, "discover OIDC issuer %s: %v", cfg.Issuer, err)
	}
	scopes := cfg.Scopes
	if scopes == nil {
		var meta struct {
			Supported []string `json:"scopes_supported"`
		}
		_ = provider.Claims(&meta) // without the list, ask for them all
		for _, s := range []string{gooidc.ScopeOpenID, "email", "groups", gooidc.ScopeOfflineAccess} {
			if s == gooidc.ScopeOpenID || meta.Supported == nil || slices.Contains(meta.Supported, s) {
				scopes = append(scopes, s)
			}
		}
	}
	endpoint := provider.Endpoint()
	if cfg.ClientSecret == "" {
		endpoint.AuthStyle = oauth2.AuthStyleInParams // a public client has no password to send
	}
	return &client{cfg: cfg, provider: provider, oauth: oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoint:     endpoint,
		Scopes:       scopes,
	}}, nil
}

// device runs the device authorization flow.
func (c *client) device(ctx context.Context) (*oauth2.Token, error) {
	if c.oauth.Endpoint.DeviceAuthURL == "" {
		return nil, latch.Errorf(latch.EINVALID, "issuer %s does not offer the device flow; log in with --method %s", c.cfg.Issuer, MethodPKCE)
	}
	da, err := c.oauth.DeviceAuth(ctx)
	if err != nil {
		return nil, oauthError("start device login", err)
	}
	fmt.Fprintf(c.cfg.Out, "To log in, open %s and enter the code %s\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(c.cfg.Out, "(or open %s)\n", da.VerificationURIComplete)
	}
	tok, err := c.oauth.DeviceAccessToken(ctx, da)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		// DeviceAccessToken gives up when the code expires.
		return nil, latch.Errorf(latch.EUNAUTHENTICATED, "device login: the code expired before the login was approved; run latch login again")
	}
	if err != nil {
		return nil, oauthError("device login", err)
	}
	return tok, nil
}

// pkce runs the authorization code flow with PKCE and a loopback
// redirect. It returns the nonce the ID token must carry.
func (c *client) pkce(ctx context.Context) (*oauth2.Token, string, error) {
	addr := c.cfg.ListenAddr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", latch.Errorf(latch.EUNAVAILABLE, "listen for the login redirect on %s: %v", addr, err)
	}
	oc := c.oauth
	oc.RedirectURL = "http://" + ln.Addr().String() + CallbackPath
	verifier, state, nonce := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	authURL := oc.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", nonce))

	codes := make(chan callback, 1)
	srv := &http.Server{Handler: callbackHandler(state, codes), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln) // returns when srv is closed
	}()
	defer func() {
		_ = srv.Close()
		<-served
	}()

	fmt.Fprintf(c.cfg.Out, "To log in, open this address in your browser:\n\n  %s\n\n", authURL)
	if c.cfg.Open != nil {
		if err := c.cfg.Open(authURL); err != nil {
			fmt.Fprintf(c.cfg.Out, "(could not open a browser: %v)\n", err)
		}
	}
	var cb callback
	select {
	case <-ctx.Done():
		return nil, "", fmt.Errorf("wait for the login redirect: %w", ctx.Err())
	case cb = <-codes:
	}
	if cb.err != nil {
		return nil, "", cb.err
	}
	tok, err := oc.Exchange(ctx, cb.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, "", oauthError("exchange the login code", err)
	}
	return tok, nonce, nil
}

// callback is what the loopback redirect brought: a code or a refusal.
type callback struct {
	code string
	err  error
}

// callbackHandler receives the redirect. A request without the expected
// state is answered but otherwise ignored: any local process or web page
// can reach a loopback port, and must not end the login or slip in a code.
func callbackHandler(state string, codes chan<- callback) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+CallbackPath, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("state") != state {
			http.Error(w, "latch: this login redirect does not match the login in progress", http.StatusBadRequest)
			return
		}
		cb := callback{code: q.Get("code")}
		switch {
		case q.Get("error") != "":
			cb.err = latch.Errorf(latch.EUNAUTHENTICATED, "the issuer refused the login: %s %s", q.Get("error"), q.Get("error_description"))
		case cb.code == "":
			cb.err = latch.Errorf(latch.EUNAUTHENTICATED, "the login redirect carried no code")
		}
		select {
		case codes <- cb:
		default: // a repeated redirect; the first one counts
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if cb.err != nil {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintln(w, "latch: the login failed; see your terminal.")
			return
		}
		fmt.Fprintln(w, "latch: you are logged in. You can close this window.")
	})
	return mux
}

// verifyIDToken checks the ID token that came with tok, as the server
// will, and that it carries nonce when nonce is not "".
func (c *client) verifyIDToken(ctx context.Context, tok *oauth2.Token, nonce string) (*gooidc.IDToken, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, latch.Errorf(latch.EUNAUTHENTICATED, "issuer %s returned no ID token; is the openid scope allowed for client %s?", c.cfg.Issuer, c.cfg.ClientID)
	}
	v := c.provider.VerifierContext(ctx, &gooidc.Config{ClientID: c.cfg.ClientID, SupportedSigningAlgs: signingAlgs, Now: c.cfg.Now})
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, latch.Errorf(latch.EUNAUTHENTICATED, "the issuer's ID token is not valid: %v", err)
	}
	if nonce != "" && idt.Nonce != nonce {
		return nil, latch.Errorf(latch.EUNAUTHENTICATED, "the issuer's ID token is not for this login (nonce mismatch)")
	}
	return idt, nil
}

// oauthError translates an error from the issuer's token endpoints: a
// refusal is EUNAUTHENTICATED, an unreachable or failing issuer
// EUNAVAILABLE. The issuer's response body is left out; it may hold codes.
func oauthError(op string, err error) error {
	re, ok := errors.AsType[*oauth2.RetrieveError](err)
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %w", op, err)
	case !ok:
		return latch.Errorf(latch.EUNAVAILABLE, "%s: %v", op, err)
	case re.Response != nil && re.Response.StatusCode >= 500:
		return latch.Errorf(latch.EUNAVAILABLE, "%s: the issuer answered %s", op, re.Response.Status)
	case re.ErrorCode == "access_denied":
		return latch.Errorf(latch.EUNAUTHENTICATED, "%s: the login was denied", op)
	case re.ErrorCode == "expired_token":
		return latch.Errorf(latch.EUNAUTHENTICATED, "%s: the code expired before the login was approved; run latch login again", op)
	case re.ErrorCode != "":
		return latch.Errorf(latch.EUNAUTHENTICATED, "%s: the issuer refused: %s %s", op, re.ErrorCode, re.ErrorDescription)
	default:
		return latch.Errorf(latch.EUNAUTHENTICATED, "%s: the issuer refused (%s)", op, re.Response.Status)
	}
}
