package storetest

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/latchdev/latch"
)

// ssmGrant is a Session Manager grant: no group, rule or source.
func ssmGrant(created time.Time) latch.Grant {
	g := NewGrant(created)
	g.Access, g.Target, g.Document = latch.AccessSSM, "i-0123456789abcdef0", latch.DocPortForward
	g.GroupID, g.RuleID, g.Source = "", "", netip.Prefix{}
	g.Ports = latch.PortRange{From: 5432, To: 5432}
	return g
}

func testSessions(t *testing.T, open func(t *testing.T) latch.Store) {
	t.Run("GrantRoundTripsAccess", func(t *testing.T) {
		s := open(t)
		g := mustCreate(t, s, ssmGrant(epoch()), "created")
		mustGet(t, s, g)
		g.State = latch.StateActive
		g, err := s.UpdateGrant(t.Context(), g, "")
		if err != nil {
			t.Fatal(err)
		}
		mustGet(t, s, g)
	})

	t.Run("RequestRoundTripsAccess", func(t *testing.T) {
		s := open(t)
		r := NewRequest(epoch())
		r.Access, r.Document, r.Source = latch.AccessSSM, latch.DocShell, netip.Prefix{}
		r.Ports = latch.PortRange{}
		r = mustCreateRequest(t, s, r)
		got, err := s.Request(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Access != latch.AccessSSM || got.Document != latch.DocShell || got.Source.IsValid() {
			t.Fatalf("request read back with access %q, document %q, source %v; want ssm, shell, none", got.Access, got.Document, got.Source)
		}
	})

	t.Run("Sessions", func(t *testing.T) {
		st := open(t)
		s, ok := st.(latch.SessionStore)
		if !ok {
			t.Fatal("the store does not implement latch.SessionStore")
		}
		ctx := t.Context()
		g := mustCreate(t, st, ssmGrant(epoch()), "created")
		if got, err := s.GrantSessions(ctx, g.ID); err != nil || len(got) != 0 {
			t.Fatalf("GrantSessions of a new grant = %v, %v; want none", got, err)
		}
		first := latch.SSMSession{ID: "alice-0a1b2c3d4e5f60718", GrantID: g.ID, Region: "us-east-1", Target: g.Target,
			Document: latch.DocPortForward, Owner: "arn:aws:sts::123456789012:assumed-role/latch-session/alice",
			Reason: latch.SessionReason(g.ID, g.ExpiresAt), StartedAt: epoch().Add(time.Minute), Expires: g.ExpiresAt}
		second := first
		second.ID, second.StartedAt = "alice-0f0e0d0c0b0a09080", epoch().Add(2*time.Minute)
		for _, ss := range []latch.SSMSession{second, first} {
			if err := s.AddSession(ctx, ss); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddSession(ctx, first); latch.ErrorCode(err) != latch.ECONFLICT {
			t.Fatalf("AddSession twice: err = %v, want ECONFLICT", err)
		}
		orphan := first
		orphan.ID, orphan.GrantID = "alice-000000000000000aa", latch.NewGrantID()
		if err := s.AddSession(ctx, orphan); latch.ErrorCode(err) != latch.ENOTFOUND {
			t.Fatalf("AddSession for an unknown grant: err = %v, want ENOTFOUND", err)
		}
		got, err := s.GrantSessions(ctx, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := []latch.SSMSession{first, second}; !reflect.DeepEqual(got, want) {
			t.Fatalf("GrantSessions =\n%+v\nwant oldest first\n%+v", got, want)
		}

		end := epoch().Add(10 * time.Minute)
		if err := s.EndSession(ctx, first.ID, end); err != nil {
			t.Fatal(err)
		}
		if err := s.EndSession(ctx, first.ID, end.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := s.EndSession(ctx, "nobody-00000000000000000", end); latch.ErrorCode(err) != latch.ENOTFOUND {
			t.Fatalf("EndSession of an unknown session: err = %v, want ENOTFOUND", err)
		}
		got, _ = s.GrantSessions(ctx, g.ID)
		if !got[0].EndedAt.Equal(end) || !got[1].EndedAt.IsZero() {
			t.Fatalf("ended at %v and %v; want the first end (%v) kept, and the other still running", got[0].EndedAt, got[1].EndedAt, end)
		}
	})
}
