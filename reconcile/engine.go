package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
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
	// LockWait is how long a run waits for another process's run on the
	// same directory to finish (when the Store is a Locker). Zero means the
	// default, 30 s; a negative value means not at all.
	LockWait time.Duration
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
}

// Outcome is what a run did.
type Outcome struct {
	Run  *Run
	Plan *Plan
	// Blocked says why the plan was not applied, if it was blocked.
	Blocked string
	// Applied is true when the plan and mirrors were committed.
	Applied bool
}

// ErrNoSources is returned when a run has no source to work with.
var ErrNoSources = errors.New("no sources configured")

type fetched struct {
	name   string
	mode   string
	result *connectors.Result
	err    error
	took   time.Duration
}

// Run performs one cycle. It returns an error only when the run could not be
// carried out at all (the directory could not be read or written); failed
// sources and blocked plans are reported in the Outcome.
func (e *Engine) Run(ctx context.Context, opts RunOptions) (*Outcome, error) {
	log := e.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(e.Sources) == 0 {
		return nil, ErrNoSources
	}
	if l, ok := e.Store.(Locker); ok && !opts.DryRun {
		wait := e.LockWait
		switch {
		case wait == 0:
			wait = 30 * time.Second
		case wait < 0:
			wait = 0
		}
		unlock, err := l.Lock(ctx, wait)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	// The run starts once it holds the lock: waiting is not part of it.
	now := e.now()
	run := &Run{Trigger: opts.Trigger, StartedAt: now}
	if run.Trigger == "" {
		run.Trigger = TriggerOnce
	}
	cursors, err := e.Store.Cursors(ctx)
	if err != nil {
		return nil, err
	}
	// The sources are fetched while the directory and the mirrors are read:
	// the three are independent, and on a large directory each takes a while.
	var (
		wg        sync.WaitGroup
		results   []fetched
		mirrors   map[string]*Mirror
		state     *State
		errM      error
		errState  error
		stateRead = make(chan struct{})
	)
	wg.Add(2)
	go func() { defer wg.Done(); results = e.fetchAll(ctx, cursors, opts) }()
	go func() { defer wg.Done(); mirrors, errM = e.Store.LoadMirrors(ctx) }()
	go func() { defer close(stateRead); state, errState = e.Store.LoadState(ctx) }()
	wg.Wait()
	if errM != nil {
		<-stateRead
		return nil, errM
	}
	frozen := make(map[string]string)
	var deltas []*MirrorDelta
	var problems []Problem
	failed := 0
	for _, f := range results {
		sr := SourceRun{Name: f.name, Mode: f.mode, Duration: f.took}
		switch {
		case f.mode == "":
			sr.Result = "unchanged"
		case f.err != nil:
			failed++
			sr.Result = "failed"
			sr.Error = f.err.Error()
			frozen[f.name] = sr.Error
			log.Warn("source frozen for this run: fetch failed", "source", f.name, "mode", f.mode, "error", sr.Error)
		default:
			r := f.result
			m := mirrors[f.name]
			if m == nil {
				m = NewMirror(f.name)
				mirrors[f.name] = m
			}
			d := m.Update(r, now)
			deltas = append(deltas, d)
			sr.Result, sr.Users, sr.Groups, sr.Rows = "ok", len(m.Users), len(m.Groups), d.Rows()
			sr.Requests, sr.Problems = r.Requests, len(r.Problems)
			for _, p := range r.Problems {
				problems = append(problems, Problem{Source: f.name, Object: p.Object, Reason: p.Reason})
			}
		}
		run.Sources = append(run.Sources, sr)
	}
	if ctx.Err() != nil {
		<-stateRead
		return nil, ctx.Err()
	}

	// Desire needs the directory only to settle duplicates, so it can start
	// while the directory is still being read.
	linked := func(ref IdentityRef) bool {
		<-stateRead
		if state == nil {
			return false
		}
		_, ok := state.Identities[ref]
		return ok
	}
	desired := Desire(e.Rules, mirrors, linked, frozen, now)
	<-stateRead
	if errState != nil {
		return nil, errState
	}
	problems = append(problems, desired.Problems...)
	plan := Diff(desired, state)
	run.Summary = plan.Summary()
	run.Summary.Waiting = 0
	for _, sf := range plan.Shortfalls {
		run.Summary.Waiting += sf.Waiting
	}
	run.Problems = e.capProblems(problems)
	out := &Outcome{Run: run, Plan: plan}

	fetchedAny := failed < countFetched(results)
	switch {
	case !fetchedAny && failed > 0:
		run.Result = ResultFailed
		run.Error = fmt.Sprintf("every source failed to fetch (%d)", failed)
	case failed > 0:
		run.Result = ResultPartial
	default:
		run.Result = ResultOK
	}
	if reason := e.check(plan); reason != "" && run.Result != ResultFailed {
		if opts.AllowMassDeactivation {
			log.Warn("safety limit overridden by --allow-mass-deactivation", "reason", reason)
		} else {
			out.Blocked = reason
			run.Result = ResultBlocked
			run.Error = reason
		}
	}
	run.EndedAt = e.now()
	if opts.DryRun {
		return out, nil
	}
	if run.Result == ResultBlocked || run.Result == ResultFailed {
		if run.Result == ResultBlocked {
			run.Plan = plan
		}
		if err := e.Store.RecordRun(ctx, run); err != nil {
			return nil, err
		}
		e.logRun(log, run)
		return out, nil
	}
	if err := e.Store.Commit(ctx, &Commit{Plan: plan, Mirrors: deltas, Run: run, Now: now, End: e.now}); err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	out.Applied = true
	e.logRun(log, run)
	return out, nil
}

func countFetched(rs []fetched) int {
	n := 0
	for _, r := range rs {
		if r.mode != "" {
			n++
		}
	}
	return n
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

// check applies the safety limits and says why a plan is blocked.
func (e *Engine) check(p *Plan) string {
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
		"run", r.ID, "trigger", r.Trigger, "result", r.Result,
		"created", s.Create, "updated", s.Update, "deactivated", s.Deactivate, "reactivated", s.Reactivate, "deleted", s.Delete,
		"groups", s.GroupsCreate + s.GroupsUpdate + s.GroupsDelete, "memberships", s.MembersAdd + s.MembersDel,
		"granted", s.Grant, "revoked", s.Revoke, "waiting", s.Waiting,
		"problems", len(r.Problems), "took", r.EndedAt.Sub(r.StartedAt).Round(time.Millisecond),
	}
	if r.Error != "" {
		attrs = append(attrs, "reason", r.Error)
	}
	log.Log(context.Background(), level, "run finished", attrs...)
}

// fetchAll fetches every source at once and returns the results in source
// order. A panicking connector counts as a failed fetch.
func (e *Engine) fetchAll(ctx context.Context, cursors map[string]string, opts RunOptions) []fetched {
	out := make([]fetched, len(e.Sources))
	var wg sync.WaitGroup
	for i, src := range e.Sources {
		name := src.Rules.Name
		out[i].name = name
		mode := opts.Fetch[name]
		if mode == FetchNone {
			continue
		}
		cursor := cursors[name]
		inc, canInc := src.Connector.(connectors.Incremental)
		useInc := mode == FetchAuto && canInc && cursor != ""
		out[i].mode = "full"
		if useInc {
			out[i].mode = "incremental"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			defer func() {
				out[i].took = time.Since(start)
				if p := recover(); p != nil {
					out[i].result = nil
					out[i].err = fmt.Errorf("connector panicked: %v\n%s", p, debug.Stack())
				}
			}()
			var r *connectors.Result
			var err error
			if useInc {
				r, err = inc.FetchChanges(ctx, cursor)
			} else {
				r, err = src.Connector.FetchAll(ctx)
				if err == nil && r != nil && !r.Full {
					err = errors.New("connector returned a delta from a full fetch")
				}
			}
			if err == nil && r == nil {
				err = errors.New("connector returned no result")
			}
			if err != nil {
				r = nil // a failed fetch is never used, even partly
				err = fmt.Errorf("fetch %s: %w", name, err)
			}
			if r != nil && r.Full {
				out[i].mode = "full"
			}
			out[i].result, out[i].err = r, err
		}()
	}
	wg.Wait()
	return out
}
