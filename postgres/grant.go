package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
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
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.now()
		tag, err := tx.Exec(ctx, `INSERT INTO grants (`+grantColumns+`, due_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)
			ON CONFLICT (id) DO NOTHING`,
			string(g.ID), string(g.State), g.Region, g.GroupID, string(g.Protocol), g.Ports.From, g.Ports.To, encodePrefix(g.Source),
			string(g.RuleID), g.Requester, g.Owner, g.Reason, encodeTime(g.CreatedAt), encodeTime(g.ExpiresAt), encodeTime(g.EndedAt), string(g.EndAs),
			g.Attempts, encodeTime(g.NextAttempt), g.LastError, g.Version, string(g.RequestID), string(g.Access), string(g.Target), string(g.Document),
			encodeDueAt(g))
		if err != nil {
			return err
		}
		if err := touched(tag, latch.Errorf(latch.ECONFLICT, "grant %s already exists", g.ID)); err != nil {
			return err
		}
		if err := grantEvents(ctx, tx, "", g, now); err != nil {
			return err
		}
		return appendEvent(ctx, tx, g.ID, now, g.State, note)
	})
	if err != nil {
		return latch.Grant{}, fmt.Errorf("create grant %s: %w", g.ID, err)
	}
	s.changedHere()
	return g, nil
}

// Grant returns the grant with the given ID. Returns ENOTFOUND.
func (s *Store) Grant(ctx context.Context, id latch.GrantID) (latch.Grant, error) {
	row := s.db.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = $1`, string(id))
	g, err := scanGrant(row)
	if errors.Is(err, pgx.ErrNoRows) {
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
	var p params
	if len(f.States) > 0 {
		where = append(where, "state = ANY("+p.add(strs(f.States))+")")
	}
	if o := f.Opening; o != nil {
		where = append(where, fmt.Sprintf("region = %s AND group_id = %s AND protocol = %s AND port_from = %s AND port_to = %s AND source = %s",
			p.add(o.Region), p.add(o.GroupID), p.add(string(o.Protocol)), p.add(o.Ports.From), p.add(o.Ports.To), p.add(encodePrefix(o.Source))))
	}
	if len(f.IDs) > 0 {
		where = append(where, "id = ANY("+p.add(strs(f.IDs))+")")
	}
	if len(f.RuleIDs) > 0 {
		where = append(where, "rule_id = ANY("+p.add(strs(f.RuleIDs))+")")
	}
	if f.Requester != "" {
		where = append(where, "requester = "+p.add(f.Requester))
	}
	if len(f.Owners) > 0 {
		where = append(where, "owner = ANY("+p.add(f.Owners)+")")
	}
	q := `SELECT ` + grantColumns + ` FROM grants`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC NULLS LAST, id DESC"
	if f.Limit > 0 {
		q += " LIMIT " + p.add(f.Limit)
	}
	rows, err := s.db.Query(ctx, q, p...)
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
//
// It locks the grant's row first, so racing updates queue and the second
// finds the version moved.
func (s *Store) UpdateGrant(ctx context.Context, g latch.Grant, note string) (latch.Grant, error) {
	g = normalize(g)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
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
	s.changedHere()
	return g, nil
}

// updateGrant locks g's row, then writes g, its history and its events in
// tx if the stored grant still has g.Version. stale is the ENOTFOUND or
// ECONFLICT of a grant that was not written (nothing of it was); err is any
// other failure.
func updateGrant(ctx context.Context, tx pgx.Tx, g latch.Grant, note string, now time.Time) (stale, err error) {
	var was string
	var version int
	err = tx.QueryRow(ctx, `SELECT state, version FROM grants WHERE id = $1 FOR UPDATE`, string(g.ID)).Scan(&was, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound(g.ID), nil
	} else if err != nil {
		return nil, err
	}
	if version != g.Version {
		return latch.Errorf(latch.ECONFLICT, "grant %s has changed since version %d was read; read it again and retry", g.ID, g.Version), nil
	}
	_, err = tx.Exec(ctx, `UPDATE grants SET
		state = $1, region = $2, group_id = $3, protocol = $4, port_from = $5, port_to = $6, source = $7,
		rule_id = $8, requester = $9, owner = $10, reason = $11, created_at = $12, expires_at = $13, ended_at = $14, end_as = $15,
		attempts = $16, next_attempt = $17, last_error = $18, due_at = $19, access = $20, target = $21, document = $22,
		version = version + 1
		WHERE id = $23`,
		string(g.State), g.Region, g.GroupID, string(g.Protocol), g.Ports.From, g.Ports.To, encodePrefix(g.Source),
		string(g.RuleID), g.Requester, g.Owner, g.Reason, encodeTime(g.CreatedAt), encodeTime(g.ExpiresAt), encodeTime(g.EndedAt), string(g.EndAs),
		g.Attempts, encodeTime(g.NextAttempt), g.LastError, encodeDueAt(g), string(g.Access), string(g.Target), string(g.Document),
		string(g.ID))
	if err != nil {
		return nil, err
	}
	prev := latch.GrantState(was)
	if err := grantEvents(ctx, tx, prev, g, now); err != nil {
		return nil, err
	}
	if g.State != prev || note != "" {
		return nil, appendEvent(ctx, tx, g.ID, now, g.State, note)
	}
	return nil, nil
}

// UpdateGrants writes changes in one transaction: see
// [latch.Store.UpdateGrants]. Each grant's row is locked before its
// version is checked, and a stale one is skipped before anything of it is
// written, so the others commit. The audit head's row is then locked, as
// AppendAudit locks it, so that batches and single appends from any
// replica make one chain; the head moves once, to the last entry.
func (s *Store) UpdateGrants(ctx context.Context, changes []latch.GrantChange, sign func(msg string) string) ([]latch.GrantChange, error) {
	if len(changes) == 0 {
		return []latch.GrantChange{}, nil
	}
	out := make([]latch.GrantChange, len(changes))
	skipped := make([]error, len(changes))
	written := 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.now()
		// Rows are locked in ID order, and the audit head after them all,
		// so two batches cannot deadlock on each other.
		order := make([]int, len(changes))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(string(changes[a].Grant.ID), string(changes[b].Grant.ID)) })
		for _, i := range order {
			g := normalize(changes[i].Grant)
			stale, err := updateGrant(ctx, tx, g, changes[i].Note, now)
			if err != nil {
				return fmt.Errorf("update grant %s: %w", g.ID, err)
			}
			if stale != nil {
				skipped[i] = fmt.Errorf("update grant %s: %w", g.ID, stale) // in the order of changes
				continue
			}
			g.Version++
			out[i] = latch.GrantChange{Grant: g, Note: changes[i].Note}
			written++
		}
		var head *latch.AuditHead
		for i, c := range changes {
			if c.Audit == nil || out[i].Grant.ID == "" {
				continue
			}
			if head == nil {
				h, err := lockHead(ctx, tx)
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
		s.changedHere()
	}
	return out, errors.Join(skipped...)
}

// appendEvent adds to the history of grant id, whose row the transaction
// has inserted or locked, so that seq cannot be taken twice.
func appendEvent(ctx context.Context, tx pgx.Tx, id latch.GrantID, at time.Time, state latch.GrantState, note string) error {
	_, err := tx.Exec(ctx, `INSERT INTO grant_events (grant_id, seq, at, state, note)
		SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM grant_events WHERE grant_id = $1`,
		string(id), at, string(state), note)
	return err
}

// History returns the grant's events, oldest first. Returns ENOTFOUND.
func (s *Store) History(ctx context.Context, id latch.GrantID) ([]latch.GrantEvent, error) {
	// The join tells "no such grant" (no rows) from "no events" (one row of
	// NULLs) in one consistent read.
	rows, err := s.db.Query(ctx, `SELECT e.at, e.state, e.note
		FROM grants g LEFT JOIN grant_events e ON e.grant_id = g.id
		WHERE g.id = $1 ORDER BY e.seq`, string(id))
	if err != nil {
		return nil, fmt.Errorf("history of grant %s: %w", id, translate(err))
	}
	defer rows.Close()
	found := false
	var evs []latch.GrantEvent
	for rows.Next() {
		found = true
		var at pgtype.Timestamptz
		var state, note pgtype.Text
		if err := rows.Scan(&at, &state, &note); err != nil {
			return nil, fmt.Errorf("history of grant %s: %w", id, err)
		}
		if at.Valid {
			evs = append(evs, latch.GrantEvent{GrantID: id, At: decodeTime(at),
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
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	rows, err := s.db.Query(ctx, `SELECT id FROM grants
		WHERE due_at <= $1 ORDER BY due_at, id LIMIT $2`, now, lim)
	if err != nil {
		return nil, fmt.Errorf("due grants: %w", translate(err))
	}
	defer rows.Close()
	var ids []latch.GrantID
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("due grants: %w", err)
		}
		ids = append(ids, latch.GrantID(id))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("due grants: %w", translate(err))
	}
	return ids, nil
}

// NextDue returns the earliest DueAt of any grant; ok is false if none.
func (s *Store) NextDue(ctx context.Context) (at time.Time, ok bool, err error) {
	var v pgtype.Timestamptz
	if err := s.db.QueryRow(ctx, `SELECT MIN(due_at) FROM grants WHERE due_at IS NOT NULL`).Scan(&v); err != nil {
		return time.Time{}, false, fmt.Errorf("next due grant: %w", translate(err))
	}
	return decodeTime(v), v.Valid, nil
}

func notFound(id latch.GrantID) error {
	return latch.Errorf(latch.ENOTFOUND, "grant %s not found", id)
}

func scanGrant(row pgx.Row) (latch.Grant, error) {
	var g latch.Grant
	var id, state, protocol, source, rule, endAs, requestID, access, target, document string
	var created, expires, ended, next pgtype.Timestamptz
	err := row.Scan(&id, &state, &g.Region, &g.GroupID, &protocol, &g.Ports.From, &g.Ports.To, &source,
		&rule, &g.Requester, &g.Owner, &g.Reason, &created, &expires, &ended, &endAs,
		&g.Attempts, &next, &g.LastError, &g.Version, &requestID, &access, &target, &document)
	if err != nil {
		return latch.Grant{}, err
	}
	g.ID, g.State, g.Protocol, g.RuleID, g.EndAs = latch.GrantID(id), latch.GrantState(state), latch.Protocol(protocol), latch.RuleID(rule), latch.GrantState(endAs)
	g.RequestID, g.Access, g.Target, g.Document = latch.RequestID(requestID), latch.Access(access), latch.InstanceID(target), latch.SSMDocument(document)
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
		*t = normalizeTime(*t)
	}
	return g
}

func normalizeTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Microsecond).UTC()
}

// encodeDueAt stores g.DueAt, which may be the zero time: an ending grant
// with no NextAttempt is due at once.
func encodeDueAt(g latch.Grant) any {
	at, ok := g.DueAt()
	if !ok {
		return nil
	}
	return at
}

// encodePrefix stores p as canonical text, or "" for the zero Prefix.
func encodePrefix(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}
