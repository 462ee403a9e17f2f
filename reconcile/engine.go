package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// Source is a configured source: its rules and its connector.
type Source struct {
	Rules     SourceRules
	Connector connectors.Connector
}

// Safety limits what one run may do without an explicit override.
type Safety struct {
	// MaxDeactivations: more deactivations block the run; 0 = no limit.
	MaxDeactivations int
	// MaxDeactivationPercent: deactivating a larger share of the active
	// people blocks the run; 0 = no limit.
	MaxDeactivationPercent float64
}

// Engine runs the fetch → plan → check → apply cycle. The one-shot command
// and the service call the same Run.
type Engine struct {
	Store   Store
	Sources []Source
	Rules   Rules
	Safety  Safety
	Logger  *slog.Logger
	Now     func() time.Time
	// MaxProblems bounds how many problems a run record keeps (the count is
	// always exact). Default 1000.
	MaxProblems int
	// FullEvery makes a run a full reconcile when the last one is this
	// old; 0 = never for that reason alone.
	FullEvery time.Duration
	// LockWait is how long a run waits for another process's run on the
	// same directory to finish (when the Store is a Locker). Zero means the
	// default, 30 s; a negative value means not at all.
	LockWait time.Duration
	// LargeRun is the number of people from which a run takes its paths
	// for a large directory: the directory's memberships and seats read
	// after Desire, and a first import's mirrors written before its plan.
	// Zero means 100,000; tests set it low to run those paths on small
	// directories. (The collections at phase boundaries are from 100,000
	// people whatever it says.)
	LargeRun int
}

// largeRun is LargeRun, or its default.
func (e *Engine) largeRun() int {
	if e.LargeRun > 0 {
		return e.LargeRun
	}
	return defaultLargeRun
}

// FetchMode says how a run fetches a source.
type FetchMode int

// Fetch modes.
const (
	// FetchAuto fetches incrementally when the source can and has a cursor,
	// else fully.
	FetchAuto FetchMode = iota
	// FetchFull always fetches everything.
	FetchFull
	// FetchNone uses the stored mirror as it is.
	FetchNone
)

// RunOptions say what one run does.
type RunOptions struct {
	Trigger Trigger
	// DryRun computes the plan and writes nothing, not even mirrors.
	DryRun bool
	// AllowMassDeactivation applies a plan the safety limits would block.
	AllowMassDeactivation bool
	// Fetch overrides the fetch mode per source name (default FetchAuto).
	Fetch map[string]FetchMode
	// FullReconcile makes the run a full reconcile whatever the fetches.
	FullReconcile bool
}

// Outcome is what a run did.
type Outcome struct {
	Run *Run
	// Plan is the plan computed. A large applied one may lack its People,
	// which the store drops once written (see Commit); Run.Summary counts
	// them.
	Plan *Plan
	// Blocked says why the plan was not applied, if it was blocked.
	Blocked string
	// Applied is true when the plan and mirrors were committed.
	Applied bool
	// NoChange is true for a cycle with nothing to do: no source changed,
	// nothing was due. It wrote nothing, not even its run record (Run.ID is
	// 0); the directory is at the plan of its mirrors.
	NoChange bool
}

// ErrNoSources is returned when a run has no source to work with.
var ErrNoSources = errors.New("no sources configured")

// Run performs one cycle. It returns an error only when the run could not be
// carried out at all (the directory could not be read or written); failed
// sources and blocked plans are reported in the Outcome. The stages, in
// order, are in stages.go.
func (e *Engine) Run(ctx context.Context, opts RunOptions) (*Outcome, error) {
	if len(e.Sources) == 0 {
		return nil, ErrNoSources
	}
	unlock, err := e.lock(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c := e.begin(opts)
	cursors, err := e.Store.Cursors(ctx)
	if err != nil {
		return nil, err
	}
	why, err := c.fullReason(ctx, cursors)
	if err != nil {
		return nil, err
	}
	var in *inputs
	if why == "" {
		// Fetch first: only the fetches say what the run must read. The
		// stored hashes of a snapshot are read while it is.
		c.prefetch = newPrefetcher(e.Store.(ScopedStore))
		defer c.prefetch.wait()
		fetches := c.fetchAll(ctx, cursors)
		out, fallback, err := c.incremental(ctx, fetches)
		if err != nil || fallback == "" {
			return out, err
		}
		why = fallback
		c.log.Debug("incremental reconcile falls back to full", "reason", why)
		in = c.load(ctx, fetches)
	} else {
		in = c.fetchAndLoad(ctx, cursors)
	}
	c.run.Reconcile, c.run.FullReason = ModeFull, why
	if in.err != nil {
		return nil, in.err
	}
	// Nothing of a run goes on once it returns, the directory read included
	// (plan drops it once done with it).
	defer func() {
		if in.state != nil {
			in.state.release()
		}
	}()
	c.applyFetches(in)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if mf, ok := c.mirrorsFirst(in); ok {
		return c.runMirrorsFirst(ctx, mf, in)
	}
	if err := c.plan(in); err != nil {
		return nil, err
	}
	out := c.check()
	return c.record(ctx, out)
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) capProblems(ps []Problem) []Problem {
	max := e.MaxProblems
	if max <= 0 {
		max = 1000
	}
	if len(ps) <= max {
		return ps
	}
	out := append([]Problem(nil), ps[:max]...)
	return append(out, Problem{Object: "run", Reason: fmt.Sprintf("%d more problems not kept", len(ps)-max)})
}

// blockReason applies the safety limits and says why a plan is blocked, or
// "" when it is not.
func (e *Engine) blockReason(p *Plan) string {
	n := 0
	for _, c := range p.People {
		if c.Op == OpDeactivate {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	if max := e.Safety.MaxDeactivations; max > 0 && n > max {
		return fmt.Sprintf("the plan deactivates %d people, more than safety.max_deactivations (%d)", n, max)
	}
	if pct := e.Safety.MaxDeactivationPercent; pct > 0 && p.ActiveBefore > 0 {
		share := float64(n) * 100 / float64(p.ActiveBefore)
		if share > pct {
			return fmt.Sprintf("the plan deactivates %d of %d active people (%.1f%%), more than safety.max_deactivation_percent (%g%%)",
				n, p.ActiveBefore, share, pct)
		}
	}
	return ""
}

func (e *Engine) logRun(log *slog.Logger, r *Run) {
	s := r.Summary
	level := slog.LevelInfo
	if r.Result != ResultOK {
		level = slog.LevelWarn
	}
	attrs := []any{
		"run", r.ID, "trigger", r.Trigger, "reconcile", r.Reconcile, "result", r.Result,
		"created", s.Create, "updated", s.Update, "deactivated", s.Deactivate, "reactivated", s.Reactivate, "deleted", s.Delete,
		"groups", s.GroupsCreate + s.GroupsUpdate + s.GroupsDelete, "memberships", s.MembersAdd + s.MembersDel,
		"granted", s.Grant, "revoked", s.Revoke, "waiting", s.Waiting,
		"problems", len(r.Problems), "took", r.EndedAt.Sub(r.StartedAt).Round(time.Millisecond),
	}
	if r.Error != "" {
		attrs = append(attrs, "reason", r.Error)
	}
	attrs = append(attrs, "fetch", r.FetchTook.Round(time.Millisecond), "plan", r.PlanTook.Round(time.Millisecond),
		"apply", r.ApplyTook.Round(time.Millisecond))
	log.Log(context.Background(), level, "run finished", attrs...)
}
