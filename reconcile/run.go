package reconcile

import (
	"context"
	"time"
)

// Result is how a run ended.
type Result string

// Run results.
const (
	// ResultOK: every source fetched and the plan was applied.
	ResultOK Result = "ok"
	// ResultPartial: some sources failed and were frozen; the rest applied.
	ResultPartial Result = "partial"
	// ResultBlocked: the plan tripped a safety limit; nothing was applied.
	ResultBlocked Result = "blocked"
	// ResultFailed: nothing could be applied.
	ResultFailed Result = "failed"
)

// Trigger says what started a run.
type Trigger string

// Triggers.
const (
	TriggerOnce     Trigger = "once"
	TriggerSchedule Trigger = "schedule"
	TriggerFullSync Trigger = "full_sync"
	TriggerStart    Trigger = "start"
	TriggerReload   Trigger = "reload"
)

// SourceRun is what happened to one source in a run.
type SourceRun struct {
	Name string `json:"name"`
	// Mode is "full" or "incremental".
	Mode string `json:"mode"`
	// Result is "ok", "failed" (frozen) or "unchanged".
	Result   string        `json:"result"`
	Error    string        `json:"error,omitempty"`
	Users    int           `json:"users"`
	Groups   int           `json:"groups"`
	Rows     int           `json:"rows_changed"`
	Requests int           `json:"requests"`
	Problems int           `json:"problems"`
	Duration time.Duration `json:"duration_ns"`
}

// Run is the record of one run.
type Run struct {
	ID        int64       `json:"id"`
	Trigger   Trigger     `json:"trigger"`
	StartedAt time.Time   `json:"started_at"`
	EndedAt   time.Time   `json:"ended_at"`
	Result    Result      `json:"result"`
	Sources   []SourceRun `json:"sources"`
	Summary   Summary     `json:"summary"`
	Problems  []Problem   `json:"problems"`
	Error     string      `json:"error,omitempty"`
	// Plan is kept for blocked runs, so an admin can see what was refused.
	Plan *Plan `json:"plan,omitempty"`
}

// Commit is everything one apply writes, in one transaction.
type Commit struct {
	Plan    *Plan
	Mirrors []*MirrorDelta
	Run     *Run
	Now     time.Time
	// End, if set, is called once everything else is written, and the run
	// record's end time becomes what it returns: a run's duration includes
	// its apply.
	End func() time.Time
}

// Store is what the engine needs of the learning directory.
type Store interface {
	// Cursors returns the stored cursor of every source, keyed by name.
	Cursors(ctx context.Context) (map[string]string, error)
	// LoadState reads the directory.
	LoadState(ctx context.Context) (*State, error)
	// LoadMirrors reads the mirror of every source, keyed by source name.
	LoadMirrors(ctx context.Context) (map[string]*Mirror, error)
	// Commit applies a plan, the mirror changes and the run record in one
	// transaction, and sets c.Run.ID.
	Commit(ctx context.Context, c *Commit) error
	// RecordRun stores a run that applied nothing (blocked or failed).
	RecordRun(ctx context.Context, r *Run) error
}

// Locker is a Store that can hold a lock for a whole run, across processes,
// so that two runs never plan against the same state and both apply.
type Locker interface {
	// Lock waits up to wait for the lock and returns its release func.
	Lock(ctx context.Context, wait time.Duration) (unlock func(), err error)
}
