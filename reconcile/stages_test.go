package reconcile

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// endingStore is a memStore whose commit ends the run as the directory's
// does: by calling Commit.End once everything is written.
type endingStore struct{ *memStore }

func (s endingStore) Commit(ctx context.Context, c *Commit) error {
	if err := s.memStore.Commit(ctx, c); err != nil {
		return err
	}
	if c.End != nil {
		c.Run.EndedAt = c.End()
	}
	return nil
}

func TestRunRecordsStageDurations(t *testing.T) {
	w := newWorld(t, hrRules(), "hr")
	// Every reading of the clock moves it on: each stage takes some time.
	now := t0
	w.engine.Now = func() time.Time { now = now.Add(time.Millisecond); return now }
	w.engine.Store = endingStore{w.store}
	var logs bytes.Buffer
	w.engine.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	w.serve("hr", &snapshot{users: []connectors.User{user("1", "a@example.com"), user("2", "b@example.com")}})
	out, err := w.engine.Run(context.Background(), RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Run
	if !out.Applied || r.Summary.Create != 2 {
		t.Fatalf("applied=%v summary=%+v, want two creates applied", out.Applied, r.Summary)
	}
	total := r.EndedAt.Sub(r.StartedAt)
	if r.FetchTook <= 0 || r.PlanTook <= 0 || r.ApplyTook <= 0 {
		t.Errorf("fetch=%v plan=%v apply=%v, want all set", r.FetchTook, r.PlanTook, r.ApplyTook)
	}
	if sum := r.FetchTook + r.PlanTook + r.ApplyTook; sum > total {
		t.Errorf("fetch+plan+apply = %v, more than the run's %v", sum, total)
	}
	line := logs.String()
	if !strings.Contains(line, `msg="run finished"`) {
		t.Fatalf("no run finished line in %q", line)
	}
	took, fetch, plan, apply := strings.Index(line, " took="), strings.Index(line, " fetch="),
		strings.Index(line, " plan="), strings.Index(line, " apply=")
	if took < 0 || !(took < fetch && fetch < plan && plan < apply) {
		t.Errorf("run finished line %q: want took, then fetch, plan, apply at the end", line)
	}
}
