package sqlite_test

import (
	"bytes"
	"database/sql"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/sqlite"
	"github.com/latchdev/latch/storetest"
)

// schemaObjects returns the names of the tables and indexes in the file at
// path, sorted.
func schemaObjects(t *testing.T, path string) []string {
	t.Helper()
	rows, err := rawDB(t, path).QueryContext(t.Context(),
		`SELECT name FROM sqlite_master WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	old, err := sqlite.OpenAtVersion(t.Context(), path, sqlite.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Close() })

	// Grants in each kind of state, with history, by two requesters,
	// written as version 1 wrote them: its columns only.
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var want []latch.Grant
	history := map[latch.GrantID][]latch.GrantEvent{}
	db := rawDB(t, path)
	for i := range 4 {
		g := storetest.NewGrant(start.Add(time.Duration(i) * time.Minute))
		g.Version = 1
		if i%2 == 1 {
			g.Requester = "bob@example.com"
		}
		switch i {
		case 1:
			g.State, g.EndAs, g.Attempts, g.LastError = latch.StateRevokeFailed, latch.StateRevoked, 2, "throttled"
			g.NextAttempt = start.Add(time.Hour)
		case 2:
			g.State, g.EndedAt = latch.StateExpired, start.Add(2*time.Hour)
		}
		insertV1Grant(t, db, g)
		history[g.ID] = []latch.GrantEvent{{GrantID: g.ID, At: g.CreatedAt, State: g.State, Note: "created"}}
		want = append(want, g)
	}
	slices.Reverse(want)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	v1 := schemaObjects(t, path)
	if slices.Contains(v1, "requests") || slices.Contains(v1, "grants_requester") {
		t.Fatalf("a version-1 file has %v; want only what 001 makes", v1)
	}

	var log bytes.Buffer
	s := mustOpen(t, path, sqlite.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if l := log.String(); !strings.Contains(l, "002_requests.sql") || strings.Contains(l, "001_grants.sql") {
		t.Fatalf("opening a version-1 file logged:\n%s\nwant migration 002 applied and 001 not again", l)
	}
	for _, name := range []string{"requests", "reviews", "requests_created", "requests_state", "requests_requester", "grants_requester"} {
		if got := schemaObjects(t, path); !slices.Contains(got, name) {
			t.Errorf("after migration the schema has %v, lacking %s", got, name)
		}
	}

	got, err := s.Grants(t.Context(), latch.GrantFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after migration Grants =\n%+v\nwant\n%+v", got, want)
	}
	for _, g := range want {
		evs, err := s.History(t.Context(), g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(evs, history[g.ID]) {
			t.Errorf("after migration History(%s) = %+v, want %+v", g.ID, evs, history[g.ID])
		}
	}
	bobs, err := s.Grants(t.Context(), latch.GrantFilter{Requester: "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if wantBobs := []latch.Grant{want[0], want[2]}; !slices.Equal(bobs, wantBobs) {
		t.Fatalf("after migration bob's grants are %+v, want %+v", bobs, wantBobs)
	}

	// The old grants can still change, and requests can now be stored.
	g := want[3]
	g.State = latch.StateRevoking
	if _, err := s.UpdateGrant(t.Context(), g, "ending after the upgrade"); err != nil {
		t.Fatal(err)
	}
	if rs, err := s.Requests(t.Context(), latch.RequestFilter{}); err != nil || len(rs) != 0 {
		t.Fatalf("after migration Requests = %v, %v; want none", rs, err)
	}
	r, err := s.CreateRequest(t.Context(), storetest.NewRequest(start))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Request(t.Context(), r.ID); err != nil {
		t.Fatal(err)
	}
}

func TestOpenAtVersionRefusesANewerFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	if err := mustOpen(t, path, sqlite.Options{}).Close(); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.OpenAtVersion(t.Context(), path, sqlite.Options{}, 1)
	if err == nil {
		s.Close()
		t.Fatal("a version-1 latch opened a newer file")
	}
	if !strings.Contains(err.Error(), "upgrade latch") {
		t.Fatalf("OpenAtVersion(1) of a newer file: %v; want it to say to upgrade latch", err)
	}
}

// micros is t as the schema stores times, or nil for the zero time.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// insertV1Grant writes g and one history event with version 1's columns.
func insertV1Grant(t *testing.T, db *sql.DB, g latch.Grant) {
	t.Helper()
	var due any
	if at, ok := g.DueAt(); ok {
		due = at.UnixMicro()
	}
	_, err := db.ExecContext(t.Context(), `INSERT INTO grants (id, state, region, group_id, protocol, port_from, port_to, source,
		rule_id, requester, reason, created_at, expires_at, ended_at, end_as, attempts, next_attempt, last_error, due_at, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.State, g.Region, g.GroupID, g.Protocol, g.Ports.From, g.Ports.To, g.Source.String(), g.RuleID, g.Requester, g.Reason,
		micros(g.CreatedAt), micros(g.ExpiresAt), micros(g.EndedAt), g.EndAs, g.Attempts, micros(g.NextAttempt), g.LastError, due, g.Version)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(t.Context(), `INSERT INTO grant_events (grant_id, seq, at, state, note) VALUES (?, 1, ?, ?, 'created')`,
		g.ID, g.CreatedAt.UnixMicro(), g.State); err != nil {
		t.Fatal(err)
	}
}

// A version-6 file's requests and grants get identity keys: requests the
// key of their requester, and grants opened by a request its owner.
func TestMigrateIdentityKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	old, err := sqlite.OpenAtVersion(t.Context(), path, sqlite.Options{}, 6)
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	db := rawDB(t, path)
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	opened, direct := storetest.NewGrant(start), storetest.NewGrant(start.Add(time.Minute))
	insertV1Grant(t, db, opened)
	insertV1Grant(t, db, direct)
	_, err = db.ExecContext(t.Context(), `INSERT INTO requests (id, state, requester_kind, requester_subject, requester_issuer,
		requester_groups, region, instance_id, group_id, tags, protocol, port_from, port_to, source, duration_us, reason, break_glass,
		rule, approvals_needed, approver_groups, created_at, pending_until, decided_at, grant_id, note, version)
		VALUES ('r-00000000000000a1', 'active', 'oidc', 'Alice@Example.com', 'https://idp.test', '[]', 'us-east-1', '', 'sg-0123456789abcdef0',
		'{}', 'tcp', 22, 22, '203.0.113.7/32', 0, 'x', 0, 'prod-ssh', 1, '["sre"]', ?, ?, NULL, ?, '', 1)`,
		start.UnixMicro(), start.Add(time.Hour).UnixMicro(), opened.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(t.Context(), `INSERT INTO requests (id, state, requester_kind, requester_subject, requester_issuer,
		requester_groups, region, instance_id, group_id, tags, protocol, port_from, port_to, source, duration_us, reason, break_glass,
		rule, approvals_needed, approver_groups, created_at, pending_until, decided_at, grant_id, note, version)
		VALUES ('r-00000000000000a2', 'pending', 'oidc', 'bob@example.com', 'https://idp.test', '["sre"]', 'us-east-1', '', 'sg-0123456789abcdef0',
		'{}', 'tcp', 22, 22, '203.0.113.7/32', 0, 'x', 0, 'prod-ssh', 2, '["sre"]', ?, ?, NULL, '', '', 1)`,
		start.UnixMicro(), start.Add(time.Hour).UnixMicro())
	if err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, path, sqlite.Options{})
	// Rows keep the keys they had: the requester's subject then (an email,
	// by the old default). Their owners are admins' to see after the upgrade.
	alice := latch.Identity{Kind: latch.KindOIDC, Issuer: "https://idp.test", Subject: "alice@example.com"}
	gs, err := s.Grants(t.Context(), latch.GrantFilter{Owners: []string{alice.Key()}})
	if err != nil || len(gs) != 1 || gs[0].ID != opened.ID {
		t.Fatalf("alice's grants after migration = %+v, %v; want the one her request opened", gs, err)
	}
	if g, err := s.Grant(t.Context(), direct.ID); err != nil || g.Owner != "" {
		t.Fatalf("a grant no request opened = %+v, %v; want no owner", g, err)
	}
	rs, err := s.Requests(t.Context(), latch.RequestFilter{VisibleTo: &latch.Viewer{Groups: []string{"sre"}}})
	if err != nil || len(rs) != 2 || rs[1].Approvers.Groups[0] != "sre" {
		t.Fatalf("requests sre may see after migration = %+v, %v", rs, err)
	}
	if rs, err := s.Requests(t.Context(), latch.RequestFilter{Requesters: []string{alice.Key()}}); err != nil || len(rs) != 1 {
		t.Fatalf("alice's requests after migration = %+v, %v", rs, err)
	}
	// A request pending across the upgrade cannot be approved: bob, now
	// keyed by sub, could not be told from bob keyed by email.
	r, err := s.Request(t.Context(), "r-00000000000000a2")
	if err != nil || r.State != latch.RequestTimedOut || r.DecidedAt.IsZero() || !strings.Contains(r.Note, "identity keys") {
		t.Fatalf("a request pending across the upgrade = %s (%s, decided %v), %v; want timed out, saying why", r.State, r.Note, r.DecidedAt, err)
	}
}

func TestUpgradingASchemaLogsAtInfo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	old, err := sqlite.OpenAtVersion(t.Context(), path, sqlite.Options{Logger: slog.New(slog.DiscardHandler)}, 1)
	if err != nil {
		t.Fatal(err)
	}
	old.Close()
	var log bytes.Buffer
	mustOpen(t, path, sqlite.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if !strings.Contains(log.String(), `level=INFO msg="applied schema migration"`) || !strings.Contains(log.String(), "version=2") {
		t.Errorf("upgrading from version 1 logged no migration at INFO:\n%s", log.String())
	}
}
