package aws_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

func TestInstanceConnectPushesAShortLivedKey(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	env := awstest.NewSim(t, ec2sim.Options{Now: func() time.Time { return clock() }})
	if err := env.Sim.LoadFleet(ec2sim.DemoFleet()); err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	key, _ := ssh.NewPublicKey(pub)
	eic := latchaws.NewInstanceConnect(env.Config())
	if err := eic.Push(t.Context(), ec2sim.DemoWeb1, "ec2-user", key); err != nil {
		t.Fatal(err)
	}
	pushed := env.Sim.PushedKeys("us-east-1", ec2sim.DemoWeb1)
	if len(pushed) != 1 || pushed[0].OSUser != "ec2-user" || !strings.HasPrefix(pushed[0].PublicKey, "ssh-ed25519 ") {
		t.Fatalf("pushed = %+v", pushed)
	}
	clock = func() time.Time { return now.Add(ec2sim.PushedKeyLifetime) }
	if n := len(env.Sim.PushedKeys("us-east-1", ec2sim.DemoWeb1)); n != 0 {
		t.Errorf("%d keys still there after 60 seconds", n)
	}
	if err := eic.Push(t.Context(), "i-0000000000000dead", "ec2-user", key); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Errorf("unknown instance = %v, want ENOTFOUND", err)
	}
	if err := eic.Push(t.Context(), ec2sim.DemoWeb1, "root; rm -rf /", key); latch.ErrorCode(err) != latch.EINVALID {
		t.Errorf("bad user = %v, want EINVALID", err)
	}
}
