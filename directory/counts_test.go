package directory

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// recount counts what directory_counts keeps, from the rows.
func recount(t *testing.T, db *sql.DB) (int, map[string]int) {
	t.Helper()
	ctx := context.Background()
	var active int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM people WHERE active = 1`).Scan(&active); err != nil {
		t.Fatal(err)
	}
	held := map[string]int{}
	var pool string
	var n int
	if err := eachRow(ctx, db, "recount", `SELECT pool, count(*) FROM assignments WHERE revoked_at IS NULL GROUP BY pool`, nil,
		[]any{&pool, &n}, func() error { held[pool] = n; return nil }); err != nil {
		t.Fatal(err)
	}
	return active, held
}

// checkCounts fails unless the kept counts are those of the rows.
func checkCounts(t *testing.T, s *Store, what string) {
	t.Helper()
	active, held, err := s.Counts(t.Context())
	if err != nil {
		t.Fatalf("%s: Counts: %v", what, err)
	}
	wantActive, wantHeld := recount(t, s.db)
	if active != wantActive {
		t.Fatalf("%s: kept active count %d, the rows say %d", what, active, wantActive)
	}
	if diff := cmp.Diff(wantHeld, held, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("%s: kept seat counts differ from the rows (-rows +kept):\n%s", what, diff)
	}
}

// A directory of an older schema gets its counts from its rows, once.
func TestCountsMigrationBackfills(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "d.db")
	raw := openUnmigrated(t, path)
	if err := raw.migrateTo(ctx, len(migrations)-1); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO people (id, match_key, active, created_at, updated_at) VALUES
			(1, 'a', 1, '2026-01-01', '2026-01-01'), (2, 'b', 1, '2026-01-01', '2026-01-01'), (3, 'c', 0, '2026-01-01', '2026-01-01')`,
		`INSERT INTO pools (name, seats, waiting, updated_at) VALUES ('pro', 5, 0, '2026-01-01'), ('lab', 0, 0, '2026-01-01')`,
		`INSERT INTO assignments (pool, person_id, granted_at) VALUES ('pro', 1, '2026-01-01'), ('pro', 2, '2026-01-01'), ('lab', 1, '2026-01-01')`,
		`INSERT INTO assignments (pool, person_id, granted_at, revoked_at) VALUES ('lab', 2, '2026-01-01', '2026-01-02')`,
	} {
		if _, err := raw.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := raw.migrate(ctx); err != nil {
		t.Fatal(err)
	}
	active, held, err := raw.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if active != 2 || !cmp.Equal(held, map[string]int{"pro": 2, "lab": 1}) {
		t.Errorf("after the migration: active %d, held %v; want 2 and pro 2, lab 1", active, held)
	}
	checkCounts(t, raw, "after the migration")
}

// CheckCounts is checkCounts for the package's external tests.
var CheckCounts = checkCounts
