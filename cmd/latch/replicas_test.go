package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"

	"github.com/latchdev/latch"
	latchaws "github.com/latchdev/latch/aws"
	"github.com/latchdev/latch/broker"
	"github.com/latchdev/latch/internal/awstest"
	"github.com/latchdev/latch/internal/pgtest"
	"github.com/latchdev/latch/mock"
	"github.com/latchdev/latch/postgres"
)

// Three latch server replicas on one PostgreSQL. The leader is SIGKILLed
// in the middle of a burst of expiries (it stops after its first revoke,
// at a crash point, and is killed there); within one lease another
// replica takes over and revokes the rest, without moving the clock past
// expiry + lease + a third of a lease (well inside one sweep). AWS's own
// record (CloudTrail) shows every rule revoked exactly once, and the rules
// each replica revoked apart.
func TestReplicasSurviveTheLeadersDeath(t *testing.T) {
	w := newWorld(t)
	sim := w.env.RequireSim(t, "it reads the simulator's CloudTrail to tell which replica revoked which rule")
	dsn := pgtest.Start(t)
	w.vars["LATCH_DB"] = dsn
	if err := os.WriteFile(filepath.Join(w.dir, "policy.yaml"), []byte(approvalPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	const lease = 10 * time.Second
	groups := []latch.GroupID{w.group, w.env.ManagedGroup(t), w.env.ManagedGroup(t), w.env.ManagedGroup(t)}
	grants := burst(t, w, dsn, groups, 8)
	expiry := start.Add(time.Minute)

	launch := func(key, crashpoint string) *serverWorld {
		w.vars["AWS_ACCESS_KEY_ID"] = key
		w.vars["LATCH_TEST_CRASHPOINT"] = crashpoint
		defer delete(w.vars, "LATCH_TEST_CRASHPOINT")
		return w.launchServer(t, "--leader-lease", lease.String())
	}
	// The replicas start just before the burst, so that moving the clock to
	// it stays inside the lease: a jump past the lease would be a pause of
	// every replica, which ends the leader's term.
	w.setClock(t, expiry.Add(-2*time.Second))
	first := launch("AKIDREPLICA1", "after-revoke")
	first.server.waitLine(t, "leading")
	others := []*serverWorld{launch("AKIDREPLICA2", ""), launch("AKIDREPLICA3", "")}

	w.setClock(t, expiry)
	first.server.waitLine(t, "crashpoint after-revoke reached")
	first.server.kill(t)
	open := 0
	for _, g := range groups {
		open += len(w.env.Ingress(t, g))
	}
	if open == 0 || open == len(grants) {
		t.Fatalf("%d of %d rules open when the leader died; want it killed in the middle of the burst", open, len(grants))
	}
	t.Logf("the leader died with %d of %d rules still open", open, len(grants))

	// The dead leader's lease has lapsed and the others campaign; the
	// clock stays here until every rule is revoked, so each is revoked
	// within one lease plus one sweep interval of its expiry.
	const sweepInterval = time.Minute // launchServer's --sweep-interval
	deadline := expiry.Add(lease + lease/3)
	if deadline.After(expiry.Add(lease + sweepInterval)) {
		t.Fatal("the test's clock would pass the bound it checks")
	}
	w.setClock(t, deadline)
	store, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	waitFor(t, "another replica to expire every grant", func() bool {
		for _, g := range grants {
			if got, err := store.Grant(t.Context(), g.ID); err != nil || got.State != latch.StateExpired {
				return false
			}
		}
		return true
	}, func() string { return others[0].server.output() + "\n" + others[1].server.output() })
	for _, g := range groups {
		if rules := w.env.Ingress(t, g); len(rules) != 0 {
			t.Errorf("%d rules left open in %s", len(rules), g)
		}
	}
	var leaders []string
	for _, o := range others {
		if strings.Contains(o.server.output(), "leading") {
			leaders = append(leaders, o.vars["AWS_ACCESS_KEY_ID"])
		}
	}
	if len(leaders) != 1 {
		t.Errorf("%d replicas took over (%v); want one", len(leaders), leaders)
	}

	revokedBy := revokesInTrail(t, w.env.URL)
	byKey := map[string]int{}
	for _, g := range grants {
		keys := revokedBy[g.RuleID]
		if len(keys) != 1 {
			t.Errorf("rule %s revoked %d times (by %v); want once", g.RuleID, len(keys), keys)
			continue
		}
		byKey[keys[0]]++
	}
	if byKey["AKIDREPLICA1"] != len(grants)-open || len(byKey) != 2 {
		t.Errorf("rules revoked by replica: %v; want %d by the dead leader and the rest by one other", byKey, len(grants)-open)
	}
	if n := sim.Calls("RevokeSecurityGroupIngress"); n == 0 {
		t.Error("no revoke calls")
	}
}

// burst records perGroup grants in each group, all expiring one minute
// after the world's start, with a broker of the test's own.
func burst(t *testing.T, w *world, dsn string, groups []latch.GroupID, perGroup int) []latch.Grant {
	t.Helper()
	store, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	b := broker.New(store, []latch.Firewall{w.env.Firewall(t)},
		map[string]broker.GroupLookup{awstest.Region: latchaws.NewInventory(w.env.Config(), nil)},
		broker.Options{Clock: mock.NewClock(start)})
	var grants []latch.Grant
	for i, group := range groups {
		for j := range perGroup {
			g, err := b.Grant(t.Context(), latch.GrantRequest{
				Region: awstest.Region, GroupID: group, Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22},
				Source: netip.MustParsePrefix(fmt.Sprintf("198.51.%d.%d/32", 100+i, j+1)), Duration: time.Minute,
				Requester: "alice@example.com", Reason: "burst",
			})
			if err != nil {
				t.Fatal(err)
			}
			grants = append(grants, g)
		}
	}
	return grants
}

// revokesInTrail returns, for each rule revoked, the access keys whose
// RevokeSecurityGroupIngress calls removed it, from CloudTrail.
func revokesInTrail(t *testing.T, url string) map[latch.RuleID][]string {
	t.Helper()
	c := cloudtrail.New(cloudtrail.Options{
		Region: awstest.Region, BaseEndpoint: aws.String(url),
		Credentials: aws.AnonymousCredentials{},
	})
	in := &cloudtrail.LookupEventsInput{LookupAttributes: []cttypes.LookupAttribute{{
		AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("RevokeSecurityGroupIngress"),
	}}}
	revoked := map[latch.RuleID][]string{}
	for p := cloudtrail.NewLookupEventsPaginator(c, in); p.HasMorePages(); {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("LookupEvents: %v", err)
		}
		for _, ev := range out.Events {
			var rec struct {
				UserIdentity struct {
					AccessKeyID string `json:"accessKeyId"`
				} `json:"userIdentity"`
				ErrorCode        string `json:"errorCode"`
				ResponseElements struct {
					Revoked struct {
						Items []struct {
							ID latch.RuleID `json:"securityGroupRuleId"`
						} `json:"items"`
					} `json:"revokedSecurityGroupRuleSet"`
				} `json:"responseElements"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(ev.CloudTrailEvent)), &rec); err != nil {
				t.Fatal(err)
			}
			for _, r := range rec.ResponseElements.Revoked.Items {
				revoked[r.ID] = append(revoked[r.ID], rec.UserIdentity.AccessKeyID)
			}
		}
	}
	return revoked
}
