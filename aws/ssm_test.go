package aws_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

const sessionRole = "arn:aws:iam::123456789012:role/latch-session"

func sessionEnv(t *testing.T) *awstest.Env {
	t.Helper()
	env := awstest.NewSim(t, ec2sim.Options{})
	if err := env.Sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		t.Fatal(err)
	}
	env.Identity(t, "AKIDLATCHTEST", "secret", "arn:aws:iam::123456789012:user/latch-server")
	return env
}

// Only the session role's sessions are latch's: a session anyone else
// started is never listed (so never ended by latch), whatever its reason
// says; a process not told the role knows the default role by name.
func TestSessionsAreTheSessionRolesOnly(t *testing.T) {
	env := sessionEnv(t)
	ctx := t.Context()
	sm := latchaws.NewSessionManager(env.Config(), sessionRole, nil)
	g, exp := latch.NewGrantID(), time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	ours, err := sm.Start(ctx, latch.SessionStart{Grant: g, Target: ec2sim.DemoWeb1, Document: latch.DocShell, Requester: "alice@example.com", Expires: exp})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(ours.SessionID), "alice@example.com-") || !strings.HasSuffix(ours.Owner, ":assumed-role/latch-session/alice@example.com") {
		t.Errorf("session %s owned by %q; want both named for the requester", ours.SessionID, ours.Owner)
	}
	// A person with ssm:StartSession of their own writes latch's reason.
	env.Identity(t, "AKIDHUMAN", "human-secret", "arn:aws:iam::123456789012:user/ops-human")
	human := env.Config()
	human.Credentials = credentials.NewStaticCredentialsProvider("AKIDHUMAN", "human-secret", "")
	if _, err := ssm.NewFromConfig(human).StartSession(ctx, &ssm.StartSessionInput{Target: aws.String(ec2sim.DemoWeb1),
		Reason: aws.String(latch.SessionReason(latch.NewGrantID(), time.Now().Add(-time.Hour)))}); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*latchaws.SessionManager{
		"told the role":     sm,
		"not told the role": latchaws.NewSessionManager(env.Config(), "", nil),
	} {
		list, err := m.Sessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].ID != ours.SessionID || list[0].GrantID != g || !list[0].Expires.Equal(exp) || list[0].Document != latch.DocShell {
			t.Errorf("%s: Sessions = %+v; want only %s of grant %s until %v", name, list, ours.SessionID, g, exp)
		}
	}
	// Sessions of a role with another name are not the default role's.
	other := latchaws.NewSessionManager(env.Config(), "arn:aws:iam::123456789012:role/jit-sessions", nil)
	if _, err := other.Start(ctx, latch.SessionStart{Grant: latch.NewGrantID(), Target: ec2sim.DemoWeb1, Document: latch.DocShell, Requester: "bob", Expires: exp}); err != nil {
		t.Fatal(err)
	}
	if list, _ := latchaws.NewSessionManager(env.Config(), "", nil).Sessions(ctx); len(list) != 1 {
		t.Errorf("not told the role, it lists %d sessions; want only the default role's one", len(list))
	}

	if err := sm.Terminate(ctx, ours.SessionID); err != nil {
		t.Fatal(err)
	}
	if err := sm.Terminate(ctx, ours.SessionID); err != nil {
		t.Errorf("terminating an ended session: %v; want success", err)
	}
	if err := sm.Terminate(ctx, "nobody-0123456789abcdef0"); err != nil {
		t.Errorf("terminating an unknown session: %v; want success", err)
	}
	if list, _ := sm.Sessions(ctx); len(list) != 0 {
		t.Errorf("after terminate: %+v", list)
	}
}

func TestSessionManagerRefusals(t *testing.T) {
	env := sessionEnv(t)
	ctx := t.Context()
	start := latch.SessionStart{Grant: latch.NewGrantID(), Target: ec2sim.DemoWeb1, Document: latch.DocPortForward, Port: 5432, Requester: "alice", Expires: time.Now().Add(time.Hour)}
	if _, err := latchaws.NewSessionManager(env.Config(), "", nil).Start(ctx, start); latch.ErrorCode(err) != latch.EUNAVAILABLE || !strings.Contains(latch.ErrorMessage(err), "--ssm-session-role") {
		t.Errorf("Start with no role = %v; want EUNAVAILABLE naming the flag", err)
	}
	sm := latchaws.NewSessionManager(env.Config(), sessionRole, nil)
	if err := env.Sim.SetAgent("us-east-1", ec2sim.DemoWeb1, ec2sim.Agent{PingStatus: ec2sim.PingConnectionLost}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.Start(ctx, start); latch.ErrorCode(err) != latch.ECONFLICT || !strings.Contains(latch.ErrorMessage(err), "not connected") {
		t.Errorf("Start on an offline agent = %v; want ECONFLICT", err)
	}
	a, err := sm.Agent(ctx, ec2sim.DemoWeb1)
	if err != nil || !a.Registered || a.Online() || a.PingStatus != "ConnectionLost" {
		t.Errorf("Agent = %+v, %v; want registered, ConnectionLost", a, err)
	}
	if a, err := sm.Agent(ctx, "i-0123456789abcdef0"); err != nil || a.Registered {
		t.Errorf("Agent of an unknown instance = %+v, %v; want not registered", a, err)
	}
	env.Sim.AllowAssume(sessionRole, "arn:aws:iam::123456789012:user/someone-else")
	if _, err := sm.Start(ctx, start); latch.ErrorCode(err) != latch.EFORBIDDEN {
		t.Errorf("Start when the role's trust refuses = %v; want EFORBIDDEN", err)
	}
}

func TestCheckRoleARN(t *testing.T) {
	for _, ok := range []string{sessionRole, "arn:aws:iam::123456789012:role/path/to/latch-session", "arn:aws-us-gov:iam::123456789012:role/x"} {
		if err := latchaws.CheckRoleARN(ok); err != nil {
			t.Errorf("CheckRoleARN(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "latch-session", "arn:aws:iam::123456789012:user/alice", "arn:aws:iam::*:role/x", "arn:aws:sts::123456789012:assumed-role/x/y"} {
		if err := latchaws.CheckRoleARN(bad); latch.ErrorCode(err) != latch.EINVALID {
			t.Errorf("CheckRoleARN(%q) = %v; want EINVALID", bad, err)
		}
	}
}
