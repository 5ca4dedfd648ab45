package main

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/ec2sim"
	latchhttp "github.com/latchdev/latch/http"
	"github.com/latchdev/latch/internal/awstest"
	"github.com/latchdev/latch/sqlite"
)

// trailWorld is a world whose simulator delivers CloudTrail events after a
// delay, measured on the world's clock file.
func trailWorld(t *testing.T, delay time.Duration) *world {
	t.Helper()
	dir := t.TempDir()
	clock := dir + "/clock"
	now := func() time.Time {
		b, err := os.ReadFile(clock)
		if err != nil {
			return start
		}
		at, _ := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
		return at
	}
	// Keys are left unregistered: the simulator checks registered keys'
	// signatures against its own clock, which here is the fake one, while
	// the SDK signs with the wall clock. It names unregistered callers
	// arn:aws:iam::ACCOUNT:user/ACCESS_KEY.
	env := awstest.NewSim(t, ec2sim.Options{Now: now, CloudTrailDelay: delay})
	w := worldOnUnregistered(t, env, dir)
	// Direct grants ask STS who the caller is, and STS checks signatures:
	// grants sign with a registered key at the fake clock's time, every
	// other command with the unregistered key.
	if err := env.Sim.AddIdentity(ec2sim.Identity{AccessKeyID: "AKIDGRANTER", SecretAccessKey: "secret", ARN: testCallerARN}); err != nil {
		t.Fatal(err)
	}
	w.grantVars = map[string]string{"AWS_ACCESS_KEY_ID": "AKIDGRANTER", "LATCH_TEST_STS_AT_CLOCK": "1"}
	return w
}

func TestAuditProof(t *testing.T) {
	w := trailWorld(t, 5*time.Minute)
	g := grantOut(t, w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "10m", "--reason", "prove it", "--detach", "--json").stdout)

	r := w.latch(t, "audit", "proof", string(g.ID))
	if r.code != 0 || !strings.Contains(r.stdout, "opened  pending") || !strings.Contains(r.stdout, "expected by 2026-11-23T10:15:00Z") {
		t.Fatalf("proof before delivery: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	w.setClock(t, start.Add(6*time.Minute))
	r = w.latch(t, "audit", "proof", string(g.ID), "--json")
	p := decode[struct {
		Opened, Closed proofSide
	}](t, r.stdout)
	if r.code != 0 || p.Opened.Status != "found" || !strings.HasSuffix(p.Opened.Actor, ":user/AKIDLATCHTEST") ||
		p.Opened.EventID == "" || !strings.Contains(p.Opened.What, "203.0.113.7/32") || p.Closed.Status != "not-yet" {
		t.Fatalf("proof after delivery, grant open: exit %d %+v", r.code, p)
	}
	w.setClock(t, start.Add(9*time.Minute))
	if r := w.latch(t, "revoke", string(g.ID)); r.code != 0 {
		t.Fatalf("revoke: %s", r.stderr)
	}
	if r := w.latch(t, "audit", "proof", string(g.ID)); r.code != 0 || !strings.Contains(r.stdout, "closed  pending") {
		t.Fatalf("proof before the revoke is delivered: exit %d\n%s", r.code, r.stdout)
	}
	w.setClock(t, start.Add(15*time.Minute))
	r = w.latch(t, "audit", "proof", string(g.ID), "--json")
	p = decode[struct{ Opened, Closed proofSide }](t, r.stdout)
	if r.code != 0 || p.Opened.Status != "found" || p.Closed.Status != "found" || p.Closed.EventID == p.Opened.EventID {
		t.Fatalf("proof after both delivered: exit %d %+v\n%s", r.code, p, r.stderr)
	}
}

func TestAuditReconcileFindsAndRevertsOutOfBandRules(t *testing.T) {
	w := trailWorld(t, 0)
	g := grantOut(t, w.latch(t, "grant", "--sg", string(w.group), "--ip", "203.0.113.7", "--for", "10m", "--reason", "legit", "--detach", "--json").stdout)
	if g.ID == "" {
		t.Fatal("no grant")
	}
	if r := w.latch(t, "audit", "reconcile", "--since", "1h"); r.code != 0 {
		t.Fatalf("a clean account: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	clickops := ec2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(w.env.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDCLICKOPS", "oops", "")})
	out, err := clickops.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(string(w.group)),
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
			IpRanges: []types.IpRange{{CidrIp: aws.String("198.51.100.0/24")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rogue := aws.ToString(out.SecurityGroupRules[0].SecurityGroupRuleId)

	r := w.latch(t, "audit", "reconcile", "--since", "1h", "--json")
	found := decode[struct{ Findings []finding }](t, r.stdout).Findings
	kinds := map[string]finding{}
	for _, f := range found {
		kinds[f.Kind] = f
	}
	if r.code != exitRuntime || kinds["out-of-band-rule"].Rule != rogue || !strings.HasSuffix(kinds["out-of-band-change"].Actor, ":user/AKIDCLICKOPS") {
		t.Fatalf("reconcile: exit %d %+v", r.code, found)
	}
	if len(w.rules(t)) != 2 {
		t.Fatal("reconcile without --revert changed something")
	}

	r = w.latch(t, "audit", "reconcile", "--since", "1h", "--revert")
	if !strings.Contains(r.stdout, "(reverted)") {
		t.Fatalf("reconcile --revert: %s", r.stdout)
	}
	rules := w.rules(t)
	if _, ok := rules[latch.RuleID(rogue)]; ok || len(rules) != 1 {
		t.Fatalf("after --revert rules = %v, want only latch's", rules)
	}
	entries := decodeLines[latchhttp.AuditEntryJSON](t, w.latch(t, "audit", "ls", "--json").stdout)
	if last := entries[len(entries)-1]; last.Action != "reverted" || last.Details["rule_id"] != rogue {
		t.Errorf("the revert is not in the audit log: %+v", last)
	}
}

// A grant whose rule CloudTrail never saw is missing, not pending, once
// CloudTrail has had its 15 minutes.
func TestAuditProofMissing(t *testing.T) {
	w := trailWorld(t, 0)
	store, err := sqlite.Open(t.Context(), w.vars["LATCH_DB"], sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := store.CreateGrant(t.Context(), latch.Grant{ID: "g-00000000000000ee", State: latch.StateActive, Region: "us-east-1",
		GroupID: w.group, Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22}, Source: netip.MustParsePrefix("203.0.113.9/32"),
		RuleID: "sgr-0000000000000dead", Requester: "ghost", Reason: "x", CreatedAt: start, ExpiresAt: start.Add(time.Hour)}, "made by hand")
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	if r := w.latch(t, "audit", "proof", string(g.ID)); r.code != 0 || !strings.Contains(r.stdout, "opened  pending") {
		t.Fatalf("within the delivery window: exit %d %s", r.code, r.stdout)
	}
	w.setClock(t, start.Add(16*time.Minute))
	if r := w.latch(t, "audit", "proof", string(g.ID)); r.code != exitRuntime || !strings.Contains(r.stdout, "opened  missing") {
		t.Fatalf("after the delivery window: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
}
