// Package pgtest gives tests a fresh PostgreSQL database of their own on
// the server LEARNSYNC_TEST_POSTGRES names. Without that variable the tests
// that need it are skipped, saying why, unless CI is set: then they fail,
// since a PostgreSQL test skipped in CI is a test that did not run.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env is the variable that names the test server's DSN.
const Env = "LEARNSYNC_TEST_POSTGRES"

// Require skips t (or, with CI set, fails it) when no server is configured,
// and returns the server's DSN otherwise.
func Require(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(Env)
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is empty but CI is set: the PostgreSQL tests must run in CI (.ci/run starts a server)", Env)
		}
		t.Skipf("PostgreSQL variant skipped: set %s to a DSN (e.g. postgres://postgres@127.0.0.1:5432/postgres) to run it", Env)
	}
	return dsn
}

// DSN creates a new empty database on the test server and returns its DSN;
// the database is dropped when the test ends. It skips or fails t as
// Require does.
func DSN(t testing.TB) string {
	t.Helper()
	admin := Require(t)
	var b [6]byte
	rand.Read(b[:])
	prefix := os.Getenv("LEARNSYNC_TEST_POSTGRES_PREFIX") // to tell apart who made a database
	if prefix == "" {
		prefix = "lstest_"
	}
	name := prefix + strings.ToLower(t.Name()[:min(len(t.Name()), 20)]) + "_" + hex.EncodeToString(b[:])
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, name)
	exec(t, admin, `CREATE DATABASE "`+name+`" TEMPLATE template0 ENCODING 'UTF8'`)
	t.Cleanup(func() { exec(t, admin, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`) })
	return WithDatabase(admin, name)
}

// WithDatabase returns dsn naming database name instead of its own.
func WithDatabase(dsn, name string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path = "/" + name
		return u.String()
	}
	return dsn + " dbname=" + name
}

// Exec runs one statement on the database dsn names.
func Exec(t testing.TB, dsn, stmt string) {
	t.Helper()
	exec(t, dsn, stmt)
}

func exec(t testing.TB, dsn, stmt string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the test server: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}
