package directory

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/learnsync/learnsync/reconcile"
)

// Runs returns the last runs, newest first (all of them when limit is
// negative).
func (s *Store) Runs(ctx context.Context, limit int) ([]reconcile.Run, error) {
	out := []reconcile.Run{}
	var (
		r                                        reconcile.Run
		trigger, result                          string
		sources, summary, problems, errMsg, plan string
		mode, why                                string
	)
	err := eachRow(ctx, s.db, "read runs",
		`SELECT id, trigger, started_at, ended_at, result, sources, summary, problems, error, plan, reconcile, full_reason FROM runs ORDER BY id DESC LIMIT ?`,
		[]any{limit}, []any{&r.ID, &trigger, &r.StartedAt, &r.EndedAt, &result, &sources, &summary, &problems, &errMsg, &plan, &mode, &why},
		func() error {
			run := reconcile.Run{ID: r.ID, Trigger: reconcile.Trigger(trigger), StartedAt: r.StartedAt, EndedAt: r.EndedAt,
				Result: reconcile.RunResult(result), Error: errMsg, Reconcile: mode, FullReason: why}
			if err := unmarshalRun(&run, sources, summary, problems, plan); err != nil {
				return fmt.Errorf("read run %d: %w", r.ID, err)
			}
			out = append(out, run)
			return nil
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// unmarshalRun reads the JSON columns of a run.
func unmarshalRun(run *reconcile.Run, sources, summary, problems, plan string) error {
	for _, f := range []struct {
		col string
		dst any
	}{{sources, &run.Sources}, {summary, &run.Summary}, {problems, &run.Problems}} {
		if f.col == "" {
			continue
		}
		if err := json.Unmarshal([]byte(f.col), f.dst); err != nil {
			return err
		}
	}
	if plan != "" {
		run.Plan = new(reconcile.Plan)
		return json.Unmarshal([]byte(plan), run.Plan)
	}
	return nil
}

// PruneRuns deletes all but the newest keep runs and their audit events.
func (s *Store) PruneRuns(ctx context.Context, keep int) (int64, error) {
	var n int64
	err := s.apply(ctx, s.Now().UTC(), func(t *tx) error {
		res, err := t.exec(`DELETE FROM runs WHERE id <= (SELECT id FROM runs ORDER BY id DESC LIMIT 1 OFFSET ?)`, keep)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
