package directory

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/learnsync/learnsync/reconcile"
)

func TestRecordRunAndRuns(t *testing.T) { eachBackend(t, testRecordRunAndRuns) }

func testRecordRunAndRuns(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	paris := time.FixedZone("CET", 3600)

	blockedPlan := &reconcile.Plan{
		People: []reconcile.PersonChange{
			{Op: reconcile.OpDeactivate, Person: known(1, "alice@example.com"), Profile: aliceProfile,
				Edit: &reconcile.PersonEdit{Unlink: []reconcile.IdentityRef{ident("hr", "u1")}}},
			{Op: reconcile.OpDeactivate, Person: known(2, "bob@example.com"), Profile: bobProfile,
				Edit: &reconcile.PersonEdit{Fields: []reconcile.FieldChange{{Field: "title", Old: "Engineer", New: ""}}}},
		},
		Members:      []reconcile.MemberChange{{Group: &reconcile.MemberGroup{Ref: gref("hr", "g1"), Name: "Engineering", Op: reconcile.OpRemove}, Person: new(known(2, "bob@example.com"))}},
		Licenses:     []reconcile.LicenseChange{{Op: reconcile.OpRevoke, Pool: "learning-pro", Person: new(known(2, "bob@example.com")), Reason: "deactivated"}},
		Pools:        []reconcile.PoolChange{{Op: reconcile.OpUpdate, Pool: "learning-pro", Seats: 2, Assigned: 1, OldSeats: 2, OldWaiting: 1}},
		Shortfalls:   []reconcile.Shortfall{{Pool: "learning-pro", Seats: 2, Assigned: 2, Waiting: 3, Next: []string{"x@example.com", "y@example.com"}}},
		ActiveBefore: 2,
	}
	failed := &reconcile.Run{
		Trigger: reconcile.TriggerSchedule, StartedAt: time.Date(2025, 3, 1, 10, 0, 0, 123456789, paris), EndedAt: time.Date(2025, 3, 1, 10, 0, 2, 0, paris),
		Result: reconcile.ResultFailed, Error: "every source failed to fetch (1)",
		Sources: []reconcile.SourceRun{{Name: "okta", Mode: "incremental", Result: "failed", Error: "fetch okta: 503", Requests: 4, Duration: 1500 * time.Millisecond}},
	}
	blocked := &reconcile.Run{
		Trigger: reconcile.TriggerOnce, StartedAt: t1, EndedAt: t1.Add(3 * time.Second), Result: reconcile.ResultBlocked,
		Error:   "the plan deactivates 2 of 2 active people (100.0%), more than safety.max_deactivation_percent (20%)",
		Sources: []reconcile.SourceRun{{Name: "hr", Mode: "full", Result: "ok", Users: 2, Groups: 1, Rows: 3, Duration: time.Second}},
		Summary: blockedPlan.Summary(),
		Problems: []reconcile.Problem{
			{Source: "hr", Object: "user u9", Reason: "no email to match on: skipped"},
			{Object: "run", Reason: "3 more problems not kept"},
		},
		Plan: blockedPlan,
	}
	for _, r := range []*reconcile.Run{failed, blocked} {
		if err := s.RecordRun(ctx, r); err != nil {
			t.Fatalf("RecordRun: %v", err)
		}
		if r.ID == 0 {
			t.Fatal("RecordRun did not set the id")
		}
	}
	if blocked.ID != failed.ID+1 {
		t.Errorf("ids %d, %d: want consecutive", failed.ID, blocked.ID)
	}

	runs, err := s.Runs(ctx, 10)
	if err != nil {
		t.Fatalf("Runs: %v", err)
	}
	// Profiles are not part of a plan's JSON (json:"-"): a stored plan
	// shows the field changes, not whole profiles.
	opts := cmp.Options{cmpopts.IgnoreFields(reconcile.PersonChange{}, "Profile"), cmpopts.EquateEmpty()}
	wantNano := 123456789
	if onPostgres(t) {
		// PostgreSQL keeps timestamps to the microsecond.
		failed.StartedAt, wantNano = failed.StartedAt.Truncate(time.Microsecond), 123456000
	}
	if diff := cmp.Diff([]reconcile.Run{*blocked, *failed}, runs, opts); diff != "" {
		t.Errorf("Runs, newest first (-want +got):\n%s", diff)
	}
	if len(runs) == 2 {
		if runs[1].StartedAt.Location() != time.UTC || runs[1].StartedAt.Nanosecond() != wantNano {
			t.Errorf("started_at read back as %v: want UTC to the nanosecond", runs[1].StartedAt)
		}
		if runs[1].Plan != nil {
			t.Errorf("a run recorded without a plan has one: %+v", runs[1].Plan)
		}
		if runs[1].Problems == nil || runs[1].Sources == nil {
			t.Error("lists of a run read back as nil, want empty")
		}
	}

	if runs, err := s.Runs(ctx, 1); err != nil || len(runs) != 1 || runs[0].ID != blocked.ID {
		t.Errorf("Runs(1) = %+v, %v; want only the newest", runs, err)
	}

	// The stored JSON is what an operator reads in the database.
	var summary, plan string
	if err := s.db.QueryRowContext(ctx, `SELECT summary, plan FROM runs WHERE id = ?`, blocked.ID).Scan(&summary, &plan); err != nil {
		t.Fatal(err)
	}
	var gotSummary reconcile.Summary
	if err := json.Unmarshal([]byte(summary), &gotSummary); err != nil || gotSummary != blocked.Summary {
		t.Errorf("stored summary %s, %v", summary, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(plan), &raw); err != nil {
		t.Fatalf("stored plan is not JSON: %v", err)
	}
	for _, k := range []string{"people", "groups", "members", "licenses", "pools", "shortfalls", "active_before"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("stored plan has no %q: %s", k, plan)
		}
	}
	// A run that applied nothing has no audit events.
	if evs, err := s.AuditEvents(ctx, 0, 0); err != nil || len(evs) != 0 {
		t.Errorf("AuditEvents after RecordRun = %v, %v", evs, err)
	}
}

func TestRunsEmpty(t *testing.T) { eachBackend(t, testRunsEmpty) }

func testRunsEmpty(t *testing.T) {
	s := openTest(t)
	runs, err := s.Runs(t.Context(), 10)
	if err != nil || len(runs) != 0 {
		t.Errorf("Runs on a new directory = %v, %v", runs, err)
	}
}

func TestPruneRuns(t *testing.T) { eachBackend(t, testPruneRuns) }

func testPruneRuns(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	var ids []int64
	for i := range 5 {
		at := t0.Add(time.Duration(i) * time.Minute)
		c := &reconcile.Commit{Plan: &reconcile.Plan{Pools: []reconcile.PoolChange{
			{Op: reconcile.OpCreate, Pool: fmt.Sprintf("pool-%d", i), Seats: i},
		}}, Now: at}
		commit(t, s, c)
		ids = append(ids, c.Run.ID)
	}
	blocked := &reconcile.Run{Trigger: reconcile.TriggerOnce, StartedAt: t1, EndedAt: t1, Result: reconcile.ResultBlocked, Plan: &reconcile.Plan{}}
	if err := s.RecordRun(ctx, blocked); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, blocked.ID)

	// Nothing to prune while there are no more than keep runs.
	if n, err := s.PruneRuns(ctx, 6); err != nil || n != 0 {
		t.Errorf("PruneRuns(6) of 6 = %d, %v; want 0", n, err)
	}
	if n, err := s.PruneRuns(ctx, 100); err != nil || n != 0 {
		t.Errorf("PruneRuns(100) of 6 = %d, %v; want 0", n, err)
	}

	n, err := s.PruneRuns(ctx, 3)
	if err != nil || n != 3 {
		t.Fatalf("PruneRuns(3) = %d, %v; want 3 deleted", n, err)
	}
	runs, err := s.Runs(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range runs {
		got = append(got, r.ID)
	}
	if diff := cmp.Diff([]int64{ids[5], ids[4], ids[3]}, got); diff != "" {
		t.Errorf("runs kept (-want +got):\n%s", diff)
	}
	evs, err := s.AuditEvents(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var evRuns []int64
	for _, e := range evs {
		evRuns = append(evRuns, e.RunID)
	}
	if diff := cmp.Diff([]int64{ids[3], ids[4]}, evRuns); diff != "" {
		t.Errorf("audit events kept belong to runs (-want +got):\n%s", diff)
	}
	if n := count(t, s, `SELECT count(*) FROM audit_events WHERE run_id NOT IN (SELECT id FROM runs)`); n != 0 {
		t.Errorf("%d orphaned audit events", n)
	}
	// Pruning history does not touch the directory.
	if st := loadState(t, s); len(st.Pools) != 5 {
		t.Errorf("pools after pruning = %d, want 5", len(st.Pools))
	}

	// Run ids are never reused after pruning.
	c := &reconcile.Commit{Plan: &reconcile.Plan{}, Now: t1}
	commit(t, s, c)
	if c.Run.ID != ids[5]+1 {
		t.Errorf("run id after pruning = %d, want %d", c.Run.ID, ids[5]+1)
	}
	if n, err := s.PruneRuns(ctx, 0); err != nil || n != 4 {
		t.Errorf("PruneRuns(0) = %d, %v; want all 4 deleted", n, err)
	}
	if n := count(t, s, `SELECT count(*) FROM audit_events`); n != 0 {
		t.Errorf("%d audit events left after pruning every run", n)
	}
}
