// Package hatest gives the high-availability tests a PostgreSQL database
// of their own, on the server LEARNSYNC_TEST_POSTGRES names.
package hatest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// EnvDSN names the variable that holds the test server's DSN.
const EnvDSN = "LEARNSYNC_TEST_POSTGRES"

// Server returns the DSN of the test server. Without one the test fails
// when CI is set (a PostgreSQL test skipped in CI is a failure) and is
// skipped, saying why, otherwise.
func Server(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s is not set: in CI the PostgreSQL tests must run", EnvDSN)
		}
		tb.Skipf("%s is not set: this test needs a PostgreSQL server (e.g. %s=postgres://postgres@127.0.0.1:5432/postgres)", EnvDSN, EnvDSN)
	}
	return dsn
}

// Database creates an empty database on the test server, dropped when the
// test ends, and returns its DSN.
func Database(tb testing.TB) string {
	tb.Helper()
	server := Server(tb)
	admin, err := sql.Open("pgx", server)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	b := make([]byte, 6)
	rand.Read(b)
	name := "ha_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		a, err := sql.Open("pgx", server)
		if err != nil {
			tb.Error(err)
			return
		}
		defer a.Close()
		if _, err := a.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
	})
	return WithDatabase(server, name)
}

// WithDatabase returns dsn (a URL or key=value DSN) naming database name.
func WithDatabase(dsn, name string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	return strings.TrimSpace(dsn) + " dbname=" + name
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
