package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/latchdev/latch"
)

const auditColumns = `seq, at, actor, action, target, grant_id, request_id, details, prev_hash, hash, signature`

// AppendAudit adds e to the end of the audit log (see [latch.LinkAudit]) and
// moves the head, signed (see [latch.NewAuditHead]), in one transaction
// that first locks the head's row (SELECT … FOR UPDATE): appends from any
// number of goroutines or replicas queue on it, so each links to the one
// before and the log stays one chain. sign runs while the lock is held, so
// it should be quick.
//
// It does not close [Store.Changed]: the audit log is evidence, not
// something the revoker waits on.
func (s *Store) AppendAudit(ctx context.Context, e latch.AuditEntry, sign func(msg string) string) (latch.AuditEntry, error) {
	in := e
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		h, err := lockHead(ctx, tx)
		if err != nil {
			return err
		}
		e = latch.LinkAudit(in, h.Seq, h.Hash, sign)
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

// lockHead reads the log's head and locks its row until tx ends, so that
// appends from any replica queue and link in one chain.
func lockHead(ctx context.Context, tx pgx.Tx) (latch.AuditHead, error) {
	var h latch.AuditHead
	err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`).Scan(&h.Seq, &h.Hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, errNoHead
	}
	return h, err
}

// insertAudit adds the linked entry e to the log.
func insertAudit(ctx context.Context, tx pgx.Tx, e latch.AuditEntry) error {
	details, _ := json.Marshal(e.Details) // a map[string]string always marshals; nil is null
	_, err := tx.Exec(ctx, `INSERT INTO audit (`+auditColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		e.Seq, encodeTime(e.At), e.Actor, e.Action, e.Target, string(e.GrantID), string(e.RequestID), string(details),
		e.PrevHash, e.Hash, e.Signature)
	return err
}

// moveHead moves the log's head to h.
func moveHead(ctx context.Context, tx pgx.Tx, h latch.AuditHead) error {
	_, err := tx.Exec(ctx, `UPDATE audit_head SET seq = $1, hash = $2, signature = $3 WHERE id = 1`, h.Seq, h.Hash, h.Signature)
	return err
}

// errNoHead is what a database whose head row was deleted gets: appending
// anew from seq 1 would bury the evidence.
var errNoHead = latch.Errorf(latch.EINTERNAL, "the audit log has no head: the database was edited outside latch")

// AuditEntries lists the entries matching f exactly as stored, in the order
// they were appended, which is Seq order unless the table was edited.
func (s *Store) AuditEntries(ctx context.Context, f latch.AuditFilter) ([]latch.AuditEntry, error) {
	var where []string
	var p params
	if !f.Since.IsZero() {
		where = append(where, "at >= "+p.add(ceilMicro(f.Since)))
	}
	if f.Actor != "" {
		where = append(where, "actor = "+p.add(f.Actor))
	}
	if f.GrantID != "" {
		where = append(where, "grant_id = "+p.add(string(f.GrantID))+" AND grant_id != ''") // lets the partial index serve a parameter
	}
	if f.Target != "" {
		where = append(where, "target = "+p.add(f.Target))
	}
	q := `SELECT id, ` + auditColumns + ` FROM audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id"
	if f.Limit > 0 {
		q += " LIMIT " + p.add(f.Limit)
	}
	rows, err := s.db.Query(ctx, q, p...)
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", translate(err))
	}
	defer rows.Close()
	var es []latch.AuditEntry
	for rows.Next() {
		var e latch.AuditEntry
		var id int64
		var at pgtype.Timestamptz
		var grantID, requestID string
		var details []byte
		if err := rows.Scan(&id, &e.Seq, &at, &e.Actor, &e.Action, &e.Target, &grantID, &requestID, &details,
			&e.PrevHash, &e.Hash, &e.Signature); err != nil {
			return nil, fmt.Errorf("list audit entries: %w", err)
		}
		e.At, e.GrantID, e.RequestID = decodeTime(at), latch.GrantID(grantID), latch.RequestID(requestID)
		if err := json.Unmarshal(details, &e.Details); err != nil {
			return nil, fmt.Errorf("list audit entries: the entry with seq %d (row %d) has details that are not a JSON object of strings, which latch never writes: %w", e.Seq, id, err)
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit entries: %w", translate(err))
	}
	return es, nil
}

// AuditHead returns the head as last moved, signature included; the zero
// head for an empty log. Returns EINTERNAL if the head row was deleted.
func (s *Store) AuditHead(ctx context.Context) (latch.AuditHead, error) {
	var h latch.AuditHead
	err := s.db.QueryRow(ctx, `SELECT seq, hash, signature FROM audit_head WHERE id = 1`).Scan(&h.Seq, &h.Hash, &h.Signature)
	if errors.Is(err, pgx.ErrNoRows) {
		err = errNoHead
	}
	if err != nil {
		return latch.AuditHead{}, fmt.Errorf("read the audit log's head: %w", translate(err))
	}
	return h, nil
}

// ceilMicro returns t rounded up to the microsecond, as timestamptz keeps
// it, so that "at or after t" holds for stored times.
func ceilMicro(t time.Time) time.Time {
	if u := t.Truncate(time.Microsecond); u.Before(t) {
		return u.Add(time.Microsecond)
	}
	return t
}
