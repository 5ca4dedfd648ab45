package oidc_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/oidctest"
	"github.com/latchdev/latch/oidc"
)

func TestSaveToken_PrivateAndAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "config", "latch")
	path := filepath.Join(dir, "token.json")
	tok := oidc.CachedToken{Issuer: "https://id.example.com", ClientID: clientID, IDToken: "a.b.c", RefreshToken: "r1",
		Expiry: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	for range 2 { // a second save replaces the first the same way
		if err := oidc.SaveToken(path, tok); err != nil {
			t.Fatal(err)
		}
		tok.RefreshToken = "r2"
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700 | os.ModeDir} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %v (%v), want token.json alone: no temporary files left", entries, err)
	}
	got, err := oidc.LoadToken(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != tok {
		t.Errorf("LoadToken = %+v, want %+v", got, tok)
	}
}

func TestLoadToken_Errors(t *testing.T) {
	dir := t.TempDir()
	expired := oidc.CachedToken{Issuer: "https://id.example.com", ClientID: clientID, IDToken: "a.b.c", RefreshToken: "r",
		Expiry: time.Now().Add(-time.Hour)}
	if err := oidc.SaveToken(filepath.Join(dir, "expired.json"), expired); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "garbage.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file, wantCode string
		wantToken            bool
	}{
		{name: "missing", file: "none.json", wantCode: latch.ENOTFOUND},
		{name: "expired", file: "expired.json", wantCode: latch.ENOTFOUND, wantToken: true},
		{name: "unreadable", file: "garbage.json", wantCode: latch.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := oidc.LoadToken(filepath.Join(dir, tt.file))
			if latch.ErrorCode(err) != tt.wantCode {
				t.Fatalf("err = %v, want %s", err, tt.wantCode)
			}
			if tt.wantToken && got.RefreshToken != "r" {
				t.Errorf("LoadToken returned %+v, want the expired token so it can be refreshed", got)
			}
		})
	}
}

func TestCachedToken_Expired(t *testing.T) {
	exp := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	tok := oidc.CachedToken{Expiry: exp}
	for _, tt := range []struct {
		now  time.Time
		want bool
	}{
		{now: exp.Add(-time.Hour), want: false},
		{now: exp.Add(-oidc.ExpiryMargin), want: true},
		{now: exp.Add(time.Second), want: true},
	} {
		if got := tok.Expired(tt.now); got != tt.want {
			t.Errorf("Expired(%v) = %v, want %v", tt.now, got, tt.want)
		}
	}
}

func TestNewCachedToken_AndRefresh(t *testing.T) {
	o := newTestOP(t)
	cfg := oidc.LoginConfig{Issuer: o.Issuer(), ClientID: clientID}
	cached, err := oidc.NewCachedToken(cfg, loginPKCE(t, o, alice))
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(cached.Expiry); d < oidctest.TokenLifetime-time.Minute || d > oidctest.TokenLifetime+time.Minute {
		t.Errorf("Expiry is %v away, want the ID token's lifetime, %v", d, oidctest.TokenLifetime)
	}
	if cached.RefreshToken == "" || cached.Issuer != o.Issuer() || cached.ClientID != clientID {
		t.Fatalf("NewCachedToken = %+v", cached)
	}

	refreshed, err := oidc.Refresh(t.Context(), oidc.LoginConfig{}, cached)
	if err != nil {
		t.Fatal(err)
	}
	if refreshed.IDToken == cached.IDToken || refreshed.RefreshToken == "" {
		t.Errorf("Refresh returned the same ID token or no refresh token: %+v", refreshed)
	}
	wantIdentity(t, verifierFor(t, o, nil), refreshed.IDToken, alice)

	t.Run("no refresh token", func(t *testing.T) {
		noRefresh := cached
		noRefresh.RefreshToken = ""
		_, err := oidc.Refresh(t.Context(), cfg, noRefresh)
		wantUnauthenticated(t, err, "run latch login")
	})
	t.Run("refused refresh token", func(t *testing.T) {
		bogus := cached
		bogus.RefreshToken = "not-a-refresh-token"
		_, err := oidc.Refresh(t.Context(), cfg, bogus)
		wantUnauthenticated(t, err, "refused")
	})
	t.Run("another issuer", func(t *testing.T) {
		_, err := oidc.Refresh(t.Context(), oidc.LoginConfig{Issuer: "https://id.example.com"}, cached)
		if latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("err = %v, want EINVALID", err)
		}
	})
}

func TestNewCachedToken_NeedsIDToken(t *testing.T) {
	_, err := oidc.NewCachedToken(oidc.LoginConfig{}, &oauth2.Token{AccessToken: "x"})
	wantUnauthenticated(t, err, "no ID token")
}
