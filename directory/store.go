// Package directory is the learning directory: people, their identities in
// the sources, groups and memberships, license pools and seats, the mirror of
// every source with its cursor, and the record of runs and audit events. It
// is stored in SQLite or PostgreSQL (opened through gorm's drivers) and read
// and written with database/sql: plain statements, written once in SQLite's
// dialect and translated for PostgreSQL (postgres.go), prepared once per
// transaction.
package directory

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/reconcile"
)

// ErrNotSQLite is returned when the directory file exists but is not a
// SQLite database.
var ErrNotSQLite = errors.New("not a SQLite database")

// ErrTooNew is returned for a database written by a newer learnsync.
var ErrTooNew = errors.New("database schema is newer than this learnsync")

// Store is the learning directory on SQLite or PostgreSQL. It implements
// reconcile.Store.
type Store struct {
	// path is the SQLite file, or the PostgreSQL DSN without its password.
	path   string
	driver string
	db     *sql.DB
	fence  func(context.Context, *sql.Tx) error
	// secret is the DSN's password, kept out of every error.
	secret string
	// Now is the clock for timestamps not given by the caller.
	Now func() time.Time
	// attrs are the raw attributes the rules read, by source (attrs.go).
	attrs atomic.Pointer[map[string]*connectors.Selection]
	// readHook, if set, is called before each query of a read snapshot
	// (tests only; see Snapshot).
	readHook func(what string)
}

var _ reconcile.Store = (*Store)(nil)

// Options tune Open.
type Options struct {
	// BusyTimeout is how long a writer waits for another process's write
	// transaction before giving up.
	BusyTimeout time.Duration
	// ReadOnly opens an existing database without creating or migrating it.
	ReadOnly bool
	// Fence, when set, is called inside every transaction that applies a
	// run (Commit, RecordRun, PruneRuns) just before it commits; its error
	// rolls the transaction back and is returned wrapped. SCIM pushes are
	// not fenced.
	Fence func(ctx context.Context, tx *sql.Tx) error
	// MaxConns bounds the PostgreSQL connection pool (default 8).
	MaxConns int
}

// Driver names.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// OpenDriver opens the directory on driver ("sqlite": target is the file;
// "postgres": target is the DSN).
func OpenDriver(ctx context.Context, driver, target string, opts Options) (*Store, error) {
	switch driver {
	case DriverSQLite, "":
		return Open(ctx, target, opts)
	case DriverPostgres:
		return OpenPostgres(ctx, target, opts)
	}
	return nil, fmt.Errorf("open database: unknown driver %q", driver)
}

const sqliteMagic = "SQLite format 3\x00"

// CheckFile reports whether path is missing (fine: it will be created), a
// SQLite database, or something else (ErrNotSQLite).
func CheckFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	defer f.Close()
	head := make([]byte, len(sqliteMagic))
	n, err := io.ReadFull(f, head)
	if n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
		return nil // an empty file becomes a new database
	}
	if err != nil || !bytes.Equal(head, []byte(sqliteMagic)) {
		return fmt.Errorf("%s: %w", path, ErrNotSQLite)
	}
	return nil
}

// Open opens the directory at path, creating it (mode 0600) and migrating
// its schema as needed.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if strings.Contains(path, "?") {
		// The driver cuts the name at '?' and would silently open another
		// file, without WAL.
		return nil, fmt.Errorf("open database: path %q must not contain '?'", path)
	}
	if err := CheckFile(path); err != nil {
		return nil, err
	}
	if !opts.ReadOnly {
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("create directory for database: %w", err)
			}
		}
		// SQLite creates the file with the umask's mode; create it first so
		// that it is private. Its -wal and -shm files copy this mode.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
		f.Close()
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("open database: %w", err)
		}
	} else if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 30 * time.Second
	}
	dsn := fmt.Sprintf("%s?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=%d&_txlock=immediate&_synchronous=FULL",
		path, busy.Milliseconds())
	if opts.ReadOnly {
		// The driver ignores mode=ro unless the name is a file: URI; a
		// query-only connection refuses every write instead.
		dsn += "&_query_only=true"
	}
	// Two processes opening a new file at once both make it WAL, and the
	// one that loses may get SQLITE_BUSY at once: SQLite returns it rather
	// than call the busy handler when waiting could deadlock. It opens
	// again, within the busy timeout.
	deadline := time.Now().Add(busy)
	var (
		s   *Store
		err error
	)
	for {
		s, err = openSQLite(ctx, path, dsn, opts)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, err
	}
	if !opts.ReadOnly {
		if err := s.migrate(ctx); err != nil {
			s.db.Close()
			return nil, err
		}
	}
	return s, nil
}

// openSQLite opens the SQLite database at path and checks it.
func openSQLite(ctx context.Context, path, dsn string, opts Options) (*Store, error) {
	gdb, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
	})
	if err != nil {
		// gorm pings, so a file with a SQLite header and garbage after it
		// fails here, before check.
		if notADatabase(err) {
			return nil, fmt.Errorf("%s: %w", path, ErrNotSQLite)
		}
		return nil, fmt.Errorf("open database: %w", err)
	}
	db, err := gdb.DB()
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// One writer at a time is all SQLite allows; a few readers may run
	// beside it (the ops endpoint while a run applies).
	db.SetMaxOpenConns(4)
	s := &Store{path: path, driver: DriverSQLite, db: db, fence: opts.Fence, Now: time.Now}
	if err := s.check(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// isBusy reports whether SQLite refused for a lock another connection
// holds (SQLITE_BUSY).
func isBusy(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrBusy
	}
	return strings.Contains(err.Error(), "database is locked")
}

// check makes sure the file really is a usable SQLite database with foreign
// keys on.
func (s *Store) check(ctx context.Context) error {
	var fk int
	if err := s.db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		if notADatabase(err) {
			return fmt.Errorf("%s: %w", s.path, ErrNotSQLite)
		}
		return fmt.Errorf("open database: %w", err)
	}
	if fk != 1 {
		return errors.New("open database: foreign keys could not be enabled")
	}
	return nil
}

// notADatabase reports whether SQLite refused a file as not a database.
func notADatabase(err error) bool {
	return strings.Contains(err.Error(), "not a database") || strings.Contains(err.Error(), "file is encrypted")
}

// SchemaVersion returns the schema version of the open database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if s.driver == DriverPostgres {
		err := s.db.QueryRowContext(ctx, "SELECT coalesce((SELECT max(version) FROM schema_version), 0)").Scan(&v)
		if err != nil && strings.Contains(err.Error(), "SQLSTATE 42P01") {
			return 0, nil // no table yet: a new database
		}
		return v, s.redact(err)
	}
	err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// SchemaLatest is the schema version this learnsync writes.
func SchemaLatest() int { return len(migrations) }

func (s *Store) migrate(ctx context.Context) error {
	return s.migrateTo(ctx, len(migrations))
}

// steps is the migration list of the store's dialect.
func (s *Store) steps() []string {
	if s.driver == DriverPostgres {
		return pgMigrations
	}
	return migrations
}

// stepVersion reads, inside a migration's transaction, the version already
// applied; on PostgreSQL it first waits for any other instance migrating
// the same database (an advisory lock held until the transaction ends).
func (s *Store) stepVersion(t *tx) (int, error) {
	var v int
	if s.driver != DriverPostgres {
		err := t.QueryRowContext(t.ctx, "PRAGMA user_version").Scan(&v)
		return v, err
	}
	if _, err := t.ExecContext(t.ctx, "SELECT pg_advisory_xact_lock(?)", migrateLockKey); err != nil {
		return 0, err
	}
	if _, err := t.ExecContext(t.ctx, pgSchemaTable); err != nil {
		return 0, err
	}
	err := t.QueryRowContext(t.ctx, "SELECT max(version) FROM schema_version").Scan(&v)
	return v, err
}

// setVersion records, inside a migration's transaction, that v steps are
// applied.
func (s *Store) setVersion(t *tx, v int) error {
	var err error
	if s.driver == DriverPostgres {
		_, err = t.ExecContext(t.ctx, "UPDATE schema_version SET version = ?", v)
	} else {
		_, err = t.ExecContext(t.ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
	}
	return err
}

// migrateTo applies migration steps up to version target, each in its own
// transaction together with the new user_version.
func (s *Store) migrateTo(ctx context.Context, target int) error {
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	steps := s.steps()
	if v > len(steps) {
		return fmt.Errorf("%s: %w (version %d, this learnsync knows %d)", s.path, ErrTooNew, v, len(steps))
	}
	for ; v < target; v++ {
		// BEGIN IMMEDIATE (the DSN's txlock) waits for another process that
		// migrates the same new file; the version is read again inside, so
		// a step that process already applied is not applied twice.
		applied := 0
		err := s.update(ctx, time.Time{}, func(t *tx) error {
			var err error
			if applied, err = s.stepVersion(t); err != nil || applied > v {
				return err
			}
			if _, err := t.ExecContext(ctx, steps[v]); err != nil {
				return err
			}
			return s.setVersion(t, v+1)
		})
		if err != nil {
			return fmt.Errorf("migrate to schema %d: %w", v+1, s.redact(err))
		}
		if applied > v {
			v = applied - 1
		}
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Path returns the database file (SQLite) or the DSN without its password
// (PostgreSQL).
func (s *Store) Path() string { return s.path }

// DB returns the database handle (the pool), for tests and tools.
func (s *Store) DB() *sql.DB { return s.db }

// Driver returns the database: "sqlite" or "postgres".
func (s *Store) Driver() string { return s.driver }

// IntegrityCheck runs PRAGMA integrity_check and returns its verdict. On
// PostgreSQL it reads every table through (a damaged page fails the read)
// and says "ok".
func (s *Store) IntegrityCheck(ctx context.Context) (string, error) {
	var out string
	if s.driver == DriverPostgres {
		for _, table := range copyTables {
			var n int64
			if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM "+table.name).Scan(&n); err != nil {
				return "", fmt.Errorf("check %s: %w", table.name, s.redact(err))
			}
		}
		return "ok", nil
	}
	err := s.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&out)
	return out, err
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

// Fenced reports whether the store's applies are fenced (high
// availability): a run then never holds its write transaction open while it
// plans (reconcile.MirrorsFirst).
func (s *Store) Fenced() bool { return s.fence != nil }
