package reconcile

import (
	"context"
	"time"
)

// RunResult is how a run ended.
type RunResult string

// Run results.
const (
	// ResultOK: every source fetched and the plan was applied.
	ResultOK RunResult = "ok"
	// ResultPartial: some sources failed and were frozen; the rest applied.
	ResultPartial RunResult = "partial"
	// ResultBlocked: the plan tripped a safety limit; nothing was applied.
	ResultBlocked RunResult = "blocked"
	// ResultFailed: nothing could be applied.
	ResultFailed RunResult = "failed"
)

// SourceResult is what a run's fetch did to one source. The values are
// stored in the run history and shown as they are.
type SourceResult string

// Source results.
const (
	// SourceOK: the fetch succeeded and was applied to the mirror.
	SourceOK SourceResult = "ok"
	// SourceFailed: the fetch failed; the source is frozen for the run.
	SourceFailed SourceResult = "failed"
	// SourceUnchanged: the run did not fetch the source (FetchNone).
	SourceUnchanged SourceResult = "unchanged"
)

// Trigger says what started a run.
type Trigger string

// Triggers.
const (
	// TriggerOnce: a command (run --once, plan); the default.
	TriggerOnce Trigger = "once"
	// TriggerSchedule: a source's fetch schedule, in the service.
	TriggerSchedule Trigger = "schedule"
	// TriggerFullSync: a source's full-sync schedule, in the service.
	TriggerFullSync Trigger = "full_sync"
	// TriggerStart: the service's first cycle after it starts.
	TriggerStart Trigger = "start"
	// TriggerReload: the cycle after a configuration reload.
	TriggerReload Trigger = "reload"
)

// SourceRun is what happened to one source in a run.
type SourceRun struct {
	Name string `json:"name"`
	// Mode is "full" or "incremental"; "" when the run did not fetch it.
	Mode     string        `json:"mode"`
	Result   SourceResult  `json:"result"`
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
	Result    RunResult   `json:"result"`
	Sources   []SourceRun `json:"sources"`
	Summary   Summary     `json:"summary"`
	Problems  []Problem   `json:"problems"`
	Error     string      `json:"error,omitempty"`
	// Reconcile is how the run planned: ModeFull (the whole directory
	// against every mirror) or ModeIncremental (only what the fetches can
	// affect); "" in records written before it was kept.
	Reconcile string `json:"reconcile,omitempty"`
	// FullReason says why a run was full, when it was.
	FullReason string `json:"full_reason,omitempty"`
	// Plan is kept for blocked runs, so an admin can see what was refused.
	Plan *Plan `json:"plan,omitempty"`
	// FetchTook, PlanTook and ApplyTook split the run's duration: fetching
	// and parsing until every fetch is in; from then until the plan is
	// computed (mirror update or scoping, loads, Desire, Diff); the commit
	// (zero for a run that commits nothing). Their sum is at most
	// EndedAt - StartedAt. They are logged, not stored: a run read
	// back from the directory has them zero.
	FetchTook time.Duration `json:"fetch_ns,omitempty"`
	PlanTook  time.Duration `json:"plan_ns,omitempty"`
	ApplyTook time.Duration `json:"apply_ns,omitempty"`
}

// Fetched reports whether the run fetched the source (successfully or
// not): a source the run left as it was says nothing about its health.
func (r SourceRun) Fetched() bool {
	return r.Mode != "" && r.Result != SourceUnchanged
}

// FrozenSince is the one rule for how long a source has been frozen. Given
// when the source was frozen since before a run (zero: it was not frozen),
// what the run did to it and when the run started, it returns when the
// source is frozen since after the run (zero: it is not). A failed fetch
// freezes a source from the start of its run unless it was frozen already;
// any other fetch thaws it; a run that did not fetch it changes nothing.
func FrozenSince(before time.Time, r SourceRun, started time.Time) time.Time {
	switch {
	case !r.Fetched():
		return before
	case r.Result != SourceFailed:
		return time.Time{}
	case before.IsZero():
		return started
	}
	return before
}

// Commit is everything one apply writes, in one transaction.
type Commit struct {
	Plan *Plan
	// Mirrors are the mirror changes. A store may drop a delta's rows
	// (UpsertUsers, Members) once it has written them, so that a large
	// delta does not stay in memory for the rest of the transaction: a
	// Commit is applied once. For the same reason a store may drop the
	// plan's People once written in a large commit (a bulk load): the
	// Outcome of an applied run keeps its Summary, not always its whole
	// plan.
	Mirrors []*MirrorDelta
	Run     *Run
	Now     time.Time
	// Marks, if set, replace what the directory records about reconciles.
	Marks *Marks
	// Changes are the change-log entries of pushed sources the run
	// reconciled: per source, the entries up to this seq are deleted.
	Changes map[string]int64
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
