package latch_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

func TestGrantCertRequestBindsEachLoginToTheInstance(t *testing.T) {
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	g := latch.Grant{ID: "g-0123456789abcdef", GroupID: "sg-0123456789abcdef0", Requester: "alice@example.com",
		Source: netip.MustParsePrefix("203.0.113.50/32"), CreatedAt: start, ExpiresAt: start.Add(30 * time.Minute)}
	const in = latch.InstanceID("i-0123456789abcdef0")

	req, err := latch.GrantCertRequest(g, in, []string{"ec2-user", "deploy"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ec2-user@i-0123456789abcdef0", "deploy@i-0123456789abcdef0"}; !slices.Equal(req.Principals, want) {
		t.Errorf("principals = %q; want %q", req.Principals, want)
	}
	if req.KeyID != "grant=g-0123456789abcdef;requester=alice@example.com" || !req.ValidAfter.Equal(g.CreatedAt) ||
		!req.ValidBefore.Equal(g.ExpiresAt) || req.SourceAddress != g.Source || req.AllowWideSource {
		t.Errorf("request = %+v; want the grant's key ID, window and single source", req)
	}

	for _, tt := range []struct {
		name     string
		instance latch.InstanceID
		logins   []string
		field    string
	}{
		{"a group grant", "", []string{"ec2-user"}, "grant"},
		{"a malformed instance", "web-1", []string{"ec2-user"}, "target"},
		{"no login", in, nil, "login"},
		{"a login that could forge another binding", in, []string{"ec2-user@i-0fedcba987654321f"}, "login"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := latch.GrantCertRequest(g, tt.instance, tt.logins)
			if latch.ErrorCode(err) != latch.EINVALID || !strings.HasPrefix(latch.ErrorMessage(err), tt.field+": ") {
				t.Errorf("err = %v; want EINVALID naming %s", err, tt.field)
			}
		})
	}
}
