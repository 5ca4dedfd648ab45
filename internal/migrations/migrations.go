// Package migrations reads a store's embedded schema migrations: files
// named NNN_name.sql whose versions run 1, 2, 3, … without gaps, so that
// "the highest version applied" says exactly which ones have been. Each
// store applies them its own way.
package migrations

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
)

// Migration is one schema change.
type Migration struct {
	Version int
	Name    string // file name, e.g. 001_grants.sql
	SQL     string
}

var name = regexp.MustCompile(`^([0-9]{3})_[a-z0-9_]+\.sql$`)

// Read returns the migrations in dir of fsys, in order.
func Read(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, e := range entries { // ReadDir sorts by name
		m := name.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s: name is not NNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d", e.Name(), v, len(ms)+1)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	return ms, nil
}

// Latest is the highest version of ms, 0 for none.
func Latest(ms []Migration) int {
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}
