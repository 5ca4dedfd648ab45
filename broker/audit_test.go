package broker_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	at "github.com/latchdev/latch/internal/accesstest"
	"github.com/latchdev/latch/internal/awstest"
)

// A request's whole life, and an orphan swept, leave one audit entry per
// event, in order, chained and verifiable.
func TestEveryEventIsAudited(t *testing.T) {
	f := at.New(t)
	ctx := t.Context()
	r, err := f.Access.Request(ctx, at.Alice, ask(f.Fleet.DB1, 22, home))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Access.Review(ctx, at.Bob, r.ID, true, "ok"); err != nil {
		t.Fatal(err)
	}
	denied, _ := f.Access.Request(ctx, at.Alice, ask(f.Fleet.DB1, 22, office))
	f.Access.Review(ctx, at.Erin, denied.ID, false, "not now")
	withdrawn, _ := f.Access.Request(ctx, at.Alice, ask(f.Fleet.DB1, 22, netipPrefix("203.0.113.60/32")))
	f.Access.Withdraw(ctx, at.Alice, withdrawn.ID)

	f.Clock.Advance(30 * time.Minute)
	r, _ = f.Access.GetRequest(ctx, at.Alice, r.ID)
	if err := f.Broker.Expire(ctx, r.GrantID); err != nil {
		t.Fatal(err)
	}
	orphan := latch.Grant{ID: "g-00000000000000ff", Requester: "gone", ExpiresAt: f.Clock.Now().Add(-time.Minute)}
	if _, _, err := f.Env.Firewall(t).Authorize(ctx, latch.Opening{Region: "us-east-1", GroupID: f.Fleet.WebGroup, Protocol: latch.TCP,
		Ports: latch.PortRange{From: 22, To: 22}, Source: netipPrefix("192.0.2.9/32")}, latch.RuleTags(orphan)); err != nil {
		t.Fatal(err)
	}
	if err := f.Broker.Sweep(ctx); err != nil {
		t.Fatal(err)
	}

	entries, head, err := latch.ReadAudit(ctx, f.Store)
	if err != nil {
		t.Fatal(err)
	}
	var got []latch.AuditAction
	for _, e := range entries {
		got = append(got, e.Action)
	}
	want := []latch.AuditAction{
		latch.AuditRequested, latch.AuditApproved, latch.AuditGranted,
		latch.AuditRequested, latch.AuditDenied,
		latch.AuditRequested, latch.AuditWithdrawn,
		latch.AuditExpired, latch.AuditSweptOrphan,
	}
	if len(got) != len(want) {
		t.Fatalf("audit actions %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("audit actions %v, want %v", got, want)
		}
	}
	if e := entries[1]; e.Actor != at.Bob.Email || e.RequestID != r.ID || e.Details["reason"] != "ok" {
		t.Errorf("approval entry = %+v", e)
	}
	if e := entries[7]; e.Actor != "latch" || e.GrantID != r.GrantID {
		t.Errorf("expiry entry = %+v", e)
	}
	if problems := latch.VerifyAudit(entries, head, nil); len(problems) != 0 {
		t.Fatalf("the chain does not verify: %v", problems)
	}
}

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// Each append logs the head it moved the log to, signed: the last such
// line is the head a log store keeps, and it matches the database's.
func TestEachAppendLogsTheSignedHead(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	sign := latch.SignAudit(priv)
	f := newFixture(t, awstest.New(t), broker.Options{Sign: sign})
	g := f.grant(t, "203.0.113.7", 30*time.Minute)
	if _, err := f.b.Revoke(t.Context(), g.ID, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	var heads []latch.AuditHead
	for l := range strings.SplitSeq(f.logs.String(), "\n") {
		var line struct {
			Msg  string `json:"msg"`
			Head *struct {
				Seq       int64  `json:"seq"`
				Hash      string `json:"hash"`
				Signature string `json:"signature"`
			} `json:"audit_head"`
		}
		if json.Unmarshal([]byte(l), &line) == nil && line.Msg == broker.MsgAuditAppended && line.Head != nil {
			heads = append(heads, latch.AuditHead{Seq: line.Head.Seq, Hash: line.Head.Hash, Signature: line.Head.Signature})
		}
	}
	want, err := f.store.AuditHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != 2 || heads[0].Seq != 1 || heads[1] != want || want.Signature == "" {
		t.Fatalf("logged heads %+v; want 2, the last the database's signed head %+v:\n%s", heads, want, f.logs.String())
	}
}
