package sqlite_test

import (
	"bytes"
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

	// Grants in each kind of state, with history, by two requesters.
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var want []latch.Grant
	for i := range 4 {
		g := storetest.NewGrant(start.Add(time.Duration(i) * time.Minute))
		if i%2 == 1 {
			g.Requester = "bob@example.com"
		}
		if g, err = old.CreateGrant(t.Context(), g, "created"); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 1:
			g.State, g.EndAs, g.Attempts, g.LastError = latch.StateRevokeFailed, latch.StateRevoked, 2, "throttled"
			g.NextAttempt = start.Add(time.Hour)
		case 2:
			g.State, g.EndedAt = latch.StateExpired, start.Add(2*time.Hour)
		}
		if i > 0 {
			if g, err = old.UpdateGrant(t.Context(), g, "moved on"); err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, g)
	}
	slices.Reverse(want)
	history := map[latch.GrantID][]latch.GrantEvent{}
	for _, g := range want {
		if history[g.ID], err = old.History(t.Context(), g.ID); err != nil {
			t.Fatal(err)
		}
	}
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
