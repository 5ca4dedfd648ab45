package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/latchdev/latch"
)

// UseOnce records key until the time until, and reports whether it was
// fresh. In one IMMEDIATE write transaction it first forgets the keys
// whose until has passed by the store's clock, then inserts key unless it
// is there: the write lock makes racing calls, from any process on the
// file, queue, so exactly one of them inserts.
//
// It does not close [Store.Changed]: nothing waits on used keys.
func (s *Store) UseOnce(ctx context.Context, key string, until time.Time) (bool, error) {
	if key == "" {
		return false, latch.Invalidf("key", "a key to use once is required")
	}
	fresh := false
	err := s.inTx(ctx, func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM used_once WHERE until < ?`, s.now().UnixMicro()); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO used_once (key, until) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`,
			key, ceilMicro(until))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		fresh = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record a key used once: %w", err)
	}
	return fresh, nil
}
