package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

const auditColumns = `seq, at, actor, action, target, grant_id, request_id, details, prev_hash, hash, signature`

// AppendAudit adds e to the end of the audit log (see [latch.LinkAudit]) and
// moves the head, signed (see [latch.NewAuditHead]), in one write
// transaction: the IMMEDIATE lock makes appends from several goroutines or
// processes queue, so each links to the one before. sign runs inside that
// transaction and holds the lock, so it should be quick (ed25519 takes
// microseconds, twice).
//
// It does not close [Store.Changed]: the audit log is evidence, not
// something the revoker waits on, and every grant change that is audited
// has closed it already.
func (s *Store) AppendAudit(ctx context.Context, e latch.AuditEntry, sign func(msg string) string) (latch.AuditEntry, error) {
	err := s.inTx(ctx, func(tx *txn) error {
		h, err := readHead(ctx, tx)
		if err != nil {
			return err
		}
		e = latch.LinkAudit(e, h.Seq, h.Hash, sign)
		if err := insertAudit(ctx, tx, e); err != nil {
			return err
		}
		return moveHead(ctx, tx, latch.NewAuditHead(e.Seq, e.Hash, sign))
	})
	if err != nil {
		return latch.AuditEntry{}, fmt.Errorf("append %s to the audit log: %w", e.Action, err)
	}
	return e, nil
}

// readHead reads the log's head in a write transaction, which holds the
// lock, so that the entries linked to it go in one chain.
func readHead(ctx context.Context, tx *txn) (latch.AuditHead, error) {
	var h latch.AuditHead
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&h.Seq, &h.Hash)
	if err == sql.ErrNoRows {
		return h, errNoHead
	}
	return h, err
}

// insertAudit adds the linked entry e to the log.
func insertAudit(ctx context.Context, tx *txn, e latch.AuditEntry) error {
	details, _ := json.Marshal(e.Details) // a map[string]string always marshals; nil is null
	_, err := tx.ExecContext(ctx, `INSERT INTO audit (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, encodeTime(e.At), e.Actor, e.Action, e.Target, e.GrantID, e.RequestID, string(details),
		e.PrevHash, e.Hash, e.Signature)
	return err
}

// moveHead moves the log's head to h.
func moveHead(ctx context.Context, tx *txn, h latch.AuditHead) error {
	_, err := tx.ExecContext(ctx, `UPDATE audit_head SET seq = ?, hash = ?, signature = ? WHERE id = 1`, h.Seq, h.Hash, h.Signature)
	return err
}

// errNoHead is what a file whose head row was deleted gets: appending anew
// from seq 1 would bury the evidence.
var errNoHead = latch.Errorf(latch.EINTERNAL, "the audit log has no head: the database was edited outside latch")

// AuditEntries lists the entries matching f exactly as stored, in the order
// they were appended, which is Seq order unless the file was edited. It does
// not sort by the stored seq, so that [latch.VerifyAudit] sees an entry
// moved in the file as out of order. Returns an error naming the entry if
// one's details are not JSON, which only editing the file can cause.
func (s *Store) AuditEntries(ctx context.Context, f latch.AuditFilter) ([]latch.AuditEntry, error) {
	var where []string
	var args []any
	if !f.Since.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, ceilMicro(f.Since))
	}
	if f.Actor != "" {
		where = append(where, "actor = ?")
		args = append(args, f.Actor)
	}
	if f.GrantID != "" {
		where = append(where, "grant_id = ? AND grant_id != ''")
		args = append(args, f.GrantID)
	}
	if f.Target != "" {
		where = append(where, "target = ?")
		args = append(args, f.Target)
	}
	q := `SELECT id, ` + auditColumns + ` FROM audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", translate(err))
	}
	defer rows.Close()
	var es []latch.AuditEntry
	for rows.Next() {
		var e latch.AuditEntry
		var id int64
		var at sql.NullInt64
		var details string
		if err := rows.Scan(&id, &e.Seq, &at, &e.Actor, &e.Action, &e.Target, &e.GrantID, &e.RequestID, &details,
			&e.PrevHash, &e.Hash, &e.Signature); err != nil {
			return nil, fmt.Errorf("list audit entries: %w", err)
		}
		e.At = decodeTime(at)
		if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
			return nil, fmt.Errorf("list audit entries: the entry with seq %d (row %d) has details that are not a JSON object of strings, which latch never writes: %w", e.Seq, id, err)
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit entries: %w", translate(err))
	}
	return es, nil
}

// ceilMicro returns t in microseconds since the epoch, rounded up, so that
// "at or after t" holds for stored microseconds.
func ceilMicro(t time.Time) int64 {
	us := t.UnixMicro()
	if t.After(time.UnixMicro(us)) {
		us++
	}
	return us
}

// AuditHead returns the head as last moved, signature included; the zero
// head for an empty log. Returns EINTERNAL if the head row was deleted.
func (s *Store) AuditHead(ctx context.Context) (latch.AuditHead, error) {
	var h latch.AuditHead
	err := s.readRow(ctx, `SELECT seq, hash, signature FROM audit_head WHERE id = 1`).Scan(&h.Seq, &h.Hash, &h.Signature)
	if err == sql.ErrNoRows {
		err = errNoHead
	}
	if err != nil {
		return latch.AuditHead{}, fmt.Errorf("read the audit log's head: %w", translate(err))
	}
	return h, nil
}
