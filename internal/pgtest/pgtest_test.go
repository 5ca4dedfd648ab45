package pgtest_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/latchdev/latch/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Each Start is a database of its own on one cluster.
func TestStartGivesFreshDatabases(t *testing.T) {
	a, b := pgtest.Start(t), pgtest.Start(t)
	if a == b {
		t.Fatalf("two Starts returned one DSN, %s", a)
	}
	conn, err := pgx.Connect(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), `CREATE TABLE t (x int)`); err != nil {
		t.Fatal(err)
	}
	conn2, err := pgx.Connect(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(t.Context())
	var n int
	if err := conn2.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE tablename = 't'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatal("the second database sees the first's table")
	}
}
