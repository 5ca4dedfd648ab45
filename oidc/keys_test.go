package oidc_test

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchdev/latch/oidc"
)

// keyFetches counts the requests for the issuer's keys (anything but
// discovery) that reach the issuer.
type keyFetches struct{ n atomic.Int64 }

func (k *keyFetches) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
		k.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A token naming a key the verifier has not seen sends it to the issuer
// for its keys again, as key rotation needs; forged tokens naming made-up
// keys must not make that one request each.
func TestVerify_UnknownKeysRefetchAtMostOncePerInterval(t *testing.T) {
	o := newTestOP(t)
	raw := idToken(t, loginPKCE(t, o, alice))
	mallory, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, payload, _ := split(t, raw)
	forged := func(i int) string {
		return rs256(t, mallory, join(jsonPart(t, map[string]any{"alg": "RS256", "kid": fmt.Sprintf("forged-%d", i), "typ": "JWT"}), payload, ""))
	}

	now := time.Now()
	keys := &keyFetches{}
	v := verifierFor(t, o, func(c *oidc.Config) {
		c.HTTPClient = &http.Client{Transport: keys}
		c.Now = func() time.Time { return now }
	})
	wantIdentity(t, v, raw, alice) // the first token fetches the keys
	if n := keys.n.Load(); n != 1 {
		t.Fatalf("%d key fetches for the first token, want 1", n)
	}
	for i := range 50 {
		_, err := v.Verify(t.Context(), forged(i))
		wantUnauthenticated(t, err, "not valid")
	}
	if n := keys.n.Load(); n != 1 {
		t.Errorf("50 tokens naming unknown keys, at one instant: %d key fetches in all; want 1, none for them", n)
	}
	wantIdentity(t, v, raw, alice) // the issuer's own key still verifies

	now = now.Add(oidc.DefaultMinKeyRefresh)
	for i := range 50 {
		_, err := v.Verify(t.Context(), forged(100+i))
		wantUnauthenticated(t, err, "not valid")
	}
	if n := keys.n.Load(); n != 2 {
		t.Errorf("after %s, 50 more: %d key fetches in all; want 2, one more", oidc.DefaultMinKeyRefresh, n)
	}
}
