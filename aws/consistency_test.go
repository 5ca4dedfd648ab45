package aws_test

import (
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
	"github.com/latchdev/latch/mock"
)

// Describe lags revokes (EC2 is eventually consistent), so it still lists
// a rule RevokeSecurityGroupIngress says is gone. RevokeMany believes the
// revoke: it revokes the rest and names the ghost gone, instead of failing
// until Describe catches up.
func TestRevokeManyWhileDescribeLags(t *testing.T) {
	clock := mock.NewClock(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	env := awstest.NewSim(t, ec2sim.Options{DescribeLag: time.Minute, Now: clock.Now})
	env.RequireSim(t, "lags Describe behind mutations")
	fw := env.Firewall(t)
	group := env.ManagedGroup(t)
	var ids []latch.RuleID
	for _, src := range []string{"203.0.113.1/32", "203.0.113.2/32", "203.0.113.3/32"} {
		r, _, err := fw.Authorize(t.Context(), opening(group, src), tags)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	clock.Advance(time.Minute) // all three listed
	if err := fw.Revoke(t.Context(), group, ids[0]); err != nil {
		t.Fatal(err)
	}
	gone, err := fw.RevokeMany(t.Context(), group, ids)
	if err != nil {
		t.Fatalf("RevokeMany with one rule revoked but still listed: %v", err)
	}
	if len(gone) != 1 || gone[0] != ids[0] {
		t.Errorf("gone = %v, want [%s]", gone, ids[0])
	}
	if rules := env.Sim.Rules(awstest.Region, string(group)); len(rules) != 0 {
		t.Errorf("rules left: %v", rules)
	}
}
