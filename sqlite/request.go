package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/latchdev/latch"
)

// Requests are stored whole in one row of requests, and their reviews one a
// row in reviews, numbered from 1 in order. The empty lists and maps of a
// request (groups, tags, approver groups, reviews) read back as nil, and
// CreateRequest and UpdateRequest return them so: what they return is what
// Request returns. Duration is kept to the microsecond, like times.

const requestColumns = `r.id, r.state,
	r.requester_kind, r.requester_subject, r.requester_issuer, r.requester_email, r.requester_name, r.requester_groups,
	r.region, r.instance_id, r.group_id, r.tags,
	r.protocol, r.port_from, r.port_to, r.source, r.duration_us, r.reason, r.break_glass, r.rule,
	r.approvals_needed, r.approver_groups, r.approver_users, r.approver_principals, r.created_at, r.pending_until, r.decided_at,
	r.grant_id, r.note, r.version, r.access, r.document`

const reviewColumns = `v.seq, v.by_kind, v.by_subject, v.by_issuer, v.by_email, v.by_name, v.by_groups, v.approve, v.reason, v.at`

// CreateRequest records r, with its reviews, at Version 1. Returns ECONFLICT
// if the ID is taken.
func (s *Store) CreateRequest(ctx context.Context, r latch.Request) (latch.Request, error) {
	r = normalizeRequest(r)
	r.Version = 1
	err := s.inTx(ctx, func(tx *txn) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO requests (
			id, state, requester_kind, requester_subject, requester_issuer, requester_email, requester_name, requester_groups, requester_key,
			region, instance_id, group_id, tags,
			protocol, port_from, port_to, source, duration_us, reason, break_glass, rule,
			approvals_needed, approver_groups, approver_users, approver_principals, created_at, pending_until, decided_at,
			grant_id, note, version, access, document)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`, requestArgs(r)...)
		if err != nil {
			return err
		}
		if err := touchedRow(res, latch.Errorf(latch.ECONFLICT, "request %s already exists", r.ID)); err != nil {
			return err
		}
		if err := indexApprovers(ctx, tx, r); err != nil {
			return err
		}
		for _, e := range latch.RequestEvents("", r, s.now()) {
			if err := insertEvent(ctx, tx, e, s.now()); err != nil {
				return err
			}
		}
		return insertReviews(ctx, tx, r.ID, 0, r.Reviews)
	})
	if err != nil {
		return latch.Request{}, fmt.Errorf("create request %s: %w", r.ID, err)
	}
	s.notify()
	return r, nil
}

// requestArgs returns r's columns but version, in the order CreateRequest
// and UpdateRequest name them, then r.Version.
func requestArgs(r latch.Request) []any {
	q, t, a := r.Requester, r.Target, r.Approvers
	return []any{
		r.ID, r.State, q.Kind, q.Subject, q.Issuer, q.Email, q.Name, encodeList(q.Groups), q.Key(),
		t.Region, t.InstanceID, t.GroupID, encodeTags(t.Tags),
		r.Protocol, r.Ports.From, r.Ports.To, encodePrefix(r.Source), r.Duration.Microseconds(), r.Reason, r.BreakGlass, r.Rule,
		r.ApprovalsNeeded, encodeList(a.Groups), encodeList(a.Users), encodeList(a.AWSPrincipals),
		encodeTime(r.CreatedAt), encodeTime(r.PendingUntil), encodeTime(r.DecidedAt),
		r.GrantID, r.Note, r.Version, r.Access, r.Document,
	}
}

// insertReviews appends rvs to the reviews of request id, which has have
// reviews already.
func insertReviews(ctx context.Context, tx *txn, id latch.RequestID, have int, rvs []latch.Review) error {
	for i, rv := range rvs {
		_, err := tx.ExecContext(ctx, `INSERT INTO reviews
			(request_id, seq, by_kind, by_subject, by_issuer, by_email, by_name, by_groups, approve, reason, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, have+i+1, rv.By.Kind, rv.By.Subject, rv.By.Issuer, rv.By.Email, rv.By.Name, encodeList(rv.By.Groups),
			rv.Approve, rv.Reason, encodeTime(rv.At))
		if err != nil {
			return fmt.Errorf("review %d: %w", have+i+1, err)
		}
	}
	return nil
}

// Request returns the request with the given ID, with its reviews in the
// order they were recorded. Returns ENOTFOUND.
func (s *Store) Request(ctx context.Context, id latch.RequestID) (latch.Request, error) {
	// One statement reads the request and its reviews from one snapshot.
	rows, err := s.readRows(ctx, `SELECT `+requestColumns+`, `+reviewColumns+`
		FROM requests r LEFT JOIN reviews v ON v.request_id = r.id
		WHERE r.id = ? ORDER BY v.seq`, id)
	if err != nil {
		return latch.Request{}, fmt.Errorf("get request %s: %w", id, translate(err))
	}
	rs, err := scanRequests(rows)
	if err == nil && len(rs) == 0 {
		err = requestNotFound(id)
	}
	if err != nil {
		return latch.Request{}, fmt.Errorf("get request %s: %w", id, err)
	}
	return rs[0], nil
}

// Requests lists the requests matching f, with their reviews, newest first:
// by CreatedAt, then by ID, both descending.
func (s *Store) Requests(ctx context.Context, f latch.RequestFilter) ([]latch.Request, error) {
	var where []string
	var args []any
	if len(f.States) > 0 {
		where = append(where, "state IN ("+placeholders(len(f.States))+")")
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	if len(f.Requesters) > 0 {
		where = append(where, "requester_key IN ("+placeholders(len(f.Requesters))+")")
		for _, k := range f.Requesters {
			args = append(args, k)
		}
	}
	if f.VisibleTo != nil {
		w, wargs, err := s.visibleTo(ctx, f.VisibleTo)
		if err != nil {
			return nil, fmt.Errorf("list requests: %w", err)
		}
		where, args = append(where, w), append(args, wargs...)
	}
	if c := f.Before; c != nil {
		where = append(where, "(created_at, id) < (?, ?)")
		args = append(args, encodeTime(c.CreatedAt), c.ID)
	}
	if f.GrantID != "" {
		where = append(where, "grant_id = ? AND grant_id != ''")
		args = append(args, f.GrantID)
	}
	sel := `SELECT * FROM requests`
	if len(where) > 0 {
		sel += " WHERE " + strings.Join(where, " AND ")
	}
	sel += " ORDER BY created_at DESC, id DESC"
	if f.Limit > 0 {
		sel += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := s.read.QueryContext(ctx, `WITH r AS (`+sel+`)
		SELECT `+requestColumns+`, `+reviewColumns+`
		FROM r LEFT JOIN reviews v ON v.request_id = r.id
		ORDER BY r.created_at DESC, r.id DESC, v.seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", translate(err))
	}
	rs, err := scanRequests(rows)
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	return rs, nil
}

// visibleTo returns the condition that keeps the requests v may see, and
// its arguments: v's own (by key), and those whose approvers name v (by
// request_approvers), each an index lookup. AWS principal patterns are
// few, so the distinct ones are read and matched here, in Go.
func (s *Store) visibleTo(ctx context.Context, v *latch.Viewer) (string, []any, error) {
	var principals []string
	if v.Principal != nil {
		rows, err := s.read.QueryContext(ctx, `SELECT DISTINCT value FROM request_approvers WHERE kind = 'aws_principal'`)
		if err != nil {
			return "", nil, translate(err)
		}
		defer rows.Close()
		for rows.Next() {
			var p string
			if err := rows.Scan(&p); err != nil {
				return "", nil, translate(err)
			}
			if v.Principal(p) {
				principals = append(principals, p)
			}
		}
		if err := rows.Err(); err != nil {
			return "", nil, translate(err)
		}
	}
	var ors []string
	var args []any
	in := func(expr string, vals []string) {
		if len(vals) == 0 {
			return
		}
		ors = append(ors, expr+" IN ("+placeholders(len(vals))+")")
		for _, x := range vals {
			args = append(args, x)
		}
	}
	in("requester_key", v.Keys)
	var sub []string
	subIn := func(kind string, vals []string) {
		if len(vals) == 0 {
			return
		}
		sub = append(sub, "(kind = ? AND value IN ("+placeholders(len(vals))+"))")
		args = append(args, kind)
		for _, x := range vals {
			args = append(args, x)
		}
	}
	users := make([]string, len(v.Users))
	for i, u := range v.Users {
		users[i] = strings.ToLower(u)
	}
	subIn("group", v.Groups)
	subIn("user", users)
	subIn("aws_principal", principals)
	if len(sub) > 0 {
		ors = append(ors, "id IN (SELECT request_id FROM request_approvers WHERE "+strings.Join(sub, " OR ")+")")
	}
	if len(ors) == 0 {
		return "0", nil, nil
	}
	return "(" + strings.Join(ors, " OR ") + ")", args, nil
}

func placeholders(n int) string { return "?" + strings.Repeat(", ?", n-1) }

// UpdateRequest writes every field of r if the stored request still has
// r.Version, appends the reviews r has beyond the stored ones, and returns r
// with the version advanced. Returns ENOTFOUND, or ECONFLICT when r is
// stale.
//
// Reviews are append-only: r.Reviews must begin with the stored reviews,
// unchanged. An update from the current version that changes, reorders or
// drops a stored review is refused with EINVALID, and nothing changes; it is
// a caller's mistake that reading again would not cure. (A stale update is
// ECONFLICT whatever its reviews: reading again gives the reviews to extend.)
func (s *Store) UpdateRequest(ctx context.Context, r latch.Request) (latch.Request, error) {
	r = normalizeRequest(r)
	err := s.inTx(ctx, func(tx *txn) error {
		var version int
		var was latch.RequestState
		err := tx.QueryRowContext(ctx, `SELECT version, state FROM requests WHERE id = ?`, r.ID).Scan(&version, &was)
		if err == sql.ErrNoRows {
			return requestNotFound(r.ID)
		} else if err != nil {
			return err
		}
		if version != r.Version {
			return staleRequest(r)
		}
		stored, err := storedReviews(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if err := latch.ExtendsReviews(r.Reviews, stored); err != nil {
			return err
		}
		args := append(requestArgs(r)[1:], r.ID, r.Version)
		res, err := tx.ExecContext(ctx, `UPDATE requests SET
			state = ?, requester_kind = ?, requester_subject = ?, requester_issuer = ?, requester_email = ?, requester_name = ?,
			requester_groups = ?, requester_key = ?,
			region = ?, instance_id = ?, group_id = ?, tags = ?,
			protocol = ?, port_from = ?, port_to = ?, source = ?, duration_us = ?, reason = ?, break_glass = ?, rule = ?,
			approvals_needed = ?, approver_groups = ?, approver_users = ?, approver_principals = ?,
			created_at = ?, pending_until = ?, decided_at = ?,
			grant_id = ?, note = ?, version = ? + 1, access = ?, document = ?
			WHERE id = ? AND version = ?`, args...)
		if err != nil {
			return err
		}
		// No row cannot happen while the transaction holds the write lock.
		if err := touchedRow(res, staleRequest(r)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM request_approvers WHERE request_id = ?`, r.ID); err != nil {
			return err
		}
		if err := indexApprovers(ctx, tx, r); err != nil {
			return err
		}
		for _, e := range latch.RequestEvents(was, r, s.now()) {
			if err := insertEvent(ctx, tx, e, s.now()); err != nil {
				return err
			}
		}
		return insertReviews(ctx, tx, r.ID, len(stored), r.Reviews[len(stored):])
	})
	if err != nil {
		return latch.Request{}, fmt.Errorf("update request %s: %w", r.ID, err)
	}
	r.Version++
	s.notify()
	return r, nil
}

func staleRequest(r latch.Request) error {
	return latch.Errorf(latch.ECONFLICT, "request %s has changed since version %d was read; read it again and retry", r.ID, r.Version)
}

func storedReviews(ctx context.Context, tx *txn, id latch.RequestID) ([]latch.Review, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+reviewColumns+` FROM reviews v WHERE v.request_id = ? ORDER BY v.seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var rvs []latch.Review
	for rows.Next() {
		var rv reviewRow
		if err := rows.Scan(rv.dest()...); err != nil {
			return nil, err
		}
		review, err := rv.review()
		if err != nil {
			return nil, fmt.Errorf("request %s: %w", id, err)
		}
		rvs = append(rvs, review)
	}
	return rvs, rows.Err()
}

func requestNotFound(id latch.RequestID) error {
	return latch.Errorf(latch.ENOTFOUND, "request %s not found", id)
}

// reviewRow holds the reviewColumns of one row of a LEFT JOIN, all NULL
// for a request without reviews.
type reviewRow struct {
	seq                      sql.NullInt64
	kind, subj, issuer, grps sql.NullString
	email, name              sql.NullString
	approve                  sql.NullBool
	reason                   sql.NullString
	at                       sql.NullInt64
}

func (v *reviewRow) dest() []any {
	return []any{&v.seq, &v.kind, &v.subj, &v.issuer, &v.email, &v.name, &v.grps, &v.approve, &v.reason, &v.at}
}

func (v *reviewRow) review() (latch.Review, error) {
	groups, err := decodeList(v.grps.String)
	if err != nil {
		return latch.Review{}, fmt.Errorf("stored groups of review %d: %w", v.seq.Int64, err)
	}
	return latch.Review{
		By: latch.Identity{Kind: latch.IdentityKind(v.kind.String), Subject: v.subj.String,
			Issuer: v.issuer.String, Email: v.email.String, Name: v.name.String, Groups: groups},
		Approve: v.approve.Bool,
		Reason:  v.reason.String,
		At:      decodeTime(v.at),
	}, nil
}

// scanRequests reads rows of requestColumns and reviewColumns, ordered so
// that each request's rows are together and in review order, and closes
// rows.
func scanRequests(rows *sql.Rows) ([]latch.Request, error) {
	defer rows.Close()
	var rs []latch.Request
	for rows.Next() {
		var r latch.Request
		var reqGroups, tags, source, approverGroups, approverUsers, approverPrincipals string
		var durationUS int64
		var created, pendingUntil, decided sql.NullInt64
		var v reviewRow
		dest := []any{&r.ID, &r.State,
			&r.Requester.Kind, &r.Requester.Subject, &r.Requester.Issuer, &r.Requester.Email, &r.Requester.Name, &reqGroups,
			&r.Target.Region, &r.Target.InstanceID, &r.Target.GroupID, &tags,
			&r.Protocol, &r.Ports.From, &r.Ports.To, &source, &durationUS, &r.Reason, &r.BreakGlass, &r.Rule,
			&r.ApprovalsNeeded, &approverGroups, &approverUsers, &approverPrincipals, &created, &pendingUntil, &decided,
			&r.GrantID, &r.Note, &r.Version, &r.Access, &r.Document}
		if err := rows.Scan(append(dest, v.dest()...)...); err != nil {
			return nil, err
		}
		if n := len(rs); n == 0 || rs[n-1].ID != r.ID {
			var err error
			if r.Requester.Groups, err = decodeList(reqGroups); err != nil {
				return nil, fmt.Errorf("request %s: stored requester groups: %w", r.ID, err)
			}
			if r.Target.Tags, err = decodeTags(tags); err != nil {
				return nil, fmt.Errorf("request %s: stored tags: %w", r.ID, err)
			}
			if r.Approvers, err = decodeApprovers(approverGroups, approverUsers, approverPrincipals); err != nil {
				return nil, fmt.Errorf("request %s: stored approvers: %w", r.ID, err)
			}
			if source != "" {
				if r.Source, err = netip.ParsePrefix(source); err != nil {
					return nil, fmt.Errorf("request %s: stored source: %w", r.ID, err)
				}
			}
			r.Duration = time.Duration(durationUS) * time.Microsecond
			r.CreatedAt, r.PendingUntil, r.DecidedAt = decodeTime(created), decodeTime(pendingUntil), decodeTime(decided)
			rs = append(rs, r)
		}
		if v.seq.Valid {
			rv, err := v.review()
			if err != nil {
				return nil, fmt.Errorf("request %s: %w", r.ID, err)
			}
			last := &rs[len(rs)-1]
			last.Reviews = append(last.Reviews, rv)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	return rs, nil
}

// normalizeRequest returns r as it will be read back: times in UTC and to
// the microsecond, Duration to the microsecond, and empty lists and maps
// nil. It does not modify what r refers to.
func normalizeRequest(r latch.Request) latch.Request {
	r.Requester = normalizeIdentity(r.Requester)
	if len(r.Target.Tags) == 0 {
		r.Target.Tags = nil
	}
	r.Duration = r.Duration.Truncate(time.Microsecond)
	r.Approvers = latch.Selector{Groups: nilIfEmpty(r.Approvers.Groups), Users: nilIfEmpty(r.Approvers.Users),
		AWSPrincipals: nilIfEmpty(r.Approvers.AWSPrincipals)}
	if len(r.Reviews) == 0 {
		r.Reviews = nil
	} else {
		r.Reviews = slices.Clone(r.Reviews)
		for i := range r.Reviews {
			r.Reviews[i].By = normalizeIdentity(r.Reviews[i].By)
			r.Reviews[i].At = normalizeTime(r.Reviews[i].At)
		}
	}
	r.CreatedAt, r.PendingUntil, r.DecidedAt = normalizeTime(r.CreatedAt), normalizeTime(r.PendingUntil), normalizeTime(r.DecidedAt)
	return r
}

func normalizeIdentity(id latch.Identity) latch.Identity {
	if len(id.Groups) == 0 {
		id.Groups = nil
	}
	return id
}

func normalizeTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Microsecond).UTC()
}

// encodeList stores l as a JSON array, "[]" when empty.
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // a []string always marshals
	return string(b)
}

// decodeList reverses encodeList, giving nil for an empty array.
func decodeList(s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

// encodeTags stores m as a JSON object, "{}" when empty.
func encodeTags(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map[string]string always marshals
	return string(b)
}

// decodeTags reverses encodeTags, giving nil for an empty object.
func decodeTags(s string) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

func nilIfEmpty(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

func decodeApprovers(groups, users, principals string) (latch.Selector, error) {
	var a latch.Selector
	var err error
	if a.Groups, err = decodeList(groups); err != nil {
		return a, err
	}
	if a.Users, err = decodeList(users); err != nil {
		return a, err
	}
	a.AWSPrincipals, err = decodeList(principals)
	return a, err
}

// indexApprovers writes r's approver entries to request_approvers, users
// in lower case as viewers' names are matched.
func indexApprovers(ctx context.Context, tx *txn, r latch.Request) error {
	add := func(kind, value string) error {
		_, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO request_approvers (request_id, kind, value) VALUES (?, ?, ?)`, r.ID, kind, value)
		return err
	}
	for _, g := range r.Approvers.Groups {
		if err := add("group", g); err != nil {
			return err
		}
	}
	for _, u := range r.Approvers.Users {
		if err := add("user", strings.ToLower(u)); err != nil {
			return err
		}
	}
	for _, p := range r.Approvers.AWSPrincipals {
		if err := add("aws_principal", p); err != nil {
			return err
		}
	}
	return nil
}
