package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/latchdev/latch"
)

// The outbox is one row per event. Request and grant changes add their
// events (latch.RequestEvents, grantEvents) inside the transaction that
// makes the change, as the SQLite store does.

// grantEvents writes the events g's change from state was causes, and drops
// an ending notice the change has made untrue.
func grantEvents(ctx context.Context, tx pgx.Tx, was latch.GrantState, g latch.Grant, now time.Time) error {
	e, ok := latch.GrantChangeEvent(was, g, now)
	if !ok {
		return nil
	}
	// The literal grant_id != '' lets the planner use the partial indexes
	// (outbox_grant, requests_grant) for a bound parameter: without it
	// each grant's end scanned the whole outbox.
	if e.Kind == latch.EventGrantEnded {
		if _, err := tx.Exec(ctx, `UPDATE outbox SET state = 'dropped', settled_at = $1
			WHERE grant_id = $2 AND grant_id != '' AND kind = $3 AND state = 'pending'`, now, string(g.ID), string(latch.EventGrantEnding)); err != nil {
			return err
		}
	}
	// The request that opened the grant names the rule, which routes it.
	var requestID, rule, instance string
	var durUS int64
	var breakGlass bool
	err := tx.QueryRow(ctx, `SELECT id, rule, instance_id, duration_us, break_glass FROM requests
		WHERE id = $1 OR (grant_id = $2 AND grant_id != '') LIMIT 1`, string(g.RequestID), string(g.ID)).
		Scan(&requestID, &rule, &instance, &durUS, &breakGlass)
	switch {
	case errors.Is(err, pgx.ErrNoRows): // a direct grant
	case err != nil:
		return err
	default:
		e.FromRequest(latch.RequestID(requestID), rule, latch.InstanceID(instance), time.Duration(durUS)*time.Microsecond, breakGlass)
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
func insertEvent(ctx context.Context, tx pgx.Tx, e latch.Event, now time.Time) error {
	if e.ID == "" {
		e.ID = latch.NewEventID()
	}
	e.At = e.At.UTC().Truncate(time.Microsecond)
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO outbox (id, kind, state, request_id, grant_id, event, created_at, due_at,
		lease_owner, lease_until, attempts, delivered, last_error, settled_at)
		VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, '', NULL, 0, '{}', '', NULL)
		ON CONFLICT (id) DO NOTHING`,
		string(e.ID), string(e.Kind), string(e.RequestID), string(e.GrantID), string(body), now, e.At)
	if err != nil {
		return err
	}
	return touched(tag, latch.Errorf(latch.ECONFLICT, "event %s already exists", e.ID))
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
	if err := s.inTx(ctx, func(tx pgx.Tx) error { return insertEvent(ctx, tx, e, s.now()) }); err != nil {
		return fmt.Errorf("enqueue event %s: %w", e.Kind, err)
	}
	s.changedHere()
	return nil
}

const outboxColumns = `event, state, due_at, attempts, delivered, last_error`

// ClaimEvents leases up to limit due events to owner. It locks the rows it
// takes and skips those another claim has locked (FOR UPDATE SKIP LOCKED),
// so racing claims, from any number of processes, each take different
// events without waiting on each other.
func (s *Store) ClaimEvents(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]latch.OutboxItem, error) {
	if owner == "" {
		return nil, latch.Invalidf("owner", "a claim needs an owner")
	}
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	var items []latch.OutboxItem
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+outboxColumns+` FROM outbox
			WHERE state = 'pending' AND due_at <= $1 AND (lease_until IS NULL OR lease_until <= $1)
			ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED`, now, lim)
		if err != nil {
			return err
		}
		items, err = scanItems(rows)
		if err != nil || len(items) == 0 {
			return err
		}
		ids := make([]string, len(items))
		for i, it := range items {
			ids[i] = string(it.Event.ID)
		}
		_, err = tx.Exec(ctx, `UPDATE outbox SET lease_owner = $1, lease_until = $2 WHERE id = ANY($3)`,
			owner, now.Add(lease), ids)
		return err
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
// transaction. An event owner no longer holds (ECONFLICT) or that is gone
// (ENOTFOUND) is skipped, and its error returned with the others; the rest
// are recorded.
func (s *Store) SettleEvents(ctx context.Context, owner string, sts []latch.Settlement) error {
	for _, st := range sts {
		switch st.State {
		case latch.EventDelivered, latch.EventDead, latch.EventPending:
		default:
			return latch.Invalidf("state", "an attempt settles as delivered, dead or pending, not %q", st.State)
		}
	}
	var skipped []error
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		skipped = nil
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

func settleTx(ctx context.Context, tx pgx.Tx, owner string, st latch.Settlement, now time.Time) error {
	var held, state string
	var delivered []string
	err := tx.QueryRow(ctx, `SELECT lease_owner, state, delivered FROM outbox WHERE id = $1 FOR UPDATE`, string(st.ID)).
		Scan(&held, &state, &delivered)
	if errors.Is(err, pgx.ErrNoRows) {
		return latch.Errorf(latch.ENOTFOUND, "event %s not found", st.ID)
	} else if err != nil {
		return err
	}
	if held != owner || state != string(latch.EventPending) {
		return latch.Errorf(latch.ECONFLICT, "event %s is %s and leased to %q, not %q", st.ID, state, held, owner)
	}
	routes := decodeRoutes(delivered)
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
		due = st.RetryAt
	} else {
		settled = now
	}
	_, err = tx.Exec(ctx, `UPDATE outbox SET state = $1, delivered = $2, attempts = attempts + $3, last_error = $4,
		due_at = COALESCE($5, due_at), settled_at = $6, lease_owner = '', lease_until = NULL WHERE id = $7`,
		string(st.State), encodeRoutes(routes), failed, st.Error, due, settled, string(st.ID))
	return err
}

// NextEvent returns when the earliest pending event may next be claimed.
func (s *Store) NextEvent(ctx context.Context) (time.Time, bool, error) {
	var v pgtype.Timestamptz
	// GREATEST ignores NULLs: an unleased event is due at due_at.
	err := s.db.QueryRow(ctx, `SELECT MIN(GREATEST(due_at, lease_until)) FROM outbox WHERE state = 'pending'`).Scan(&v)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next event: %w", translate(err))
	}
	return decodeTime(v), v.Valid, nil
}

// OutboxEvent returns one event as the outbox holds it. Returns ENOTFOUND.
func (s *Store) OutboxEvent(ctx context.Context, id latch.EventID) (latch.OutboxItem, error) {
	rows, err := s.db.Query(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE id = $1`, string(id))
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
	tag, err := s.db.Exec(ctx, `DELETE FROM outbox WHERE state != 'pending' AND settled_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", translate(err))
	}
	return int(tag.RowsAffected()), nil
}

// OutboxEvents returns the events in the outbox, earliest due first, for
// tests and inspection.
func (s *Store) OutboxEvents(ctx context.Context) ([]latch.OutboxItem, error) {
	rows, err := s.db.Query(ctx, `SELECT `+outboxColumns+` FROM outbox ORDER BY due_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", translate(err))
	}
	return scanItems(rows)
}

func scanItems(rows pgx.Rows) ([]latch.OutboxItem, error) {
	defer rows.Close()
	var items []latch.OutboxItem
	for rows.Next() {
		var it latch.OutboxItem
		var body []byte
		var state string
		var delivered []string
		var due time.Time
		if err := rows.Scan(&body, &state, &due, &it.Attempts, &delivered, &it.LastError); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(body, &it.Event); err != nil {
			return nil, fmt.Errorf("stored event: %w", err)
		}
		it.State, it.Delivered, it.DueAt = latch.EventState(state), decodeRoutes(delivered), due.UTC()
		items = append(items, it)
	}
	return items, translate(rows.Err())
}

func encodeRoutes(rs []latch.Route) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}

func decodeRoutes(l []string) []latch.Route {
	var rs []latch.Route
	for _, v := range l {
		sink, to, _ := strings.Cut(v, ":")
		rs = append(rs, latch.Route{Sink: sink, To: to})
	}
	return rs
}
