package oidc_test

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/oidctest"
	"github.com/latchdev/latch/oidc"
)

// verifierFor is a verifier of o's tokens for latch's client; edit, if not
// nil, changes its config first.
func verifierFor(t *testing.T, o *oidctest.OP, edit func(*oidc.Config)) *oidc.Verifier {
	t.Helper()
	cfg := oidc.Config{Issuer: o.Issuer(), Audience: clientID}
	if edit != nil {
		edit(&cfg)
	}
	v, err := oidc.NewVerifier(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantIdentity(t *testing.T, v *oidc.Verifier, raw string, u oidctest.User) {
	t.Helper()
	got, err := v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	email := u.Email
	if !u.EmailVerified {
		email = ""
	}
	if got.Kind != latch.KindOIDC || got.Subject != u.ID() || got.Email != email || got.Issuer == "" || !slices.Equal(got.Groups, u.Groups) {
		t.Errorf("Verify = %#v, want subject %s, email %q in %v", got, u.ID(), email, u.Groups)
	}
}

func wantUnauthenticated(t *testing.T, err error, msg string) {
	t.Helper()
	if latch.ErrorCode(err) != latch.EUNAUTHENTICATED || !strings.Contains(latch.ErrorMessage(err), msg) {
		t.Fatalf("err = %v, want EUNAUTHENTICATED mentioning %q", err, msg)
	}
}

func TestVerify_ValidToken(t *testing.T) {
	o := newTestOP(t)
	raw := idToken(t, loginPKCE(t, o, alice))
	wantIdentity(t, verifierFor(t, o, nil), raw, alice)

	t.Run("a configured subject claim the token lacks is refused, not replaced by sub", func(t *testing.T) {
		v := verifierFor(t, o, func(c *oidc.Config) { c.SubjectClaim = "preferred_username" }) // not requested, so absent
		_, err := v.Verify(t.Context(), raw)
		wantUnauthenticated(t, err, "no preferred_username claim")
	})
	t.Run("a configured subject claim", func(t *testing.T) {
		v := verifierFor(t, o, func(c *oidc.Config) { c.SubjectClaim = "email" })
		if id, err := v.Verify(t.Context(), raw); err != nil || id.Subject != alice.Email {
			t.Errorf("Verify = %+v, %v; want subject %s", id, err, alice.Email)
		}
	})
	t.Run("another groups claim", func(t *testing.T) {
		v := verifierFor(t, o, func(c *oidc.Config) { c.GroupsClaim = "roles" })
		if id, err := v.Verify(t.Context(), raw); err != nil || len(id.Groups) != 0 {
			t.Errorf("Verify = %+v, %v; want no groups", id, err)
		}
	})
	t.Run("Authenticate", func(t *testing.T) {
		r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		if id, err := verifierFor(t, o, nil).Authenticate(r); err != nil || id.Subject != alice.ID() {
			t.Errorf("Authenticate = %+v, %v", id, err)
		}
	})
}

func TestVerify_UnverifiedEmail(t *testing.T) {
	o := newTestOP(t)
	raw := idToken(t, loginPKCE(t, o, bob))
	// Keyed by sub, bob is bob; the address he typed is not his attribute.
	wantIdentity(t, verifierFor(t, o, nil), raw, bob)
	// Keyed by email, he is refused.
	_, err := verifierFor(t, o, func(c *oidc.Config) { c.SubjectClaim = "email" }).Verify(t.Context(), raw)
	wantUnauthenticated(t, err, "not verified")
}

func TestVerify_RefusesBadTokens(t *testing.T) {
	o, other := newTestOP(t), newTestOP(t)
	raw := idToken(t, loginPKCE(t, o, alice))
	header, payload, sig := split(t, raw)
	var hdr map[string]any
	mustUnmarshal(t, header, &hdr)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	mallory := editClaims(t, payload, func(c map[string]any) { c["email"] = "mallory@example.com" })
	opKey, kid := o.SigningKey(t)
	opHeader := jsonPart(t, map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"})

	tests := []struct {
		name     string
		token    string
		verifier func(*oidc.Config)
		wantMsg  string
	}{
		{name: "expired", token: raw, wantMsg: "expired",
			verifier: func(c *oidc.Config) {
				c.Now = func() time.Time { return time.Now().Add(oidctest.TokenLifetime + time.Minute) }
			}},
		{name: "wrong audience", token: raw, verifier: func(c *oidc.Config) { c.Audience = "another-app" }, wantMsg: "audience"},
		{name: "another issuer's token", token: idToken(t, loginPKCE(t, other, alice)), wantMsg: "not valid"},
		{name: "another issuer named, signed by this issuer's key", wantMsg: "different provider",
			token: rs256(t, opKey, join(opHeader, editClaims(t, payload, func(c map[string]any) { c["iss"] = other.Issuer() }), ""))},
		{name: "expired claims, signed by this issuer's key", wantMsg: "expired",
			token: rs256(t, opKey, join(opHeader, editClaims(t, payload, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), ""))},
		{name: "alg none", token: join(jsonPart(t, map[string]any{"alg": "none", "typ": "JWT"}), payload, ""), wantMsg: "not valid"},
		{name: "HS256 with the client ID as key", wantMsg: "not valid",
			token: hs256(join(jsonPart(t, map[string]any{"alg": "HS256", "kid": hdr["kid"]}), mallory, ""), clientID)},
		{name: "tampered claims", token: join(header, mallory, sig), wantMsg: "not valid"},
		{name: "tampered signature", token: join(header, payload, flip(sig)), wantMsg: "not valid"},
		{name: "signed by another key", token: rs256(t, otherKey, join(header, mallory, "")), wantMsg: "not valid"},
		{name: "control: forged with this issuer's key", token: rs256(t, opKey, join(opHeader, mallory, "")), wantMsg: ""},
		{name: "not a JWT", token: "not-a-token", wantMsg: "not valid"},
		{name: "empty", token: "", wantMsg: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := verifierFor(t, o, tt.verifier).Verify(t.Context(), tt.token)
			if tt.wantMsg == "" {
				// The forging helpers make tokens the verifier accepts when
				// they have the key, so the refusals above are for the
				// reason their names say.
				if err != nil || id.Email != "mallory@example.com" {
					t.Fatalf("Verify = %+v, %v; want the forged identity", id, err)
				}
				return
			}
			wantUnauthenticated(t, err, tt.wantMsg)
			if tt.token != "" && strings.Contains(latch.ErrorMessage(err), tt.token) {
				t.Errorf("the error echoes the token: %v", err)
			}
		})
	}
}

func TestAuthenticate_RefusesBadHeaders(t *testing.T) {
	o := newTestOP(t)
	raw := idToken(t, loginPKCE(t, o, alice))
	v := verifierFor(t, o, nil)
	tests := []struct {
		name, header, wantMsg string
	}{
		{name: "missing", header: "", wantMsg: "no Authorization header"},
		{name: "basic scheme", header: "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:pw")), wantMsg: "not \"Bearer"},
		{name: "token without scheme", header: raw, wantMsg: "not \"Bearer"},
		{name: "AWS proof", header: "LatchAWS " + raw, wantMsg: "not \"Bearer"},
		{name: "bearer without token", header: "Bearer ", wantMsg: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			_, err := v.Authenticate(r)
			wantUnauthenticated(t, err, tt.wantMsg)
			if strings.Contains(latch.ErrorMessage(err), raw) {
				t.Errorf("the error echoes the token: %v", err)
			}
		})
	}
}

func TestNewVerifier_Errors(t *testing.T) {
	if _, err := oidc.NewVerifier(t.Context(), oidc.Config{Audience: clientID}); latch.ErrorCode(err) != latch.EINVALID {
		t.Errorf("no issuer: err = %v, want EINVALID", err)
	}
	if _, err := oidc.NewVerifier(t.Context(), oidc.Config{Issuer: "http://127.0.0.1:1"}); latch.ErrorCode(err) != latch.EINVALID {
		t.Errorf("no audience: err = %v, want EINVALID", err)
	}
	ts := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(ts.Close)
	if _, err := oidc.NewVerifier(t.Context(), oidc.Config{Issuer: ts.URL, Audience: clientID}); latch.ErrorCode(err) != latch.EUNAVAILABLE {
		t.Errorf("no discovery document: err = %v, want EUNAVAILABLE", err)
	}
}

func split(t *testing.T, raw string) (header, payload, sig string) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %d parts", len(parts))
	}
	return parts[0], parts[1], parts[2]
}

func join(header, payload, sig string) string { return header + "." + payload + "." + sig }

func jsonPart(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func mustUnmarshal(t *testing.T, part string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func editClaims(t *testing.T, payload string, edit func(map[string]any)) string {
	t.Helper()
	var claims map[string]any
	mustUnmarshal(t, payload, &claims)
	edit(claims)
	return jsonPart(t, claims)
}

// flip changes one bit of a base64url signature.
func flip(sig string) string {
	b, _ := base64.RawURLEncoding.DecodeString(sig)
	b[len(b)/2] ^= 1
	return base64.RawURLEncoding.EncodeToString(b)
}

// hs256 signs "header.payload." with key as an HMAC secret.
func hs256(unsigned, key string) string {
	signing := strings.TrimSuffix(unsigned, ".")
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// rs256 signs "header.payload." with key.
func rs256(t *testing.T, key *rsa.PrivateKey, unsigned string) string {
	t.Helper()
	signing := strings.TrimSuffix(unsigned, ".")
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// urlParam returns one query parameter of rawURL.
func urlParam(rawURL, name string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	return u.Query().Get(name), nil
}
