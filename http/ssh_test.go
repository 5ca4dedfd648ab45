package http_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/ec2sim"
	latchhttp "github.com/latchdev/latch/http"
)

func TestSSHLoginOverHTTP(t *testing.T) {
	s := newServer(t, latchhttp.Options{})
	sim := s.Env.RequireSim(t, "web-1's console host keys are set in the simulator (SetHostKeys); an instance launched through the SDK prints none")
	if err := sim.SetHostKeys(ec2sim.DemoRegion, s.Fleet.Web1, ec2sim.DemoFleet().Regions[ec2sim.DemoRegion].Instances[0].HostKeys); err != nil {
		t.Fatal(err)
	}
	grant := s.activeGrant(t)
	path := "/v1/grants/" + grant + "/ssh"

	st, body := s.call(t, "alice", "POST", path, latchhttp.SSHBody{PublicKey: testPublicKey})
	if st != http.StatusOK {
		t.Fatalf("ssh login = %d %s", st, body)
	}
	l := decodeAs[latchhttp.SSHLoginJSON](t, body)
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(l.Certificate))
	if err != nil {
		t.Fatalf("certificate does not parse: %v (%q)", err, l.Certificate)
	}
	cert, ok := k.(*ssh.Certificate)
	if !ok || strconv.FormatUint(cert.Serial, 10) != l.Serial || !strings.Contains(cert.KeyId, grant) {
		t.Errorf("certificate %T serial %s key ID %q; want a certificate with serial %s naming %s", k, l.Serial, cert.KeyId, l.Serial, grant)
	}
	if l.Method != latch.SSHCertificate || l.Login != "ec2-user" || l.Instance == nil ||
		string(l.Instance.ID) != s.Fleet.Web1 || l.Instance.Name != s.Fleet.Web1Name || l.Instance.PrivateIP == "" {
		t.Errorf("login = %+v; want a certificate for ec2-user on web-1 with its address", l)
	}
	st, body = s.call(t, "alice", "GET", "/v1/grants/"+grant, nil)
	if g := decodeAs[latchhttp.GrantJSON](t, body); st != http.StatusOK || !l.AccessUntil.Equal(g.ExpiresAt) {
		t.Errorf("access_until %v; want the grant's end %v", l.AccessUntil, g.ExpiresAt)
	}
	// The demo fleet's web-1 shows an ed25519 and an ECDSA host key on its console.
	if len(l.HostKeys) != 2 || !strings.HasPrefix(l.HostKeys[0], "ssh-ed25519 ") || strings.Count(l.HostKeys[0], " ") != 1 {
		t.Errorf("host_keys = %q; want web-1's two console keys, without comments", l.HostKeys)
	}

	for _, tt := range []struct {
		name  string
		body  any
		field string
	}{
		{"no key", latchhttp.SSHBody{}, "public_key"},
		{"bad login", latchhttp.SSHBody{PublicKey: testPublicKey, Login: "root;id"}, "login"},
		{"unknown field", map[string]string{"public_key": testPublicKey, "principals": "root"}, "body"},
		{"not a key", latchhttp.SSHBody{PublicKey: "hello"}, "public_key"},
	} {
		st, body := s.call(t, "alice", "POST", path, tt.body)
		if eb := decodeAs[latchhttp.ErrorBody](t, body); st != http.StatusBadRequest || eb.Field != tt.field {
			t.Errorf("%s: %d %s; want 400 naming %s", tt.name, st, body, tt.field)
		}
	}
}
