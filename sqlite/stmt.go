package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// Prepared statements: SQLite parses and plans a query on every call that
// is not prepared, which was a fifth of a grant's CPU. The hot queries are
// prepared once per Store (database/sql re-prepares them on each
// connection as it first uses them) and reused, inside transactions
// through Tx.StmtContext.

// maxPrepared bounds the statements kept; queries beyond it run
// unprepared. Every static query fits many times over.
const maxPrepared = 256

// stmts is a Store's prepared statements, by database and query text.
type stmts struct {
	mu     sync.Mutex
	m      map[stmtKey]*sql.Stmt
	wanted map[string]bool // write queries to prepare once the connection is free
}

type stmtKey struct {
	db *sql.DB
	q  string
}

// get returns q prepared on db, preparing it if need be, or nil to run it
// unprepared (the cache is full, or preparing failed: running it reports
// the error). db must have a free connection: see lookup.
func (c *stmts) get(ctx context.Context, db *sql.DB, q string) *sql.Stmt {
	k := stmtKey{db, q}
	c.mu.Lock()
	st, ok := c.m[k]
	full := len(c.m) >= maxPrepared
	c.mu.Unlock()
	if ok || full {
		return st
	}
	// Not under c.mu: preparing waits for a connection, which a
	// transaction holding it may need c.mu to give back.
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if had, ok := c.m[k]; ok { // prepared meanwhile by another caller
		_ = st.Close()
		return had
	}
	if c.m == nil {
		c.m = map[stmtKey]*sql.Stmt{}
	}
	c.m[k] = st
	return st
}

// lookup returns q if it is prepared on db, and otherwise notes that it is
// wanted, for prepareWanted. A transaction holds the write database's one
// connection, so it cannot prepare there: preparing would wait for it.
func (c *stmts) lookup(db *sql.DB, q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[stmtKey{db, q}]; ok {
		return st
	}
	if c.wanted == nil {
		c.wanted = map[string]bool{}
	}
	c.wanted[q] = true
	return nil
}

// prepareWanted prepares on db the queries lookup found unprepared.
func (c *stmts) prepareWanted(ctx context.Context, db *sql.DB) {
	c.mu.Lock()
	qs := make([]string, 0, len(c.wanted))
	for q := range c.wanted {
		qs = append(qs, q)
	}
	clear(c.wanted)
	c.mu.Unlock()
	for _, q := range qs {
		c.get(ctx, db, q)
	}
}

func (c *stmts) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, st := range c.m {
		_ = st.Close()
		delete(c.m, k)
	}
}

// txn is a write transaction that runs its queries as prepared statements.
type txn struct {
	*sql.Tx
	s  *Store
	in map[string]*sql.Stmt // this transaction's handles on the prepared ones
}

func (t *txn) stmt(ctx context.Context, q string) *sql.Stmt {
	if st, ok := t.in[q]; ok {
		return st
	}
	p := t.s.stmts.lookup(t.s.write, q)
	if p == nil {
		return nil
	}
	st := t.Tx.StmtContext(ctx, p) // closed with the transaction
	if t.in == nil {
		t.in = map[string]*sql.Stmt{}
	}
	t.in[q] = st
	return st
}

func (t *txn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, q, args...)
}

func (t *txn) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, q, args...)
}

func (t *txn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := t.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, q, args...)
}

// readRow runs a static query that returns one row on the read pool,
// prepared.
func (s *Store) readRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st := s.stmts.get(ctx, s.read, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.read.QueryRowContext(ctx, q, args...)
}

// readRows runs a static query on the read pool, prepared.
func (s *Store) readRows(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := s.stmts.get(ctx, s.read, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.read.QueryContext(ctx, q, args...)
}
