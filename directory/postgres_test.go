package directory

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/learnsync/learnsync/internal/pgtest"
	"github.com/learnsync/learnsync/reconcile"
)

// Copy moves a directory from SQLite to PostgreSQL and on to another
// PostgreSQL database, keeping ids and history, and refuses a target that
// is not empty.
func TestCopySQLiteToPostgresToPostgres(t *testing.T) {
	ctx := t.Context()
	src, e, _ := readDir(t) // SQLite, filled by a run
	if _, err := e.Run(ctx, reconcile.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	pg1, pg2 := openDSN(t, pgtest.DSN(t)), openDSN(t, pgtest.DSN(t))
	want, err := src.Export(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, hop := range []struct{ from, to *Store }{{src, pg1}, {pg1, pg2}} {
		counts, err := Copy(ctx, hop.from, hop.to)
		if err != nil {
			t.Fatalf("Copy %s → %s: %v", hop.from.Driver(), hop.to.Driver(), err)
		}
		if counts["people"] != 2 || counts["runs"] != 2 || counts["audit_events"] == 0 || counts["mirror_users"] != 3 {
			t.Errorf("counts = %v", counts)
		}
		got, err := hop.to.Export(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("export after the copy (-source +target):\n%s", diff)
		}
		// The kept counts are the target's own, counted from what it got.
		wantActive, wantHeld, err := src.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gotActive, gotHeld, err := hop.to.Counts(ctx)
		if err != nil || gotActive != wantActive || !maps.Equal(gotHeld, wantHeld) {
			t.Errorf("counts after the copy = %d %v, %v; want %d %v", gotActive, gotHeld, err, wantActive, wantHeld)
		}
		wantRuns, _ := src.Runs(ctx, 10)
		gotRuns, _ := hop.to.Runs(ctx, 10)
		if len(gotRuns) != len(wantRuns) || gotRuns[0].ID != wantRuns[0].ID {
			t.Errorf("runs copied: %d (newest %d), want %d (newest %d)", len(gotRuns), gotRuns[0].ID, len(wantRuns), wantRuns[0].ID)
		}
	}
	// The sequences moved past the copied ids: the next run gets a new id.
	r := &reconcile.Run{Trigger: "once", Result: reconcile.ResultOK, StartedAt: t0, EndedAt: t0}
	if err := pg2.RecordRun(ctx, r); err != nil || r.ID != 3 {
		t.Errorf("run recorded after the copy: id %d, %v; want 3", r.ID, err)
	}
	if _, err := Copy(ctx, src, pg2); !errors.Is(err, ErrTargetNotEmpty) {
		t.Errorf("Copy into a full target = %v, want ErrTargetNotEmpty", err)
	}
}

// A fence that fails rolls the run's transaction back; pushes are not
// fenced.
func TestFence(t *testing.T) { eachBackend(t, testFence) }

func testFence(t *testing.T) {
	ctx := t.Context()
	deposed := errors.New("deposed")
	var calls int
	fence := func(ctx context.Context, tx *sql.Tx) error {
		calls++
		var one int
		if err := tx.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			return err
		}
		return deposed
	}
	var target string
	var s *Store
	var err error
	if onPostgres(t) {
		target = pgtest.DSN(t)
		s, err = OpenPostgres(ctx, target, Options{Fence: fence})
	} else {
		target = t.TempDir() + "/d.db"
		s, err = Open(ctx, target, Options{Fence: fence})
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := &reconcile.Run{Trigger: "once", Result: reconcile.ResultOK, StartedAt: t0, EndedAt: t0}
	if err := s.RecordRun(ctx, r); !errors.Is(err, deposed) {
		t.Fatalf("RecordRun = %v, want the fence's error", err)
	}
	if err := s.Commit(ctx, &reconcile.Commit{Plan: &reconcile.Plan{}, Run: r, Now: t0}); !errors.Is(err, deposed) {
		t.Fatalf("Commit = %v, want the fence's error", err)
	}
	if _, err := s.PruneRuns(ctx, 0); !errors.Is(err, deposed) {
		t.Fatalf("PruneRuns = %v, want the fence's error", err)
	}
	if runs, err := s.Runs(ctx, 10); err != nil || len(runs) != 0 {
		t.Errorf("runs after fenced writes: %v, %v; want none", runs, err)
	}
	if calls != 3 {
		t.Errorf("fence called %d times, want 3", calls)
	}
}

// A password in the DSN is in no error, not in Path; an unreachable
// server is a clear error.
func TestPostgresPasswordNeverShown(t *testing.T) {
	dsn := "postgres://learnsync:hunter2secret@127.0.0.1:1/learnsync?connect_timeout=2"
	_, err := OpenPostgres(t.Context(), dsn, Options{})
	if err == nil {
		t.Fatal("opened a database on port 1")
	}
	if strings.Contains(err.Error(), "hunter2secret") {
		t.Errorf("error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("error does not say which server: %v", err)
	}
	if got := RedactDSN(dsn); strings.Contains(got, "hunter2secret") || !strings.Contains(got, "learnsync:xxxxx@") {
		t.Errorf("RedactDSN = %s", got)
	}
	if got := RedactDSN("host=db password=hunter2secret dbname=x"); strings.Contains(got, "hunter2secret") {
		t.Errorf("RedactDSN = %s", got)
	}
}

// The server drops the connection in the middle of an apply: the run fails,
// nothing of it is stored, and the next one succeeds.
func TestPostgresConnectionLostMidApply(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := t.Context()
	s := openDSN(t, dsn)
	s.Now = func() time.Time { return t0 }
	killed := false
	s.fence = func(ctx context.Context, tx *sql.Tx) error {
		if killed {
			return nil
		}
		killed = true
		// The transaction's own backend is terminated from outside.
		var pid int
		if err := tx.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			return err
		}
		admin := openDSN(t, dsn)
		_, err := admin.db.ExecContext(ctx, "SELECT pg_terminate_backend(?)", pid)
		return err
	}
	r := &reconcile.Run{Trigger: "once", Result: reconcile.ResultOK, StartedAt: t0, EndedAt: t0}
	err := s.Commit(ctx, &reconcile.Commit{Plan: &reconcile.Plan{}, Mirrors: nil, Run: r, Now: t0})
	if err == nil {
		t.Fatal("Commit succeeded on a terminated connection")
	}
	if runs, err := s.Runs(ctx, 10); err != nil || len(runs) != 0 {
		t.Fatalf("after the lost commit: runs %v, %v; want none (and a working pool)", runs, err)
	}
	r2 := &reconcile.Run{Trigger: "once", Result: reconcile.ResultOK, StartedAt: t0, EndedAt: t0}
	if err := s.Commit(ctx, &reconcile.Commit{Plan: &reconcile.Plan{}, Run: r2, Now: t0}); err != nil {
		t.Fatalf("next commit: %v", err)
	}
	if runs, _ := s.Runs(ctx, 10); len(runs) != 1 {
		t.Errorf("runs after the next commit: %d, want 1", len(runs))
	}
}
