package postgres

import (
	"context"
	"embed"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"

	schema "github.com/latchdev/latch/internal/migrations"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the embedded migrations in order.
func migrations() ([]schema.Migration, error) {
	return schema.Read(migrationFiles, "migrations")
}

// SchemaVersion is the schema version this package writes: the number of
// its highest migration.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return schema.Latest(ms)
}

// migrationLock is the key of the advisory lock migrations hold: the
// bytes "latchmig" as a bigint.
const migrationLock = 0x6c617463686d6967

// migrate applies the migrations the database lacks, all in one
// transaction that first takes an advisory lock, so that of several
// replicas starting at once one migrates and the others then find the
// schema up to date. A process that reads meanwhile sees the old schema or
// the new one.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	if s.upTo > 0 && s.upTo < len(ms) {
		ms = ms[:s.upTo]
	}
	var applied []schema.Migration
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return fmt.Errorf("lock for migration: %w", err)
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     NOT NULL PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL
		)`)
		if err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if want := len(ms); have > want {
			return fmt.Errorf("the database has schema version %d but this latch knows only up to %d; upgrade latch to use it", have, want)
		}
		at := s.now()
		for _, m := range ms[have:] {
			// No arguments: the simple protocol runs a file of statements.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, at); err != nil {
				return fmt.Errorf("record migration %s: %w", m.Name, err)
			}
			applied = append(applied, m)
		}
		return nil
	})
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if len(applied) > 0 && applied[0].Version == 1 {
		level = slog.LevelDebug
	}
	for _, m := range applied {
		s.log.Log(ctx, level, "applied schema migration", "db", s.name, "version", m.Version, "name", m.Name)
	}
	return nil
}
