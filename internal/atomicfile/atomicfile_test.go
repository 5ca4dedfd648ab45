package atomicfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/latchdev/latch/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(path, []byte("new\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if string(b) != "new\n" || fi.Mode().Perm() != 0o640 {
		t.Errorf("content %q mode %v; want the new content, 0640", b, fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	// A directory that is not there: an error, and nothing written.
	if err := atomicfile.Write(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Error("no error writing into a missing directory")
	}
	// Renaming onto a directory fails; the temporary file is removed.
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(filepath.Join(dir, "d"), []byte("x"), 0o600); err == nil {
		t.Error("no error replacing a directory")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("a failed write left files behind: %v", entries)
	}
}

func TestWriteNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := atomicfile.WriteNew(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := atomicfile.WriteNew(path, []byte("second"), 0o600)
	pe, ok := errors.AsType[*fs.PathError](err)
	if !errors.Is(err, fs.ErrExist) || !ok || pe.Path != path {
		t.Fatalf("WriteNew over an existing file = %v; want an *fs.PathError for %s wrapping fs.ErrExist", err, path)
	}
	b, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if string(b) != "first" || fi.Mode().Perm() != 0o600 {
		t.Errorf("content %q mode %v; want the first content, 0600", b, fi.Mode().Perm())
	}
	if err := atomicfile.WriteNew(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err == nil {
		t.Error("no error writing into a missing directory")
	}
}
