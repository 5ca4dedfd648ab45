package sqlite_test

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/sqlite"
	"github.com/latchdev/latch/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) latch.Store {
		return mustOpen(t, filepath.Join(t.TempDir(), "latch.db"), sqlite.Options{})
	})
}

// mustOpen opens the store at path, logging to the test, and closes it when
// the test ends.
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
