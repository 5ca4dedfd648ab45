package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchdev/latch"
)

// UseOnce records key until the time until, and reports whether it was
// fresh. In one transaction it forgets the keys whose until has passed by
// the store's clock, then inserts key, or takes over its row if that has
// expired meanwhile (INSERT … ON CONFLICT DO UPDATE … WHERE expired). Of
// racing calls with one key, the database lets one insert, or update,
// the row; the others wait on its lock, then find it live and change
// nothing, so exactly one is fresh.
//
// It does not close [Store.Changed]: nothing waits on used keys.
func (s *Store) UseOnce(ctx context.Context, key string, until time.Time) (bool, error) {
	if key == "" {
		return false, latch.Invalidf("key", "a key to use once is required")
	}
	fresh := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.now()
		if _, err := tx.Exec(ctx, `DELETE FROM used_once WHERE until < $1`, now); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO used_once (key, until) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET until = excluded.until WHERE used_once.until < $3`, key, ceilMicro(until), now)
		if err != nil {
			return err
		}
		fresh = tag.RowsAffected() == 1
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("record a key used once: %w", err)
	}
	return fresh, nil
}
