// Package service runs learnsync as a long-lived process: it fetches each
// source on its schedule, reconciles after every fetch, never lets two runs
// overlap, serves an ops endpoint (/healthz, /readyz, /metrics, /status),
// reloads its configuration on request and stops cleanly.
//
// Every run is reconcile.Engine.Run, the very code path of `learnsync run
// --once`; the service only decides when to call it and with which sources
// to fetch.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/reconcile"
)

// Store is what the service needs of the learning directory.
type Store interface {
	reconcile.Store
	StatusStore
	// PruneRuns keeps the newest keep runs.
	PruneRuns(ctx context.Context, keep int) (int64, error)
}

var _ Store = (*directory.Store)(nil)

// BuildFunc makes the engine for a configuration. hooks returns the
// traffic callbacks to give each source's connector (metrics, progress).
// The engine's Store is replaced by the service.
type BuildFunc func(cfg *config.Config, hooks func(source string) connectors.Hooks) (*reconcile.Engine, error)

// Options configure a Service.
type Options struct {
	// Config is the configuration to start with.
	Config *config.Config
	// Store is the learning directory, opened (and closed) by the caller.
	Store Store
	// Build makes the engine for a configuration.
	Build BuildFunc
	// Load reads and validates the configuration again, on reload. Nil:
	// reloads are refused.
	Load func() (*config.Config, error)
	// Logger; nil discards.
	Logger *slog.Logger
	// Listener serves the ops endpoint; nil listens on Config.Server.Listen.
	Listener net.Listener
	// FullStart makes the first cycle fetch every source fully.
	FullStart bool
	// Clock drives the schedules; nil is the real clock.
	Clock Clock
	// Jitter returns a random delay in [0, max); nil is uniform.
	Jitter func(max time.Duration) time.Duration
	// ProgressEvery is how often a long fetch logs its progress (default 5s).
	ProgressEvery time.Duration
	// StatusRuns is how many runs /status shows (default 10).
	StatusRuns int
}

// Triggers of the runs the service starts besides the schedules.
const (
	// TriggerStart is the first cycle after the service starts.
	TriggerStart = reconcile.TriggerStart
	// TriggerConfigReload is the reconcile that follows a configuration reload.
	TriggerConfigReload = reconcile.TriggerReload
)

// Kinds of scheduled fetch.
const (
	kindSchedule = "schedule"
	kindFullSync = "full_sync"
)

// Service is learnsync's service mode. Make one with New and call Run.
type Service struct {
	store   Store
	build   BuildFunc
	load    func() (*config.Config, error)
	log     *slog.Logger
	clock   Clock
	jitter  func(time.Duration) time.Duration
	every   time.Duration
	nRuns   int
	metrics *metrics
	started time.Time
	ln      net.Listener
	full    bool

	wake chan struct{}
	// applyCtx is what applies run with: not cancelled by a shutdown, only
	// when its grace period is over.
	applyCtx context.Context

	mu       sync.Mutex
	cfg      *config.Config
	engine   *reconcile.Engine
	loadedAt time.Time
	pending  map[string]reconcile.FetchMode // sources waiting for a run
	running  map[string]reconcile.FetchMode // sources the current run fetches
	inRun    bool
	// lastStart is when each source's last fetch began, and how.
	lastStart map[string]fetchStart
	wantRun   bool              // a run is due even without fetches (after a reload)
	trigger   reconcile.Trigger // of the next run, when not from the schedules
	next      map[string]map[string]time.Time
	progress  map[string]*progress
	stopping  bool
	// readiness
	applied     bool
	ran         bool   // a run has ended (whatever its result)
	runError    string // why the last run could not be carried out, if it could not
	blocked     string // why the last run that got as far as a plan was blocked, if it was
	frozenSince map[string]time.Time
	lastErrors  map[string]string
	// failedRuns counts the runs in a row that ended failed (every source
	// fetched in them failed) or could not be carried out.
	failedRuns int
}

// failedRunsUnready is how many failed runs in a row make the service
// unready, whatever the sources' stale_after: one failure is an outage to
// ride out, several in a row need someone to look.
const failedRunsUnready = 3

type fetchStart struct {
	at   time.Time
	mode reconcile.FetchMode
}

type progress struct {
	since, logged time.Time
	last          connectors.Progress
}

// New checks the options and builds the first engine.
func New(opts Options) (*Service, error) {
	if opts.Config == nil || opts.Store == nil || opts.Build == nil {
		return nil, errors.New("service: Config, Store and Build are required")
	}
	s := &Service{
		store: opts.Store, build: opts.Build, load: opts.Load, log: opts.Logger, clock: opts.Clock,
		jitter: opts.Jitter, every: opts.ProgressEvery, nRuns: opts.StatusRuns, ln: opts.Listener, full: opts.FullStart,
		wake:    make(chan struct{}, 1),
		pending: map[string]reconcile.FetchMode{}, running: map[string]reconcile.FetchMode{},
		next: map[string]map[string]time.Time{}, progress: map[string]*progress{},
		frozenSince: map[string]time.Time{}, lastErrors: map[string]string{}, lastStart: map[string]fetchStart{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = realClock{}
	}
	if s.jitter == nil {
		s.jitter = func(max time.Duration) time.Duration { return rand.N(max) }
	}
	if s.every <= 0 {
		s.every = 5 * time.Second
	}
	if s.nRuns <= 0 {
		s.nRuns = 10
	}
	s.metrics = newMetrics(func() bool { ok, _ := s.Ready(); return ok })
	if err := checkSchedules(opts.Config); err != nil {
		return nil, err
	}
	eng, err := s.build(opts.Config, s.hooks)
	if err != nil {
		return nil, err
	}
	s.cfg, s.engine = opts.Config, eng
	for _, src := range opts.Config.Sources {
		s.metrics.addSource(src.Name)
	}
	return s, nil
}

func checkSchedules(cfg *config.Config) error {
	var errs []error
	for i, src := range cfg.Sources {
		if _, err := ParseSchedule(src.Schedule); err != nil {
			errs = append(errs, fmt.Errorf("sources[%d].schedule: %w", i, err))
		}
		if _, err := ParseSchedule(src.FullSync); err != nil {
			errs = append(errs, fmt.Errorf("sources[%d].full_sync: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// Run serves until ctx is cancelled: the first cycle at once, then every
// source on its schedules; a value on reload reloads the configuration.
// When ctx is cancelled it stops scheduling, cancels fetches, lets an apply
// in progress finish (at most server.shutdown_timeout) and returns nil.
// It returns an error only when the ops endpoint cannot listen.
func (s *Service) Run(ctx context.Context, reload <-chan struct{}) error {
	s.started = s.clock.Now()
	s.loadedAt = s.started
	cfg := s.config()
	ln := s.ln
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Server.Listen); err != nil {
			return fmt.Errorf("ops endpoint: %w", err)
		}
	}
	s.ln = ln
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("ops endpoint stopped", "error", err)
		}
	}()
	s.log.Info("service started", "addr", ln.Addr().String(), "config", cfg.Path, "sources", len(cfg.Sources),
		"endpoints", "/healthz /readyz /metrics /status")
	s.restore(ctx)

	applyCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	s.applyCtx = applyCtx
	worked := make(chan struct{})
	go func() { defer close(worked); s.worker(ctx) }()

	sched := s.startSchedules(ctx, cfg)
	mode := reconcile.FetchAuto
	if s.full {
		mode = reconcile.FetchFull
	}
	s.mu.Lock()
	for _, src := range cfg.Sources {
		s.pending[src.Name] = mode
	}
	s.trigger = TriggerStart
	s.mu.Unlock()
	s.poke()

loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case _, ok := <-reload:
			if !ok {
				reload = nil
				continue
			}
			if cfg, ok := s.reload(); ok {
				sched.stop()
				sched = s.startSchedules(ctx, cfg)
			}
		}
	}

	// Stop: no more ticks; fetches see ctx cancelled; an apply runs on.
	sched.stop()
	s.mu.Lock()
	s.stopping = true
	busy := s.inRun
	grace := s.cfg.Server.ShutdownTimeout
	s.mu.Unlock()
	if busy {
		s.log.Info("stopping: scheduling stopped, fetches cancelled; waiting for the run in progress to finish its apply", "timeout", grace)
	} else {
		s.log.Info("stopping")
	}
	timer := time.NewTimer(grace)
	select {
	case <-worked:
		timer.Stop()
	case <-timer.C:
		s.log.Error("stopping: the apply did not finish within server.shutdown_timeout; abandoning it (its transaction rolls back, nothing of it is kept)",
			"timeout", grace)
		abandon()
		select {
		case <-worked:
		case <-time.After(10 * time.Second):
			s.log.Error("stopping: the run did not return after it was abandoned")
		}
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		srv.Close()
	}
	<-served
	s.log.Info("service stopped")
	return nil
}

// Addr is the ops endpoint's address once Run listens.
func (s *Service) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

func (s *Service) config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// restore reads what the directory remembers (sources frozen before a
// restart, gauges) so that readiness and metrics do not start from zero.
func (s *Service) restore(ctx context.Context) {
	st, err := s.store.Status(ctx)
	if err != nil {
		s.log.Warn("read directory status", "error", err)
		return
	}
	s.mu.Lock()
	configured := make(map[string]bool)
	for _, src := range s.cfg.Sources {
		configured[src.Name] = true
	}
	for _, ss := range st.Sources {
		if configured[ss.Source] && !ss.FrozenSince.IsZero() {
			s.frozenSince[ss.Source] = ss.FrozenSince
			if ss.LastFetch != nil {
				s.lastErrors[ss.Source] = ss.LastFetch.Error
			}
			s.metrics.sourceFrozen.WithLabelValues(ss.Source).Set(1)
		}
	}
	s.mu.Unlock()
	s.metrics.observeDirectory(st, configured)
}

// schedules are the timer loops of one configuration.
type schedules struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (sc *schedules) stop() {
	sc.cancel()
	sc.wg.Wait()
}

func (s *Service) startSchedules(ctx context.Context, cfg *config.Config) *schedules {
	s.mu.Lock()
	s.next = map[string]map[string]time.Time{}
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	sc := &schedules{cancel: cancel}
	for _, src := range cfg.Sources {
		for _, k := range []struct {
			kind, spec string
			mode       reconcile.FetchMode
		}{{kindSchedule, src.Schedule, reconcile.FetchAuto}, {kindFullSync, src.FullSync, reconcile.FetchFull}} {
			sched, err := ParseSchedule(k.spec)
			if err != nil { // checked by New and reload
				s.log.Error("bad schedule", "source", src.Name, "kind", k.kind, "error", err)
				continue
			}
			sc.wg.Add(1)
			go func() {
				defer sc.wg.Done()
				s.tick(ctx, src.Name, k.kind, k.mode, sched, src.ScheduleJitter)
			}()
		}
	}
	return sc
}

// tick fires one schedule of one source until ctx ends.
func (s *Service) tick(ctx context.Context, source, kind string, mode reconcile.FetchMode, sched Schedule, jitter time.Duration) {
	due := sched.Next(s.clock.Now())
	for {
		at := due
		if jitter > 0 {
			at = at.Add(s.jitter(jitter))
		}
		s.setNext(source, kind, at)
		timer := s.clock.NewTimer(at.Sub(s.clock.Now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
		if ctx.Err() != nil {
			return
		}
		s.enqueue(source, kind, mode, at)
		// Keep to the schedule's own times (jitter does not add up), but
		// never catch up on times missed while the machine slept.
		due = sched.Next(due)
		if now := s.clock.Now(); due.Before(now) {
			due = sched.Next(now)
		}
	}
}

func (s *Service) setNext(source, kind string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next[source] == nil {
		s.next[source] = map[string]time.Time{}
	}
	s.next[source][kind] = at
}

// enqueue asks for a fetch of source. A tick that finds the source's
// previous fetch still running, or still waiting for its run, is skipped
// and counted. Full fetches win: a full_sync tick replaces an incremental
// fetch that waits, or follows one that runs; a schedule tick that finds a
// full fetch waiting is covered by it. So is a tick due at (or before) the
// start of the source's last fetch, when that fetch was at least as full:
// the schedule and the full_sync of a source often fall on the same minute.
func (s *Service) enqueue(source, kind string, mode reconcile.FetchMode, due time.Time) {
	s.mu.Lock()
	queued, isQueued := s.pending[source]
	running, isRunning := s.running[source]
	last, fetched := s.lastStart[source]
	skipped := false
	switch {
	case isQueued && queued == reconcile.FetchFull && mode != reconcile.FetchFull,
		fetched && !last.at.Before(due) && (last.mode == reconcile.FetchFull || mode != reconcile.FetchFull):
		s.mu.Unlock()
		s.log.Debug("fetch due: covered by the fetch waiting or running", "source", source, "kind", kind)
		return
	case isQueued:
		if mode == reconcile.FetchFull && queued != reconcile.FetchFull {
			s.pending[source] = mode
		} else {
			skipped = true
		}
	case isRunning:
		if mode == reconcile.FetchFull && running != reconcile.FetchFull {
			s.pending[source] = mode
		} else {
			skipped = true
		}
	default:
		s.pending[source] = mode
	}
	s.mu.Unlock()
	if skipped {
		s.metrics.fetchSkipped.WithLabelValues(source, kind).Inc()
		s.log.Warn("scheduled fetch skipped: the previous one is still running or waiting", "source", source, "kind", kind)
		return
	}
	s.log.Debug("fetch due", "source", source, "kind", kind)
	s.poke()
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// batch is what one run does.
type batch struct {
	fetch   map[string]reconcile.FetchMode
	trigger reconcile.Trigger
}

// take moves every pending fetch into one run.
func (s *Service) take() (batch, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping || (len(s.pending) == 0 && !s.wantRun) {
		return batch{}, false
	}
	b := batch{fetch: s.pending, trigger: s.trigger}
	if b.trigger == "" {
		b.trigger = reconcile.TriggerSchedule
		for _, m := range b.fetch {
			if m == reconcile.FetchFull {
				b.trigger = reconcile.TriggerFullSync
			}
		}
	}
	s.running, s.pending = b.fetch, map[string]reconcile.FetchMode{}
	s.wantRun, s.trigger, s.inRun = false, "", true
	now := s.clock.Now()
	for name, mode := range b.fetch {
		s.progress[name] = &progress{since: now, logged: now}
		s.lastStart[name] = fetchStart{at: now, mode: mode}
	}
	return b, true
}

// worker carries out the runs one at a time: applies never overlap, and
// fetches that come due meanwhile join the next run.
func (s *Service) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		for ctx.Err() == nil {
			b, ok := s.take()
			if !ok {
				break
			}
			s.runBatch(ctx, b)
		}
	}
}

func (s *Service) runBatch(ctx context.Context, b batch) {
	s.mu.Lock()
	eng, cfg := s.engine, s.cfg
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running, s.inRun = map[string]reconcile.FetchMode{}, false
		clear(s.progress)
		s.mu.Unlock()
	}()

	e := *eng
	e.Store = applyStore{Store: s.store, ctx: s.applyCtx, log: s.log}
	e.Now = s.clock.Now
	fetch := make(map[string]reconcile.FetchMode, len(e.Sources))
	var names []string
	for _, src := range e.Sources {
		name := src.Rules.Name
		if m, ok := b.fetch[name]; ok {
			fetch[name] = m
			names = append(names, name)
		} else {
			fetch[name] = reconcile.FetchNone
		}
	}
	if len(names) == 0 && b.trigger != TriggerConfigReload {
		return // only sources a reload removed
	}
	s.log.Debug("run starting", "trigger", b.trigger, "fetch", strings.Join(names, ","))
	out, err := e.Run(ctx, reconcile.RunOptions{Trigger: b.trigger, Fetch: fetch})
	if err != nil {
		if ctx.Err() != nil {
			s.log.Info("run abandoned: the service is stopping; nothing of it was written", "trigger", b.trigger)
			return
		}
		s.log.Error("run failed: the directory could not be read or written", "trigger", b.trigger, "error", err)
		s.metrics.runs.WithLabelValues(resultError).Inc()
		s.mu.Lock()
		s.ran, s.runError = true, err.Error()
		s.failedRuns++
		s.mu.Unlock()
		return
	}
	s.metrics.observeRun(out)
	// The directory's gauges are set before the run counts for readiness,
	// so that a scrape after /readyz says ready sees them.
	if n, err := s.store.PruneRuns(s.applyCtx, cfg.History.KeepRuns); err != nil {
		s.log.Warn("prune run history", "error", err)
	} else if n > 0 {
		s.log.Debug("pruned run history", "runs", n)
	}
	if st, err := s.store.Status(s.applyCtx); err != nil {
		s.log.Warn("read directory status", "error", err)
	} else {
		configured := make(map[string]bool)
		for _, src := range cfg.Sources {
			configured[src.Name] = true
		}
		s.metrics.observeDirectory(st, configured)
	}
	s.mu.Lock()
	if out.Applied {
		s.applied = true
	}
	s.ran, s.runError = true, ""
	if out.Run.Result == reconcile.ResultFailed {
		s.failedRuns++
	} else {
		s.failedRuns = 0
	}
	switch out.Run.Result {
	case reconcile.ResultBlocked:
		s.blocked = out.Run.Error
	case reconcile.ResultOK, reconcile.ResultPartial:
		s.blocked = ""
		// A failed run (its fetches all failed) says nothing of the plan.
	}
	for _, sr := range out.Run.Sources {
		switch since := reconcile.FrozenSince(s.frozenSince[sr.Name], sr, out.Run.StartedAt); {
		case !sr.Fetched():
		case !since.IsZero():
			s.frozenSince[sr.Name] = since
			s.lastErrors[sr.Name] = sr.Error
		default:
			delete(s.frozenSince, sr.Name)
			delete(s.lastErrors, sr.Name)
		}
	}
	s.mu.Unlock()
}

// applyStore lets an apply finish when the service stops: the engine's
// writes run on the service's apply context, which only the end of the
// shutdown grace period cancels. Fetches still see the run's context, and
// the engine does not apply after a cancelled fetch.
type applyStore struct {
	Store
	ctx context.Context
	log *slog.Logger
}

func (a applyStore) Commit(_ context.Context, c *reconcile.Commit) error {
	a.log.Debug("applying", "changes", c.Run.Summary.Total)
	return a.Store.Commit(a.ctx, c)
}

func (a applyStore) RecordRun(_ context.Context, r *reconcile.Run) error {
	return a.Store.RecordRun(a.ctx, r)
}

// hooks are the callbacks each source's connector reports its traffic to.
func (s *Service) hooks(source string) connectors.Hooks {
	return connectors.Hooks{
		Request:   func(_ string, status int, _ time.Duration) { s.metrics.request(source, status) },
		Throttled: func(_ string, wait time.Duration) { s.metrics.throttle(source, wait) },
		Progress:  func(p connectors.Progress) { s.onProgress(source, p) },
	}
}

// onProgress logs a long fetch's progress every few seconds.
func (s *Service) onProgress(source string, p connectors.Progress) {
	now := s.clock.Now()
	s.mu.Lock()
	ps := s.progress[source]
	if ps == nil { // a fetch outside a run of the service (cannot happen today)
		ps = &progress{since: now, logged: now}
		s.progress[source] = ps
	}
	ps.last = p
	due := now.Sub(ps.logged) >= s.every
	if due {
		ps.logged = now
	}
	since := ps.since
	s.mu.Unlock()
	if due {
		s.log.Info("fetch in progress", "source", source, "pages", p.Pages, "users", p.Users, "groups", p.Groups,
			"rate_waits", p.Waits, "elapsed", now.Sub(since).Round(time.Second))
	}
}

// reload reads the configuration again and, when it is valid and can be
// applied without a restart, swaps it in: new schedules, a new engine, the
// new sources fetched and a reconcile with the new rules. Otherwise the
// running configuration stays and the log says why.
func (s *Service) reload() (*config.Config, bool) {
	refuse := func(err error) (*config.Config, bool) {
		s.log.Error("configuration reload refused; the running configuration stays", "error", err)
		s.metrics.reloads.WithLabelValues("refused").Inc()
		return nil, false
	}
	if s.load == nil {
		return refuse(errors.New("reload is not supported here"))
	}
	s.log.Info("reloading the configuration")
	cfg, err := s.load()
	if err != nil {
		return refuse(err)
	}
	old := s.config()
	if cfg.DatabasePath() != old.DatabasePath() {
		return refuse(fmt.Errorf("directory.dsn changed from %s to %s: restart learnsync to use another database",
			old.DatabasePath(), cfg.DatabasePath()))
	}
	if cfg.Server.Listen != old.Server.Listen {
		return refuse(fmt.Errorf("server.listen changed from %s to %s: restart learnsync to move the ops endpoint",
			old.Server.Listen, cfg.Server.Listen))
	}
	if err := checkSchedules(cfg); err != nil {
		return refuse(err)
	}
	eng, err := s.build(cfg, s.hooks)
	if err != nil {
		return refuse(err)
	}
	before := make(map[string]bool)
	for _, src := range old.Sources {
		before[src.Name] = true
	}
	var added, removed []string
	s.mu.Lock()
	s.cfg, s.engine, s.loadedAt = cfg, eng, s.clock.Now()
	now := make(map[string]bool)
	for _, src := range cfg.Sources {
		now[src.Name] = true
		if !before[src.Name] {
			added = append(added, src.Name)
			s.pending[src.Name] = reconcile.FetchAuto
		}
	}
	for name := range before {
		if !now[name] {
			removed = append(removed, name)
			delete(s.pending, name)
			delete(s.frozenSince, name)
			delete(s.lastErrors, name)
		}
	}
	s.wantRun, s.trigger = true, TriggerConfigReload
	s.mu.Unlock()
	for _, name := range added {
		s.metrics.addSource(name)
	}
	for _, name := range removed {
		s.metrics.removeSource(name)
	}
	slices.Sort(removed)
	s.metrics.reloads.WithLabelValues("ok").Inc()
	s.log.Info("configuration reloaded", "sources", len(cfg.Sources), "added", strings.Join(added, ","),
		"removed", strings.Join(removed, ","))
	s.poke()
	return cfg, true
}

// Ready says whether the service is doing its job, and if not, why: it
// has applied a run since it started, its last run could be carried out
// (the directory was readable and writable) and was not blocked, and no
// source has been frozen for longer than its stale_after.
func (s *Service) Ready() (bool, []string) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var why []string
	if s.stopping {
		why = append(why, "the service is stopping")
	}
	if !s.applied {
		if !s.ran {
			why = append(why, "the first run has not finished yet")
		} else {
			why = append(why, "no run has applied since the service started")
		}
	}
	// A run whose fetches all failed is "failed" too, but that is the
	// sources' trouble: each counts through its stale_after below, so that
	// a short outage of one identity provider does not flap readiness.
	if s.runError != "" {
		why = append(why, "the last run failed: "+s.runError)
	}
	if s.failedRuns >= failedRunsUnready && s.runError == "" {
		why = append(why, fmt.Sprintf("the last %d runs failed: no source could be fetched", s.failedRuns))
	}
	if s.blocked != "" {
		why = append(why, "the last run was blocked by a safety limit, nothing is applied until someone acts: "+s.blocked)
	}
	if s.cfg != nil {
		for _, src := range s.cfg.Sources {
			since, frozen := s.frozenSince[src.Name]
			if frozen && stale(since, src.StaleAfter, now) {
				why = append(why, fmt.Sprintf("source %s has been frozen for %s (stale_after %s): %s",
					src.Name, now.Sub(since).Round(time.Second), src.StaleAfter, s.lastErrors[src.Name]))
			}
		}
	}
	return len(why) == 0, why
}

// Status reads the status document with what the service knows besides
// the directory.
func (s *Service) Status(ctx context.Context) (*Status, error) {
	cfg := s.config()
	now := s.clock.Now()
	st, err := ReadStatus(ctx, s.store, cfg, now, s.nRuns)
	if err != nil {
		return nil, err
	}
	ready, why := s.Ready()
	if why == nil {
		why = []string{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.Service = &ServiceStatus{
		StartedAt: s.started.UTC(), Ready: ready, NotReady: why, Config: cfg.Path,
		ConfigLoadedAt: s.loadedAt.UTC(), Running: s.inRun,
	}
	if a := s.Addr(); a != nil {
		st.Service.Listen = a.String()
	}
	for i := range st.Sources {
		ss := &st.Sources[i]
		_, ss.Fetching = s.running[ss.Name]
		_, ss.Queued = s.pending[ss.Name]
		if n := s.next[ss.Name]; n != nil {
			ss.NextFetch, ss.NextFullSync = timePtr(n[kindSchedule]), timePtr(n[kindFullSync])
		}
		if p := s.progress[ss.Name]; p != nil && ss.Fetching {
			ss.Progress = &ProgressStatus{Pages: p.last.Pages, Users: p.last.Users, Groups: p.last.Groups,
				RateWaits: p.last.Waits, Seconds: now.Sub(p.since).Seconds()}
		}
		// The service's own view is fresher than the history for a
		// source whose failed run was never recorded.
		if since, ok := s.frozenSince[ss.Name]; ok && ss.FrozenSince == nil {
			ss.FrozenSince = timePtr(since)
			ss.Stale = stale(since, durationOf(cfg, ss.Name), now)
		}
	}
	return st, nil
}

func durationOf(cfg *config.Config, name string) time.Duration {
	if i := cfg.SourceIndex(name); i >= 0 {
		return cfg.Sources[i].StaleAfter
	}
	return 0
}
