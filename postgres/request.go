package postgres

import (
	"context"
	"encoding/json"
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

// Requests are stored whole in one row of requests, and their reviews one a
// row in reviews, numbered from 1 in order. The empty lists and maps of a
// request (groups, tags, approvers, reviews) read back as nil, and
// CreateRequest and UpdateRequest return them so: what they return is what
// Request returns. Duration is kept to the microsecond, like times.

const requestColumns = `r.id, r.state,
	r.requester_kind, r.requester_subject, r.requester_issuer, r.requester_email, r.requester_name, r.requester_groups,
	r.region, r.instance_id, r.group_id, r.tags,
	r.protocol, r.port_from, r.port_to, r.source, r.duration_us, r.reason, r.break_glass, r.rule,
	r.approvals_needed, r.approver_groups, r.approver_users, r.approver_principals, r.created_at, r.pending_until, r.decided_at,
	r.grant_id, r.note, r.version, r.access, r.document`

const reviewColumns = `v.seq, v.by_kind, v.by_subject, v.by_issuer, v.by_email, v.by_name, v.by_groups, v.approve, v.reason, v.at`

// requestNames are the columns requestArgs gives, in its order.
const requestNames = `id, state, requester_kind, requester_subject, requester_issuer, requester_email, requester_name, requester_groups, requester_key,
	region, instance_id, group_id, tags,
	protocol, port_from, port_to, source, duration_us, reason, break_glass, rule,
	approvals_needed, approver_groups, approver_users, approver_principals, created_at, pending_until, decided_at,
	grant_id, note, version, access, document`

// CreateRequest records r, with its reviews, at Version 1. Returns ECONFLICT
// if the ID is taken.
func (s *Store) CreateRequest(ctx context.Context, r latch.Request) (latch.Request, error) {
	r = normalizeRequest(r)
	r.Version = 1
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		args := requestArgs(r)
		tag, err := tx.Exec(ctx, `INSERT INTO requests (`+requestNames+`) VALUES (`+placeholders(1, len(args))+`)
			ON CONFLICT (id) DO NOTHING`, args...)
		if err != nil {
			return err
		}
		if err := touched(tag, latch.Errorf(latch.ECONFLICT, "request %s already exists", r.ID)); err != nil {
			return err
		}
		if err := indexApprovers(ctx, tx, r); err != nil {
			return err
		}
		now := s.now()
		for _, e := range latch.RequestEvents("", r, now) {
			if err := insertEvent(ctx, tx, e, now); err != nil {
				return err
			}
		}
		return insertReviews(ctx, tx, r.ID, 0, r.Reviews)
	})
	if err != nil {
		return latch.Request{}, fmt.Errorf("create request %s: %w", r.ID, err)
	}
	s.changedHere()
	return r, nil
}

// placeholders returns "$from, …, $(from+n-1)".
func placeholders(from, n int) string {
	var p params = make([]any, from-1)
	l := make([]string, n)
	for i := range l {
		l[i] = p.add(nil)
	}
	return strings.Join(l, ", ")
}

// requestArgs returns r's columns, in the order of requestNames.
func requestArgs(r latch.Request) []any {
	q, t, a := r.Requester, r.Target, r.Approvers
	return []any{
		string(r.ID), string(r.State), string(q.Kind), q.Subject, q.Issuer, q.Email, q.Name, encodeList(q.Groups), q.Key(),
		t.Region, string(t.InstanceID), t.GroupID, encodeTags(t.Tags),
		string(r.Protocol), r.Ports.From, r.Ports.To, encodePrefix(r.Source), r.Duration.Microseconds(), r.Reason, r.BreakGlass, r.Rule,
		r.ApprovalsNeeded, encodeList(a.Groups), encodeList(a.Users), encodeList(a.AWSPrincipals),
		encodeTime(r.CreatedAt), encodeTime(r.PendingUntil), encodeTime(r.DecidedAt),
		string(r.GrantID), r.Note, r.Version, string(r.Access), string(r.Document),
	}
}

// insertReviews appends rvs to the reviews of request id, which has have
// reviews already.
func insertReviews(ctx context.Context, tx pgx.Tx, id latch.RequestID, have int, rvs []latch.Review) error {
	for i, rv := range rvs {
		_, err := tx.Exec(ctx, `INSERT INTO reviews
			(request_id, seq, by_kind, by_subject, by_issuer, by_email, by_name, by_groups, approve, reason, at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			string(id), have+i+1, string(rv.By.Kind), rv.By.Subject, rv.By.Issuer, rv.By.Email, rv.By.Name, encodeList(rv.By.Groups),
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
	rows, err := s.db.Query(ctx, `SELECT `+requestColumns+`, `+reviewColumns+`
		FROM requests r LEFT JOIN reviews v ON v.request_id = r.id
		WHERE r.id = $1 ORDER BY v.seq`, string(id))
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
	var p params
	if len(f.States) > 0 {
		where = append(where, "state = ANY("+p.add(strs(f.States))+")")
	}
	if len(f.Requesters) > 0 {
		where = append(where, "requester_key = ANY("+p.add(f.Requesters)+")")
	}
	if f.VisibleTo != nil {
		w, err := s.visibleTo(ctx, f.VisibleTo, &p)
		if err != nil {
			return nil, fmt.Errorf("list requests: %w", err)
		}
		where = append(where, w)
	}
	if c := f.Before; c != nil {
		where = append(where, "(created_at, id) < ("+p.add(encodeTime(c.CreatedAt))+"::timestamptz, "+p.add(string(c.ID))+")")
	}
	if f.GrantID != "" {
		where = append(where, "grant_id = "+p.add(string(f.GrantID))+" AND grant_id != ''") // lets the partial index serve a parameter
	}
	sel := `SELECT * FROM requests`
	if len(where) > 0 {
		sel += " WHERE " + strings.Join(where, " AND ")
	}
	sel += " ORDER BY created_at DESC NULLS LAST, id DESC"
	if f.Limit > 0 {
		sel += " LIMIT " + p.add(f.Limit)
	}
	rows, err := s.db.Query(ctx, `WITH r AS (`+sel+`)
		SELECT `+requestColumns+`, `+reviewColumns+`
		FROM r LEFT JOIN reviews v ON v.request_id = r.id
		ORDER BY r.created_at DESC NULLS LAST, r.id DESC, v.seq`, p...)
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", translate(err))
	}
	rs, err := scanRequests(rows)
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	return rs, nil
}

// visibleTo returns the condition that keeps the requests v may see, its
// arguments added to p: v's own (by key), and those whose approvers name v
// (by request_approvers), each an index lookup. AWS principal patterns are
// few, so the distinct ones are read and matched here, in Go.
func (s *Store) visibleTo(ctx context.Context, v *latch.Viewer, p *params) (string, error) {
	var principals []string
	if v.Principal != nil {
		rows, err := s.db.Query(ctx, `SELECT DISTINCT value FROM request_approvers WHERE kind = 'aws_principal'`)
		if err != nil {
			return "", translate(err)
		}
		all, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return "", translate(err)
		}
		for _, pat := range all {
			if v.Principal(pat) {
				principals = append(principals, pat)
			}
		}
	}
	var ors []string
	if len(v.Keys) > 0 {
		ors = append(ors, "requester_key = ANY("+p.add(v.Keys)+")")
	}
	var sub []string
	subIn := func(kind string, vals []string) {
		if len(vals) > 0 {
			sub = append(sub, "(kind = "+p.add(kind)+" AND value = ANY("+p.add(vals)+"))")
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
		return "false", nil
	}
	return "(" + strings.Join(ors, " OR ") + ")", nil
}

// UpdateRequest writes every field of r if the stored request still has
// r.Version, appends the reviews r has beyond the stored ones, and returns r
// with the version advanced. Returns ENOTFOUND, or ECONFLICT when r is
// stale. It locks the request's row first, so racing updates queue.
//
// Reviews are append-only: r.Reviews must begin with the stored reviews,
// unchanged. An update from the current version that changes, reorders or
// drops a stored review is refused with EINVALID, and nothing changes.
func (s *Store) UpdateRequest(ctx context.Context, r latch.Request) (latch.Request, error) {
	r = normalizeRequest(r)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var version int
		var was string
		err := tx.QueryRow(ctx, `SELECT version, state FROM requests WHERE id = $1 FOR UPDATE`, string(r.ID)).Scan(&version, &was)
		if errors.Is(err, pgx.ErrNoRows) {
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
		args := requestArgs(r)
		names := strings.Split(requestNames, ",")
		set := make([]string, 0, len(names))
		for i, n := range names {
			n = strings.TrimSpace(n)
			switch n {
			case "id":
				continue
			case "version":
				set = append(set, fmt.Sprintf("version = $%d + 1", i+1))
			default:
				set = append(set, fmt.Sprintf("%s = $%d", n, i+1))
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE requests SET `+strings.Join(set, ", ")+` WHERE id = $1`, args...); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM request_approvers WHERE request_id = $1`, string(r.ID)); err != nil {
			return err
		}
		if err := indexApprovers(ctx, tx, r); err != nil {
			return err
		}
		now := s.now()
		for _, e := range latch.RequestEvents(latch.RequestState(was), r, now) {
			if err := insertEvent(ctx, tx, e, now); err != nil {
				return err
			}
		}
		return insertReviews(ctx, tx, r.ID, len(stored), r.Reviews[len(stored):])
	})
	if err != nil {
		return latch.Request{}, fmt.Errorf("update request %s: %w", r.ID, err)
	}
	r.Version++
	s.changedHere()
	return r, nil
}

func staleRequest(r latch.Request) error {
	return latch.Errorf(latch.ECONFLICT, "request %s has changed since version %d was read; read it again and retry", r.ID, r.Version)
}

func storedReviews(ctx context.Context, tx pgx.Tx, id latch.RequestID) ([]latch.Review, error) {
	rows, err := tx.Query(ctx, `SELECT `+reviewColumns+` FROM reviews v WHERE v.request_id = $1 ORDER BY v.seq`, string(id))
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
		rvs = append(rvs, rv.review())
	}
	return rvs, rows.Err()
}

func requestNotFound(id latch.RequestID) error {
	return latch.Errorf(latch.ENOTFOUND, "request %s not found", id)
}

// reviewRow holds the reviewColumns of one row of a LEFT JOIN, all NULL
// for a request without reviews.
type reviewRow struct {
	seq                             pgtype.Int4
	kind, subj, issuer, email, name pgtype.Text
	groups                          []string
	approve                         pgtype.Bool
	reason                          pgtype.Text
	at                              pgtype.Timestamptz
}

func (v *reviewRow) dest() []any {
	return []any{&v.seq, &v.kind, &v.subj, &v.issuer, &v.email, &v.name, &v.groups, &v.approve, &v.reason, &v.at}
}

func (v *reviewRow) review() latch.Review {
	return latch.Review{
		By: latch.Identity{Kind: latch.IdentityKind(v.kind.String), Subject: v.subj.String,
			Issuer: v.issuer.String, Email: v.email.String, Name: v.name.String, Groups: nilIfEmpty(v.groups)},
		Approve: v.approve.Bool,
		Reason:  v.reason.String,
		At:      decodeTime(v.at),
	}
}

// scanRequests reads rows of requestColumns and reviewColumns, ordered so
// that each request's rows are together and in review order, and closes
// rows.
func scanRequests(rows pgx.Rows) ([]latch.Request, error) {
	defer rows.Close()
	var rs []latch.Request
	for rows.Next() {
		var r latch.Request
		var id, state, kind, instance, protocol, source, grantID, access, document string
		var reqGroups, approverGroups, approverUsers, approverPrincipals []string
		var tags []byte
		var durationUS int64
		var created, pendingUntil, decided pgtype.Timestamptz
		var v reviewRow
		dest := []any{&id, &state,
			&kind, &r.Requester.Subject, &r.Requester.Issuer, &r.Requester.Email, &r.Requester.Name, &reqGroups,
			&r.Target.Region, &instance, &r.Target.GroupID, &tags,
			&protocol, &r.Ports.From, &r.Ports.To, &source, &durationUS, &r.Reason, &r.BreakGlass, &r.Rule,
			&r.ApprovalsNeeded, &approverGroups, &approverUsers, &approverPrincipals, &created, &pendingUntil, &decided,
			&grantID, &r.Note, &r.Version, &access, &document}
		if err := rows.Scan(append(dest, v.dest()...)...); err != nil {
			return nil, err
		}
		r.ID = latch.RequestID(id)
		if n := len(rs); n == 0 || rs[n-1].ID != r.ID {
			r.State, r.Requester.Kind, r.Target.InstanceID = latch.RequestState(state), latch.IdentityKind(kind), latch.InstanceID(instance)
			r.Protocol, r.GrantID, r.Access, r.Document = latch.Protocol(protocol), latch.GrantID(grantID), latch.Access(access), latch.SSMDocument(document)
			r.Requester.Groups = nilIfEmpty(reqGroups)
			r.Approvers = latch.Selector{Groups: nilIfEmpty(approverGroups), Users: nilIfEmpty(approverUsers),
				AWSPrincipals: nilIfEmpty(approverPrincipals)}
			var err error
			if r.Target.Tags, err = decodeTags(tags); err != nil {
				return nil, fmt.Errorf("request %s: stored tags: %w", r.ID, err)
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
			last := &rs[len(rs)-1]
			last.Reviews = append(last.Reviews, v.review())
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

// encodeTags stores m as a JSON object, "{}" when empty.
func encodeTags(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(m) // a map[string]string always marshals
	return string(b)
}

// decodeTags reverses encodeTags, giving nil for an empty object.
func decodeTags(b []byte) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// indexApprovers writes r's approver entries to request_approvers, users
// in lower case as viewers' names are matched.
func indexApprovers(ctx context.Context, tx pgx.Tx, r latch.Request) error {
	var kinds, values []string
	for _, g := range r.Approvers.Groups {
		kinds, values = append(kinds, "group"), append(values, g)
	}
	for _, u := range r.Approvers.Users {
		kinds, values = append(kinds, "user"), append(values, strings.ToLower(u))
	}
	for _, p := range r.Approvers.AWSPrincipals {
		kinds, values = append(kinds, "aws_principal"), append(values, p)
	}
	if len(kinds) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO request_approvers (request_id, kind, value)
		SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS a (k, v)
		ON CONFLICT DO NOTHING`, string(r.ID), kinds, values)
	return err
}
