package broker_test

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/ec2sim"
	"github.com/latchdev/latch/internal/awstest"
)

// seedGrants loads groups security groups into the simulator with perGroup
// rules each, and records an active grant on each rule, expiring at exp:
// what a burst of expiries starts from, without opening each through AWS.
func seedGrants(t testing.TB, env *awstest.Env, store latch.Store, groups, perGroup int, exp time.Time) []latch.Grant {
	t.Helper()
	sim := env.RequireSim(t, "loads a fleet")
	var fleet ec2sim.FleetRegion
	var gs []latch.Grant
	for gi := range groups {
		fg := ec2sim.FleetGroup{ID: fmt.Sprintf("sg-%017x", 0xb000+gi), Name: fmt.Sprintf("burst-%d", gi)}
		for i := range perGroup {
			g := latch.Grant{ID: latch.NewGrantID(), State: latch.StateActive, Region: awstest.Region, GroupID: latch.GroupID(fg.ID),
				Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22}, Source: mustSource(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)),
				Requester: "alice@example.com", Reason: "burst", CreatedAt: start, ExpiresAt: exp}
			fg.Rules = append(fg.Rules, ec2sim.FleetRule{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: g.Source.String(), Tags: latch.RuleTags(g)})
			gs = append(gs, g)
		}
		fleet.SecurityGroups = append(fleet.SecurityGroups, fg)
	}
	if err := sim.LoadFleet(ec2sim.Fleet{Regions: map[string]ec2sim.FleetRegion{awstest.Region: fleet}}); err != nil {
		t.Fatal(err)
	}
	ruleOf := map[string]latch.RuleID{}
	for _, r := range sim.Rules(awstest.Region, "") {
		ruleOf[r.GroupID+" "+r.CIDR] = latch.RuleID(r.ID)
	}
	for i, g := range gs {
		g.RuleID = ruleOf[string(g.GroupID)+" "+g.Source.String()]
		created, err := store.CreateGrant(t.Context(), g, "seeded")
		if err != nil {
			t.Fatal(err)
		}
		gs[i] = created
	}
	return gs
}

func grantIDs(gs []latch.Grant) []latch.GrantID {
	ids := make([]latch.GrantID, len(gs))
	for i, g := range gs {
		ids[i] = g.ID
	}
	return ids
}

// 1,200 grants over 4 groups expire with one RevokeSecurityGroupIngress
// per group and 200 rules, each recorded revoking then expired, with a
// verifiable audit chain; a grant not yet due is left alone, and one with
// no rule recorded takes the one-by-one path.
func TestExpireManyRevokesInBatchesPerGroup(t *testing.T) {
	const groups, perGroup = 4, 300
	env := awstest.NewSim(t, ec2sim.Options{RuleLimit: 1000})
	f := newFixture(t, env, broker.Options{})
	gs := seedGrants(t, env, f.store, groups, perGroup, start.Add(time.Minute))
	later := f.grant(t, "198.51.100.1", time.Hour)
	norule := latch.Grant{ID: latch.NewGrantID(), State: latch.StateActive, Region: awstest.Region, GroupID: f.group, Protocol: latch.TCP,
		Ports: latch.PortRange{From: 22, To: 22}, Source: mustSource("198.51.100.2"), Requester: "bob@example.com", CreatedAt: start, ExpiresAt: start.Add(time.Minute)}
	if _, err := f.store.CreateGrant(t.Context(), norule, ""); err != nil {
		t.Fatal(err)
	}
	fw, ops := countingFirewall(env)
	b := broker.New(f.store, []latch.Firewall{fw}, nil, broker.Options{Clock: f.clock, Logger: slog.New(slog.NewJSONHandler(f.logs, nil))})
	f.clock.Advance(2 * time.Minute)

	if err := b.ExpireMany(t.Context(), append(grantIDs(gs), later.ID, norule.ID)); err != nil {
		t.Fatal(err)
	}
	wantRevokes := groups * ((perGroup + latch.MaxRevokeBatch - 1) / latch.MaxRevokeBatch)
	if n := ops.get("RevokeSecurityGroupIngress"); n != wantRevokes {
		t.Errorf("%d RevokeSecurityGroupIngress calls for %d grants over %d groups, want %d", n, len(gs), groups, wantRevokes)
	}
	for _, g := range gs {
		if st := f.state(t, g.ID); st.State != latch.StateExpired || !st.EndedAt.Equal(f.clock.Now()) {
			t.Fatalf("grant %s is %s ended at %v, want expired now", g.ID, st.State, st.EndedAt)
		}
	}
	hist, err := f.store.History(t.Context(), gs[0].ID)
	if err != nil || len(hist) != 3 || hist[1].State != latch.StateRevoking || hist[1].Note != "expired" ||
		hist[2].State != latch.StateExpired || hist[2].Note != "rule revoked" {
		t.Errorf("history = %+v, %v; want seeded, revoking (expired), expired (rule revoked)", hist, err)
	}
	if st := f.state(t, later.ID); st.State != latch.StateActive {
		t.Errorf("the grant not yet due is %s, want active", st.State)
	}
	if st := f.state(t, norule.ID); st.State != latch.StateExpired {
		t.Errorf("the grant with no rule is %s, want expired", st.State)
	}
	if left := len(env.Sim.Rules(awstest.Region, "")); left != 1 { // the later grant's
		t.Errorf("%d rules left, want 1", left)
	}
	entries, head, err := latch.ReadAudit(t.Context(), f.store)
	if err != nil {
		t.Fatal(err)
	}
	if problems := latch.VerifyAudit(entries, head, nil); len(problems) != 0 {
		t.Fatalf("the chain does not verify: %v", problems)
	}
	expired := 0
	for _, e := range entries {
		if e.Action == latch.AuditExpired {
			expired++
		}
	}
	if expired != len(gs)+1 {
		t.Errorf("%d expired audit entries, want %d", expired, len(gs)+1)
	}
	if n := strings.Count(f.logs.String(), `"msg":"expired"`); n != len(gs)+1 {
		t.Errorf("%d evidence lines, want %d", n, len(gs)+1)
	}
}

// Grants sharing a rule that end together revoke it once; a grant whose
// rule a live grant still holds hands it over instead.
func TestExpireManySharedRules(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{RuleLimit: 1000})
	f := newFixture(t, env, broker.Options{})
	together := []latch.Grant{f.grant(t, "203.0.113.1", 10*time.Minute), f.grant(t, "203.0.113.1", 10*time.Minute)}
	handed := f.grant(t, "203.0.113.2", 10*time.Minute)
	keeper := f.grant(t, "203.0.113.2", time.Hour)
	if together[0].RuleID != together[1].RuleID || handed.RuleID != keeper.RuleID {
		t.Fatalf("rules %s %s, %s %s; want shared", together[0].RuleID, together[1].RuleID, handed.RuleID, keeper.RuleID)
	}
	fw, ops := countingFirewall(env)
	b := broker.New(f.store, []latch.Firewall{fw}, nil, broker.Options{Clock: f.clock})
	f.clock.Advance(11 * time.Minute)

	if err := b.ExpireMany(t.Context(), []latch.GrantID{together[0].ID, together[1].ID, handed.ID, keeper.ID}); err != nil {
		t.Fatal(err)
	}
	if n := ops.get("RevokeSecurityGroupIngress"); n != 1 {
		t.Errorf("%d RevokeSecurityGroupIngress calls, want 1 for the rule ending together", n)
	}
	for _, g := range append(together, handed) {
		if st := f.state(t, g.ID); st.State != latch.StateExpired {
			t.Errorf("grant %s is %s, want expired", g.ID, st.State)
		}
	}
	tags, ok := f.ruleTags(t)[keeper.RuleID]
	if !ok {
		t.Fatalf("the kept rule %s was revoked", keeper.RuleID)
	}
	if tags[latch.TagGrantID] != string(keeper.ID) || tags[latch.TagExpiresAt] != latch.FormatExpiry(keeper.ExpiresAt) {
		t.Errorf("kept rule tags = %v, want the keeper's", tags)
	}
	if _, ok := f.ruleTags(t)[together[0].RuleID]; ok {
		t.Errorf("the rule ending together is still there")
	}
	hist, _ := f.store.History(t.Context(), handed.ID)
	if last := hist[len(hist)-1]; !strings.HasPrefix(last.Note, broker.NoteKept+" "+string(keeper.ID)) {
		t.Errorf("handed-over grant's last note = %q, want %q…", last.Note, broker.NoteKept)
	}
	if st := f.state(t, keeper.ID); st.State != latch.StateActive {
		t.Errorf("keeper is %s, want active", st.State)
	}
}

// A batch whose revoke fails records a failed attempt on each grant, with
// its next attempt, and succeeds when tried again then.
func TestExpireManyFailedBatchRetries(t *testing.T) {
	env := awstest.NewSim(t, ec2sim.Options{RuleLimit: 1000})
	f := newFixture(t, env, broker.Options{RetryBase: time.Minute, RetryMax: time.Minute})
	gs := seedGrants(t, env, f.store, 2, 30, start.Add(time.Minute))
	f.clock.Advance(2 * time.Minute)
	env.Sim.SetFaults(ec2sim.Faults{ServerErrorRate: 1, Actions: []string{"RevokeSecurityGroupIngress"}})

	if err := f.b.ExpireMany(t.Context(), grantIDs(gs)); err == nil {
		t.Fatal("ExpireMany with every revoke failing returned nil")
	}
	now := f.clock.Now()
	for _, g := range gs {
		st := f.state(t, g.ID)
		if st.State != latch.StateRevoking || st.Attempts != 1 || !st.NextAttempt.After(now) || st.LastError == "" {
			t.Fatalf("after a failed batch grant %s is %s, attempts %d, next %v, error %q; want revoking, 1, later, set",
				g.ID, st.State, st.Attempts, st.NextAttempt, st.LastError)
		}
	}
	if len(env.Sim.Rules(awstest.Region, "")) != len(gs) {
		t.Fatal("rules gone although every revoke failed")
	}
	entries, _ := f.store.AuditEntries(t.Context(), latch.AuditFilter{})
	if n := countAction(entries, latch.AuditRevokeFailed); n != len(gs) {
		t.Errorf("%d revoke_failed audit entries, want %d", n, len(gs))
	}

	env.Sim.SetFaults(ec2sim.Faults{})
	if err := f.b.ExpireMany(t.Context(), grantIDs(gs)); err != nil {
		t.Fatal(err)
	}
	if st := f.state(t, gs[0].ID); st.State != latch.StateRevoking {
		t.Errorf("retried before its next attempt: %s", st.State)
	}
	f.clock.Advance(2 * time.Minute)
	if err := f.b.ExpireMany(t.Context(), grantIDs(gs)); err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if st := f.state(t, g.ID); st.State != latch.StateExpired || st.LastError != "" {
			t.Fatalf("grant %s is %s (%q), want expired", g.ID, st.State, st.LastError)
		}
	}
	if left := len(env.Sim.Rules(awstest.Region, "")); left != 0 {
		t.Errorf("%d rules left", left)
	}
}

func countAction(es []latch.AuditEntry, a latch.AuditAction) int {
	n := 0
	for _, e := range es {
		if e.Action == a {
			n++
		}
	}
	return n
}

// BenchmarkBurstExpiry measures a burst: 10,000 grants over 200 groups,
// all due at once, expired by ExpireMany on SQLite against the simulator.
func BenchmarkBurstExpiry(b *testing.B) {
	for _, c := range []struct{ groups, perGroup int }{{40, 50}, {200, 50}} {
		b.Run(fmt.Sprintf("grants=%d/groups=%d", c.groups*c.perGroup, c.groups), func(b *testing.B) { benchBurstExpiry(b, c.groups, c.perGroup) })
	}
}

func benchBurstExpiry(b *testing.B, groups, perGroup int) {
	for range b.N {
		b.StopTimer()
		env := awstest.NewSim(b, ec2sim.Options{RuleLimit: 1000})
		f := newFixture(b, env, broker.Options{})
		gs := seedGrants(b, env, f.store, groups, perGroup, start.Add(time.Minute))
		f.clock.Advance(2 * time.Minute)
		calls := env.Sim.Calls("RevokeSecurityGroupIngress")
		b.StartTimer()
		t0 := time.Now()
		if err := f.b.ExpireMany(b.Context(), grantIDs(gs)); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(t0).Seconds(), "s/burst")
		b.StopTimer()
		b.ReportMetric(float64(env.Sim.Calls("RevokeSecurityGroupIngress")-calls), "revoke_calls")
		if left := len(env.Sim.Rules(awstest.Region, "")); left != 0 {
			b.Fatalf("%d rules left", left)
		}
	}
}

// More due grants than one query reads (ExpireManyLoad) are still batched
// over all of them: 4,000 grants over 40 groups are 40 Revoke calls, not
// one per group per chunk read (80).
func TestExpireManyBatchesAcrossChunks(t *testing.T) {
	const groups, perGroup = 40, 100
	env := awstest.NewSim(t, ec2sim.Options{RuleLimit: 1000})
	f := newFixture(t, env, broker.Options{})
	gs := seedGrants(t, env, f.store, groups, perGroup, start.Add(time.Minute))
	f.clock.Advance(2 * time.Minute)
	ids := grantIDs(gs)
	slices.Sort(ids) // random IDs, as the store's Due orders them: groups interleave
	before := env.Sim.Calls("RevokeSecurityGroupIngress")
	if err := f.b.ExpireMany(t.Context(), ids); err != nil {
		t.Fatal(err)
	}
	// One per group: 80 (one per group per chunk read) before the fix. The
	// simulator counts requests, so an SDK retry on a loaded machine may
	// add one or two.
	if n := env.Sim.Calls("RevokeSecurityGroupIngress") - before; n < groups || n > groups+groups/10 {
		t.Errorf("%d Revoke calls for %d grants over %d groups; want %d", n, len(gs), groups, groups)
	}
}
