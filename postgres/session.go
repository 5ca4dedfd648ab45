package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/latchdev/latch"
)

// AddSession implements latch.SessionStore.
func (s *Store) AddSession(ctx context.Context, ss latch.SSMSession) error {
	if ss.ID == "" || ss.GrantID == "" || ss.StartedAt.IsZero() {
		return latch.Invalidf("session", "a session needs an ID, a grant and a start time")
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM grants WHERE id = $1`, string(ss.GrantID)).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return notFound(ss.GrantID)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO ssm_sessions
			(id, grant_id, region, target, document, owner, reason, started_at, expires_at, ended_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING`,
			string(ss.ID), string(ss.GrantID), ss.Region, string(ss.Target), string(ss.Document), ss.Owner, ss.Reason,
			encodeTime(ss.StartedAt), encodeTime(ss.Expires), encodeTime(ss.EndedAt))
		if err != nil {
			return err
		}
		return touched(tag, latch.Errorf(latch.ECONFLICT, "session %s is recorded already", ss.ID))
	})
	if err != nil {
		return fmt.Errorf("record session %s: %w", ss.ID, err)
	}
	s.changedHere()
	return nil
}

// GrantSessions implements latch.SessionStore.
func (s *Store) GrantSessions(ctx context.Context, id latch.GrantID) ([]latch.SSMSession, error) {
	rows, err := s.db.Query(ctx, `SELECT id, grant_id, region, target, document, owner, reason, started_at, expires_at, ended_at
		FROM ssm_sessions WHERE grant_id = $1 ORDER BY started_at, id`, string(id))
	if err != nil {
		return nil, fmt.Errorf("sessions of grant %s: %w", id, translate(err))
	}
	defer rows.Close()
	var out []latch.SSMSession
	for rows.Next() {
		var ss latch.SSMSession
		var sid, gid, target, document string
		var started, expires, ended pgtype.Timestamptz
		if err := rows.Scan(&sid, &gid, &ss.Region, &target, &document, &ss.Owner, &ss.Reason, &started, &expires, &ended); err != nil {
			return nil, fmt.Errorf("sessions of grant %s: %w", id, err)
		}
		ss.ID, ss.GrantID, ss.Target, ss.Document = latch.SSMSessionID(sid), latch.GrantID(gid), latch.InstanceID(target), latch.SSMDocument(document)
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
	tag, err := s.db.Exec(ctx, `UPDATE ssm_sessions SET ended_at = COALESCE(ended_at, $1) WHERE id = $2`, encodeTime(at), string(id))
	if err == nil {
		err = touched(tag, latch.Errorf(latch.ENOTFOUND, "session %s not found", id))
	}
	if err != nil {
		return fmt.Errorf("end session %s: %w", id, translate(err))
	}
	s.changedHere()
	return nil
}
