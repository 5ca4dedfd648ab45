package broker_test

import (
	"fmt"
	"net/netip"
	"os/user"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	at "github.com/latchdev/latch/internal/accesstest"
	"github.com/latchdev/latch/internal/sshdtest"
	"github.com/latchdev/latch/policy"
)

// bindingPolicy gives alice certificates, auto-approved, on the dev
// instances (web-1 and web-2) and on their security group named directly,
// as the user running the test (%[1]s): the only user a test sshd has.
// %[2]s is their group.
const bindingPolicy = `
version: 1
rules:
  - name: dev-ssh
    targets: {tags: {env: dev}}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: auto
    ssh: {principals: [%[1]s]}
  - name: group-ssh
    targets: {groups: [%[2]s]}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: auto
    ssh: {principals: [%[1]s]}
`

// bindingFixture is a fixture under bindingPolicy for user.
func bindingFixture(t *testing.T, user string) *at.Fixture {
	t.Helper()
	f := at.New(t)
	p, err := policy.Parse("binding.yaml", []byte(fmt.Sprintf(bindingPolicy, user, f.Fleet.WebGroup)))
	if err != nil {
		t.Fatal(err)
	}
	f.Policy.Set(p)
	return f
}

// A certificate from an auto-approved dev grant on web-1 must not log in
// to db-1 (prod) from the same address, although db-1 trusts the same CA:
// the certificate names the instance it is for, and an instance set up as
// the README says accepts only certificates naming itself. An instance
// that only trusts the CA, with no principals file, refuses it too: no
// principal is a bare user name.
func TestSSHCertificateLogsInOnlyToItsInstance(t *testing.T) {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	f := bindingFixture(t, u.Username)
	f.Clock.Set(time.Now().UTC().Truncate(time.Second)) // sshd checks the certificate on the real clock
	loopback := netip.MustParsePrefix("127.0.0.1/32")   // the address the test's logins come from
	r, err := f.Access.Request(t.Context(), at.Alice, ask(f.Fleet.Web1, 22, loopback))
	if err != nil {
		t.Fatal(err)
	}
	key := sshdtest.UserKey(t)
	login, err := f.Access.SSHLogin(t.Context(), at.Alice, r.GrantID, broker.SSHLoginInput{PublicKey: ssh.MarshalAuthorizedKey(key.PublicKey())})
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(login.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewCertSigner(pub.(*ssh.Certificate), key)
	if err != nil {
		t.Fatal(err)
	}

	ca := f.CA.TrustedUserCAKeys()
	web1 := sshdtest.Start(t, ca, sshdtest.Options{Instance: f.Fleet.Web1})
	if out, err := web1.Run(t, signer, "echo in"); err != nil || strings.TrimSpace(out) != "in" {
		t.Fatalf("web-1, the grant's instance: %q, %v; want a login\n%s", out, err, web1.Log())
	}
	for _, tt := range []struct {
		name string
		sshd *sshdtest.Server
		log  string
	}{
		{"db-1, set up as the README says", sshdtest.Start(t, ca, sshdtest.Options{Instance: f.Fleet.DB1}),
			"Certificate does not contain an authorized principal"},
		{"an instance that only trusts the CA", sshdtest.Start(t, ca, sshdtest.Options{}),
			"name is not a listed principal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.sshd.Run(t, signer, "echo in")
			if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
				t.Fatalf("the certificate for web-1 logged in (%q, %v); want it refused", out, err)
			}
			if !tt.sshd.LogContains(tt.log) {
				t.Errorf("sshd did not log %q:\n%s", tt.log, tt.sshd.Log())
			}
		})
	}
}

// A grant on a security group names no instance: it gets no certificate,
// since one not bound to an instance would log in to every instance that
// trusts the CA. Nothing is signed or audited.
func TestSSHCertificateRefusedForAGroupGrant(t *testing.T) {
	f := bindingFixture(t, "ec2-user")
	r, err := f.Access.Request(t.Context(), at.Alice, ask(string(f.Fleet.WebGroup), 22, home))
	if err != nil {
		t.Fatal(err)
	}
	if r.Target.InstanceID != "" || r.Rule != "group-ssh" {
		t.Fatalf("request = %+v; want a grant on the group under group-ssh", r)
	}
	_, err = f.Access.SSHLogin(t.Context(), at.Alice, r.GrantID, broker.SSHLoginInput{PublicKey: userKey(t)})
	if latch.ErrorCode(err) != latch.EINVALID || !strings.HasPrefix(latch.ErrorMessage(err), "grant: ") ||
		!strings.Contains(latch.ErrorMessage(err), "not an instance") {
		t.Errorf("err = %v; want EINVALID on grant saying it is not for an instance", err)
	}
	entries, err := f.Store.AuditEntries(t.Context(), latch.AuditFilter{GrantID: r.GrantID})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Action == latch.AuditSSHCertificate {
			t.Errorf("a certificate was audited for the group grant: %+v", e)
		}
	}
}
