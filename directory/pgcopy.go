package directory

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// copyBatchRows is how many rows one COPY writes on PostgreSQL. A multi-row
// INSERT costs a round trip and a parse of its text per 200 rows; COPY
// (pgx CopyFrom, the binary format) streams the rows, so its batches are
// larger.
const copyBatchRows = 5000

// copyPlan is how a batch's rows are written with COPY: into table's cols,
// each column either the row's next value or a constant.
type copyPlan struct {
	table string
	cols  []string
	// consts[i] is column i's constant, or nil when the column takes the
	// row's next value.
	consts []any
}

// parseCopy returns the COPY of a batch's INSERT (head "INSERT INTO t (a,
// b) VALUES", rows like "(?, 1)"), or nil when its rows cannot be copied:
// an ON CONFLICT tail or a value that is neither ? nor an integer.
func parseCopy(head, row, tail string) *copyPlan {
	rest, ok := strings.CutPrefix(head, "INSERT INTO ")
	if !ok || tail != "" {
		return nil
	}
	table, rest, ok := strings.Cut(rest, " (")
	if !ok {
		return nil
	}
	list, ok := strings.CutSuffix(strings.TrimSpace(rest), ") VALUES")
	if !ok {
		return nil
	}
	values, ok := strings.CutPrefix(row, "(")
	if values, ok = strings.CutSuffix(values, ")"); !ok {
		return nil
	}
	p := &copyPlan{table: table}
	vals := strings.Split(values, ",")
	for i, c := range strings.Split(list, ",") {
		if i >= len(vals) {
			return nil
		}
		p.cols = append(p.cols, strings.TrimSpace(c))
		switch v := strings.TrimSpace(vals[i]); v {
		case "?":
			p.consts = append(p.consts, nil)
		default:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil
			}
			p.consts = append(p.consts, n)
		}
	}
	if len(vals) != len(p.cols) {
		return nil
	}
	return p
}

// rows lays args (the batch's values, row after row) out as COPY rows,
// with the constants in and booleans as 0 and 1 (the schema keeps SQLite's
// integer flags).
func (p *copyPlan) rows(args []any, cols int) [][]any {
	n := len(args) / cols
	out := make([][]any, n)
	cells := make([]any, n*len(p.cols))
	for r := range n {
		row := cells[r*len(p.cols) : (r+1)*len(p.cols)]
		a := args[r*cols : (r+1)*cols]
		for i, c := range p.consts {
			if c == nil {
				c, a = a[0], a[1:]
			}
			if b, ok := c.(bool); ok {
				c = int64(0)
				if b {
					c = int64(1)
				}
			}
			row[i] = c
		}
		out[r] = row
	}
	return out
}

// copyFrom writes rows into table with COPY on the transaction's own
// connection (PostgreSQL only).
func (t *tx) copyFrom(p *copyPlan, rows [][]any) error {
	if t.conn == nil {
		return errors.New("copy: no connection")
	}
	return t.conn.Raw(func(dc any) error {
		c := pgxConn(dc)
		if c == nil {
			return fmt.Errorf("copy into %s: not a pgx connection", p.table)
		}
		n, err := c.CopyFrom(t.ctx, pgx.Identifier{p.table}, p.cols, pgx.CopyFromRows(rows))
		if err == nil && n != int64(len(rows)) {
			err = fmt.Errorf("copied %d of %d rows", n, len(rows))
		}
		if err != nil {
			return fmt.Errorf("copy into %s: %w", p.table, err)
		}
		return nil
	})
}
