package postgres_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/pgtest"
	"github.com/latchdev/latch/postgres"
	"github.com/latchdev/latch/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func mustOpen(t *testing.T, dsn string, opts postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) latch.Store {
		return mustOpen(t, pgtest.Start(t), postgres.Options{})
	})
}

// Two Store values on one database, as two server replicas.
func TestSharedStoreConformance(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (latch.Store, latch.Store) {
		dsn := pgtest.Start(t)
		return mustOpen(t, dsn, postgres.Options{}), mustOpen(t, dsn, postgres.Options{})
	})
}

func TestLeaseConformance(t *testing.T) {
	storetest.RunLeases(t, func(t *testing.T) (latch.Leases, latch.Leases) {
		dsn := pgtest.Start(t)
		return mustOpen(t, dsn, postgres.Options{}), mustOpen(t, dsn, postgres.Options{})
	})
}

// A write through one Store closes the other's Changed: a replica's
// revoker hears of a grant another replica made without waiting for its
// next re-read.
func TestChangedHearsOtherReplicas(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := mustOpen(t, dsn, postgres.Options{}), mustOpen(t, dsn, postgres.Options{})
	changed := b.Changed()
	deadline := time.After(20 * time.Second)
	for i := 0; ; i++ {
		// The listener connects in the background: write until it hears.
		g := latch.Grant{ID: latch.NewGrantID(), State: latch.StateRequested, Region: "us-east-1", GroupID: "sg-0123456789abcdef0",
			Protocol: latch.TCP, Ports: latch.PortRange{From: 22, To: 22}, Source: netip.MustParsePrefix("203.0.113.7/32"),
			Requester: "alice", Reason: "r", CreatedAt: time.Now().UTC(), ExpiresAt: time.Now().UTC().Add(time.Hour)}
		if _, err := a.CreateGrant(t.Context(), g, "requested"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
			return
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("b's Changed stayed open through %d grants written by a", i+1)
		}
	}
}
