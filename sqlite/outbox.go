package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

// The outbox is one row per event (migration 008). Request and grant
// changes add their events (latch.RequestEvents, grantEvents) inside the
// transaction that makes the change.

// grantEvents writes the events g's change from state was causes, and drops
// an ending notice the change has made untrue.
func grantEvents(ctx context.Context, tx *txn, was latch.GrantState, g latch.Grant, now time.Time) error {
	e, ok := latch.GrantChangeEvent(was, g, now)
	if !ok {
		return nil
	}
	// The literal grant_id != '' lets the planner use the partial indexes
	// (outbox_grant, requests_grant) for a bound parameter: without it
	// each grant's end scanned the whole outbox.
	if e.Kind == latch.EventGrantEnded {
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET state = 'dropped', settled_at = ?
			WHERE grant_id = ? AND grant_id != '' AND kind = ? AND state = 'pending'`, now.UnixMicro(), g.ID, latch.EventGrantEnding); err != nil {
			return err
		}
	}
	// The request that opened the grant names the rule, which routes it. A
	// grant knows its request from its creation, before the request
	// records the grant, so that grant.opened has it too.
	var id latch.RequestID
	var rule string
	var instance latch.InstanceID
	var durUS int64
	var breakGlass bool
	err := tx.QueryRowContext(ctx, `SELECT id, rule, instance_id, duration_us, break_glass FROM requests
		WHERE id = ? OR (grant_id = ? AND grant_id != '') LIMIT 1`, g.RequestID, g.ID).
		Scan(&id, &rule, &instance, &durUS, &breakGlass)
	switch {
	case err == sql.ErrNoRows: // a direct grant
	case err != nil:
		return err
	default:
		e.FromRequest(id, rule, instance, time.Duration(durUS)*time.Microsecond, breakGlass)
	}
	if err := insertEvent(ctx, tx, e, now); err != nil {
		return err
	}
	if ending, ok := e.Ending(now); ok {
		return insertEvent(ctx, tx, ending, now)
	}
	return nil
}

// insertEvent adds e, due at e.At, with a fresh ID if it has none.
func insertEvent(ctx context.Context, tx *txn, e latch.Event, now time.Time) error {
	if e.ID == "" {
		e.ID = latch.NewEventID()
	}
	e.At = e.At.UTC().Truncate(time.Microsecond)
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, kind, state, request_id, grant_id, event, created_at, due_at,
		lease_owner, lease_until, attempts, delivered, last_error, settled_at)
		VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, '', NULL, 0, '[]', '', NULL)
		ON CONFLICT (id) DO NOTHING`,
		e.ID, e.Kind, e.RequestID, e.GrantID, string(body), now.UnixMicro(), e.At.UnixMicro())
	if err != nil {
		return err
	}
	return touchedRow(res, latch.Errorf(latch.ECONFLICT, "event %s already exists", e.ID))
}

// EnqueueEvent records e, pending and due at e.At. Returns ECONFLICT if
// e.ID is taken.
func (s *Store) EnqueueEvent(ctx context.Context, e latch.Event) error {
	if e.Kind == "" {
		return latch.Invalidf("kind", "an event needs a kind")
	}
	if e.At.IsZero() {
		e.At = s.now()
	}
	if err := s.inTx(ctx, func(tx *txn) error { return insertEvent(ctx, tx, e, s.now()) }); err != nil {
		return fmt.Errorf("enqueue event %s: %w", e.Kind, err)
	}
	s.notify()
	return nil
}

const outboxColumns = `event, state, due_at, attempts, delivered, last_error`

// ClaimEvents leases up to limit due events to owner. The write lock makes
// racing claims, from any process on the file, queue, so each event is
// leased to one.
func (s *Store) ClaimEvents(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]latch.OutboxItem, error) {
	if owner == "" {
		return nil, latch.Invalidf("owner", "a claim needs an owner")
	}
	if limit <= 0 {
		limit = -1
	}
	var items []latch.OutboxItem
	err := s.inTx(ctx, func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+outboxColumns+` FROM outbox
			WHERE state = 'pending' AND due_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
			ORDER BY due_at, id LIMIT ?`, now.UnixMicro(), now.UnixMicro(), limit)
		if err != nil {
			return err
		}
		items, err = scanItems(rows)
		if err != nil {
			return err
		}
		for _, it := range items {
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id = ?`,
				owner, now.Add(lease).UnixMicro(), it.Event.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim events: %w", err)
	}
	return items, nil
}

// SettleEvent records the outcome of owner's attempt and releases the lease.
func (s *Store) SettleEvent(ctx context.Context, owner string, st latch.Settlement) error {
	return s.SettleEvents(ctx, owner, []latch.Settlement{st})
}

// SettleEvents records the outcomes of a batch of owner's attempts in one
// transaction: a worker settles a whole pass at once, so delivering costs
// the store's single writer two transactions a batch, not one an event.
// An event owner no longer holds (ECONFLICT) or that is gone (ENOTFOUND)
// is skipped, and its error returned with the others; the rest are
// recorded.
func (s *Store) SettleEvents(ctx context.Context, owner string, sts []latch.Settlement) error {
	for _, st := range sts {
		switch st.State {
		case latch.EventDelivered, latch.EventDead, latch.EventPending:
		default:
			return latch.Invalidf("state", "an attempt settles as delivered, dead or pending, not %q", st.State)
		}
	}
	var skipped []error
	err := s.inTx(ctx, func(tx *txn) error {
		for _, st := range sts {
			err := settleTx(ctx, tx, owner, st, s.now())
			switch latch.ErrorCode(err) {
			case "":
			case latch.ECONFLICT, latch.ENOTFOUND:
				skipped = append(skipped, fmt.Errorf("settle event %s: %w", st.ID, err))
			default:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("settle events: %w", err)
	}
	return errors.Join(skipped...)
}

func settleTx(ctx context.Context, tx *txn, owner string, st latch.Settlement, now time.Time) error {
	var held, state, delivered string
	err := tx.QueryRowContext(ctx, `SELECT lease_owner, state, delivered FROM outbox WHERE id = ?`, st.ID).Scan(&held, &state, &delivered)
	if err == sql.ErrNoRows {
		return latch.Errorf(latch.ENOTFOUND, "event %s not found", st.ID)
	} else if err != nil {
		return err
	}
	if held != owner || state != string(latch.EventPending) {
		return latch.Errorf(latch.ECONFLICT, "event %s is %s and leased to %q, not %q", st.ID, state, held, owner)
	}
	routes, err := decodeRoutes(delivered)
	if err != nil {
		return err
	}
	for _, r := range st.Delivered {
		if !slices.Contains(routes, r) {
			routes = append(routes, r)
		}
	}
	failed := 0
	if st.Error != "" {
		failed = 1
	}
	var settled, due any
	if st.State == latch.EventPending {
		due = st.RetryAt.UnixMicro()
	} else {
		settled = now.UnixMicro()
	}
	_, err = tx.ExecContext(ctx, `UPDATE outbox SET state = ?, delivered = ?, attempts = attempts + ?, last_error = ?,
		due_at = COALESCE(?, due_at), settled_at = ?, lease_owner = '', lease_until = NULL WHERE id = ?`,
		st.State, encodeRoutes(routes), failed, st.Error, due, settled, st.ID)
	return err
}

// NextEvent returns when the earliest pending event may next be claimed.
func (s *Store) NextEvent(ctx context.Context) (time.Time, bool, error) {
	var v sql.NullInt64
	err := s.readRow(ctx, `SELECT MIN(MAX(due_at, COALESCE(lease_until, 0))) FROM outbox WHERE state = 'pending'`).Scan(&v)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next event: %w", translate(err))
	}
	if !v.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMicro(v.Int64).UTC(), true, nil
}

// OutboxEvent returns one event as the outbox holds it. Returns ENOTFOUND.
func (s *Store) OutboxEvent(ctx context.Context, id latch.EventID) (latch.OutboxItem, error) {
	rows, err := s.readRows(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE id = ?`, id)
	if err != nil {
		return latch.OutboxItem{}, fmt.Errorf("get event %s: %w", id, translate(err))
	}
	items, err := scanItems(rows)
	if err != nil {
		return latch.OutboxItem{}, fmt.Errorf("get event %s: %w", id, err)
	}
	if len(items) == 0 {
		return latch.OutboxItem{}, latch.Errorf(latch.ENOTFOUND, "event %s not found", id)
	}
	return items[0], nil
}

// PruneEvents deletes the events settled before before.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE state != 'pending' AND settled_at < ?`, before.UnixMicro())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return int(n), nil
}

// OutboxEvents returns the events in the outbox, earliest due first, for
// tests and inspection.
func (s *Store) OutboxEvents(ctx context.Context) ([]latch.OutboxItem, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+outboxColumns+` FROM outbox ORDER BY due_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", translate(err))
	}
	return scanItems(rows)
}

func scanItems(rows *sql.Rows) ([]latch.OutboxItem, error) {
	defer rows.Close()
	var items []latch.OutboxItem
	for rows.Next() {
		var it latch.OutboxItem
		var body, delivered string
		var due int64
		if err := rows.Scan(&body, &it.State, &due, &it.Attempts, &delivered, &it.LastError); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(body), &it.Event); err != nil {
			return nil, fmt.Errorf("stored event: %w", err)
		}
		var err error
		if it.Delivered, err = decodeRoutes(delivered); err != nil {
			return nil, err
		}
		it.DueAt = time.UnixMicro(due).UTC()
		items = append(items, it)
	}
	return items, translate(rows.Err())
}

func encodeRoutes(rs []latch.Route) string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.String())
	}
	return encodeList(out)
}

func decodeRoutes(s string) ([]latch.Route, error) {
	l, err := decodeList(s)
	if err != nil {
		return nil, fmt.Errorf("stored routes: %w", err)
	}
	var rs []latch.Route
	for _, v := range l {
		sink, to, _ := strings.Cut(v, ":")
		rs = append(rs, latch.Route{Sink: sink, To: to})
	}
	return rs, nil
}
