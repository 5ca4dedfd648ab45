package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

const grantColumns = `id, state, region, group_id, protocol, port_from, port_to, source,
	rule_id, requester, owner, reason, created_at, expires_at, ended_at, end_as,
	attempts, next_attempt, last_error, version, request_id, access, target, document`

// CreateGrant records g at Version 1, with note as the first event of its
// history. Returns ECONFLICT if the ID is taken.
func (s *Store) CreateGrant(ctx context.Context, g latch.Grant, note string) (latch.Grant, error) {
	g = normalize(g)
	g.Version = 1
	err := s.inTx(ctx, func(tx *txn) error { return createGrant(ctx, tx, g, note, s.now()) })
	if err != nil {
		return latch.Grant{}, fmt.Errorf("create grant %s: %w", g.ID, err)
	}
	s.notify()
	return g, nil
}

func createGrant(ctx context.Context, tx *txn, g latch.Grant, note string, now time.Time) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO grants (`+grantColumns+`, due_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		g.ID, g.State, g.Region, g.GroupID, g.Protocol, g.Ports.From, g.Ports.To, encodePrefix(g.Source),
		g.RuleID, g.Requester, g.Owner, g.Reason, encodeTime(g.CreatedAt), encodeTime(g.ExpiresAt), encodeTime(g.EndedAt), g.EndAs,
		g.Attempts, encodeTime(g.NextAttempt), g.LastError, g.Version, g.RequestID, g.Access, g.Target, g.Document, encodeDueAt(g))
	if err != nil {
		return err
	}
	if err := touchedRow(res, latch.Errorf(latch.ECONFLICT, "grant %s already exists", g.ID)); err != nil {
		return err
	}
	if err := grantEvents(ctx, tx, "", g, now); err != nil {
		return err
	}
	return appendEvent(ctx, tx, g.ID, now, g.State, note)
}

// Grant returns the grant with the given ID. Returns ENOTFOUND.
func (s *Store) Grant(ctx context.Context, id latch.GrantID) (latch.Grant, error) {
	row := s.readRow(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = ?`, id)
	g, err := scanGrant(row)
	if err == sql.ErrNoRows {
		err = notFound(id)
	}
	if err != nil {
		return latch.Grant{}, fmt.Errorf("get grant %s: %w", id, translate(err))
	}
	return g, nil
}

// Grants lists the grants matching f, newest first: by CreatedAt, then by
// ID, both descending.
func (s *Store) Grants(ctx context.Context, f latch.GrantFilter) ([]latch.Grant, error) {
	var where []string
	var args []any
	if len(f.States) > 0 {
		col := "state"
		if len(f.IDs) > 0 || len(f.RuleIDs) > 0 {
			// A unary + keeps the planner off grants_state, which it
			// otherwise took for the ordering and then scanned every grant
			// in those states to find a batch's few.
			col = "+state"
		}
		where = append(where, col+" IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	if o := f.Opening; o != nil {
		where = append(where, "region = ? AND group_id = ? AND protocol = ? AND port_from = ? AND port_to = ? AND source = ?")
		args = append(args, o.Region, o.GroupID, o.Protocol, o.Ports.From, o.Ports.To, encodePrefix(o.Source))
	}
	if len(f.IDs) > 0 {
		where = append(where, "id IN ("+placeholders(len(f.IDs))+")")
		for _, id := range f.IDs {
			args = append(args, id)
		}
	}
	if len(f.RuleIDs) > 0 {
		where = append(where, "rule_id IN ("+placeholders(len(f.RuleIDs))+")")
		for _, id := range f.RuleIDs {
			args = append(args, id)
		}
	}
	if f.Requester != "" {
		where = append(where, "requester = ?")
		args = append(args, f.Requester)
	}
	if len(f.Owners) > 0 {
		where = append(where, "owner IN ("+placeholders(len(f.Owners))+")")
		for _, o := range f.Owners {
			args = append(args, o)
		}
	}
	q := `SELECT ` + grantColumns + ` FROM grants`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, id DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list grants: %w", translate(err))
	}
	defer rows.Close()
	var gs []latch.Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("list grants: %w", err)
		}
		gs = append(gs, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list grants: %w", translate(err))
	}
	return gs, nil
}

// UpdateGrant writes every field of g if the stored grant still has
// g.Version, and returns g with the version advanced. A change of state, or
// a non-empty note, appends an event to the grant's history. Returns
// ENOTFOUND, or ECONFLICT when g is stale.
func (s *Store) UpdateGrant(ctx context.Context, g latch.Grant, note string) (latch.Grant, error) {
	g = normalize(g)
	err := s.inTx(ctx, func(tx *txn) error {
		stale, err := updateGrant(ctx, tx, g, note, s.now())
		if err == nil {
			err = stale
		}
		return err
	})
	if err != nil {
		return latch.Grant{}, fmt.Errorf("update grant %s: %w", g.ID, err)
	}
	g.Version++
	s.notify()
	return g, nil
}

// updateGrant writes g, its history and its events in tx if the stored
// grant still has g.Version. stale is the ENOTFOUND or ECONFLICT of a grant
// that was not written, and then tx is untouched; err is any other failure.
func updateGrant(ctx context.Context, tx *txn, g latch.Grant, note string, now time.Time) (stale, err error) {
	var was latch.GrantState
	err = tx.QueryRowContext(ctx, `SELECT state FROM grants WHERE id = ?`, g.ID).Scan(&was)
	if err == sql.ErrNoRows {
		return notFound(g.ID), nil
	} else if err != nil {
		return nil, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE grants SET
		state = ?, region = ?, group_id = ?, protocol = ?, port_from = ?, port_to = ?, source = ?,
		rule_id = ?, requester = ?, owner = ?, reason = ?, created_at = ?, expires_at = ?, ended_at = ?, end_as = ?,
		attempts = ?, next_attempt = ?, last_error = ?, due_at = ?, access = ?, target = ?, document = ?, version = version + 1
		WHERE id = ? AND version = ?`,
		g.State, g.Region, g.GroupID, g.Protocol, g.Ports.From, g.Ports.To, encodePrefix(g.Source),
		g.RuleID, g.Requester, g.Owner, g.Reason, encodeTime(g.CreatedAt), encodeTime(g.ExpiresAt), encodeTime(g.EndedAt), g.EndAs,
		g.Attempts, encodeTime(g.NextAttempt), g.LastError, encodeDueAt(g), g.Access, g.Target, g.Document,
		g.ID, g.Version)
	if err != nil {
		return nil, err
	}
	if err := touchedRow(res, errStale(g)); err != nil {
		if latch.ErrorCode(err) == latch.ECONFLICT {
			return err, nil
		}
		return nil, err
	}
	if err := grantEvents(ctx, tx, was, g, now); err != nil {
		return nil, err
	}
	if g.State != was || note != "" {
		return nil, appendEvent(ctx, tx, g.ID, now, g.State, note)
	}
	return nil, nil
}

func errStale(g latch.Grant) error {
	return latch.Errorf(latch.ECONFLICT, "grant %s has changed since version %d was read; read it again and retry", g.ID, g.Version)
}

// UpdateGrants writes changes in one IMMEDIATE transaction, one commit for
// the batch: see [latch.Store.UpdateGrants]. A stale grant's change is
// skipped inside the transaction (its UPDATE touched no row, so nothing of
// it was written) and the others commit. Audit entries link from the head
// read once under the write lock, and the head moves once, to the last.
func (s *Store) UpdateGrants(ctx context.Context, changes []latch.GrantChange, sign func(msg string) string) ([]latch.GrantChange, error) {
	if len(changes) == 0 {
		return []latch.GrantChange{}, nil
	}
	out := make([]latch.GrantChange, len(changes))
	var skipped []error
	written := 0
	err := s.inTx(ctx, func(tx *txn) error {
		now := s.now()
		var head *latch.AuditHead
		for i, c := range changes {
			g := normalize(c.Grant)
			stale, err := updateGrant(ctx, tx, g, c.Note, now)
			if err != nil {
				return fmt.Errorf("update grant %s: %w", g.ID, err)
			}
			if stale != nil {
				skipped = append(skipped, fmt.Errorf("update grant %s: %w", g.ID, stale))
				continue
			}
			g.Version++
			out[i] = latch.GrantChange{Grant: g, Note: c.Note}
			written++
			if c.Audit == nil {
				continue
			}
			if head == nil {
				h, err := readHead(ctx, tx)
				if err != nil {
					return err
				}
				head = &h
			}
			e := latch.LinkAudit(*c.Audit, head.Seq, head.Hash, sign)
			if err := insertAudit(ctx, tx, e); err != nil {
				return fmt.Errorf("append %s to the audit log: %w", e.Action, err)
			}
			head.Seq, head.Hash = e.Seq, e.Hash
			out[i].Audit = &e
		}
		if head != nil {
			return moveHead(ctx, tx, latch.NewAuditHead(head.Seq, head.Hash, sign))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update %d grants: %w", len(changes), err)
	}
	if written > 0 {
		s.notify()
	}
	return out, errors.Join(skipped...)
}

func appendEvent(ctx context.Context, tx *txn, id latch.GrantID, at time.Time, state latch.GrantState, note string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO grant_events (grant_id, seq, at, state, note)
		SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ? FROM grant_events WHERE grant_id = ?`,
		id, at.UnixMicro(), state, note, id)
	return err
}

// History returns the grant's events, oldest first. Returns ENOTFOUND.
func (s *Store) History(ctx context.Context, id latch.GrantID) ([]latch.GrantEvent, error) {
	// The join tells "no such grant" (no rows) from "no events" (one row of
	// NULLs) in one consistent read.
	rows, err := s.readRows(ctx, `SELECT e.at, e.state, e.note
		FROM grants g LEFT JOIN grant_events e ON e.grant_id = g.id
		WHERE g.id = ? ORDER BY e.seq`, id)
	if err != nil {
		return nil, fmt.Errorf("history of grant %s: %w", id, translate(err))
	}
	defer rows.Close()
	found := false
	var evs []latch.GrantEvent
	for rows.Next() {
		found = true
		var at sql.NullInt64
		var state, note sql.NullString
		if err := rows.Scan(&at, &state, &note); err != nil {
			return nil, fmt.Errorf("history of grant %s: %w", id, err)
		}
		if at.Valid {
			evs = append(evs, latch.GrantEvent{GrantID: id, At: time.UnixMicro(at.Int64).UTC(),
				State: latch.GrantState(state.String), Note: note.String})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history of grant %s: %w", id, translate(err))
	}
	if !found {
		return nil, fmt.Errorf("history of grant %s: %w", id, notFound(id))
	}
	return evs, nil
}

// Due returns up to limit IDs of grants whose DueAt is at or before now,
// earliest first. A limit of 0 or less means no limit.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]latch.GrantID, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.readRows(ctx, `SELECT id FROM grants
		WHERE due_at <= ? ORDER BY due_at, id LIMIT ?`, now.UnixMicro(), limit)
	if err != nil {
		return nil, fmt.Errorf("due grants: %w", translate(err))
	}
	defer rows.Close()
	var ids []latch.GrantID
	for rows.Next() {
		var id latch.GrantID
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("due grants: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("due grants: %w", translate(err))
	}
	return ids, nil
}

// NextDue returns the earliest DueAt of any grant; ok is false if none.
func (s *Store) NextDue(ctx context.Context) (at time.Time, ok bool, err error) {
	var v sql.NullInt64
	if err := s.readRow(ctx, `SELECT MIN(due_at) FROM grants WHERE due_at IS NOT NULL`).Scan(&v); err != nil {
		return time.Time{}, false, fmt.Errorf("next due grant: %w", translate(err))
	}
	if !v.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMicro(v.Int64).UTC(), true, nil
}

func notFound(id latch.GrantID) error {
	return latch.Errorf(latch.ENOTFOUND, "grant %s not found", id)
}

type scanner interface{ Scan(dest ...any) error }

func scanGrant(row scanner) (latch.Grant, error) {
	var g latch.Grant
	var source string
	var created, expires, ended, next sql.NullInt64
	err := row.Scan(&g.ID, &g.State, &g.Region, &g.GroupID, &g.Protocol, &g.Ports.From, &g.Ports.To, &source,
		&g.RuleID, &g.Requester, &g.Owner, &g.Reason, &created, &expires, &ended, &g.EndAs,
		&g.Attempts, &next, &g.LastError, &g.Version, &g.RequestID, &g.Access, &g.Target, &g.Document)
	if err != nil {
		return latch.Grant{}, err
	}
	if source != "" {
		if g.Source, err = netip.ParsePrefix(source); err != nil {
			return latch.Grant{}, fmt.Errorf("grant %s: stored source: %w", g.ID, err)
		}
	}
	g.CreatedAt, g.ExpiresAt = decodeTime(created), decodeTime(expires)
	g.EndedAt, g.NextAttempt = decodeTime(ended), decodeTime(next)
	return g, nil
}

// normalize returns g with its times as they will be read back: in UTC, to
// the microsecond. CreateGrant and UpdateGrant return what they stored.
func normalize(g latch.Grant) latch.Grant {
	for _, t := range []*time.Time{&g.CreatedAt, &g.ExpiresAt, &g.EndedAt, &g.NextAttempt} {
		if !t.IsZero() {
			*t = t.Truncate(time.Microsecond).UTC()
		}
	}
	return g
}

// encodeTime stores t as microseconds since the Unix epoch, or NULL for the
// zero time. Microseconds since 1970 fit in an int64 for years -290307 to
// 294246, which covers any time latch computes.
func encodeTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// decodeTime reverses encodeTime, in UTC.
func decodeTime(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// encodeDueAt stores g.DueAt, which may be the zero time: an ending grant
// with no NextAttempt is due at once.
func encodeDueAt(g latch.Grant) any {
	at, ok := g.DueAt()
	if !ok {
		return nil
	}
	return at.UnixMicro()
}

// encodePrefix stores p as canonical text, or "" for the zero Prefix.
func encodePrefix(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}
