package directory

import (
	"context"
	"database/sql"
	"fmt"
)

// The directory's multi-statement reads (LoadState, LoadMirrors, Status,
// Export, the scoped loads, the SCIM read view, Copy's source) see one
// snapshot: on PostgreSQL one REPEATABLE READ READ ONLY transaction, on
// SQLite one deferred read transaction (in WAL mode it neither takes the
// write lock nor waits for a writer). A reader begins it at its top with
// Snapshot; the loaders' queries (eachRow, reader) then run in it through
// the context, so their bodies do not change.

// snapshotKey is the context key of a read snapshot.
type snapshotKey struct{}

// readSnapshot is one read transaction on one connection of db's pool.
type readSnapshot struct {
	db   *sql.DB
	conn *sql.Conn
	// hook, if set, is called before each of the snapshot's queries (tests:
	// a commit between two of a loader's queries).
	hook func(what string)
}

// Snapshot begins a read transaction and returns a context under which the
// store's reads run in it, and end, which ends it (a rollback: it wrote
// nothing). Under a context that already holds a snapshot of this store,
// it returns that context and an end that does nothing, so readers nest.
// The context must not be used for the store's reads after end.
func (s *Store) Snapshot(ctx context.Context) (_ context.Context, end func(), _ error) {
	if sn, ok := ctx.Value(snapshotKey{}).(*readSnapshot); ok && sn.db == s.db {
		return ctx, func() {}, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read directory: %w", s.redact(err))
	}
	begin := "BEGIN DEFERRED" // not db.BeginTx: the DSN's _txlock=immediate would take the write lock
	if s.driver == DriverPostgres {
		begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
	}
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("read directory: %w", s.redact(err))
	}
	end = func() {
		conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		conn.Close()
	}
	return context.WithValue(ctx, snapshotKey{}, &readSnapshot{db: s.db, conn: conn, hook: s.readHook}), end, nil
}

// readConn runs fn on the connection of a snapshot (see Snapshot).
func (s *Store) readConn(ctx context.Context, fn func(*sql.Conn) error) error {
	ctx, end, err := s.Snapshot(ctx)
	if err != nil {
		return err
	}
	defer end()
	return fn(ctx.Value(snapshotKey{}).(*readSnapshot).conn)
}

// rowQuerier is a pool or a connection.
type rowQuerier interface {
	querier
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// reader is where the store's reads under ctx run: the snapshot's
// connection, or the pool outside one.
func (s *Store) reader(ctx context.Context) rowQuerier {
	if c := snapshotConn(ctx, s.db, ""); c != nil {
		return c
	}
	return s.db
}

// snapshotConn returns the connection of ctx's snapshot when q is that
// snapshot's pool, and nil otherwise (no snapshot; q a transaction or
// another store's pool).
func snapshotConn(ctx context.Context, q querier, what string) *sql.Conn {
	sn, ok := ctx.Value(snapshotKey{}).(*readSnapshot)
	if db, isDB := q.(*sql.DB); !ok || !isDB || db != sn.db {
		return nil
	}
	if sn.hook != nil {
		sn.hook(what)
	}
	return sn.conn
}
