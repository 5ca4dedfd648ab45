// Package accesstest builds a complete access service for tests: an EC2
// endpoint (see awstest) with the demo fleet's shape built through the SDK,
// a SQLite store, the broker, a policy and
// a fake clock and an SSH CA, plus the people the tests talk about.
package accesstest

import (
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
	"github.com/latchdev/latch/mock"
	"github.com/latchdev/latch/policy"
	"github.com/latchdev/latch/sqlite"
	"github.com/latchdev/latch/sshca"
)

// Start is the fake clock's first reading.
var Start = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// The people in the tests, as the OIDC verifier names them: keyed by their
// sub claim, with a verified email. Alice develops; Bob and Erin are SREs
// (the approvers); Carol administers; Dave is a stranger to the policy.
var (
	Alice = oidcPerson("alice", "dev")
	Bob   = oidcPerson("bob", "sre")
	Erin  = oidcPerson("erin", "sre")
	Carol = oidcPerson("carol", "admins")
	Dave  = oidcPerson("dave")
)

// SessionRole is the role the broker starts Session Manager sessions
// under.
const SessionRole = "arn:aws:iam::123456789012:role/latch-session"

// Issuer is the people's OIDC issuer.
const Issuer = "https://idp.test"

func oidcPerson(name string, groups ...string) latch.Identity {
	return latch.Identity{Kind: latch.KindOIDC, Issuer: Issuer, Subject: "u-" + name, Email: name + "@example.com", Groups: groups}
}

// Policy is the tests' policy: dev instances auto-approved for dev, prod
// needing one SRE approval (with break-glass), and the db port needing two
// approvals from the corporate network only.
const Policy = `
version: 1
rules:
  - name: dev-ssh
    targets: {tags: {env: dev}}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: auto
    max_active: 2
    ssh: {principals: [ec2-user]}
  - name: prod-db
    targets: {tags: {env: prod}}
    who: {groups: [dev]}
    ports: [tcp/5432]
    duration: {default: 15m, max: 1h}
    approval: {approvals: 2, from: [sre]}
    networks: [198.51.100.0/24]
  - name: prod-ssh
    targets: {tags: {env: prod}}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 2h}
    approval: {approvals: 1, from: [sre]}
    pending_timeout: 1h
    break_glass: true
`

// Fixture is a running access service.
type Fixture struct {
	Env    *awstest.Env
	Fleet  awstest.Fleet // the demo fleet's shape, on Env
	Store  *sqlite.Store
	Clock  *mock.Clock
	Broker *broker.Broker
	Access *broker.Access
	Policy *Holder
	CA     *sshca.CA // the access service's SSH CA
	t      testing.TB
}

// Holder is a swappable policy.
type Holder struct{ p atomic.Pointer[policy.Policy] }

// Policy returns the policy in force.
func (h *Holder) Policy() *policy.Policy { return h.p.Load() }

// Set swaps the policy.
func (h *Holder) Set(p *policy.Policy) { h.p.Store(p) }

// New starts a fixture with the demo fleet's shape and Policy.
func New(t testing.TB) *Fixture { return NewWithPolicy(t, Policy) }

// NewWithPolicy starts a fixture with the demo fleet and the given policy;
// each option may change the access service's options.
func NewWithPolicy(t testing.TB, policyYAML string, options ...func(*Fixture, *broker.AccessOptions)) *Fixture {
	t.Helper()
	env := awstest.New(t)
	// The broker's own key, as STS and Systems Manager know it: the
	// sweeps list Session Manager sessions with it.
	env.Identity(t, "AKIDLATCHTEST", "secret", "arn:aws:iam::"+ec2sim.DefaultAccountID+":user/AKIDLATCHTEST")
	f := &Fixture{Env: env, Fleet: env.DemoFleet(t), Clock: mock.NewClock(Start), Policy: &Holder{}, t: t}
	p, err := policy.Parse("test-policy.yaml", []byte(policyYAML))
	if err != nil {
		t.Fatal(err)
	}
	f.Policy.Set(p)
	f.Store, err = sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latch.db"), sqlite.Options{Now: f.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Store.Close() })
	inv := latchaws.NewInventory(env.Config(), nil)
	f.Broker = broker.New(f.Store, []latch.Firewall{env.Firewall(t)}, map[string]broker.GroupLookup{awstest.Region: inv},
		broker.Options{Clock: f.Clock, MaxDuration: policy.DurationCap, SessionRole: SessionRole,
			Sessions: map[string]latch.SessionManager{awstest.Region: latchaws.NewSessionManager(env.Config(), SessionRole, nil)}})
	caPath := filepath.Join(t.TempDir(), "ssh-ca")
	if err := sshca.GenerateKey(caPath); err != nil {
		t.Fatal(err)
	}
	if f.CA, err = sshca.LoadCA(caPath); err != nil {
		t.Fatal(err)
	}
	opts := broker.AccessOptions{Clock: f.Clock, DefaultRegion: awstest.Region, AdminGroups: []string{"admins"}, SSHCA: f.CA, OIDCIssuer: Issuer,
		KeyPushers: map[string]latch.SSHKeyPusher{awstest.Region: latchaws.NewInstanceConnect(env.Config())},
		HostKeys:   map[string]latch.HostKeySource{awstest.Region: latchaws.NewConsoleHostKeys(env.Config())}}
	for _, o := range options {
		o(f, &opts)
	}
	f.Access = broker.NewAccess(f.Broker, f.Store, f.Policy,
		map[string]latch.Inventory{awstest.Region: inv}, opts)
	return f
}

// Rules returns the rules now in a group, through the SDK.
func (f *Fixture) Rules(group latch.GroupID) []ec2sim.Rule {
	return f.Env.Rules(f.t, group)
}
