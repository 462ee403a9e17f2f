// Package hatest gives the high-availability tests a PostgreSQL database
// of their own, on the server LEARNSYNC_TEST_POSTGRES names (see
// internal/pgtest: without it the tests fail when CI is set, and skip
// saying why otherwise).
package hatest

import (
	"database/sql"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/learnsync/learnsync/internal/pgtest"
)

// Database creates an empty database on the test server, dropped when the
// test ends, and returns its DSN.
func Database(tb testing.TB) string {
	tb.Helper()
	return pgtest.DSN(tb)
}

// Open opens dsn with the pgx driver, closed when the test ends.
func Open(tb testing.TB, dsn string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
