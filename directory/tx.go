package directory

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// tx is a write transaction: its statements are prepared once each, and its
// changes are stamped with one time.
type tx struct {
	*sql.Tx
	ctx   context.Context
	now   time.Time
	stmts map[string]*sql.Stmt
	// pg is set on PostgreSQL.
	pg bool
	// conn is the transaction's connection on PostgreSQL (for COPY).
	conn *sql.Conn
}

// update runs fn in a write transaction (BEGIN IMMEDIATE, from the DSN)
// whose changes are stamped with now, and commits it unless fn fails. A
// failure or a panic in fn rolls everything back.
func (s *Store) update(ctx context.Context, now time.Time, fn func(*tx) error) error {
	return s.write(ctx, now, false, fn)
}

// apply is update for the writes of a run: Options.Fence, if set, is
// checked inside the transaction just before it commits.
func (s *Store) apply(ctx context.Context, now time.Time, fn func(*tx) error) error {
	return s.write(ctx, now, true, fn)
}

func (s *Store) write(ctx context.Context, now time.Time, fenced bool, fn func(*tx) error) error {
	t := &tx{ctx: ctx, now: now, stmts: map[string]*sql.Stmt{}, pg: s.driver == DriverPostgres}
	var err error
	if t.pg {
		// One connection of the pool, so that COPY runs inside the
		// transaction.
		if t.conn, err = s.db.Conn(ctx); err != nil {
			return s.redact(err)
		}
		defer t.conn.Close()
		t.Tx, err = t.conn.BeginTx(ctx, nil)
	} else {
		t.Tx, err = s.db.BeginTx(ctx, nil)
	}
	if err != nil {
		return s.redact(err)
	}
	sqlTx := t.Tx
	defer func() {
		t.closeStmts()
		sqlTx.Rollback() // after a commit: sql.ErrTxDone, nothing to undo
	}()
	if err := fn(t); err != nil {
		return s.redact(err)
	}
	t.closeStmts()
	if fenced && s.fence != nil {
		if err := s.fence(ctx, sqlTx); err != nil {
			return fmt.Errorf("fence: %w", err)
		}
	}
	return s.redact(sqlTx.Commit())
}

func (t *tx) closeStmts() {
	for _, st := range t.stmts {
		st.Close()
	}
	clear(t.stmts)
}

// exec runs a statement, preparing it once per transaction.
func (t *tx) exec(query string, args ...any) (sql.Result, error) {
	st, ok := t.stmts[query]
	if !ok {
		var err error
		st, err = t.PrepareContext(t.ctx, query)
		if err != nil {
			return nil, err
		}
		t.stmts[query] = st
	}
	return st.ExecContext(t.ctx, args...)
}

// insertID runs an INSERT of one row and returns the id it was given
// (RETURNING id: both SQLite and PostgreSQL have it).
func (t *tx) insertID(query string, args ...any) (int64, error) {
	st, ok := t.stmts[query]
	if !ok {
		var err error
		if st, err = t.PrepareContext(t.ctx, query+" RETURNING id"); err != nil {
			return 0, err
		}
		t.stmts[query] = st
	}
	var id int64
	err := st.QueryRowContext(t.ctx, args...).Scan(&id)
	return id, err
}

// querier is a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// eachRow runs query (on q, or in ctx's snapshot of q) and, for every row, scans it into dest and calls row.
// The query's and the scans' errors start with what ("load people"); row's
// own errors are returned as they are.
func eachRow(ctx context.Context, q querier, what, query string, args []any, dest []any, row func() error) error {
	if c := snapshotConn(ctx, q, what); c != nil {
		q = c // the reader's snapshot (see Snapshot)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := row(); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return rows.Close()
}
