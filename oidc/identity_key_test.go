package oidc_test

import (
	"testing"

	"github.com/latchdev/latch/oidc"
)

// One person, two logins: once with the default scopes and once with only
// "openid groups" (the scope edited in the login URL), so the second token
// has no email claim. Both must name the same person, or that person could
// approve their own request with the second identity.
func TestVerify_ScopesDoNotChangeThePerson(t *testing.T) {
	o := newTestOP(t)
	v := verifierFor(t, o, nil)
	full := idToken(t, loginPKCE(t, o, alice))
	narrow, err := oidc.Login(t.Context(), oidc.LoginConfig{Issuer: o.Issuer(), ClientID: clientID, Method: oidc.MethodPKCE,
		Open: o.Browser(alice), Scopes: []string{"openid", "groups"}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := v.Verify(t.Context(), full)
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.Verify(t.Context(), idToken(t, narrow))
	if err != nil {
		t.Fatal(err)
	}
	if a.Key() != b.Key() {
		t.Fatalf("the same user is two people: %+v and %+v", a, b)
	}
	if a.Subject != alice.ID() {
		t.Errorf("subject = %q, want the sub claim %q", a.Subject, alice.ID())
	}
}

// email_verified counts only as the JSON boolean true: a string "false",
// a number or a missing claim must not let a token be named by its email.
func TestVerify_EmailVerifiedMustBeTrue(t *testing.T) {
	o := newTestOP(t)
	raw := idToken(t, loginPKCE(t, o, alice))
	_, payload, _ := split(t, raw)
	opKey, kid := o.SigningKey(t)
	opHeader := jsonPart(t, map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"})
	for name, edit := range map[string]func(map[string]any){
		`"false"`: func(c map[string]any) { c["email_verified"] = "false" },
		`0`:       func(c map[string]any) { c["email_verified"] = 0 },
		`"true"`:  func(c map[string]any) { c["email_verified"] = "true" },
		`missing`: func(c map[string]any) { delete(c, "email_verified") },
	} {
		t.Run(name, func(t *testing.T) {
			tok := rs256(t, opKey, join(opHeader, editClaims(t, payload, func(c map[string]any) {
				c["email"] = "mallory@example.com"
				edit(c)
			}), ""))
			id, err := verifierFor(t, o, nil).Verify(t.Context(), tok)
			if err != nil || id.Subject == "mallory@example.com" || id.Email != "" {
				t.Fatalf("Verify = %+v, %v; want alice by her sub, with no email", id, err)
			}
			// Keyed by email, the token is refused.
			_, err = verifierFor(t, o, func(c *oidc.Config) { c.SubjectClaim = "email" }).Verify(t.Context(), tok)
			wantUnauthenticated(t, err, "not verified")
		})
	}
}
