package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/latchdev/latch"
)

var _ latch.Leases = (*Store)(nil)

// AcquireLease takes, renews or keeps off a lease in one statement: the
// row is inserted, or updated only if holder has it already or it lapsed
// at now (INSERT … ON CONFLICT DO UPDATE … WHERE). Racing calls queue on
// the row's lock; the first to update it makes it live, so the others'
// WHERE no longer holds and they change nothing.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (latch.Lease, bool, error) {
	if name == "" || holder == "" {
		return latch.Lease{}, false, latch.Invalidf("lease", "a lease needs a name and a holder")
	}
	until = until.Truncate(time.Microsecond) // as timestamptz keeps it, never later
	l := latch.Lease{Name: name}
	err := s.db.QueryRow(ctx, `INSERT INTO leases (name, holder, token, until) VALUES ($1, $2, 1, $4)
		ON CONFLICT (name) DO UPDATE SET
			token = CASE WHEN leases.holder = excluded.holder AND leases.until > $3 THEN leases.token ELSE leases.token + 1 END,
			holder = excluded.holder, until = excluded.until
		WHERE leases.holder = excluded.holder OR leases.until <= $3
		RETURNING holder, token, until`, name, holder, now, until).Scan(&l.Holder, &l.Token, &l.Until)
	if errors.Is(err, pgx.ErrNoRows) {
		// Someone else holds it: say who, and until when.
		err = s.db.QueryRow(ctx, `SELECT holder, token, until FROM leases WHERE name = $1`, name).Scan(&l.Holder, &l.Token, &l.Until)
		l.Until = l.Until.UTC()
		return l, false, wrapLease(name, err)
	}
	l.Until = l.Until.UTC()
	return l, err == nil, wrapLease(name, err)
}

// CheckLease is one indexed read: the fence a leader passes before every
// batch of revokes.
func (s *Store) CheckLease(ctx context.Context, l latch.Lease, now time.Time) error {
	var until time.Time
	var holder string
	var token int64
	err := s.db.QueryRow(ctx, `SELECT holder, token, until FROM leases WHERE name = $1`, l.Name).Scan(&holder, &token, &until)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return latch.Errorf(latch.ECONFLICT, "lease %s is held by nobody", l.Name)
	case err != nil:
		return wrapLease(l.Name, err)
	case holder != l.Holder || token != l.Token:
		return latch.Errorf(latch.ECONFLICT, "lease %s has passed from %s (term %d) to %s (term %d)", l.Name, l.Holder, l.Token, holder, token)
	case !until.After(now):
		return latch.Errorf(latch.ECONFLICT, "lease %s of %s lapsed at %s", l.Name, l.Holder, until.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// ReleaseLease makes l lapse at once (until the zero time) if it is still
// the lease's current term.
func (s *Store) ReleaseLease(ctx context.Context, l latch.Lease) error {
	_, err := s.db.Exec(ctx, `UPDATE leases SET until = '0001-01-01T00:00:00Z'
		WHERE name = $1 AND holder = $2 AND token = $3`, l.Name, l.Holder, l.Token)
	return wrapLease(l.Name, err)
}

func wrapLease(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("lease %s: %w", name, translate(err))
}
