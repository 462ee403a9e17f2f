package directory

import (
	"context"
	"fmt"
	"strings"

	"github.com/learnsync/learnsync/reconcile"
)

// batchRows is how many rows one multi-row INSERT writes. Each statement
// costs a few cgo calls and a bind per value, whatever its size: a first
// import of 100,000 people writes some 800,000 rows, and one statement a
// row spent more time crossing into SQLite than SQLite spent writing. A
// few hundred rows a statement take most of that away while the bound
// values stay far below SQLite's limit (32,766).
const batchRows = 200

// rowBatch collects the rows of one INSERT and writes them batchRows at a
// time, as one prepared statement. The rows are written in the order they
// were added, so ids that AUTOINCREMENT assigns come out as they would one
// row at a time; a caller that runs another statement on the same table
// flushes first, so that the statements still run in the plan's order.
type rowBatch struct {
	t *tx
	// head is the statement up to VALUES, tail what follows the rows (an
	// ON CONFLICT clause, or "").
	head, row, tail string
	cols            int
	args            []any
	labels          []string
	// full is the statement for batchRows rows.
	full string
	// limit is how many rows are queued before they are written.
	limit int
	// copy, on PostgreSQL, writes the rows with COPY instead (nil when
	// the statement cannot be copied).
	copy *copyPlan
}

// newBatch returns a batch for head ("INSERT INTO t (a, b) VALUES"), rows
// of the form row ("(?, ?)") and tail.
func newBatch(t *tx, head, row, tail string) *rowBatch {
	b := &rowBatch{t: t, head: head, row: row, tail: tail, cols: strings.Count(row, "?"), limit: batchRows}
	if t.pg {
		if b.copy = parseCopy(head, row, tail); b.copy != nil {
			b.limit = copyBatchRows
		}
	}
	return b
}

// rowError is a batch's failure, found again one row at a time: Label is
// what the failing row was added with.
type rowError struct {
	Label string
	Err   error
}

func (e *rowError) Error() string { return e.Err.Error() }
func (e *rowError) Unwrap() error { return e.Err }

// add queues one row (len(args) must be the row's number of ?s) and writes
// the batch when it is full.
func (b *rowBatch) add(args ...any) error { return b.addLabeled("", args...) }

// addLabeled is add with a label for the row's *rowError.
func (b *rowBatch) addLabeled(label string, args ...any) error {
	if len(args) != b.cols {
		return fmt.Errorf("batch row has %d values, want %d", len(args), b.cols)
	}
	b.labels = append(b.labels, label)
	b.args = append(b.args, args...)
	if len(b.args) >= b.limit*b.cols {
		return b.flush()
	}
	return nil
}

// queued takes the row its caller appended to b.args itself (a large
// load saves a []any a row) and writes the batch when it is full.
func (b *rowBatch) queued(label string) error {
	if len(b.args) != (len(b.labels)+1)*b.cols {
		return fmt.Errorf("batch has %d values for %d rows of %d", len(b.args), len(b.labels)+1, b.cols)
	}
	b.labels = append(b.labels, label)
	if len(b.args) >= b.limit*b.cols {
		return b.flush()
	}
	return nil
}

// pending is the number of rows queued.
func (b *rowBatch) pending() int { return len(b.args) / b.cols }

// flush writes the queued rows.
func (b *rowBatch) flush() error {
	n := b.pending()
	if n == 0 {
		return nil
	}
	err := b.t.savepoint(func() error {
		if b.copy != nil {
			return b.t.copyFrom(b.copy, b.copy.rows(b.args, b.cols))
		}
		_, err := b.t.exec(b.statement(n), b.args...)
		return err
	})
	if err != nil {
		// The failed statement changed nothing: find the row that fails
		// (the rows before it are written, as one at a time).
		err = b.oneByOne()
	}
	clear(b.args)
	b.args, b.labels = b.args[:0], b.labels[:0]
	return err
}

// statement is the INSERT of n rows.
func (b *rowBatch) statement(n int) string {
	if n == batchRows && b.full != "" {
		return b.full
	}
	q := b.query(n)
	if n == batchRows {
		b.full = q
	}
	return q
}

// oneByOne writes the queued rows one statement each and returns the first
// failure as a *rowError.
func (b *rowBatch) oneByOne() error {
	q := b.query(1)
	for i, label := range b.labels {
		if _, err := b.t.exec(q, b.args[i*b.cols:(i+1)*b.cols]...); err != nil {
			// The transaction is lost on PostgreSQL after this: it
			// will roll back.
			return &rowError{Label: label, Err: err}
		}
	}
	return nil
}

func (b *rowBatch) query(n int) string {
	var s strings.Builder
	s.Grow(len(b.head) + n*(len(b.row)+2) + len(b.tail) + 2)
	s.WriteString(b.head)
	s.WriteByte(' ')
	for i := range n {
		if i > 0 {
			s.WriteString(", ")
		}
		s.WriteString(b.row)
	}
	if b.tail != "" {
		s.WriteByte(' ')
		s.WriteString(b.tail)
	}
	return s.String()
}

// savepoint runs fn; on PostgreSQL, where a failed statement aborts the
// whole transaction, inside a savepoint that a failure rolls back to, so
// that the transaction goes on.
func (t *tx) savepoint(fn func() error) error {
	if !t.pg {
		return fn()
	}
	if _, err := t.ExecContext(t.ctx, "SAVEPOINT batch"); err != nil {
		return err
	}
	if err := fn(); err != nil {
		if _, rerr := t.ExecContext(t.ctx, "ROLLBACK TO SAVEPOINT batch"); rerr != nil {
			return rerr
		}
		return err
	}
	_, err := t.ExecContext(t.ctx, "RELEASE SAVEPOINT batch")
	return err
}

// nextID returns the id AUTOINCREMENT gives the next row of table: one more
// than the largest it ever gave or than any row's. Rows inserted with
// explicit ids from there on get exactly the ids they would have got one
// INSERT at a time, and SQLite moves the table's sequence past them.
//
// On PostgreSQL the table's identity sequence plays sqlite_sequence's part,
// and advanceID moves it past the ids given.
func (t *tx) nextID(table string) (int64, error) {
	q := `SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = ?), 0),
		COALESCE((SELECT max(id) FROM ` + table + `), 0)) + 1`
	if t.pg {
		q = `SELECT GREATEST(COALESCE(pg_sequence_last_value(CAST(pg_get_serial_sequence(?, 'id') AS regclass)), 0),
		COALESCE((SELECT max(id) FROM ` + table + `), 0)) + 1`
	}
	var next int64
	err := t.QueryRowContext(t.ctx, q, table).Scan(&next)
	if err != nil {
		return 0, fmt.Errorf("next id of %s: %w", table, err)
	}
	return next, nil
}

// advanceID moves table's id sequence to last, the largest id given
// explicitly (PostgreSQL only: SQLite moves its sequence itself). last < 1
// means no id was given.
func (t *tx) advanceID(table string, last int64) error {
	if !t.pg || last < 1 {
		return nil
	}
	_, err := t.ExecContext(t.ctx, `SELECT setval(pg_get_serial_sequence(?, 'id'), GREATEST(?,
		COALESCE(pg_sequence_last_value(CAST(pg_get_serial_sequence(?, 'id') AS regclass)), 1)))`, table, last, table)
	if err != nil {
		return fmt.Errorf("advance id of %s: %w", table, err)
	}
	return nil
}

// bulkRows is the size of a plan from which a commit is a bulk load: the
// secondary indexes of the tables it fills from empty are built after the
// rows are in. (A larger page cache for the transaction saved another 10 %
// of CPU on a first import, but then a commit writes its WAL only at
// COMMIT, and the crash test can no longer tell a kill inside a commit.)
const bulkRows = 10_000

// bulkTables are the tables whose indexes a bulk load may build after it.
var bulkTables = []string{"people", "identities", "memberships", "assignments", "mirror_users"}

// isBulk says whether c is large enough for a bulk load.
func isBulk(c *reconcile.Commit) bool {
	n := 0
	if c.Plan != nil {
		n += len(c.Plan.People) + len(c.Plan.Members) + len(c.Plan.Licenses)
	}
	for _, d := range c.Mirrors {
		n += len(d.UpsertUsers)
	}
	return n >= bulkRows
}

// bulkLoad is what a bulk load changed in its transaction, to be undone by
// finish before the commit.
type bulkLoad struct {
	t *tx
	// filled are the tables it fills from empty.
	filled []string
	// indexes holds the statements that create the dropped indexes, exactly
	// as the schema has them (and, on PostgreSQL, add the dropped foreign
	// keys).
	indexes []string
}

// startBulk drops the secondary indexes (not the unique ones: they are
// constraints) of the empty bulkTables. The DDL is part of the transaction:
// a crash leaves the directory with its indexes, as before the run.
func (t *tx) startBulk() (*bulkLoad, error) {
	b := &bulkLoad{t: t}
	for _, table := range bulkTables {
		var empty bool
		if err := t.QueryRowContext(t.ctx, `SELECT NOT EXISTS (SELECT 1 FROM `+table+`)`).Scan(&empty); err != nil {
			return nil, fmt.Errorf("bulk load: %w", err)
		}
		if !empty {
			continue
		}
		b.filled = append(b.filled, table)
		var name, sql string
		var names []string
		q := `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE %' ORDER BY name`
		if t.pg {
			q = `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ?
				AND indexdef NOT LIKE 'CREATE UNIQUE %' ORDER BY indexname`
		}
		err := eachRow(t.ctx, t.Tx, "bulk load", q,
			[]any{table}, []any{&name, &sql}, func() error {
				names, b.indexes = append(names, name), append(b.indexes, sql)
				return nil
			})
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			if _, err := t.ExecContext(t.ctx, `DROP INDEX "`+name+`"`); err != nil {
				return nil, fmt.Errorf("bulk load: drop index %s: %w", name, err)
			}
		}
		if t.pg {
			if err := b.dropForeignKeys(table); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

// dropForeignKeys drops the foreign keys of table (PostgreSQL), to be added
// again by finish: checked row by row, each inserted row locks the rows it
// refers to (most of a first import's time on PostgreSQL), while adding
// the constraint back checks them all in one join.
func (b *bulkLoad) dropForeignKeys(table string) error {
	var name, def string
	var names []string
	err := eachRow(b.t.ctx, b.t.Tx, "bulk load", `SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = CAST(? AS regclass) AND contype = 'f' ORDER BY conname`,
		[]any{table}, []any{&name, &def}, func() error {
			names = append(names, name)
			b.indexes = append(b.indexes, `ALTER TABLE `+table+` ADD CONSTRAINT "`+name+`" `+def)
			return nil
		})
	if err != nil {
		return err
	}
	for _, name := range names {
		if _, err := b.t.ExecContext(b.t.ctx, `ALTER TABLE `+table+` DROP CONSTRAINT "`+name+`"`); err != nil {
			return fmt.Errorf("bulk load: drop foreign key %s: %w", name, err)
		}
	}
	return nil
}

// afterBulk, on PostgreSQL, vacuums and analyzes the tables a bulk load
// filled, once it committed: a first import leaves them without statistics for the
// planner and without the visibility map that lets the next cycle's counts
// (Counts) read an index alone, until autovacuum comes by, minutes later.
// It is not part of the commit (VACUUM cannot run in a transaction); a
// failure only leaves that to autovacuum.
func (s *Store) afterBulk(ctx context.Context, b *bulkLoad) {
	if b == nil || !b.t.pg || len(b.filled) == 0 {
		return
	}
	s.db.ExecContext(ctx, `VACUUM (ANALYZE) `+strings.Join(b.filled, ", "))
}

// finish builds the dropped indexes and foreign keys again.
func (b *bulkLoad) finish() error {
	for _, sql := range b.indexes {
		if _, err := b.t.ExecContext(b.t.ctx, sql); err != nil {
			return fmt.Errorf("bulk load: rebuild: %w", err)
		}
	}
	b.indexes = nil
	return nil
}
