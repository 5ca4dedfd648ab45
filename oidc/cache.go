package oidc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/atomicfile"
)

// ExpiryMargin is how long before its expiry a cached ID token counts as
// expired, so that it does not expire on its way to the server.
const ExpiryMargin = time.Minute

// CachedToken is a login as `latch login` stores it. IDToken and
// RefreshToken are secrets: the file holding them is the user's alone.
type CachedToken struct {
	Issuer       string    `json:"issuer"`
	ClientID     string    `json:"client_id"`
	IDToken      string    `json:"id_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry"` // the ID token's exp
}

// Expired reports whether t's ID token has expired at now, or will within
// ExpiryMargin.
func (t CachedToken) Expired(now time.Time) bool {
	return !now.Add(ExpiryMargin).Before(t.Expiry)
}

// NewCachedToken returns what to cache of tok, a token [Login] or
// [Refresh] obtained for cfg. Expiry is the ID token's own, which is not
// the access token's tok.Expiry.
func NewCachedToken(cfg LoginConfig, tok *oauth2.Token) (CachedToken, error) {
	raw, _ := tok.Extra("id_token").(string)
	exp, err := expiry(raw)
	if err != nil {
		return CachedToken{}, err
	}
	return CachedToken{Issuer: cfg.Issuer, ClientID: cfg.ClientID, IDToken: raw, RefreshToken: tok.RefreshToken, Expiry: exp}, nil
}

// expiry reads the exp claim of an ID token without verifying it: the
// token came straight from the issuer's token endpoint and was verified by
// Login, and the server verifies it again on every call.
func expiry(raw string) (time.Time, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return time.Time{}, latch.Errorf(latch.EUNAUTHENTICATED, "the token has no ID token to cache")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if err != nil || json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return time.Time{}, latch.Errorf(latch.EUNAUTHENTICATED, "the ID token has no readable expiry")
	}
	return time.Unix(claims.Exp, 0).UTC(), nil
}

// SaveToken writes t to path as JSON, readable by the user alone (0600, in
// a directory created 0700). It writes a temporary file and renames it, so
// a reader sees the old login or the new one, never half of one.
func SaveToken(path string, t CachedToken) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save login: %w", err)
	}
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("save login: %w", err)
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save login: %w", err)
	}
	return nil
}

// LoadToken reads the login saved at path. It returns ENOTFOUND when there
// is none, and when its ID token has expired (by the wall clock, less
// ExpiryMargin); in that case it returns the token too, so that the caller
// can [Refresh] it.
func LoadToken(path string) (CachedToken, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return CachedToken{}, latch.Errorf(latch.ENOTFOUND, "not logged in (no login saved in %s); run latch login", path)
	}
	if err != nil {
		return CachedToken{}, fmt.Errorf("load login: %w", err)
	}
	var t CachedToken
	if err := json.Unmarshal(data, &t); err != nil || t.IDToken == "" {
		return CachedToken{}, latch.Errorf(latch.EINVALID, "the login saved in %s is unreadable; run latch login", path)
	}
	if t.Expired(time.Now()) {
		return t, latch.Errorf(latch.ENOTFOUND, "the login saved in %s expired at %s; run latch login", path, t.Expiry.Local().Format(time.RFC3339))
	}
	return t, nil
}

// Refresh trades t's refresh token for a new ID token. cfg's Issuer and
// ClientID default to t's and must match them when set. It returns
// EUNAUTHENTICATED when t has no refresh token or the issuer refuses it
// (the user must log in again), and EUNAVAILABLE when the issuer cannot be
// reached.
func Refresh(ctx context.Context, cfg LoginConfig, t CachedToken) (CachedToken, error) {
	if t.RefreshToken == "" {
		return CachedToken{}, latch.Errorf(latch.EUNAUTHENTICATED, "the saved login cannot be refreshed (no refresh token); run latch login")
	}
	if cfg.Issuer == "" {
		cfg.Issuer = t.Issuer
	}
	if cfg.ClientID == "" {
		cfg.ClientID = t.ClientID
	}
	if cfg.Issuer != t.Issuer || cfg.ClientID != t.ClientID {
		return CachedToken{}, latch.Errorf(latch.EINVALID, "the saved login is for %s (client %s), not %s (client %s); run latch login",
			t.Issuer, t.ClientID, cfg.Issuer, cfg.ClientID)
	}
	ctx = clientContext(ctx, cfg.HTTPClient)
	c, err := newClient(ctx, cfg)
	if err != nil {
		return CachedToken{}, err
	}
	// With no access token, the token source goes straight to the refresh.
	tok, err := c.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: t.RefreshToken}).Token()
	if err != nil {
		return CachedToken{}, oauthError("refresh login", err)
	}
	if _, err := c.verifyIDToken(ctx, tok, ""); err != nil {
		return CachedToken{}, err
	}
	return NewCachedToken(cfg, tok)
}
