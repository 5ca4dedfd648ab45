package broker_test

import (
	"context"
	"slices"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	at "github.com/latchdev/latch/internal/accesstest"
	"github.com/latchdev/latch/internal/awstest"
)

// The login carries the host keys the instance's console shows, without
// their comments, so the client can pin them.
func TestSSHLoginCarriesTheConsoleHostKeys(t *testing.T) {
	f, _ := sshFixture(t, true)
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPXjuIwJBWRx3hMWxqpcf1GSVc2fzhLPLb/GRk8IJ/yT"
	if err := f.Env.RequireSim(t, "sets web-1's console host keys in the simulator (SetHostKeys); an instance launched through the SDK prints none").SetHostKeys(awstest.Region, f.Fleet.Web1, []string{key + " root@web-1"}); err != nil {
		t.Fatal(err)
	}
	g := openGrant(t, f, f.Fleet.Web1Name, 22)
	login, err := f.Access.SSHLogin(t.Context(), at.Alice, g.ID, broker.SSHLoginInput{PublicKey: userKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(login.HostKeys, []string{key}) {
		t.Errorf("host keys = %q; want web-1's console key", login.HostKeys)
	}
}

type failingHostKeys struct{}

func (failingHostKeys) HostKeys(context.Context, latch.InstanceID) ([]string, error) {
	return nil, latch.Errorf(latch.EFORBIDDEN, "not authorized to perform ec2:GetConsoleOutput")
}

// Unreadable host keys do not cost the login: the client falls back to
// trusting on first use, and says so.
func TestSSHLoginWithoutHostKeys(t *testing.T) {
	f := at.NewWithPolicy(t, sshPolicy, func(_ *at.Fixture, o *broker.AccessOptions) {
		o.HostKeys = map[string]latch.HostKeySource{awstest.Region: failingHostKeys{}}
	})
	g := openGrant(t, f, f.Fleet.Web1Name, 22)
	login, err := f.Access.SSHLogin(t.Context(), at.Alice, g.ID, broker.SSHLoginInput{PublicKey: userKey(t)})
	if err != nil || login.Certificate == nil || login.HostKeys != nil {
		t.Errorf("login = %+v, %v; want a certificate and no host keys", login, err)
	}
}
