// Package dirtest opens a directory for a test on each backend: SQLite
// always, PostgreSQL when the test server is configured (see pgtest).
package dirtest

import (
	"strings"
	"testing"

	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/internal/pgtest"
)

// Backends are the drivers every store test runs on.
var Backends = []string{directory.DriverSQLite, directory.DriverPostgres}

// Each runs fn as one subtest per backend, named after it.
func Each(t *testing.T, fn func(t *testing.T)) {
	t.Helper()
	for _, b := range Backends {
		t.Run(b, fn)
	}
}

// Backend is the backend of a test run by Each (or one of its subtests).
func Backend(t testing.TB) string {
	if strings.Contains(t.Name()+"/", "/"+directory.DriverPostgres+"/") {
		return directory.DriverPostgres
	}
	return directory.DriverSQLite
}

// Target returns where a new, empty directory for t is: a file in
// t.TempDir on SQLite, a new database on PostgreSQL (skipping or failing t
// as pgtest does when there is no server).
func Target(t testing.TB, backend string) string {
	t.Helper()
	if backend == directory.DriverPostgres {
		return pgtest.DSN(t)
	}
	return t.TempDir() + "/learnsync.db"
}

// Open opens a new directory for t on backend, closed after the test.
func Open(t testing.TB, backend string, opts directory.Options) *directory.Store {
	t.Helper()
	s, err := directory.OpenDriver(t.Context(), backend, Target(t, backend), opts)
	if err != nil {
		t.Fatalf("open %s directory: %v", backend, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
