// Package sqlite implements [latch.Store] on a SQLite file, with the pure-Go
// modernc.org/sqlite driver so that latch builds without cgo.
//
// Several processes (the CLI and a daemon, say) may open the same file at
// once. The file is in WAL mode, so readers never wait for writers; every
// write transaction begins IMMEDIATE, taking the write lock up front, so two
// writers queue on the busy timeout instead of deadlocking on a lock upgrade.
// Within one process, writes go through a single connection and reads
// through a small pool.
//
// The schema is versioned: migrations/NNN_name.sql files are embedded and
// applied in order at [Open], and a file written by a newer latch is
// refused.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/latchdev/latch"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// DefaultBusyTimeout is how long a statement waits for another connection
// or process to release the database before failing with EUNAVAILABLE.
const DefaultBusyTimeout = 5 * time.Second

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// Now is the clock that stamps history events and migrations. nil means
	// time.Now.
	Now func() time.Time
	// Logger receives migration and file-permission messages. nil discards.
	Logger *slog.Logger
}

// Store is a [latch.Store] on one SQLite file. It is safe for concurrent
// use, and other processes may use the same file at the same time.
type Store struct {
	path  string
	now   func() time.Time
	log   *slog.Logger
	write *sql.DB // one connection; transactions begin IMMEDIATE
	read  *sql.DB // query_only connections
	upTo  int     // the schema version to migrate to; 0 means the latest

	closeOnce sync.Once
	closeErr  error

	stmts stmts // prepared statements

	mu      sync.Mutex    // guards changed
	changed chan struct{} // closed and replaced after every write
}

var _ latch.Store = (*Store)(nil)

// Open opens the store at path, creating the file (mode 0600) and its
// directory (mode 0700) if need be, and brings the schema up to date. It
// refuses a file whose schema is newer than this binary knows.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	return openAt(ctx, path, opts, 0)
}

// openAt is Open, but migrates the schema only up to version upTo if it is
// not 0; tests use it to make files as older versions of latch left them.
func openAt(ctx context.Context, path string, opts Options, upTo int) (*Store, error) {
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("open store: %w", latch.Invalidf("path", "%q is not a database file path", path))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{path: abs, now: opts.Now, log: opts.Logger, upTo: upTo, changed: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.createFile(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	if err := s.open(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	return s, nil
}

// createFile makes the file before SQLite does, so that it gets mode 0600;
// SQLite gives the -wal and -shm files the mode of the database file.
func (s *Store) createFile() error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		s.log.Warn("database file is open to other users; it records who asked for access and why",
			"path", s.path, "mode", fi.Mode().Perm().String())
	}
	return nil
}

func (s *Store) open(ctx context.Context) error {
	var err error
	// synchronous(NORMAL), in WAL mode: a commit is in the WAL, in the OS,
	// before it returns, so it survives the process crashing or being
	// killed at any point: intent-before-effect (requested before
	// Authorize, revoking before Revoke) holds across a process crash.
	// Only an OS crash or power cut can lose the last commits (rolled back
	// together, the audit chain and its head included). Even then no rule
	// outlives its grant: every rule carries its expiry in its tags, and
	// the sweep and the backstop revoke from those alone; a lost "revoking"
	// or "ended" is redone, and revoking is idempotent. What such a cut can
	// show is an audit head logged elsewhere ahead of the file's. FULL
	// fsynced every commit: a third of a grant's time in
	// BenchmarkGrantAndRevoke.
	//
	// wal_autocheckpoint(16384) and a 32 MB cache: a burst of expiries
	// writes tens of thousands of rows in big transactions; checkpointing
	// every 1,000 pages (4 MB) and re-reading evicted index pages were a
	// third of BenchmarkBurstExpiry's time.
	s.write, err = sql.Open("sqlite", dsn(s.path, "immediate",
		"journal_mode(WAL)", "synchronous(NORMAL)", "wal_autocheckpoint(16384)", "cache_size(-32768)"))
	if err != nil {
		return err
	}
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	if err := s.migrate(ctx); err != nil {
		return err
	}

	s.read, err = sql.Open("sqlite", dsn(s.path, "deferred", "query_only(1)"))
	if err != nil {
		return err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.read.SetMaxOpenConns(n)
	s.read.SetMaxIdleConns(n)
	if err := s.read.PingContext(ctx); err != nil {
		return translate(err)
	}
	return nil
}

// dsn returns the driver's name for the file at the absolute path abs, with
// the pragmas every connection needs followed by extra.
func dsn(abs, txlock string, extra ...string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", DefaultBusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	for _, p := range extra {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", txlock)
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String()
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		s.stmts.close()
		if s.read != nil {
			errs = append(errs, s.read.Close())
		}
		if s.write != nil {
			errs = append(errs, s.write.Close())
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("close store %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// Changed returns a channel that is closed after the next write made through
// s. Writes by other Store values or processes do not close it.
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

// inTx runs fn in a write transaction, which begins IMMEDIATE: it holds the
// database's write lock from the start, so the reads fn makes cannot go
// stale before its writes.
func (s *Store) inTx(ctx context.Context, fn func(tx *txn) error) error {
	sqltx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return translate(err)
	}
	tx := &txn{Tx: sqltx, s: s}
	defer s.stmts.prepareWanted(context.WithoutCancel(ctx), s.write) // once the connection is free
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return translate(err)
	}
	if err := tx.Commit(); err != nil {
		return translate(err)
	}
	return nil
}

// translate turns the driver's "database is busy" into EUNAVAILABLE, keeping
// the driver's error in the chain. Other errors pass through.
func translate(err error) error {
	e, ok := errors.AsType[*msqlite.Error](err)
	if !ok {
		return err
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return fmt.Errorf("%w: %w", latch.Errorf(latch.EUNAVAILABLE,
			"the database is busy in another process; try again"), err)
	}
	return err
}

// touchedRow returns conflict if an insert or update changed no row: the
// ID already existed (ON CONFLICT DO NOTHING), or the version had moved.
func touchedRow(res sql.Result, conflict error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return conflict
	}
	return nil
}
