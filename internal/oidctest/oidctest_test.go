package oidctest_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/latchdev/latch/internal/oidctest"
)

func TestNew_Discovery(t *testing.T) {
	o := oidctest.New(t, "cli", oidctest.User{Username: "alice", Password: "pw", Email: "alice@example.com"})
	resp, err := http.Get(o.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer                      string   `json:"issuer"`
		GrantTypes                  []string `json:"grant_types_supported"`
		Scopes                      []string `json:"scopes_supported"`
		DeviceAuthorizationEndpoint string   `json:"device_authorization_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Issuer != o.Issuer() || doc.DeviceAuthorizationEndpoint == "" {
		t.Errorf("discovery = %+v, want issuer %s and a device endpoint", doc, o.Issuer())
	}
	for _, g := range []string{"authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"} {
		if !slices.Contains(doc.GrantTypes, g) {
			t.Errorf("grant types %v lack %s", doc.GrantTypes, g)
		}
	}
	if !slices.Contains(doc.Scopes, "groups") {
		t.Errorf("scopes %v lack groups", doc.Scopes)
	}
}

func TestApproveDevice_UnknownCode(t *testing.T) {
	alice := oidctest.User{Username: "alice", Password: "pw"}
	o := oidctest.New(t, "cli", alice)
	if err := o.ApproveDevice(alice, "NOPE-NOPE", true); err == nil {
		t.Error("ApproveDevice accepted a code nobody asked for")
	}
	if err := o.ApproveDevice(oidctest.User{Username: "alice", Password: "wrong"}, "NOPE-NOPE", true); err == nil {
		t.Error("ApproveDevice accepted a wrong password")
	}
}
