package directory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/learnsync/learnsync/internal/pgtest"
	"github.com/learnsync/learnsync/reconcile"
)

// t0 is the clock of the tests: timestamps are compared exactly.
var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// openTest opens a new directory in t.TempDir, on the tests' clock, and
// closes it after the test.
//
// Inside eachBackend's postgres subtest it opens a new PostgreSQL database
// instead (see pgtest).
func openTest(t *testing.T) *Store {
	t.Helper()
	s := openFresh(t)
	s.Now = func() time.Time { return t0 }
	return s
}

// openFresh opens a new directory on t's backend (see eachBackend), closed
// after the test.
func openFresh(t testing.TB) *Store {
	t.Helper()
	if !onPostgres(t) {
		return openAt(t, filepath.Join(t.TempDir(), "learnsync.db"), Options{})
	}
	s, err := OpenPostgres(t.Context(), pgtest.DSN(t), Options{})
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eachBackend runs fn on SQLite and on PostgreSQL, as subtests named after
// the driver; openTest opens the subtest's backend.
func eachBackend(t *testing.T, fn func(t *testing.T)) {
	for _, d := range []string{DriverSQLite, DriverPostgres} {
		t.Run(d, fn)
	}
}

// onPostgres says whether t runs inside eachBackend's postgres subtest.
func onPostgres(t testing.TB) bool {
	return strings.Contains(t.Name()+"/", "/"+DriverPostgres+"/")
}

// openAt opens the directory at path and closes it after the test (a test
// may close it before).
func openAt(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openFails opens path with ctx, fails the test with why if that works, and
// returns Open's error.
func openFails(t *testing.T, ctx context.Context, path string, why string) error {
	t.Helper()
	s, err := Open(ctx, path, Options{})
	if err == nil {
		s.Close()
		t.Fatal(why)
	}
	return err
}

// pragma reads one PRAGMA on every connection the pool may hand out, and
// fails unless all agree with want.
func pragma(t *testing.T, s *Store, name, want string) {
	t.Helper()
	ctx := t.Context()
	// Hold all four connections at once so that each one is checked, not
	// the same idle one four times.
	var conns []interface{ Close() error }
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 4 {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		conns = append(conns, c)
		var got string
		if err := c.QueryRowContext(ctx, "PRAGMA "+name).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		if got != want {
			t.Errorf("connection %d: PRAGMA %s = %q, want %q", i, name, got, want)
		}
	}
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestOpenCreatesPrivateWALDatabase(t *testing.T) {
	ctx := t.Context()
	// A directory that does not exist yet is created too.
	path := filepath.Join(t.TempDir(), "state", "learnsync.db")
	s := openAt(t, path, Options{})
	if got := fileMode(t, path); got != 0o600 {
		t.Errorf("database file mode = %o, want 600", got)
	}
	if got := fileMode(t, filepath.Dir(path)); got != 0o700 {
		t.Errorf("database directory mode = %o, want 700", got)
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	pragma(t, s, "journal_mode", "wal")
	pragma(t, s, "foreign_keys", "1")
	// FULL: a commit is fsynced before it is reported (an acknowledged SCIM
	// write survives a power loss).
	pragma(t, s, "synchronous", "2")
	if v, err := s.SchemaVersion(ctx); err != nil || v != SchemaLatest() {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, SchemaLatest())
	}
	if SchemaLatest() < 2 {
		t.Errorf("SchemaLatest() = %d, want at least 2", SchemaLatest())
	}

	// A write makes the WAL file, which must be as private as the database.
	if err := s.RecordRun(ctx, &reconcile.Run{Trigger: reconcile.TriggerOnce, StartedAt: t0, EndedAt: t0, Result: reconcile.ResultFailed}); err != nil {
		t.Fatalf("RecordRun: %v", err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(path + suffix); err == nil {
			if got := fileMode(t, path+suffix); got != 0o600 {
				t.Errorf("%s file mode = %o, want 600", suffix, got)
			}
		}
	}
	if got, err := s.IntegrityCheck(ctx); err != nil || got != "ok" {
		t.Errorf("IntegrityCheck = %q, %v; want ok", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Reopening keeps the data and changes nothing.
	s2 := openAt(t, path, Options{})
	runs, err := s2.Runs(ctx, 10)
	if err != nil {
		t.Fatalf("Runs: %v", err)
	}
	if len(runs) != 1 || runs[0].Result != reconcile.ResultFailed {
		t.Errorf("after reopen Runs = %+v, want the one failed run", runs)
	}
	if v, err := s2.SchemaVersion(ctx); err != nil || v != SchemaLatest() {
		t.Errorf("after reopen SchemaVersion = %d, %v; want %d", v, err, SchemaLatest())
	}
	pragma(t, s2, "journal_mode", "wal")
	pragma(t, s2, "foreign_keys", "1")
}

func TestOpenTightensModeOfExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "learnsync.db")
	openAt(t, path, Options{}).Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	openAt(t, path, Options{}).Close()
	if got := fileMode(t, path); got != 0o600 {
		t.Errorf("mode after reopen = %o, want 600", got)
	}
}

func TestOpenRejectsFileThatIsNotSQLite(t *testing.T) {
	corruptHeader := append([]byte(sqliteMagic), bytes.Repeat([]byte{0xff}, 4096-len(sqliteMagic))...)
	for _, tc := range []struct {
		name    string
		content []byte
		// sqliteHeader: the file passes CheckFile and only SQLite itself
		// refuses it, after Open made it private (mode 0600).
		sqliteHeader bool
	}{
		{"text", []byte("directory:\n  driver: sqlite\n  dsn: learnsync.db\n"), false},
		{"short text", []byte("hi\n"), false},
		{"json", []byte(`{"users": [], "groups": [], "licenses": []}`), false},
		{"sqlite header, garbage after", corruptHeader, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "learnsync.db")
			if err := os.WriteFile(path, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Stat(path)
			err := openFails(t, t.Context(), path, "Open succeeded on a file that is not a SQLite database")
			if !errors.Is(err, ErrNotSQLite) {
				t.Fatalf("Open error = %v, want ErrNotSQLite", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.content) {
				t.Error("Open changed the file's content")
			}
			after, _ := os.Stat(path)
			wantMode := before.Mode()
			if tc.sqliteHeader {
				wantMode = 0o600
			}
			if after.Mode() != wantMode || !after.ModTime().Equal(before.ModTime()) {
				t.Errorf("Open touched the file: mode %v → %v, mtime %v → %v", before.Mode(), after.Mode(), before.ModTime(), after.ModTime())
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("Open left files behind: %v", names)
			}
			if err := CheckFile(path); !tc.sqliteHeader && !errors.Is(err, ErrNotSQLite) {
				t.Errorf("CheckFile = %v, want ErrNotSQLite", err)
			}
		})
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	if err := CheckFile(filepath.Join(dir, "missing.db")); err != nil {
		t.Errorf("missing file: %v, want nil (it will be created)", err)
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckFile(empty); err != nil {
		t.Errorf("empty file: %v, want nil", err)
	}
	openAt(t, filepath.Join(dir, "real.db"), Options{}).Close()
	if err := CheckFile(filepath.Join(dir, "real.db")); err != nil {
		t.Errorf("real database: %v, want nil", err)
	}
}

func TestOpenEmptyFileBecomesDatabase(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "learnsync.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := openAt(t, path, Options{})
	if got := fileMode(t, path); got != 0o600 {
		t.Errorf("mode = %o, want 600", got)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != SchemaLatest() {
		t.Errorf("SchemaVersion = %d, %v; want %d", v, err, SchemaLatest())
	}
	pragma(t, s, "journal_mode", "wal")
	st, err := s.LoadState(ctx)
	if err != nil {
		t.Fatalf("LoadState: %v", err)
	}
	if len(st.People) != 0 {
		t.Errorf("new database has people: %v", st.People)
	}
	if got, err := s.IntegrityCheck(ctx); err != nil || got != "ok" {
		t.Errorf("IntegrityCheck = %q, %v", got, err)
	}
}

func TestOpenTooNew(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "learnsync.db")
	s := openAt(t, path, Options{})
	if _, err := s.db.ExecContext(ctx, "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	err := openFails(t, ctx, path, "Open succeeded on a database from a newer learnsync")
	if !errors.Is(err, ErrTooNew) {
		t.Fatalf("Open error = %v, want ErrTooNew", err)
	}
	// The version is left alone for the newer learnsync.
	raw := openUnmigrated(t, path)
	if v, err := raw.SchemaVersion(ctx); err != nil || v != 99 {
		t.Errorf("user_version after refused open = %d, %v; want 99", v, err)
	}
}

// openUnmigrated opens a database file the way Open does, without creating
// the schema, so that a test can build an old one.
func openUnmigrated(t *testing.T, path string) *Store {
	t.Helper()
	gdb, err := gorm.Open(sqlite.Open(path+"?_journal_mode=WAL&_foreign_keys=on"), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	db, err := gdb.DB()
	if err != nil {
		t.Fatal(err)
	}
	s := &Store{path: path, db: db, Now: time.Now}
	t.Cleanup(func() { s.Close() })
	return s
}

func columns(t *testing.T, s *Store, table string) []string {
	t.Helper()
	return queryStrings(t, s, "SELECT name FROM pragma_table_info(?)", table)
}

// queryStrings runs a query of one text column and returns its values.
func queryStrings(t *testing.T, s *Store, query string, args ...any) []string {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func hasIndex(t *testing.T, s *Store, name string) bool {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(t.Context(), "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// buildV1 writes a schema version 1 database with one person, their
// identity and one run.
func buildV1(t *testing.T, path string) {
	t.Helper()
	ctx := t.Context()
	raw := openUnmigrated(t, path)
	if err := raw.migrateTo(ctx, 1); err != nil {
		t.Fatalf("migrateTo(1): %v", err)
	}
	if v, _ := raw.SchemaVersion(ctx); v != 1 {
		t.Fatalf("user_version = %d, want 1", v)
	}
	if cols := columns(t, raw, "runs"); containsString(cols, "plan") {
		t.Fatalf("version 1 already has runs.plan: %v", cols)
	}
	for _, q := range []string{
		`INSERT INTO people (id, match_key, user_name, email, given_name, family_name, active, created_at, updated_at)
			VALUES (7, 'ada@example.com', 'ada', 'ada@example.com', 'Ada', 'Lovelace', 1, '2024-01-02 03:04:05+00:00', '2024-01-02 03:04:05+00:00')`,
		`INSERT INTO identities (source, external_id, person_id) VALUES ('hr', 'e7', 7)`,
		`INSERT INTO runs (id, trigger, started_at, ended_at, result, summary) VALUES (3, 'once', '2024-01-02 03:04:05+00:00', '2024-01-02 03:04:06+00:00', 'ok', '{"create":1,"total":1}')`,
		`INSERT INTO audit_events (run_id, at, action, object_type, object_id) VALUES (3, '2024-01-02 03:04:05+00:00', 'person.create', 'person', '7')`,
	} {
		if _, err := raw.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestOpenMigratesVersion1InPlace(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "learnsync.db")
	buildV1(t, path)

	s := openAt(t, path, Options{})
	if v, err := s.SchemaVersion(ctx); err != nil || v != SchemaLatest() {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, SchemaLatest())
	}
	if cols := columns(t, s, "runs"); !containsString(cols, "plan") {
		t.Errorf("runs columns after migration = %v, want a plan column", cols)
	}
	if !hasIndex(t, s, "audit_events_run") {
		t.Error("index audit_events_run missing after migration")
	}
	st, err := s.LoadState(ctx)
	if err != nil {
		t.Fatalf("LoadState: %v", err)
	}
	ada := st.People[7]
	if ada == nil || ada.Key != "ada@example.com" || ada.GivenName != "Ada" || !ada.Active ||
		!ada.FirstSeen.Time().Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("person 7 after migration = %+v", ada)
	}
	if id := st.Identities[reconcile.IdentityRef{Source: "hr", ExternalID: "e7"}]; id != 7 {
		t.Errorf("identity hr/e7 → %d, want 7", id)
	}
	runs, err := s.Runs(ctx, 10)
	if err != nil {
		t.Fatalf("Runs: %v", err)
	}
	if len(runs) != 1 || runs[0].ID != 3 || runs[0].Summary.Create != 1 || runs[0].Plan != nil {
		t.Errorf("runs after migration = %+v", runs)
	}
	evs, err := s.AuditEvents(ctx, 3, 0)
	if err != nil || len(evs) != 1 || evs[0].Action != "person.create" {
		t.Errorf("audit events after migration = %+v, %v", evs, err)
	}
	if got, err := s.IntegrityCheck(ctx); err != nil || got != "ok" {
		t.Errorf("IntegrityCheck = %q, %v", got, err)
	}
	// The new column is usable: a blocked run keeps its plan.
	blocked := &reconcile.Run{Trigger: reconcile.TriggerOnce, StartedAt: t0, EndedAt: t0, Result: reconcile.ResultBlocked,
		Plan: &reconcile.Plan{People: []reconcile.PersonChange{{Op: reconcile.OpDeactivate, Person: reconcile.PersonRef{ID: 7, Key: "ada@example.com"}}}}}
	if err := s.RecordRun(ctx, blocked); err != nil {
		t.Fatalf("RecordRun after migration: %v", err)
	}
	runs, err = s.Runs(ctx, 1)
	if err != nil || len(runs) != 1 || runs[0].Plan == nil || len(runs[0].Plan.People) != 1 {
		t.Errorf("blocked run after migration = %+v, %v", runs, err)
	}
}

// A step that fails leaves the database at the version before it: each step
// commits together with its user_version.
func TestMigrationStepIsAtomic(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "learnsync.db")
	buildV1(t, path)
	// Someone added the column by hand: step 2's ALTER TABLE fails.
	raw := openUnmigrated(t, path)
	if _, err := raw.db.ExecContext(ctx, `ALTER TABLE runs ADD COLUMN plan TEXT NOT NULL DEFAULT ''`); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	err := openFails(t, ctx, path, "Open succeeded although migration step 2 cannot apply")
	if !strings.Contains(err.Error(), "migrate to schema 2") {
		t.Errorf("error = %v, want it to name the step", err)
	}
	raw = openUnmigrated(t, path)
	if v, _ := raw.SchemaVersion(ctx); v != 1 {
		t.Errorf("user_version after failed step = %d, want 1", v)
	}
	if hasIndex(t, raw, "audit_events_run") {
		t.Error("failed step left part of its work behind")
	}
}

func TestMigrateStepByStep(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "learnsync.db")
	raw := openUnmigrated(t, path)
	for v := 1; v <= SchemaLatest(); v++ {
		if err := raw.migrateTo(ctx, v); err != nil {
			t.Fatalf("migrateTo(%d): %v", v, err)
		}
		if got, _ := raw.SchemaVersion(ctx); got != v {
			t.Fatalf("after migrateTo(%d) user_version = %d", v, got)
		}
	}
	// Migrating again is a no-op.
	if err := raw.migrate(ctx); err != nil {
		t.Fatalf("migrate at latest: %v", err)
	}
	if got, err := raw.IntegrityCheck(ctx); err != nil || got != "ok" {
		t.Errorf("IntegrityCheck = %q, %v", got, err)
	}
}

func TestOpenReadOnly(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	if _, err := Open(ctx, filepath.Join(dir, "missing.db"), Options{ReadOnly: true}); err == nil {
		t.Error("read-only Open created a missing database")
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("read-only Open left a file behind")
	}

	path := filepath.Join(dir, "learnsync.db")
	s := openAt(t, path, Options{})
	if err := s.RecordRun(ctx, &reconcile.Run{Trigger: reconcile.TriggerOnce, StartedAt: t0, EndedAt: t0, Result: reconcile.ResultOK}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	ro := openAt(t, path, Options{ReadOnly: true})
	if runs, err := ro.Runs(ctx, 10); err != nil || len(runs) != 1 {
		t.Errorf("read-only Runs = %v, %v", runs, err)
	}
	err := ro.RecordRun(ctx, &reconcile.Run{Trigger: reconcile.TriggerOnce, StartedAt: t0, EndedAt: t0, Result: reconcile.ResultOK})
	if err == nil {
		t.Error("read-only store accepted a write")
	}
}

// Open honours a cancelled context instead of migrating.
func TestOpenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	openFails(t, ctx, filepath.Join(t.TempDir(), "learnsync.db"), "Open with a cancelled context succeeded")
}

// The driver reads '?' as the start of its options: such a path would open
// another file, without WAL. It is refused, and nothing is created.
func TestOpenRefusesQuestionMarkInPath(t *testing.T) {
	dir := t.TempDir()
	openFails(t, t.Context(), filepath.Join(dir, "learn?sync.db"), "Open accepted a path with '?'")
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused Open created %d files", len(entries))
	}
	// Other unusual characters are fine.
	for _, name := range []string{"with space.db", "hash#.db", "pct%20.db", "amp&x=y.db"} {
		path := filepath.Join(dir, name)
		s, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Errorf("%q: %v", name, err)
			continue
		}
		pragma(t, s, "journal_mode", "wal")
		s.Close()
		if got := fileMode(t, path); got != 0o600 {
			t.Errorf("%q: mode %o", name, got)
		}
	}
}

// Two processes (the service and a one-shot command) may open the same
// file: writers take turns, and readers see only committed data while a
// write is under way (WAL).
func TestTwoStoresOnOneFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "learnsync.db")
	a := openAt(t, path, Options{})
	b := openAt(t, path, Options{BusyTimeout: 10 * time.Second})

	// a holds a write transaction; b reads the state before it.
	tx, err := a.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO pools (name, seats, updated_at) VALUES ('p', 1, ?)`, t0); err != nil {
		t.Fatal(err)
	}
	st, err := b.LoadState(ctx)
	if err != nil {
		t.Fatalf("LoadState during another store's write: %v", err)
	}
	if len(st.Pools) != 0 {
		t.Errorf("reader saw uncommitted pools: %v", st.Pools)
	}
	// b's write waits for a's and then goes through.
	done := make(chan error, 1)
	go func() {
		done <- b.RecordRun(ctx, &reconcile.Run{Trigger: reconcile.TriggerOnce, StartedAt: t0, EndedAt: t0, Result: reconcile.ResultOK})
	}()
	select {
	case err := <-done:
		t.Fatalf("write went through while another held the lock: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiting writer: %v", err)
	}
	st, err = b.LoadState(ctx)
	if err != nil || len(st.Pools) != 1 {
		t.Errorf("after commit b sees pools %v, %v", st.Pools, err)
	}
	if runs, err := a.Runs(ctx, 10); err != nil || len(runs) != 1 {
		t.Errorf("a sees runs %v, %v", runs, err)
	}
}

// TestMigrationListsInStep: each schema version means the same on both
// databases, so a step added to one list must be added to the other.
func TestMigrationListsInStep(t *testing.T) {
	if len(migrations) != len(pgMigrations) {
		t.Fatalf("%d SQLite migrations, %d PostgreSQL migrations: add the missing step", len(migrations), len(pgMigrations))
	}
}

// Stores opening one new file at once all open it: the one that loses the
// race to make it WAL may get SQLITE_BUSY without the busy handler, and
// opens again (cmd/learnsync's TestTwoProcesses does it with processes).
func TestOpenNewFileAtOnce(t *testing.T) {
	ctx := t.Context()
	for i := range 30 {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("race%d.db", i))
		errs := make(chan error, 3)
		for range 3 {
			go func() {
				s, err := Open(ctx, path, Options{})
				if err == nil {
					_, err = s.SchemaVersion(ctx)
					s.Close()
				}
				errs <- err
			}()
		}
		for range 3 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		}
	}
}
