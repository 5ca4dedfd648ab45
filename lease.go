package latch

import (
	"context"
	"errors"
	"time"
)

// Lease is one process's turn to lead: of the processes sharing a store,
// the holder of the revoker's lease is the one that expires grants and
// sweeps. Token is the fencing token: it grows every time the lease
// changes hands (or is taken again after it lapsed), so a holder that
// slept through its lease can tell, by its token, that it no longer leads.
type Lease struct {
	Name   string
	Holder string
	Token  int64
	Until  time.Time // the end of the lease, by its holder's clock
}

// Leases is a store that elects leaders. A store shared by several
// processes (PostgreSQL) implements it; one that is not needs no leader.
//
// Times are the callers' clocks, not the database's, so that tests can
// move them; processes sharing a lease must keep their clocks within the
// fencing margin of each other (NTP does).
type Leases interface {
	// AcquireLease makes holder the holder of the lease name until until,
	// if the lease is free, already holder's (a renewal), or lapsed at now.
	// It returns the lease as it then stands and whether holder holds it:
	// of racing calls, exactly one holds it. A renewal keeps the token; a
	// change of hands, or taking a lapsed lease again, advances it.
	AcquireLease(ctx context.Context, name, holder string, now, until time.Time) (Lease, bool, error)
	// CheckLease returns nil if l is still the lease as it stands and has
	// not lapsed at now, and ECONFLICT if another holder or a later term
	// has it, or it lapsed.
	CheckLease(ctx context.Context, l Lease, now time.Time) error
	// ReleaseLease ends l at once, if it is still the lease as it stands,
	// so that another process need not wait for it to lapse.
	ReleaseLease(ctx context.Context, l Lease) error
}

// ErrNotLeading is in the chain of the error a fenced revoke returns when
// its process does not hold the lease (any more): nothing was done or
// recorded, and retrying at once would only be refused again.
var ErrNotLeading = errors.New("this process does not lead")
