package postgres_test

import (
	"testing"

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
