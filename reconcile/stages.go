package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// The stages of Engine.Run, in the order it calls them: lock, fetch and
// load, apply the fetches to the mirrors, plan, check, record.

// cycle is one run in progress: what each stage hands to the next.
type cycle struct {
	e    *Engine
	opts RunOptions
	log  *slog.Logger
	// now is the run's clock: when it started, once it held the lock.
	now time.Time
	run *Run

	// Set by applyFetches.
	frozen   map[string]string
	deltas   []*MirrorDelta
	problems []Problem
	// fetched and failed count the sources fetched and those that failed.
	fetched, failed int

	// Set by plan.
	planned *Plan

	// fetchedAt is when every fetch was in (the run's clock).
	fetchedAt time.Time

	// marks are the directory's marks before the run (nil: none, or a
	// store that keeps none).
	marks *Marks
	// pushed are the pending change-log entries of the pushed sources,
	// read before the mirrors.
	pushed map[string]*MirrorChanges
	// prefetch reads stored hashes during the fetches of a run meant to be
	// incremental (nil otherwise).
	prefetch *prefetcher
	// early is how long a commit that wrote the mirrors before the plan
	// took for them: apply time, not plan time.
	early time.Duration
}

// lock takes the directory's run lock when the store has one and the run may
// write. The returned func releases it.
func (e *Engine) lock(ctx context.Context, opts RunOptions) (unlock func(), err error) {
	l, ok := e.Store.(Locker)
	if !ok || opts.DryRun {
		return func() {}, nil
	}
	wait := e.LockWait
	switch {
	case wait == 0:
		wait = 30 * time.Second
	case wait < 0:
		wait = 0
	}
	return l.Lock(ctx, wait)
}

// begin starts the run record. The run starts once it holds the lock:
// waiting is not part of it.
func (e *Engine) begin(opts RunOptions) *cycle {
	log := e.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &cycle{e: e, opts: opts, log: log, now: e.now(), frozen: make(map[string]string)}
	c.run = &Run{Trigger: opts.Trigger, StartedAt: c.now}
	if c.run.Trigger == "" {
		c.run.Trigger = TriggerOnce
	}
	return c
}

// inputs are what a run reads: the fetches, the stored mirrors and the
// directory, which may still be being read.
type inputs struct {
	fetches []fetched
	mirrors map[string]*Mirror
	state   *stateRead
	err     error
	// built are the deltas of the mirrors fetchSnapshots built from their
	// snapshots: applyFetches uses them as they are.
	built map[string]*MirrorDelta
}

// fetchAndLoad fetches the sources while the directory and the mirrors are
// read: the three are independent, and on a large directory each takes a
// while. It returns once the fetches and the mirrors are in; the directory
// read may go on (inputs.state), since only the plan needs it.
func (c *cycle) fetchAndLoad(ctx context.Context, cursors map[string]string) *inputs {
	store := c.e.Store
	in := &inputs{state: readState(ctx, store, c.e.largeRun())}
	if ss, ok := store.(ScopedStore); ok && c.snapshotsOnly() {
		return c.fetchSnapshots(ctx, ss, cursors, in)
	}
	mirrors := async(func() (map[string]*Mirror, error) { return store.LoadMirrors(ctx) })
	in.fetches = c.fetchAll(ctx, cursors)
	in.mirrors, in.err = mirrors.wait()
	if in.err != nil {
		in.state.release()
	}
	return in
}

// load reads the directory and the mirrors for fetches already made: a
// run that meant to be incremental and found it cannot.
func (c *cycle) load(ctx context.Context, fetches []fetched) *inputs {
	store := c.e.Store
	in := &inputs{fetches: fetches, state: readState(ctx, store, c.e.largeRun())}
	in.mirrors, in.err = store.LoadMirrors(ctx)
	if in.err != nil {
		in.state.release()
	}
	return in
}

// fetchAll fetches every source and notes when the fetches are all in: the
// end of the run's fetch stage.
func (c *cycle) fetchAll(ctx context.Context, cursors map[string]string) []fetched {
	fetches := c.e.fetchAll(ctx, cursors, c.opts, c.prefetch)
	c.fetchedAt = c.e.now()
	c.run.FetchTook = c.fetchedAt.Sub(c.now)
	return fetches
}

// planDone notes that the plan is computed: the end of the run's plan stage.
func (c *cycle) planDone() {
	c.run.PlanTook = c.e.now().Sub(c.fetchedAt) - c.early
}

// applyFetches applies each successful fetch to its source's mirror and
// records what happened to every source. A failed fetch freezes its source:
// its result is dropped entirely, its mirror and cursor stay. The fetched
// results are dropped once applied: the mirrors hold what the run needs.
func (c *cycle) applyFetches(in *inputs) {
	defer func() { in.fetches = nil }()
	for i, f := range in.fetches {
		in.fetches[i].result = nil
		sr := SourceRun{Name: f.name, Mode: f.mode, Duration: f.took}
		switch {
		case f.mode == "":
			sr.Result = SourceUnchanged
		case f.err != nil:
			c.fetched++
			c.failed++
			sr.Result = SourceFailed
			sr.Error = f.err.Error()
			c.frozen[f.name] = sr.Error
			c.log.Warn("source frozen for this run: fetch failed", "source", f.name, "mode", f.mode, "error", sr.Error)
		default:
			c.fetched++
			r := f.result
			m := in.mirrors[f.name]
			if m == nil {
				m = NewMirror(f.name)
				in.mirrors[f.name] = m
			}
			d, built := in.built[f.name]
			if !built {
				d = m.Update(r, c.now)
			}
			c.deltas = append(c.deltas, d)
			sr.Result, sr.Users, sr.Groups, sr.Rows = SourceOK, len(m.Users), len(m.Groups), d.Rows()
			sr.Requests, sr.Problems = r.Requests, len(r.Problems)
			for _, p := range r.Problems {
				c.problems = append(c.problems, Problem{Source: f.name, Object: p.Object, Reason: p.Reason})
			}
		}
		c.run.Sources = append(c.run.Sources, sr)
	}
}

// defaultLargeRun is the default of Engine.LargeRun: the number of people
// (desired and in the directory) from which a run takes its paths for a
// large directory.
const defaultLargeRun = 100_000

// collectFrom is the number of people from which a run collects its
// garbage at its phase boundaries. It is not LargeRun: a collection costs
// what is live in the whole process, and on a small directory saves
// nothing (a test that sets LargeRun low would pay for each).
const collectFrom = 100_000

// plan computes the desired state and diffs it with the directory. Desire
// needs the directory only to settle duplicates, so it can start while the
// directory is still being read.
func (c *cycle) plan(in *inputs) error {
	linked := func(ref IdentityRef) bool {
		st, _ := in.state.partial()
		return st != nil && KnownIdentities(st.Identities)(ref)
	}
	if mirrorUsers(in.mirrors) >= collectFrom {
		// The fetches are in: what the parse and the directory read left
		// is garbage, and Desire is about to add a desired person for
		// every user. Collect now, once the first part of the directory
		// is read, so that the heap grows from what is live.
		in.state.partial()
		runtime.GC()
	}
	desired := Desire(c.e.Rules, in.mirrors, linked, c.frozen, c.now)
	// Only Desire reads the mirrors: the rows the commit writes are in the
	// deltas.
	in.mirrors = nil
	if len(desired.People) >= collectFrom && c.heldRows() < len(desired.People)/2 {
		// A large full run whose mirrors the deltas do not hold (nothing
		// or little changed): the mirrors, a third of the heap, are now
		// garbage. Collect before the rest of the directory is read and
		// Diff grows the heap to twice what was live with them.
		runtime.GC()
	}
	state, err := in.state.wait()
	if err != nil {
		return err
	}
	c.problems = append(c.problems, desired.Problems...)
	c.planned = Diff(desired, state)
	// The plan is all the rest of the run needs: the desired state and the
	// directory read may go before the commit.
	in.state = nil
	if len(desired.People)+len(state.People) >= collectFrom {
		desired, state = nil, nil
		// Half the heap just became garbage, and Go would let the heap
		// grow to twice what was live during the plan before it collects:
		// collect now, so that the commit starts from what is live.
		runtime.GC()
	}
	c.run.Summary = c.planned.Summary()
	c.run.Problems = c.e.capProblems(c.problems)
	c.planDone()
	return nil
}

// heldRows counts the mirror users the deltas hold for the commit.
func (c *cycle) heldRows() int {
	n := 0
	for _, d := range c.deltas {
		n += len(d.UpsertUsers)
	}
	return n
}

// check says how the run ended: failed when every fetch failed, partial when
// some did, and blocked when the plan trips a safety limit that was not
// overridden.
func (c *cycle) check() *Outcome {
	run := c.run
	out := &Outcome{Run: run, Plan: c.planned}
	switch {
	case c.failed > 0 && c.failed == c.fetched:
		run.Result = ResultFailed
		run.Error = fmt.Sprintf("every source failed to fetch (%d)", c.failed)
	case c.failed > 0:
		run.Result = ResultPartial
	default:
		run.Result = ResultOK
	}
	if reason := c.e.blockReason(c.planned); reason != "" && run.Result != ResultFailed {
		if c.opts.AllowMassDeactivation {
			c.log.Warn("safety limit overridden by --allow-mass-deactivation", "reason", reason)
		} else {
			out.Blocked = reason
			run.Result = ResultBlocked
			run.Error = reason
		}
	}
	return out
}

// record ends the run: a dry run writes nothing; a blocked or failed run
// stores only its record (with the refused plan, for a blocked one); any
// other commits the plan, the mirror changes and the record in one
// transaction.
func (c *cycle) record(ctx context.Context, out *Outcome) (*Outcome, error) {
	e, run := c.e, c.run
	run.EndedAt = e.now()
	if c.opts.DryRun {
		return out, nil
	}
	if stored, err := c.recordOnly(ctx, out); err != nil {
		return nil, err
	} else if stored {
		return out, nil
	}
	start := run.EndedAt
	commit := c.commit()
	commit.Mirrors = c.deltas
	if err := e.Store.Commit(ctx, commit); err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	return c.applied(out, start), nil
}

// recordOnly stores the record of a blocked or failed run, and reports
// whether the run was one.
func (c *cycle) recordOnly(ctx context.Context, out *Outcome) (bool, error) {
	run := c.run
	if run.Result != ResultBlocked && run.Result != ResultFailed {
		return false, nil
	}
	if run.Result == ResultBlocked {
		run.Plan = c.planned
	}
	if err := c.e.Store.RecordRun(ctx, run); err != nil {
		return true, err
	}
	c.e.logRun(c.log, run)
	return true, nil
}

// commit is what a run that applies commits, its mirrors aside.
func (c *cycle) commit() *Commit {
	return &Commit{Plan: c.planned, Run: c.run, Now: c.now, End: c.e.now, Marks: c.nextMarks(), Changes: c.consumed()}
}

// applied ends a run whose commit, begun at start, is done.
func (c *cycle) applied(out *Outcome, start time.Time) *Outcome {
	run := c.run
	run.ApplyTook = run.EndedAt.Sub(start) + c.early
	out.Applied = true
	c.e.logRun(c.log, run)
	return out
}

// MirrorsFirst is a Store that can write a large first import's mirrors
// before the run plans, in the transaction that then applies the plan: the
// parsed sources (a million users) can then go as soon as Desire has read
// them, rather than stay until the commit writes them (docs/PERFORMANCE.md,
// "Round six"). CommitMirrorsFirst writes the mirrors, dropping their rows
// once written (as Commit may), then calls plan and applies the Commit it
// returns (whose Mirrors are nil) in the same transaction. When plan returns
// a nil Commit or an error, nothing is written.
type MirrorsFirst interface {
	CommitMirrorsFirst(ctx context.Context, now time.Time, mirrors []*MirrorDelta, plan func() (*Commit, error)) error
}

// mirrorsFirst says whether the run writes its mirrors before its plan: a
// large run into an empty directory (a first import) that writes, on a
// store that can, outside high availability (the transaction would stay
// open while the run plans; see docs/DESIGN.md).
func (c *cycle) mirrorsFirst(in *inputs) (MirrorsFirst, bool) {
	mf, ok := c.e.Store.(MirrorsFirst)
	if !ok || c.opts.DryRun || c.heldRows() < c.e.largeRun() || c.failed > 0 {
		return nil, false
	}
	if fenced(c.e.Store) {
		return nil, false
	}
	st, err := in.state.partial()
	if err != nil || len(st.People) > 0 {
		return nil, false
	}
	return mf, true
}

// runMirrorsFirst plans, checks and records a run whose mirrors the commit
// writes first (mirrorsFirst).
func (c *cycle) runMirrorsFirst(ctx context.Context, mf MirrorsFirst, in *inputs) (*Outcome, error) {
	var (
		out     *Outcome
		start   time.Time
		planErr error
	)
	began := c.e.now()
	err := mf.CommitMirrorsFirst(ctx, c.now, c.deltas, func() (*Commit, error) {
		c.early = c.e.now().Sub(began)
		if planErr = c.plan(in); planErr != nil {
			return nil, planErr
		}
		out = c.check()
		c.run.EndedAt = c.e.now()
		start = c.run.EndedAt
		if c.run.Result == ResultBlocked || c.run.Result == ResultFailed {
			return nil, nil // nothing is written, the mirrors included
		}
		return c.commit(), nil
	})
	switch {
	case planErr != nil:
		return nil, planErr
	case err != nil:
		return nil, fmt.Errorf("apply: %w", err)
	}
	if stored, err := c.recordOnly(ctx, out); err != nil {
		return nil, err
	} else if stored {
		return out, nil
	}
	return c.applied(out, start), nil
}

// mirrorUsers counts the users of the mirrors.
func mirrorUsers(ms map[string]*Mirror) int {
	n := 0
	for _, m := range ms {
		n += len(m.Users)
	}
	return n
}
