package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/latchdev/latch"
)

var _ latch.SessionStore = (*Store)(nil)

// AddSession implements latch.SessionStore.
func (s *Store) AddSession(ctx context.Context, ss latch.SSMSession) error {
	if ss.ID == "" || ss.GrantID == "" || ss.StartedAt.IsZero() {
		return latch.Invalidf("session", "a session needs an ID, a grant and a start time")
	}
	err := s.inTx(ctx, func(tx *txn) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM grants WHERE id = ?`, ss.GrantID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return notFound(ss.GrantID)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO ssm_sessions
			(id, grant_id, region, target, document, owner, reason, started_at, expires_at, ended_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			ss.ID, ss.GrantID, ss.Region, ss.Target, ss.Document, ss.Owner, ss.Reason,
			encodeTime(ss.StartedAt), encodeTime(ss.Expires), encodeTime(ss.EndedAt))
		if err != nil {
			return err
		}
		return touchedRow(res, latch.Errorf(latch.ECONFLICT, "session %s is recorded already", ss.ID))
	})
	if err != nil {
		return fmt.Errorf("record session %s: %w", ss.ID, translate(err))
	}
	s.notify()
	return nil
}

// GrantSessions implements latch.SessionStore.
func (s *Store) GrantSessions(ctx context.Context, id latch.GrantID) ([]latch.SSMSession, error) {
	rows, err := s.readRows(ctx, `SELECT id, grant_id, region, target, document, owner, reason, started_at, expires_at, ended_at
		FROM ssm_sessions WHERE grant_id = ? ORDER BY started_at, id`, id)
	if err != nil {
		return nil, fmt.Errorf("sessions of grant %s: %w", id, translate(err))
	}
	defer rows.Close()
	var out []latch.SSMSession
	for rows.Next() {
		var ss latch.SSMSession
		var started, expires, ended sql.NullInt64
		if err := rows.Scan(&ss.ID, &ss.GrantID, &ss.Region, &ss.Target, &ss.Document, &ss.Owner, &ss.Reason, &started, &expires, &ended); err != nil {
			return nil, fmt.Errorf("sessions of grant %s: %w", id, err)
		}
		ss.StartedAt, ss.Expires, ss.EndedAt = decodeTime(started), decodeTime(expires), decodeTime(ended)
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sessions of grant %s: %w", id, translate(err))
	}
	return out, nil
}

// EndSession implements latch.SessionStore.
func (s *Store) EndSession(ctx context.Context, id latch.SSMSessionID, at time.Time) error {
	err := s.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE ssm_sessions SET ended_at = COALESCE(ended_at, ?) WHERE id = ?`, encodeTime(at), id)
		if err != nil {
			return err
		}
		return touchedRow(res, latch.Errorf(latch.ENOTFOUND, "session %s not found", id))
	})
	if err != nil {
		return fmt.Errorf("end session %s: %w", id, translate(err))
	}
	s.notify()
	return nil
}
