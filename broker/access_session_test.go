package broker_test

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/ec2sim"
	at "github.com/latchdev/latch/internal/accesstest"
	"github.com/latchdev/latch/policy"
)

// sessionPolicy gives dev shells and port 5432 forwarding on dev
// instances through Session Manager, and alice's two identities are one
// person.
const sessionPolicy = `
version: 1
people:
  - name: alice
    oidc: [u-alice, u-alice-laptop]
rules:
  - name: dev-ssm
    targets: {tags: {env: dev}}
    who: {groups: [dev]}
    ssm: {documents: [shell, port-forward], ports: [5432]}
    duration: {default: 30m, max: 1h}
    approval: auto
  - name: dev-ssh
    targets: {tags: {env: dev}}
    who: {groups: [dev]}
    ports: [tcp/22]
    duration: {default: 30m, max: 1h}
    approval: auto
`

// sessionFixture is an access service whose dev instance web-1 is
// tagged latch:managed=true, with an online agent, and a grant of a
// shell on it for Alice.
func sessionFixture(t *testing.T) (*at.Fixture, latch.Grant) {
	t.Helper()
	f := at.NewWithPolicy(t, sessionPolicy)
	sim := f.Env.RequireSim(t, "needs an SSM agent on web-1, which only the simulator's SetAgent gives")
	if err := sim.SetAgent("us-east-1", f.Fleet.Web1, ec2sim.Agent{PingStatus: ec2sim.PingOnline}); err != nil {
		t.Fatal(err)
	}
	tagInstance(t, f, f.Fleet.Web1, latch.TagManaged, "true")
	r, err := f.Access.Request(t.Context(), at.Alice, broker.RequestInput{Target: f.Fleet.Web1, Protocol: latch.TCP,
		Document: latch.DocShell, Reason: "debug", Observed: mustSource("203.0.113.7")})
	if err != nil || r.State != latch.RequestActive {
		t.Fatalf("request = %+v, %v", r, err)
	}
	g, err := f.Store.Grant(t.Context(), r.GrantID)
	if err != nil {
		t.Fatal(err)
	}
	return f, g
}

// Only the grant's requester starts sessions with it: not an admin, not
// another person; a linked identity of the same person may. Each refusal
// starts nothing.
func TestStartSessionAuthorization(t *testing.T) {
	f, g := sessionFixture(t)
	laptop := at.Alice
	laptop.Subject = "u-alice-laptop"
	for _, tc := range []struct {
		name string
		who  latch.Identity
		code string
	}{
		{"an admin", at.Carol, latch.EFORBIDDEN},
		{"another developer", func() latch.Identity { d := at.Dave; d.Groups = []string{"dev"}; return d }(), latch.EFORBIDDEN},
		{"a stranger", at.Dave, latch.EFORBIDDEN},
	} {
		h, err := f.Access.StartSession(t.Context(), tc.who, g.ID, 0)
		if latch.ErrorCode(err) != tc.code || h.TokenValue != "" || !strings.Contains(latch.ErrorMessage(err), "only the requester") {
			t.Errorf("%s: StartSession = %+v, %v; want %s and no session", tc.name, h, err, tc.code)
		}
	}
	if n := len(f.Env.Sim.Sessions("us-east-1")); n != 0 {
		t.Fatalf("%d sessions started by others", n)
	}
	h, err := f.Access.StartSession(t.Context(), laptop, g.ID, 0)
	if err != nil || h.TokenValue == "" || h.Target != latch.InstanceID(f.Fleet.Web1) {
		t.Fatalf("alice's other identity: StartSession = %+v, %v; want a session on web-1", h, err)
	}
	ss := f.Env.Sim.Sessions("us-east-1")
	if len(ss) != 1 || ss[0].DocumentName != "SSM-SessionManagerRunShell" || !strings.Contains(ss[0].Owner, "assumed-role/latch-session/") {
		t.Errorf("sessions %+v; want one shell under the session role", ss)
	}
	if _, err := f.Access.StartSession(t.Context(), at.Alice, g.ID, 8080); latch.ErrorCode(err) != latch.EINVALID || !strings.Contains(latch.ErrorMessage(err), "no local port") {
		t.Errorf("a local port for a shell: %v; want EINVALID", err)
	}
}

// Each session is new access: a policy change, a removed tag or an
// offline agent stops the next session, though the grant is still active.
func TestStartSessionRechecksPolicyAndTarget(t *testing.T) {
	f, g := sessionFixture(t)
	start := func() error { _, err := f.Access.StartSession(t.Context(), at.Alice, g.ID, 0); return err }
	set := func(yaml string) {
		p, err := policy.Parse("p.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		f.Policy.Set(p)
	}
	for _, tc := range []struct{ name, yaml, says string }{
		{"who changed", strings.Replace(sessionPolicy, "who: {groups: [dev]}\n    ssm", "who: {groups: [sre]}\n    ssm", 1), "no longer gives"},
		{"targets changed", strings.Replace(sessionPolicy, "targets: {tags: {env: dev}}\n    who: {groups: [dev]}\n    ssm", "targets: {tags: {env: prod}}\n    who: {groups: [dev]}\n    ssm", 1), "no longer gives"},
		{"document dropped", strings.Replace(sessionPolicy, "documents: [shell, port-forward]", "documents: [port-forward]", 1), "no longer gives"},
		{"rule gone", strings.Replace(sessionPolicy, "name: dev-ssm", "name: dev-ssm-2", 1), "no longer in the policy"},
	} {
		set(tc.yaml)
		if err := start(); latch.ErrorCode(err) != latch.EFORBIDDEN || !strings.Contains(latch.ErrorMessage(err), tc.says) {
			t.Errorf("%s: StartSession = %v; want EFORBIDDEN saying %q", tc.name, err, tc.says)
		}
	}
	set(sessionPolicy)
	tagInstance(t, f, f.Fleet.Web1, latch.TagManaged, "false")
	if err := start(); latch.ErrorCode(err) != latch.EFORBIDDEN || !strings.Contains(latch.ErrorMessage(err), "not tagged latch:managed=true") {
		t.Errorf("untagged instance: StartSession = %v; want EFORBIDDEN", err)
	}
	tagInstance(t, f, f.Fleet.Web1, latch.TagManaged, "true")
	if err := f.Env.Sim.SetAgent("us-east-1", f.Fleet.Web1, ec2sim.Agent{PingStatus: ec2sim.PingConnectionLost}); err != nil {
		t.Fatal(err)
	}
	if err := start(); latch.ErrorCode(err) != latch.ECONFLICT || !strings.Contains(latch.ErrorMessage(err), "ConnectionLost") {
		t.Errorf("agent offline: StartSession = %v; want ECONFLICT naming the status", err)
	}
	if n := len(f.Env.Sim.Sessions("us-east-1")); n != 0 {
		t.Errorf("%d sessions started", n)
	}
}

// A grant that opened a rule starts no session, and a session grant
// gives no SSH login unless it is for ssh (and never one by Instance
// Connect, whose key works from any address).
func TestSessionsAndRulesDoNotCross(t *testing.T) {
	f, g := sessionFixture(t)
	r, err := f.Access.Request(t.Context(), at.Alice, broker.RequestInput{Target: f.Fleet.Web1, Protocol: latch.TCP,
		Ports: latch.PortRange{From: 22, To: 22}, Reason: "deploy", Observed: mustSource("203.0.113.7")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Access.StartSession(t.Context(), at.Alice, r.GrantID, 0); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Errorf("StartSession on a rule's grant = %v; want ECONFLICT", err)
	}
	if _, err := f.Access.SSHLogin(t.Context(), at.Alice, g.ID, broker.SSHLoginInput{PublicKey: []byte("ssh-ed25519 AAAA")}); latch.ErrorCode(err) != latch.EFORBIDDEN ||
		!strings.Contains(latch.ErrorMessage(err), "an SSH login goes with an ssh session") {
		t.Errorf("SSHLogin on a shell grant = %v; want EFORBIDDEN", err)
	}
	f.Clock.Advance(31 * time.Minute)
	if _, err := f.Access.StartSession(t.Context(), at.Alice, g.ID, 0); latch.ErrorCode(err) != latch.ECONFLICT {
		t.Errorf("StartSession past expiry = %v; want ECONFLICT", err)
	}
}

// tagInstance sets one tag on an instance through the SDK.
func tagInstance(t *testing.T, f *at.Fixture, id, key, value string) {
	t.Helper()
	if _, err := f.Env.EC2.CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{id},
		Tags: []types.Tag{{Key: aws.String(key), Value: aws.String(value)}}}); err != nil {
		t.Fatal(err)
	}
}
