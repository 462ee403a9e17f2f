package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ErrTargetNotEmpty is returned by Copy when the target directory already
// holds rows.
var ErrTargetNotEmpty = errors.New("target directory is not empty")

// copyTable is a table Copy moves; tables come parents first.
type copyTable struct {
	name  string
	order string
}

// copyTables is every table of the directory, in an order that satisfies
// the foreign keys. scim_resources is copied with its rowid (SQLite's
// implicit one, PostgreSQL's column), which keeps ListSCIM's order.
var copyTables = []copyTable{
	{"people", "id"}, {"identities", "source, external_id"}, {"groups", "id"},
	{"memberships", "group_id, person_id"}, {"pools", "name"}, {"assignments", "id"},
	{"mirrors", "source"}, {"mirror_users", "source, external_id"}, {"mirror_groups", "source, external_id"},
	{"runs", "id"}, {"audit_events", "id"}, {"reconcile_marks", "id"},
	{"scim_resources", "rowid"}, {"scim_keys", "source, type, attr, key, id"},
	{"scim_members", "source, group_id, member"}, {"mirror_changes", "seq"},
}

// CopyCounts is how many rows of each table Copy moved.
type CopyCounts map[string]int64

// Copy copies every row of every table of from into to, keeping ids, in
// one transaction on to. It refuses a target that holds any row, checks
// that both sides have the same number of rows in every table before it
// commits, and moves to's id sequences past the copied ids.
func Copy(ctx context.Context, from, to *Store) (CopyCounts, error) {
	counts := CopyCounts{}
	err := from.readConn(ctx, func(src *sql.Conn) error {
		return to.update(ctx, to.Now().UTC(), func(t *tx) error { return copyAll(ctx, src, from.driver, t, counts) })
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

// copyAll is Copy inside the source's read transaction and the target's
// write transaction.
func copyAll(ctx context.Context, src *sql.Conn, srcDriver string, t *tx, counts CopyCounts) error {
	for _, table := range copyTables {
		var n int64
		if err := t.QueryRowContext(ctx, "SELECT count(*) FROM "+table.name).Scan(&n); err != nil {
			return fmt.Errorf("count target %s: %w", table.name, err)
		}
		if n > 0 {
			return fmt.Errorf("%w (%s has %d rows)", ErrTargetNotEmpty, table.name, n)
		}
	}
	for _, table := range copyTables {
		n, err := copyRows(ctx, src, srcDriver, t, table)
		if err != nil {
			return fmt.Errorf("copy %s: %w", table.name, err)
		}
		var got int64
		if err := t.QueryRowContext(ctx, "SELECT count(*) FROM "+table.name).Scan(&got); err != nil {
			return fmt.Errorf("count target %s: %w", table.name, err)
		}
		if got != n {
			return fmt.Errorf("copy %s: source has %d rows, target %d", table.name, n, got)
		}
		counts[table.name] = n
	}
	if err := recountAll(ctx, t); err != nil {
		return err
	}
	return t.setSequences()
}

// copyRows copies one table's rows from src into t, batchRows rows an
// INSERT, and returns how many the source has.
func copyRows(ctx context.Context, src *sql.Conn, srcDriver string, t *tx, table copyTable) (int64, error) {
	sel := "SELECT * FROM " + table.name
	if table.name == "scim_resources" && srcDriver != DriverPostgres {
		sel = "SELECT rowid, * FROM " + table.name
	}
	rows, err := src.QueryContext(ctx, sel+" ORDER BY "+table.order)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	cols[0] = strings.ToLower(cols[0])
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
	b := newBatch(t, "INSERT INTO "+table.name+" ("+strings.Join(cols, ", ")+") VALUES", "("+marks+")", "")
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, err
		}
		row := make([]any, len(cols))
		for i, v := range vals {
			row[i] = copyValue(cols[i], v)
		}
		if err := b.add(row...); err != nil {
			return 0, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	return n, b.flush()
}

// copyValue converts what the source's driver read into what the target's
// takes: text as strings, and timestamps SQLite holds as text as times.
func copyValue(col string, v any) any {
	switch x := v.(type) {
	case []byte:
		v = string(x)
	}
	if s, ok := v.(string); ok && (col == "at" || strings.HasSuffix(col, "_at")) {
		if tm := parseTimeText(s); !tm.IsZero() {
			return tm
		}
	}
	return v
}

// setSequences moves every identity sequence past the largest id its
// table holds (PostgreSQL; SQLite's follow explicit ids by themselves).
func (t *tx) setSequences() error {
	if !t.pg {
		return nil
	}
	for table, col := range sequenceTables {
		_, err := t.ExecContext(t.ctx, `SELECT setval(pg_get_serial_sequence(?, ?), m, true) FROM
			(SELECT max(`+col+`) AS m FROM `+table+`) AS x WHERE m IS NOT NULL`, table, col)
		if err != nil {
			return fmt.Errorf("set sequence of %s: %w", table, err)
		}
	}
	return nil
}
