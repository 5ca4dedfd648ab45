package postgres_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchdev/latch"
	"github.com/latchdev/latch/internal/pgtest"
	"github.com/latchdev/latch/postgres"
	"github.com/latchdev/latch/storetest"
)

func rawConn(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(t.Context()) })
	return c
}

// Replicas starting together on a new database migrate it once; each
// then finds the schema up to date.
func TestOpenConcurrentlyMigratesOnce(t *testing.T) {
	dsn := pgtest.Start(t)
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	var rows, max int
	if err := rawConn(t, dsn).QueryRow(t.Context(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&rows, &max); err != nil {
		t.Fatal(err)
	}
	if rows != postgres.SchemaVersion() || max != postgres.SchemaVersion() {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d", rows, max, postgres.SchemaVersion())
	}
}

// A database written by a newer latch is refused.
func TestOpenRefusesANewerSchema(t *testing.T) {
	dsn := pgtest.Start(t)
	mustOpen(t, dsn, postgres.Options{})
	if _, err := rawConn(t, dsn).Exec(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '999_future.sql', now())`); err != nil {
		t.Fatal(err)
	}
	if s, err := postgres.Open(t.Context(), dsn, postgres.Options{}); err == nil {
		_ = s.Close()
		t.Fatal("Open accepted a database at schema version 999")
	}
}

// Two replicas appending at once write one chain, signed, that verifies.
func TestAuditAppendsAcrossStoresMakeOneChain(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := mustOpen(t, dsn, postgres.Options{}), mustOpen(t, dsn, postgres.Options{})
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(msg string) string { return base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(msg))) }
	const each = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for _, s := range []*postgres.Store{a, b} {
		for i := range each {
			wg.Go(func() {
				_, err := s.AppendAudit(t.Context(), latch.AuditEntry{At: time.Now(), Actor: "test", Action: "grant.create",
					Target: fmt.Sprint(i), Details: map[string]string{"i": fmt.Sprint(i)}}, sign)
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	es, err := a.AuditEntries(t.Context(), latch.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	head, err := b.AuditHead(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2*each || head.Seq != 2*each {
		t.Fatalf("%d entries, head at %d; want %d", len(es), head.Seq, 2*each)
	}
	if problems := latch.VerifyAudit(es, head, pub); len(problems) > 0 {
		t.Fatalf("the log does not verify: %v", problems)
	}
}

// Racing updates of one grant through two replicas: one wins.
func TestRacingUpdatesAcrossStoresOneWins(t *testing.T) {
	dsn := pgtest.Start(t)
	a, b := mustOpen(t, dsn, postgres.Options{}), mustOpen(t, dsn, postgres.Options{})
	g, err := a.CreateGrant(t.Context(), storetest.NewGrant(time.Now()), "")
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() { _, errs[i] = s.UpdateGrant(t.Context(), g, fmt.Sprint(i)) })
	}
	wg.Wait()
	storetest.OneWins(t, "writer", errs)
}

// Used keys do not pile up: each UseOnce forgets those expired by the
// store's clock.
func TestUseOncePrunesByTheStoresClock(t *testing.T) {
	dsn := pgtest.Start(t)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := mustOpen(t, dsn, postgres.Options{Now: clock})
	for i := range 10 {
		if fresh, err := s.UseOnce(t.Context(), fmt.Sprint("k", i), clock().Add(time.Minute)); err != nil || !fresh {
			t.Fatalf("UseOnce(k%d) = %v, %v", i, fresh, err)
		}
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if fresh, err := s.UseOnce(t.Context(), "k0", clock().Add(time.Minute)); err != nil || !fresh {
		t.Fatalf("UseOnce(k0) after expiry = %v, %v; want fresh", fresh, err)
	}
	var n int
	if err := rawConn(t, dsn).QueryRow(t.Context(), `SELECT count(*) FROM used_once`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d keys kept, want 1 (the others expired)", n)
	}
}
