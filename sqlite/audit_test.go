package sqlite_test

import (
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/sqlite"
	"github.com/latchdev/latch/storetest"
)

// problem is what a test expects of a latch.AuditProblem.
type problem struct {
	kind string
	seq  int64
}

// mustFillAudit appends n entries to s, signed if sign is not nil.
func mustFillAudit(t testing.TB, s *sqlite.Store, n int, sign func(string) string) {
	t.Helper()
	for i := range n {
		if _, err := s.AppendAudit(t.Context(), storetest.NewAuditEntry(i), sign); err != nil {
			t.Fatal(err)
		}
	}
}

// verify reads s's whole log and verifies it with pub.
func verify(t *testing.T, s latch.Store, pub ed25519.PublicKey) []latch.AuditProblem {
	t.Helper()
	es, head, err := latch.ReadAudit(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	return latch.VerifyAudit(es, head, pub)
}

func exec1(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// entry reads entry seq through the store.
func entry(t *testing.T, s latch.Store, seq int64) latch.AuditEntry {
	t.Helper()
	es, err := s.AuditEntries(t.Context(), latch.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(es, func(e latch.AuditEntry) bool { return e.Seq == seq })
	if i < 0 {
		t.Fatalf("no entry %d", seq)
	}
	return es[i]
}

// overwrite writes e over the row with e's seq, as someone editing the file
// by hand would.
func overwrite(t *testing.T, db *sql.DB, e latch.AuditEntry) {
	t.Helper()
	details, err := json.Marshal(e.Details)
	if err != nil {
		t.Fatal(err)
	}
	exec1(t, db, `UPDATE audit SET at = ?, actor = ?, action = ?, target = ?, grant_id = ?, request_id = ?,
		details = ?, prev_hash = ?, hash = ?, signature = ? WHERE seq = ?`,
		e.At.UnixMicro(), e.Actor, e.Action, e.Target, e.GrantID, e.RequestID, string(details), e.PrevHash, e.Hash, e.Signature, e.Seq)
}

// TestAuditTampering edits the database file through a connection of its
// own, as someone with the file and the sqlite3 shell could, and checks
// that VerifyAudit says what was done, and to which entry.
func TestAuditTampering(t *testing.T) {
	const n = 10
	priv, pub, _ := storetest.AuditKeys()
	tests := []struct {
		name   string
		signed bool
		tamper func(t *testing.T, db *sql.DB, s *sqlite.Store)
		want   []problem
	}{
		{name: "Untouched", tamper: func(*testing.T, *sql.DB, *sqlite.Store) {}},
		{name: "UntouchedSigned", signed: true, tamper: func(*testing.T, *sql.DB, *sqlite.Store) {}},
		{name: "UpdateADetail", tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `UPDATE audit SET details = json_set(details, '$.reason', 'nothing to see') WHERE seq = 5`)
		}, want: []problem{{"changed", 5}}},
		{name: "UpdateTheActor", tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `UPDATE audit SET actor = 'bob@example.com' WHERE seq = 5`)
		}, want: []problem{{"changed", 5}}},
		{name: "UpdateTheTime", tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `UPDATE audit SET at = at - 3600000000 WHERE seq = 5`)
		}, want: []problem{{"changed", 5}}},
		{name: "UpdateTheSeq", tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `UPDATE audit SET seq = 50 WHERE seq = 5`)
		}, want: []problem{{"changed", 5}}},
		{name: "UpdateAndRecomputeTheHash", tamper: func(t *testing.T, db *sql.DB, s *sqlite.Store) {
			e := entry(t, s, 5)
			e.Details["reason"] = "nothing to see"
			e.Hash = e.ComputeHash()
			overwrite(t, db, e)
		}, want: []problem{{"changed", 5}}},
		{name: "UpdateAndRecomputeTheHashSigned", signed: true, tamper: func(t *testing.T, db *sql.DB, s *sqlite.Store) {
			e := entry(t, s, 5)
			e.Details["reason"] = "nothing to see"
			e.Hash = e.ComputeHash()
			overwrite(t, db, e)
		}, want: []problem{{"changed", 5}, {"bad-signature", 5}}},
		{name: "RewriteTheRestAndMoveTheHeadSigned", signed: true, tamper: func(t *testing.T, db *sql.DB, s *sqlite.Store) {
			prev := entry(t, s, 7).Hash
			for seq := int64(8); seq <= n; seq++ {
				e := entry(t, s, seq)
				e.Actor, e.PrevHash = "mallory@example.com", prev
				e.Hash = e.ComputeHash()
				overwrite(t, db, e)
				prev = e.Hash
			}
			exec1(t, db, `UPDATE audit_head SET hash = ?`, prev)
		}, want: []problem{{"bad-signature", 8}, {"bad-signature", 9}, {"bad-signature", 10}, {"bad-signature", 10}}}, // the entry and the head

		{name: "DeleteARow", tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `DELETE FROM audit WHERE seq = 5`)
		}, want: []problem{{"removed", 5}}},
		{name: "DeleteTheFirst", tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `DELETE FROM audit WHERE seq = 1`)
		}, want: []problem{{"removed", 1}}},
		{name: "DeleteSeveral", tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `DELETE FROM audit WHERE seq BETWEEN 4 AND 6`)
		}, want: []problem{{"removed", 4}}},

		{name: "InsertAForgedRowPastTheHead", tamper: func(t *testing.T, db *sql.DB, s *sqlite.Store) {
			forged := latch.LinkAudit(latch.AuditEntry{Actor: "mallory@example.com", Action: latch.AuditApproved}, n, entry(t, s, n).Hash, nil)
			insert(t, db, forged)
		}, want: []problem{{"inserted", n + 1}}},
		{name: "InsertAForgedRowWithATakenSeq", tamper: func(t *testing.T, db *sql.DB, s *sqlite.Store) {
			forged := latch.LinkAudit(latch.AuditEntry{Actor: "mallory@example.com", Action: latch.AuditApproved}, 5, entry(t, s, 5).Hash, nil)
			if err := tryInsert(t, db, forged); err == nil || !strings.Contains(err.Error(), "UNIQUE") {
				t.Fatalf("inserting a second entry 6: %v; want the unique index on seq to refuse it", err)
			}
			exec1(t, db, `DROP INDEX audit_seq`) // which anyone with the file can do
			insert(t, db, forged)
		}, want: []problem{{"inserted", 6}}},
		{name: "InsertACopy", tamper: func(t *testing.T, db *sql.DB, s *sqlite.Store) {
			exec1(t, db, `DROP INDEX audit_seq`)
			insert(t, db, entry(t, s, 3))
		}, want: []problem{{"inserted", 3}}},
		{name: "ReplaceARow", tamper: func(t *testing.T, db *sql.DB, s *sqlite.Store) {
			forged := latch.LinkAudit(latch.AuditEntry{Actor: "mallory@example.com", Action: latch.AuditApproved}, 5, entry(t, s, 5).Hash, nil)
			exec1(t, db, `DELETE FROM audit WHERE seq = 6`)
			insert(t, db, forged)
		}, want: []problem{{"reordered", 6}, {"changed", 6}}},

		{name: "SwapTwoRowsContents", tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			swap(t, db, 3, 7)
		}, want: []problem{{"reordered", 3}, {"reordered", 7}}},
		{name: "MoveARowToTheEnd", tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `UPDATE audit SET id = (SELECT MAX(id) + 1 FROM audit) WHERE seq = 3`)
		}, want: []problem{{"reordered", 3}}},

		{name: "DeleteTheTail", tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `DELETE FROM audit WHERE seq > 7`)
		}, want: []problem{{"truncated", 8}}},
		{name: "DeleteTheTailThenAppend", tamper: func(t *testing.T, db *sql.DB, s *sqlite.Store) {
			exec1(t, db, `DELETE FROM audit WHERE seq > 7`)
			mustFillAudit(t, s, 1, nil)
		}, want: []problem{{"removed", 8}}},
		{name: "DeleteTheTailAndMoveTheHeadBack", tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `DELETE FROM audit WHERE seq > 7`)
			exec1(t, db, `UPDATE audit_head SET seq = 7, hash = (SELECT hash FROM audit WHERE seq = 7)`)
		}}, // undetectable from the file alone: see VerifyAudit
		{name: "DeleteTheLastAndRewindTheHeadSigned", signed: true, tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `DELETE FROM audit WHERE seq = 10`)
			exec1(t, db, `UPDATE audit_head SET seq = 9, hash = (SELECT hash FROM audit WHERE seq = 9)`)
		}, want: []problem{{"bad-signature", 9}}}, // the head's signature is for entry 10
		{name: "DeleteTheLastAndRewindTheHeadUnsignedSigned", signed: true, tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `DELETE FROM audit WHERE seq = 10`)
			exec1(t, db, `UPDATE audit_head SET seq = 9, hash = (SELECT hash FROM audit WHERE seq = 9), signature = ''`)
		}, want: []problem{{"unsigned", 9}}},
		{name: "UnsignTheHeadSigned", signed: true, tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `UPDATE audit_head SET signature = ''`)
		}, want: []problem{{"unsigned", 10}}},
		// The limit of a file alone: a head latch signed before (kept in a
		// copy of the file, or taken from a log line) put back. Only a head
		// kept elsewhere shows it: see TestAuditVerifyAgainstAKeptHead in
		// cmd/latch.
		{name: "DeleteTheTailAndPutBackAnOlderSignedHeadSigned", signed: true, tamper: func(t *testing.T, db *sql.DB, s *sqlite.Store) {
			old := latch.NewAuditHead(7, entry(t, s, 7).Hash, latch.SignAudit(priv))
			exec1(t, db, `DELETE FROM audit WHERE seq > 7`)
			exec1(t, db, `UPDATE audit_head SET seq = ?, hash = ?, signature = ?`, old.Seq, old.Hash, old.Signature)
		}},
		{name: "MoveTheHeadBack", tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `UPDATE audit_head SET seq = 7, hash = (SELECT hash FROM audit WHERE seq = 7)`)
		}, want: []problem{{"inserted", 8}}},

		{name: "DeleteASignature", signed: true, tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `UPDATE audit SET signature = '' WHERE seq = 4`)
		}, want: []problem{{"unsigned", 4}}},
		{name: "CopyASignature", signed: true, tamper: func(t *testing.T, db *sql.DB, _ *sqlite.Store) {
			exec1(t, db, `UPDATE audit SET signature = (SELECT signature FROM audit WHERE seq = 5) WHERE seq = 4`)
		}, want: []problem{{"bad-signature", 4}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "latch.db")
			s := mustOpen(t, path, sqlite.Options{})
			var sign func(string) string
			var key ed25519.PublicKey
			if tt.signed {
				sign, key = latch.SignAudit(priv), pub
			}
			mustFillAudit(t, s, n, sign)
			tt.tamper(t, rawDB(t, path), s)
			got := verify(t, s, key)
			var kinds []problem
			for _, p := range got {
				kinds = append(kinds, problem{p.Kind, p.Seq})
			}
			if !slices.Equal(kinds, tt.want) {
				t.Fatalf("VerifyAudit found %v, want %v: %+v", kinds, tt.want, got)
			}
			for _, p := range got {
				t.Logf("%s %d: %s", p.Kind, p.Seq, p.Message)
				if !strings.Contains(p.Message, fmt.Sprint("entry ", p.Seq)) && !strings.Contains(p.Message, fmt.Sprint("entries ", p.Seq)) {
					t.Errorf("%q does not name entry %d", p.Message, p.Seq)
				}
			}
		})
	}
}

func tryInsert(t *testing.T, db *sql.DB, e latch.AuditEntry) error {
	t.Helper()
	details, err := json.Marshal(e.Details)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(t.Context(), `INSERT INTO audit (seq, at, actor, action, target, grant_id, request_id, details, prev_hash, hash, signature)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.At.UnixMicro(), e.Actor, e.Action, e.Target, e.GrantID, e.RequestID, string(details), e.PrevHash, e.Hash, e.Signature)
	return err
}

func insert(t *testing.T, db *sql.DB, e latch.AuditEntry) {
	t.Helper()
	if err := tryInsert(t, db, e); err != nil {
		t.Fatal(err)
	}
}

// swap exchanges the contents of the rows holding entries a and b, every
// column but the row ID: the rows stay where they are in the file, and the
// entries trade places.
func swap(t *testing.T, db *sql.DB, a, b int64) {
	t.Helper()
	const cols = `seq, at, actor, action, target, grant_id, request_id, details, prev_hash, hash, signature`
	read := func(seq int64) []any {
		vals := make([]any, strings.Count(cols, ",")+1)
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := db.QueryRowContext(t.Context(), `SELECT `+cols+` FROM audit WHERE seq = ?`, seq).Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		return vals
	}
	va, vb := read(a), read(b)
	exec1(t, db, `UPDATE audit SET seq = -seq WHERE seq IN (?, ?)`, a, b) // out of the unique index's way
	set := `UPDATE audit SET (` + cols + `) = (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) WHERE seq = ?`
	exec1(t, db, set, append(vb, -a)...)
	exec1(t, db, set, append(va, -b)...)
}

func TestAuditFileEditsThatStopTheLog(t *testing.T) {
	t.Run("DetailsThatAreNotJSONStrings", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "latch.db")
		s := mustOpen(t, path, sqlite.Options{})
		mustFillAudit(t, s, 6, nil)
		exec1(t, rawDB(t, path), `UPDATE audit SET details = '{"n": 5}' WHERE seq = 5`)
		_, err := s.AuditEntries(t.Context(), latch.AuditFilter{})
		if err == nil || !strings.Contains(err.Error(), "seq 5") {
			t.Fatalf("AuditEntries = %v; want an error naming entry 5", err)
		}
	})

	t.Run("HeadDeleted", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "latch.db")
		s := mustOpen(t, path, sqlite.Options{})
		mustFillAudit(t, s, 3, nil)
		exec1(t, rawDB(t, path), `DELETE FROM audit_head`)
		if _, err := s.AuditHead(t.Context()); latch.ErrorCode(err) != latch.EINTERNAL {
			t.Fatalf("AuditHead = %v, want EINTERNAL", err)
		}
		if _, err := s.AppendAudit(t.Context(), storetest.NewAuditEntry(3), nil); latch.ErrorCode(err) != latch.EINTERNAL {
			t.Fatalf("AppendAudit = %v, want EINTERNAL rather than a chain started afresh", err)
		}
		if es, err := s.AuditEntries(t.Context(), latch.AuditFilter{}); err != nil || len(es) != 3 {
			t.Fatalf("AuditEntries = %d entries, %v; want the 3 there were", len(es), err)
		}
	})
}

func TestAuditAppendsFromTwoStoresMakeOneChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	a, b := mustOpen(t, path, sqlite.Options{}), mustOpen(t, path, sqlite.Options{})
	const each = 20
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, s := range []*sqlite.Store{a, b} {
		wg.Go(func() {
			for j := range each {
				if _, err := s.AppendAudit(t.Context(), storetest.NewAuditEntry(i*each+j), nil); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
	for _, s := range []*sqlite.Store{a, b} {
		if ps := verify(t, s, nil); len(ps) > 0 {
			t.Fatalf("VerifyAudit: %+v", ps)
		}
	}
	if h, err := a.AuditHead(t.Context()); err != nil || h.Seq != 2*each {
		t.Fatalf("AuditHead = %+v, %v; want seq %d", h, err, 2*each)
	}
}

// auditChildEnv names the database an appending child process writes to;
// see TestAuditChildProcess.
const auditChildEnv = "LATCH_SQLITE_TEST_AUDIT_CHILD"

// TestAuditAppendsFromProcesses has several processes append to one file's
// log at once: BEGIN IMMEDIATE must queue them into one unbroken chain.
func TestAuditAppendsFromProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const procs, each = 4, 25
	path := filepath.Join(t.TempDir(), "latch.db")
	s := mustOpen(t, path, sqlite.Options{})
	runChildren(t, procs, "TestAuditChildProcess", auditChildEnv+"="+path, "LATCH_SQLITE_TEST_AUDIT_N="+strconv.Itoa(each))
	if ps := verify(t, s, nil); len(ps) > 0 {
		t.Fatalf("VerifyAudit: %+v", ps)
	}
	if h, err := s.AuditHead(t.Context()); err != nil || h.Seq != procs*each {
		t.Fatalf("AuditHead = %+v, %v; want seq %d", h, err, procs*each)
	}
}

// TestAuditChildProcess is one of TestAuditAppendsFromProcesses' processes;
// run on its own it does nothing.
func TestAuditChildProcess(t *testing.T) {
	path := os.Getenv(auditChildEnv)
	if path == "" {
		t.Skip("run by TestAuditAppendsFromProcesses")
	}
	n, err := strconv.Atoi(os.Getenv("LATCH_SQLITE_TEST_AUDIT_N"))
	if err != nil {
		t.Fatal(err)
	}
	mustFillAudit(t, mustOpen(t, path, sqlite.Options{}), n, nil)
}

func BenchmarkAppendAudit(b *testing.B) {
	priv, _, _ := storetest.AuditKeys()
	for _, bb := range []struct {
		name string
		sign func(string) string
	}{{"Unsigned", nil}, {"Signed", latch.SignAudit(priv)}} {
		b.Run(bb.name, func(b *testing.B) {
			s := openBench(b)
			i := 0
			for b.Loop() {
				if _, err := s.AppendAudit(b.Context(), storetest.NewAuditEntry(i), bb.sign); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkAuditEntries reads a whole log of 10,000 entries, as verifying
// it does.
func BenchmarkAuditEntries(b *testing.B) {
	s := openBench(b)
	mustFillAudit(b, s, 10_000, nil)
	for b.Loop() {
		es, err := s.AuditEntries(b.Context(), latch.AuditFilter{})
		if err != nil || len(es) != 10_000 {
			b.Fatal(len(es), err)
		}
	}
}

// A log written before 005 has an unsigned head: verify with a key says so
// until the next append signs it.
func TestAuditHeadSignedFromTheNextAppendAfterMigrating(t *testing.T) {
	path := filepath.Join(t.TempDir(), "latch.db")
	old, err := sqlite.OpenAtVersion(t.Context(), path, sqlite.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	priv, pub, _ := storetest.AuditKeys()
	sign := latch.SignAudit(priv)
	db := rawDB(t, path)
	var head latch.AuditHead
	for i := range 3 { // as the version-4 AppendAudit wrote them
		e := latch.LinkAudit(storetest.NewAuditEntry(i), head.Seq, head.Hash, sign)
		insert(t, db, e)
		exec1(t, db, `UPDATE audit_head SET seq = ?, hash = ?`, e.Seq, e.Hash)
		head = latch.AuditHead{Seq: e.Seq, Hash: e.Hash}
	}

	s := mustOpen(t, path, sqlite.Options{})
	if got := verify(t, s, pub); len(got) != 1 || got[0].Kind != latch.ProblemUnsigned || got[0].Seq != 3 || !strings.Contains(got[0].Message, "next append") {
		t.Fatalf("VerifyAudit of a migrated log = %+v; want the head (entry 3) unsigned until the next append", got)
	}
	mustFillAudit(t, s, 1, sign)
	if got := verify(t, s, pub); len(got) != 0 {
		t.Fatalf("VerifyAudit after an append = %+v; want none", got)
	}
}
