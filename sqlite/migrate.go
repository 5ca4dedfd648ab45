package sqlite

import (
	"context"
	"embed"
	"fmt"
	"log/slog"

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

// migrate applies the migrations the file lacks, all in one transaction, so
// a process that opens the file meanwhile sees the old schema or the new one.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	if s.upTo > 0 && s.upTo < len(ms) {
		ms = ms[:s.upTo]
	}
	var applied []schema.Migration
	// Unprepared: migrations are scripts of several statements, run once.
	err = s.inTx(ctx, func(tx *txn) error {
		_, err := tx.Tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at INTEGER NOT NULL -- microseconds since the Unix epoch
		) STRICT`)
		if err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var have int
		if err := tx.Tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if want := len(ms); have > want {
			return fmt.Errorf("the database has schema version %d but this latch knows only up to %d; upgrade latch to use it", have, want)
		}
		at := s.now()
		for _, m := range ms[have:] {
			if _, err := tx.Tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.Name, err)
			}
			if _, err := tx.Tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, encodeTime(at)); err != nil {
				return fmt.Errorf("record migration %s: %w", m.Name, err)
			}
			applied = append(applied, m)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Creating a database is routine (DEBUG); changing the schema of one in
	// use is worth a line in the logs (INFO).
	level := slog.LevelInfo
	if len(applied) > 0 && applied[0].Version == 1 {
		level = slog.LevelDebug
	}
	for _, m := range applied {
		s.log.Log(ctx, level, "applied schema migration", "path", s.path, "version", m.Version, "name", m.Name)
	}
	return nil
}
