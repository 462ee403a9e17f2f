package directory

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/learnsync/learnsync/reconcile"
)

func TestStatusEmptyDirectory(t *testing.T) { eachBackend(t, testStatusEmptyDirectory) }

func testStatusEmptyDirectory(t *testing.T) {
	s := openTest(t)
	st, err := s.Status(t.Context())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if len(st.Sources) != 0 || st.Active != 0 || st.Inactive != 0 || st.Pools == nil || len(st.Pools) != 0 {
		t.Errorf("Status of a new directory = %+v", st)
	}
}

// Status counts what Commit wrote, and follows each source's fetches through
// the run history: the last fetch, and since when a failing source has been
// frozen.
func TestStatusMirrorsPeoplePoolsAndFetches(t *testing.T) {
	eachBackend(t, testStatusMirrorsPeoplePoolsAndFetches)
}

func testStatusMirrorsPeoplePoolsAndFetches(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	first := okRun(t0)
	first.Sources = []reconcile.SourceRun{
		{Name: "hr", Mode: "full", Result: "ok", Users: 4, Groups: 3},
		{Name: "okta", Mode: "full", Result: "ok", Users: 1, Groups: 1},
	}
	commit(t, s, &reconcile.Commit{Plan: plan1(), Mirrors: mirrors1(), Run: first, Now: t0})

	// okta starts failing at t0+1m, hr keeps working, then okta fails again.
	t1m, t2m, t3m := t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	runs := []*reconcile.Run{
		{Trigger: reconcile.TriggerSchedule, StartedAt: t1m, EndedAt: t1m, Result: reconcile.ResultFailed,
			Sources: []reconcile.SourceRun{{Name: "hr", Result: "unchanged"}, {Name: "okta", Mode: "incremental", Result: "failed", Error: "fetch okta: 503"}}},
		{Trigger: reconcile.TriggerSchedule, StartedAt: t2m, EndedAt: t2m, Result: reconcile.ResultBlocked,
			Sources: []reconcile.SourceRun{{Name: "hr", Mode: "full", Result: "ok", Users: 4}, {Name: "okta", Result: "unchanged"}}},
		{Trigger: reconcile.TriggerSchedule, StartedAt: t3m, EndedAt: t3m, Result: reconcile.ResultFailed,
			Sources: []reconcile.SourceRun{{Name: "hr", Result: "unchanged"}, {Name: "okta", Mode: "incremental", Result: "failed", Error: "fetch okta: 401"}}},
	}
	for _, r := range runs {
		if err := s.RecordRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// A source that never fetched successfully has no mirror, only history.
	never := &reconcile.Run{Trigger: reconcile.TriggerSchedule, StartedAt: t3m, EndedAt: t3m, Result: reconcile.ResultFailed,
		Sources: []reconcile.SourceRun{{Name: "entra", Mode: "full", Result: "failed", Error: "fetch entra: token"}}}
	if err := s.RecordRun(ctx, never); err != nil {
		t.Fatal(err)
	}

	st, err := s.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	want := &StoreStatus{
		Sources: []MirrorStatus{
			{Source: "entra", LastFetch: &RecordedFetch{RunID: never.ID, At: t3m, SourceRun: never.Sources[0]}, FrozenSince: t3m},
			{Source: "hr", HasCursor: true, FetchedAt: t0, FullAt: t0, Users: 4, Groups: 3,
				LastFetch: &RecordedFetch{RunID: runs[1].ID, At: t2m, SourceRun: runs[1].Sources[0]}},
			{Source: "okta", HasCursor: true, FetchedAt: t0, Users: 1, Groups: 1,
				LastFetch: &RecordedFetch{RunID: runs[2].ID, At: t3m, SourceRun: runs[2].Sources[1]}, FrozenSince: t1m},
		},
		Active: 3,
		Pools: []ExportLicense{
			{Name: "learning-basic", Seats: 0, Assigned: 3},
			{Name: "learning-pro", Seats: 2, Assigned: 2, Waiting: 1},
			{Name: "legacy", Seats: 5},
		},
	}
	if diff := cmp.Diff(want, st, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("Status (-want +got):\n%s", diff)
	}

	// okta recovers: no longer frozen. Deactivating bob shows in the counts.
	ok := &reconcile.Run{Trigger: reconcile.TriggerSchedule, StartedAt: t0.Add(4 * time.Minute), Result: reconcile.ResultOK,
		Sources: []reconcile.SourceRun{{Name: "okta", Mode: "incremental", Result: "ok", Users: 1}}}
	plan := &reconcile.Plan{
		People:   []reconcile.PersonChange{{Op: reconcile.OpDeactivate, Person: known(2, "bob@example.com"), Profile: bobProfile}},
		Licenses: []reconcile.LicenseChange{{Op: reconcile.OpRevoke, Pool: "learning-pro", Person: new(known(2, "bob@example.com")), Reason: "deactivated"}},
	}
	commit(t, s, &reconcile.Commit{Plan: plan, Run: ok, Now: ok.StartedAt})
	st, err = s.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	okta := st.Sources[2]
	if !okta.FrozenSince.IsZero() || okta.LastFetch == nil || okta.LastFetch.RunID != ok.ID || okta.LastFetch.Result != "ok" {
		t.Errorf("okta after recovering = %+v", okta)
	}
	if st.Active != 2 || st.Inactive != 1 {
		t.Errorf("people = %d active, %d inactive; want 2, 1", st.Active, st.Inactive)
	}
	if got := st.Pools[1]; got.Assigned != 1 {
		t.Errorf("learning-pro after bob left = %+v, want 1 assigned", got)
	}
}

// Status reads while another connection holds the write lock: the ops
// endpoint must answer during a long apply.
func TestStatusDuringWrite(t *testing.T) { eachBackend(t, testStatusDuringWrite) }

func testStatusDuringWrite(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	commit(t, s, &reconcile.Commit{Plan: plan1(), Mirrors: mirrors1(), Now: t0})
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: takes the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE people SET title = 'x'`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := s.Status(ctx); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Status during a write: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Status waited for the writer")
	}
}
