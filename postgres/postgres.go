// Package postgres implements [latch.Store] on PostgreSQL, with
// jackc/pgx/v5, so that several replicas of the server can share one
// database.
//
// Writes run in READ COMMITTED transactions that lock the rows they
// change before reading them (SELECT … FOR UPDATE), so racing writers,
// from any number of processes, queue on the row instead of the whole
// database: a stale version is ECONFLICT, as in the SQLite store. The
// audit log's appends all lock its head row, so replicas append to one
// chain. UseOnce is one INSERT … ON CONFLICT, fresh for exactly one
// caller.
//
// The schema is versioned: migrations/NNN_name.sql files are embedded and
// applied in order at [Open], in one transaction under an advisory lock,
// so replicas starting together migrate once; a database written by a
// newer latch is refused.
//
// [Store.Changed] is closed by writes made through the Store value only,
// as the SQLite store's is: replicas do not hear each other's writes, and
// readers that care re-read on a timer.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/latchdev/latch"
)

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// Now is the clock that stamps history events and migrations. nil means
	// time.Now.
	Now func() time.Time
	// Logger receives migration messages. nil discards.
	Logger *slog.Logger
}

// Store is a [latch.Store] on one PostgreSQL database. It is safe for
// concurrent use, and other processes may use the same database at the
// same time.
type Store struct {
	db   *pgxpool.Pool
	name string // the DSN without its password, for messages
	now  func() time.Time
	log  *slog.Logger
	upTo int // the schema version to migrate to; 0 means the latest

	closeOnce sync.Once

	mu      sync.Mutex    // guards changed
	changed chan struct{} // closed and replaced after every write

	ln *listener // hears other Store values' writes; see listen.go
}

var (
	_ latch.Store        = (*Store)(nil)
	_ latch.MessageRefs  = (*Store)(nil)
	_ latch.SessionStore = (*Store)(nil)
)

// IsDSN reports whether s names a PostgreSQL database rather than a file:
// a postgres:// or postgresql:// URL.
func IsDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open connects to the database dsn names (a postgres:// URL or a
// key=value string, as libpq takes; pgxpool's pool_max_conns and the
// like are accepted too) and brings its schema up to date. It refuses a
// database whose schema is newer than this binary knows.
//
// Text columns hold what PostgreSQL's text holds: valid UTF-8 without NUL
// bytes. A write of anything else fails, where the SQLite store would
// keep it.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	return openAt(ctx, dsn, opts, 0)
}

func openAt(ctx context.Context, dsn string, opts Options, upTo int) (*Store, error) {
	s := &Store{name: redact(dsn), now: opts.Now, log: opts.Logger, upTo: upTo, changed: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", s.name, latch.Invalidf("db", "not a PostgreSQL DSN: %v", err))
	}
	// Times go to the server as timestamptz and come back as instants; the
	// session's zone only shows when reading by hand.
	if cfg.ConnConfig.RuntimeParams["timezone"] == "" {
		cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	}
	s.db, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", s.name, translate(err))
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open store %s: %w", s.name, translate(err))
	}
	s.startListener()
	return s, nil
}

// redact returns dsn without its password.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return "(a PostgreSQL DSN)"
}

// Path returns the database's DSN without its password, to name it in
// messages, as the SQLite store's Path names its file.
func (s *Store) Path() string { return s.name }

// Close closes the connections. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopListener()
		s.db.Close()
	})
	return nil
}

// Changed returns a channel that is closed after the next write made
// through s, or, soon after, through any other Store on the database
// (another replica): each announces its writes with NOTIFY, and each
// LISTENs on a connection of its own. A notification may be lost while
// that connection is down (Changed is then closed when it is back), so
// readers that must not miss a change still re-read on a timer.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *Store) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
}

// changedHere closes Changed for a write made through s, and tells the
// other Store values on the database.
func (s *Store) changedHere() {
	s.notify()
	s.announce()
}

// inTx runs fn in a READ COMMITTED transaction and commits it.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return translate(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return translate(err)
	}
	return translate(tx.Commit(ctx))
}

// translate turns the errors that retrying may cure (a lost connection, a
// server shutting down, a deadlock or serialization failure) into
// EUNAVAILABLE, keeping the driver's error in the chain. Other errors pass
// through.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*latch.Error](err); ok {
		return err
	}
	var unavailable bool
	if e, ok := errors.AsType[*pgconn.PgError](err); ok {
		unavailable = strings.HasPrefix(e.Code, "08") || strings.HasPrefix(e.Code, "57P") ||
			e.Code == "40001" || e.Code == "40P01" || e.Code == "53300"
	} else if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		unavailable = true
	} else {
		unavailable = pgconn.SafeToRetry(err)
	}
	if unavailable {
		return fmt.Errorf("%w: %w", latch.Errorf(latch.EUNAVAILABLE, "the database is unavailable or busy; try again"), err)
	}
	return err
}

// touched returns conflict if an insert or update changed no row: the ID
// already existed (ON CONFLICT DO NOTHING), or the version had moved.
func touched(tag pgconn.CommandTag, conflict error) error {
	if tag.RowsAffected() == 0 {
		return conflict
	}
	return nil
}

// params numbers the arguments of a statement built piece by piece.
type params []any

// add appends v and returns its placeholder, $N.
func (p *params) add(v any) string {
	*p = append(*p, v)
	return "$" + strconv.Itoa(len(*p))
}

// encodeTime stores t as timestamptz, or NULL for the zero time.
func encodeTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// decodeTime reverses encodeTime, in UTC.
func decodeTime(v pgtype.Timestamptz) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return v.Time.UTC()
}

// encodeList stores l as text[], '{}' when empty (pgx sends a nil slice
// as NULL).
func encodeList(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func nilIfEmpty(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

// strs converts a list of string-kinded values to []string, which pgx
// sends as text[].
func strs[T ~string](l []T) []string {
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = string(v)
	}
	return out
}
