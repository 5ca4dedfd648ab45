package sqlite

import (
	"context"

	"github.com/latchdev/latch"
)

// CreateGrantsInOneTx records gs as CreateGrant would, but in one
// transaction, so that benchmarks can fill a database quickly.
func (s *Store) CreateGrantsInOneTx(ctx context.Context, gs []latch.Grant) error {
	now := s.now()
	return s.inTx(ctx, func(tx *txn) error {
		for _, g := range gs {
			g = normalize(g)
			g.Version = 1
			if err := createGrant(ctx, tx, g, "", now); err != nil {
				return err
			}
		}
		return nil
	})
}

// OpenAtVersion opens the store at path as Open does, but brings its schema
// only up to version v, as the latch that wrote version v would have.
func OpenAtVersion(ctx context.Context, path string, opts Options, v int) (*Store, error) {
	return openAt(ctx, path, opts, v)
}
