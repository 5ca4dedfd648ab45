package broker_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/latchdev/latch"

	"github.com/latchdev/latch/broker"
	at "github.com/latchdev/latch/internal/accesstest"
	"github.com/latchdev/latch/internal/awstest"
	"github.com/latchdev/latch/internal/sshdtest"
	"github.com/latchdev/latch/sshca"
)

// sshPolicy gives certificates on dev boxes, Instance Connect on prod
// (auto-approved here, to keep the tests short), and no login on the db port.
const sshPolicy = `
version: 1
rules:
  - name: dev-ssh
    targets: {tags: {env: dev}}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: auto
    ssh: {principals: [ec2-user, deploy]}
  - name: prod-ssh
    targets: {tags: {env: prod}}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: auto
    ssh: {method: instance-connect, principals: [ec2-user]}
  - name: prod-db
    targets: {tags: {env: prod}}
    who: {groups: [dev]}
    ports: [tcp/5432]
    duration: {default: 15m, max: 1h}
    approval: auto
`

// sshFixture is the access service on sshPolicy, with or without its CA.
func sshFixture(t *testing.T, withCA bool) (*at.Fixture, *sshca.CA) {
	t.Helper()
	f := at.NewWithPolicy(t, sshPolicy, func(f *at.Fixture, o *broker.AccessOptions) {
		if !withCA {
			o.SSHCA = nil
		}
	})
	return f, f.CA
}

func userKey(t *testing.T) []byte { return ssh.MarshalAuthorizedKey(sshdtest.UserKey(t).PublicKey()) }

func openGrant(t *testing.T, f *at.Fixture, target string, port int) latch.Grant {
	t.Helper()
	r, err := f.Access.Request(t.Context(), at.Alice, ask(target, port, home))
	if err != nil {
		t.Fatal(err)
	}
	g, err := f.Store.Grant(t.Context(), r.GrantID)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestSSHCertificateIsBoundToTheGrant(t *testing.T) {
	f, ca := sshFixture(t, true)
	f.Clock.Advance(90 * time.Second)          // the grant starts after the clock's first reading
	g := openGrant(t, f, f.Fleet.Web1Name, 22) // by Name tag
	key := userKey(t)

	login, err := f.Access.SSHLogin(t.Context(), at.Alice, g.ID, broker.SSHLoginInput{PublicKey: key})
	if err != nil {
		t.Fatal(err)
	}
	parsed, _, _, _, err := ssh.ParseAuthorizedKey(login.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	cert := parsed.(*ssh.Certificate)
	checker := ssh.CertChecker{IsUserAuthority: func(k ssh.PublicKey) bool {
		return string(k.Marshal()) == string(ca.PublicKeys()[0].Marshal())
	}, Clock: f.Clock.Now, SupportedCriticalOptions: []string{"source-address"}}
	if err := checker.CheckCert("deploy@"+string(f.Fleet.Web1), cert); err != nil {
		t.Errorf("the CA's certificate does not check for deploy on web-1 now: %v", err)
	}
	if err := checker.CheckCert("deploy", cert); err == nil {
		t.Error("the certificate names a bare user, which any instance trusting the CA would accept")
	}
	switch {
	case login.Method != latch.SSHCertificate || login.Login != "ec2-user":
		t.Errorf("method %s login %s; want certificate as ec2-user (the first principal)", login.Method, login.Login)
	case !slices.Equal(cert.ValidPrincipals, []string{"ec2-user@" + f.Fleet.Web1, "deploy@" + f.Fleet.Web1}):
		t.Errorf("principals = %v; want the rule's, each bound to web-1", cert.ValidPrincipals)
	case !slices.Equal(login.Principals, []string{"ec2-user", "deploy"}):
		t.Errorf("login principals = %v; want the rule's users", login.Principals)
	case cert.ValidBefore != uint64(g.ExpiresAt.Unix()) || !login.ValidBefore.Equal(g.ExpiresAt):
		t.Errorf("valid before %d; want the grant's expiry %d", cert.ValidBefore, g.ExpiresAt.Unix())
	case cert.ValidAfter != uint64(g.CreatedAt.Add(-sshca.DefaultSkew).Unix()):
		t.Errorf("valid after %d; want the grant's start less the skew allowance", cert.ValidAfter)
	case cert.CriticalOptions["source-address"] != "203.0.113.50/32":
		t.Errorf("source-address = %q; want the granted address", cert.CriticalOptions["source-address"])
	case cert.KeyId != "grant="+string(g.ID)+";requester=alice@example.com" || cert.Serial != login.Serial:
		t.Errorf("key ID %q serial %d; want the grant and requester, serial %d", cert.KeyId, cert.Serial, login.Serial)
	case string(login.Instance.ID) != f.Fleet.Web1 || !login.Instance.PrivateIP.IsValid():
		t.Errorf("instance = %+v; want web-1 with its address", login.Instance)
	case string(cert.Key.Marshal()) != string(mustParseKey(t, key).Marshal()):
		t.Error("the certificate is for another key")
	}
	entries, err := f.Store.AuditEntries(t.Context(), latch.AuditFilter{GrantID: g.ID})
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(entries, func(e latch.AuditEntry) bool { return e.Action == latch.AuditSSHCertificate }); i < 0 ||
		entries[i].Details["serial"] == "" || entries[i].Actor != at.Alice.Email ||
		entries[i].Details["principals"] != strings.Join(cert.ValidPrincipals, ",") {
		t.Errorf("no ssh-certificate audit entry with the serial and the certificate's principals: %+v", entries)
	}

	// Expired, the grant gives no certificate.
	f.Clock.Set(g.ExpiresAt)
	if _, err := f.Access.SSHLogin(t.Context(), at.Alice, g.ID, broker.SSHLoginInput{PublicKey: key}); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Errorf("login at expiry = %v; want ECONFLICT", err)
	}
}

func TestSSHLoginRefusals(t *testing.T) {
	f, _ := sshFixture(t, true)
	g := openGrant(t, f, f.Fleet.Web1, 22)
	db := openGrant(t, f, f.Fleet.DB1, 5432)
	key := userKey(t)
	tests := []struct {
		name string
		who  latch.Identity
		id   latch.GrantID
		in   broker.SSHLoginInput
		code string
		says string
	}{
		{"someone else's grant", at.Bob, g.ID, broker.SSHLoginInput{PublicKey: key}, latch.EFORBIDDEN, "only the requester"},
		{"even an admin", at.Carol, g.ID, broker.SSHLoginInput{PublicKey: key}, latch.EFORBIDDEN, "only the requester"},
		{"a login the rule does not name", at.Alice, g.ID, broker.SSHLoginInput{PublicKey: key, Login: "root"}, latch.EFORBIDDEN, `not "root"`},
		{"a rule without ssh", at.Alice, db.ID, broker.SSHLoginInput{PublicKey: key}, latch.EFORBIDDEN, `rule "prod-db" gives no SSH login`},
		{"not a key", at.Alice, g.ID, broker.SSHLoginInput{PublicKey: []byte("ssh-ed25519 nope")}, latch.EINVALID, "public_key"},
		{"no such grant", at.Alice, "g-0000000000000000", broker.SSHLoginInput{PublicKey: key}, latch.ENOTFOUND, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Access.SSHLogin(t.Context(), tt.who, tt.id, tt.in)
			if latch.ErrorCode(err) != tt.code || !strings.Contains(latch.ErrorMessage(err), tt.says) {
				t.Errorf("err = %v; want %s saying %q", err, tt.code, tt.says)
			}
		})
	}
	if _, _, err := f.Access.EndGrant(t.Context(), at.Alice, g.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Access.SSHLogin(t.Context(), at.Alice, g.ID, broker.SSHLoginInput{PublicKey: key}); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Errorf("login with an ended grant = %v; want ECONFLICT", err)
	}
}

func TestSSHCertificateNeedsACA(t *testing.T) {
	f, _ := sshFixture(t, false)
	g := openGrant(t, f, f.Fleet.Web1, 22)
	_, err := f.Access.SSHLogin(t.Context(), at.Alice, g.ID, broker.SSHLoginInput{PublicKey: userKey(t)})
	if latch.ErrorCode(err) != latch.EUNAVAILABLE || !strings.Contains(latch.ErrorMessage(err), "--ssh-ca-key") {
		t.Errorf("err = %v; want EUNAVAILABLE naming --ssh-ca-key", err)
	}
}

func TestSSHInstanceConnectPushesTheKey(t *testing.T) {
	f, _ := sshFixture(t, false) // Instance Connect needs no CA
	g := openGrant(t, f, f.Fleet.DB1Name, 22)
	key := userKey(t)
	login, err := f.Access.SSHLogin(t.Context(), at.Alice, g.ID, broker.SSHLoginInput{PublicKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if login.Method != latch.SSHInstanceConnect || login.Login != "ec2-user" || login.Certificate != nil ||
		!login.ValidBefore.Equal(f.Clock.Now().UTC().Truncate(time.Second).Add(broker.InstanceConnectKeyLife)) {
		t.Errorf("login = %+v; want instance-connect as ec2-user, no certificate, valid 60s", login)
	}
	if !login.AccessUntil.Equal(g.ExpiresAt) {
		t.Errorf("access until %v; want the grant's end %v, not the key's", login.AccessUntil, g.ExpiresAt)
	}
	pushed := f.Env.RequireSim(t, "reads the key pushed with Instance Connect back from the simulator (PushedKeys)").PushedKeys(awstest.Region, f.Fleet.DB1)
	if len(pushed) != 1 || pushed[0].OSUser != "ec2-user" || strings.TrimSpace(pushed[0].PublicKey) != strings.TrimSpace(string(key)) {
		t.Errorf("pushed = %+v; want alice's key for ec2-user", pushed)
	}
}

func TestTargetByName(t *testing.T) {
	f := at.New(t)
	// A second instance named as web-1 is.
	f.Env.Instance(t, map[string]string{"Name": f.Fleet.Web1Name, "env": "dev"}, f.Env.ManagedGroup(t))
	for target, want := range map[string]string{f.Fleet.Web1Name: latch.ECONFLICT, awstest.Unique("web-9"): latch.ENOTFOUND, "bad\nname": latch.EINVALID} {
		if _, err := f.Access.Request(t.Context(), at.Alice, ask(target, 22, home)); latch.ErrorCode(err) != want {
			t.Errorf("request for %q = %v; want %s", target, err, want)
		}
	}
	if r, err := f.Access.Request(t.Context(), at.Alice, ask(f.Fleet.Web2Name, 22, home)); err != nil || string(r.Target.InstanceID) != f.Fleet.Web2 {
		t.Errorf("request for web-2 = %+v, %v; want instance %s", r.Target, err, f.Fleet.Web2)
	}
}

func mustParseKey(t *testing.T, b []byte) ssh.PublicKey {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
