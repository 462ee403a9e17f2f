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
}

// update runs fn in a write transaction (BEGIN IMMEDIATE, from the DSN)
// whose changes are stamped with now, and commits it unless fn fails. A
// failure or a panic in fn rolls everything back.
func (s *Store) update(ctx context.Context, now time.Time, fn func(*tx) error) error {
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	t := &tx{Tx: sqlTx, ctx: ctx, now: now, stmts: map[string]*sql.Stmt{}}
	defer func() {
		t.closeStmts()
		sqlTx.Rollback() // after a commit: sql.ErrTxDone, nothing to undo
	}()
	if err := fn(t); err != nil {
		return err
	}
	t.closeStmts()
	return sqlTx.Commit()
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

// querier is a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// eachRow runs query and, for every row, scans it into dest and calls row.
// The query's and the scans' errors start with what ("load people"); row's
// own errors are returned as they are.
func eachRow(ctx context.Context, q querier, what, query string, args []any, dest []any, row func() error) error {
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
