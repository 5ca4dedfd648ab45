// Package atomicfile replaces files so that a reader sees the old content
// or the new, never half of either, and creates files that must not exist
// yet.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Write replaces path with data, with the given mode: it writes and syncs
// a temporary file in the same directory, then renames it over path. The
// temporary file is removed if anything fails.
func Write(path string, data []byte, mode fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	// Chmod, not the umask, decides the mode.
	if err := f.Chmod(mode); err != nil {
		_ = f.Close()
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// WriteNew creates path with data and the given mode (less the umask),
// and fails if path exists: the error wraps [fs.ErrExist] and is an
// [*fs.PathError] naming it. It is for keys, which must never be replaced
// by mistake. The file is synced, and removed if anything fails after it
// was created.
func WriteNew(path string, data []byte, mode fs.FileMode) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
