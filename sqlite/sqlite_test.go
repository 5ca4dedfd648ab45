package sqlite_test

import (
	"bytes"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/sqlite"
	"github.com/latchdev/latch/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) latch.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "latch.db"), sqlite.Options{})
	})
}

// mustOpen opens the store at path, logging to the test unless opts has a
// logger, and closes it when the test ends.
func mustOpen(t testing.TB, path string, opts sqlite.Options) *sqlite.Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	s, err := sqlite.Open(t.Context(), path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// rawDB opens path with the driver alone, to look under the Store.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// clock is a settable clock, for checking the times a Store records.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func TestOpen(t *testing.T) {
	t.Run("CreatesPrivateFileAndDirectory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state", "latch")
		path := filepath.Join(dir, "latch.db")
		s := mustOpen(t, path, sqlite.Options{})
		if _, err := s.CreateGrant(t.Context(), storetest.NewGrant(time.Now()), ""); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600} {
			fi, err := os.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s has mode %v, want %v", name, got, want)
			}
		}
	})

	t.Run("WarnsAboutAFileOthersCanRead", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "latch.db")
		if err := os.WriteFile(path, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, 0o644); err != nil { // whatever the umask
			t.Fatal(err)
		}
		var log bytes.Buffer
		mustOpen(t, path, sqlite.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
		if !strings.Contains(log.String(), "level=WARN") {
			t.Fatalf("no warning logged for mode 0644; log:\n%s", log.String())
		}
	})

	t.Run("RefusesAPathThatIsNotAFile", func(t *testing.T) {
		for _, path := range []string{"", ":memory:"} {
			_, err := sqlite.Open(t.Context(), path, sqlite.Options{})
			if latch.ErrorCode(err) != latch.EINVALID {
				t.Errorf("Open(%q) = %v, want EINVALID", path, err)
			}
		}
	})

	t.Run("MigrationsRecordedOnceAndSkippedOnReopen", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "latch.db")
		first := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		c := &clock{now: first}
		var log bytes.Buffer
		debug := &slog.HandlerOptions{Level: slog.LevelDebug}
		s := mustOpen(t, path, sqlite.Options{Now: c.Now, Logger: slog.New(slog.NewTextHandler(&log, debug))})
		// Creating a database is routine: its migrations log at DEBUG.
		if !strings.Contains(log.String(), `level=DEBUG msg="applied schema migration"`) || strings.Contains(log.String(), "level=INFO") {
			t.Fatalf("first open did not log its migrations at DEBUG:\n%s", log.String())
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		log.Reset()
		c.Set(first.Add(time.Hour))
		mustOpen(t, path, sqlite.Options{Now: c.Now, Logger: slog.New(slog.NewTextHandler(&log, debug))})
		if strings.Contains(log.String(), "applied schema migration") {
			t.Fatalf("reopen applied a migration again:\n%s", log.String())
		}

		rows, err := rawDB(t, path).QueryContext(t.Context(), `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var versions []int
		for rows.Next() {
			var v int
			var at int64
			if err := rows.Scan(&v, &at); err != nil {
				t.Fatal(err)
			}
			if got := time.UnixMicro(at).UTC(); !got.Equal(first) {
				t.Errorf("migration %d applied at %v, want %v (the first open)", v, got, first)
			}
			versions = append(versions, v)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		var want []int
		for v := 1; v <= sqlite.SchemaVersion(); v++ {
			want = append(want, v)
		}
		if !slices.Equal(versions, want) {
			t.Fatalf("schema_migrations has versions %v, want %v", versions, want)
		}
	})

	t.Run("RefusesNewerSchema", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "latch.db")
		s := mustOpen(t, path, sqlite.Options{})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		newer := sqlite.SchemaVersion() + 1
		if _, err := rawDB(t, path).ExecContext(t.Context(),
			`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from_the_future.sql', 0)`, newer); err != nil {
			t.Fatal(err)
		}
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err == nil {
			s.Close()
			t.Fatal("Open of a newer schema succeeded")
		}
		if msg := err.Error(); !strings.Contains(msg, "schema version") || !strings.Contains(msg, "upgrade latch") {
			t.Fatalf("Open of a newer schema: %v; want it to say the schema is newer and to upgrade latch", err)
		}
	})

	t.Run("PathWithCharactersURIsReserve", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "my state?#%20", "latch db?x=1#y.db")
		s := mustOpen(t, path, sqlite.Options{})
		if _, err := s.CreateGrant(t.Context(), storetest.NewGrant(time.Now()), ""); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path + "-wal"); err != nil {
			t.Fatalf("SQLite is not writing to the path given: %v", err)
		}
	})

	t.Run("CloseTwice", func(t *testing.T) {
		s := mustOpen(t, filepath.Join(t.TempDir(), "latch.db"), sqlite.Options{})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

func TestTimes(t *testing.T) {
	t.Run("HistoryUsesTheClock", func(t *testing.T) {
		at := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)
		c := &clock{now: at.Add(-time.Hour)}
		s := mustOpen(t, filepath.Join(t.TempDir(), "latch.db"), sqlite.Options{Now: c.Now})
		c.Set(at)
		g, err := s.CreateGrant(t.Context(), storetest.NewGrant(at.Add(-time.Minute)), "created")
		if err != nil {
			t.Fatal(err)
		}
		c.Set(at.Add(time.Second))
		g.State = latch.StateRevoking
		if _, err := s.UpdateGrant(t.Context(), g, "revoking"); err != nil {
			t.Fatal(err)
		}
		evs, err := s.History(t.Context(), g.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := []time.Time{at.Truncate(time.Microsecond), at.Add(time.Second).Truncate(time.Microsecond)}
		if len(evs) != len(want) {
			t.Fatalf("History = %+v, want %d events", evs, len(want))
		}
		for i, e := range evs {
			if e.At != want[i] {
				t.Errorf("event %d at %v, want %v", i, e.At, want[i])
			}
		}
	})

	t.Run("KeepsMicroseconds", func(t *testing.T) {
		s := mustOpen(t, filepath.Join(t.TempDir(), "latch.db"), sqlite.Options{})
		g := storetest.NewGrant(time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC))
		g.NextAttempt = time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC) // before the epoch, too
		if _, err := s.CreateGrant(t.Context(), g, ""); err != nil {
			t.Fatal(err)
		}
		got, err := s.Grant(t.Context(), g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC); got.CreatedAt != want {
			t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want)
		}
		if want := time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC); got.NextAttempt != want {
			t.Errorf("NextAttempt = %v, want %v", got.NextAttempt, want)
		}
	})
}

func TestSurvivesCloseAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	s := mustOpen(t, path, sqlite.Options{})
	var want []latch.Grant
	for i := range 5 {
		g, err := s.CreateGrant(t.Context(), storetest.NewGrant(time.Date(2030, 1, 1, 0, i, 0, 0, time.UTC)), "created")
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			g.State = latch.StateRevoking
			if g, err = s.UpdateGrant(t.Context(), g, "ending"); err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, g)
	}
	slices.Reverse(want)
	history := map[latch.GrantID][]latch.GrantEvent{}
	for _, g := range want {
		evs, err := s.History(t.Context(), g.ID)
		if err != nil {
			t.Fatal(err)
		}
		history[g.ID] = evs
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, path, sqlite.Options{})
	got, err := s.Grants(t.Context(), latch.GrantFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after reopen Grants =\n%+v\nwant\n%+v", got, want)
	}
	for _, g := range want {
		evs, err := s.History(t.Context(), g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(evs, history[g.ID]) {
			t.Errorf("after reopen History(%s) = %+v, want %+v", g.ID, evs, history[g.ID])
		}
	}
}
