package directory

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The counts an incremental run needs (the active people, the seats held
// per pool) are kept in directory_counts: every commit adds what its plan
// changed, in its transaction, so that a run reads a few rows instead of
// counting a large directory. Only the commit writes people and seats.

const (
	countActive = "active"
	countPool   = "pool:"
)

// Counts returns the number of active people and of held seats per pool
// (pools with none are left out).
func (s *Store) Counts(ctx context.Context) (int, map[string]int, error) {
	active, held := 0, map[string]int{}
	var name string
	var n int
	err := eachRow(ctx, s.db, "read counts", `SELECT name, n FROM directory_counts`, nil, []any{&name, &n}, func() error {
		if pool, ok := strings.CutPrefix(name, countPool); ok && n != 0 {
			held[pool] = n
		} else if name == countActive {
			active = n
		}
		return nil
	})
	return active, held, err
}

// count notes that a commit changes a count by n.
func (w *writer) count(name string, n int) {
	if w.counts == nil {
		w.counts = map[string]int{}
	}
	w.counts[name] += n
}

// countDeleted notes what deleting a person takes off the counts: the
// person if active, the seats they hold (the rows go with them).
func (w *writer) countDeleted(id int64) error {
	var active bool
	if err := w.QueryRowContext(w.ctx, `SELECT active FROM people WHERE id = ?`, id).Scan(&active); err != nil {
		return fmt.Errorf("count person %d: %w", id, err)
	}
	if active {
		w.count(countActive, -1)
	}
	var pool string
	return eachRow(w.ctx, w.Tx, "count seats", `SELECT pool FROM assignments WHERE person_id = ? AND revoked_at IS NULL`,
		[]any{id}, []any{&pool}, func() error { w.count(countPool+pool, -1); return nil })
}

// writeCounts adds the commit's changes to the kept counts; a pool's row
// goes when it holds no seat any more.
func (w *writer) writeCounts() error {
	for _, name := range slices.Sorted(maps.Keys(w.counts)) {
		n := w.counts[name]
		if n == 0 {
			continue
		}
		if _, err := w.exec(`INSERT INTO directory_counts (name, n) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET n = directory_counts.n + excluded.n`, name, n); err != nil {
			return fmt.Errorf("write counts: %w", err)
		}
	}
	if _, err := w.exec(`DELETE FROM directory_counts WHERE n = 0 AND name <> ?`, countActive); err != nil {
		return fmt.Errorf("write counts: %w", err)
	}
	return nil
}

// recountAll fills directory_counts from the rows of the directory, as
// migration 8 did (after Copy, which moves the rows but not the counts).
func recountAll(ctx context.Context, t *tx) error {
	for _, q := range []string{
		`DELETE FROM directory_counts`,
		`INSERT INTO directory_counts (name, n) SELECT 'active', count(*) FROM people WHERE active = 1`,
		`INSERT INTO directory_counts (name, n)
			SELECT 'pool:' || pool, count(*) FROM assignments WHERE revoked_at IS NULL GROUP BY pool`,
	} {
		if _, err := t.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("recount: %w", err)
		}
	}
	return nil
}
