package directory

import (
	"testing"
	"time"

	"github.com/learnsync/learnsync/reconcile"
)

func TestCommitRecordsTheEndAfterTheApply(t *testing.T) {
	eachBackend(t, testCommitRecordsTheEndAfterTheApply)
}

func testCommitRecordsTheEndAfterTheApply(t *testing.T) {
	ctx := t.Context()
	s := openFresh(t)
	start := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	planned := start.Add(time.Second)
	applied := start.Add(5 * time.Second)
	run := &reconcile.Run{Trigger: reconcile.TriggerOnce, StartedAt: start, EndedAt: planned, Result: reconcile.ResultOK}
	called := false
	if err := s.Commit(ctx, &reconcile.Commit{Plan: &reconcile.Plan{}, Run: run, Now: start,
		End: func() time.Time { called = true; return applied }}); err != nil {
		t.Fatal(err)
	}
	runs, err := s.Runs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !called || !runs[0].EndedAt.Equal(applied) || !run.EndedAt.Equal(applied) {
		t.Errorf("run ended at %v (record) / %v (caller), want %v", runs[0].EndedAt, run.EndedAt, applied)
	}
}
