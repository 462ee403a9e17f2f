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
	"github.com/learnsync/learnsync/ha"
	"github.com/learnsync/learnsync/reconcile"
	"github.com/learnsync/learnsync/scim"
)

// BuildFunc makes the engine for a configuration. hooks returns the
// traffic callbacks to give each source's connector (metrics, progress).
// The engine's Store is replaced by the service.
type BuildFunc func(cfg *config.Config, hooks func(source string) connectors.Hooks) (*reconcile.Engine, error)

// Options configure a Service.
type Options struct {
	// Config is the configuration to start with, as config.Load returns it
	// (with its schedules parsed).
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
	// ProgressInterval is how often a long fetch logs its progress
	// (default 5s).
	ProgressInterval time.Duration
	// StatusRuns is how many runs /status shows (default 10).
	StatusRuns int
	// SCIMStore keeps the resources of scim sources; nil: Store, if it
	// can (see public.go).
	SCIMStore scim.Store
	// PublicListener serves the SCIM endpoints; nil listens on
	// Config.Server.Public.Listen, when set.
	PublicListener net.Listener
	// Election, when set, makes this instance one of several on a shared
	// directory: it runs only while it is the leader (see leader.go). The
	// Store's applies must be fenced by the same election.
	Election Election
	// Version is learnsync's version, shown in /status.
	Version string
}

// Triggers of the runs the service starts besides the schedules.
const (
	// TriggerStart is the first cycle after the service starts.
	TriggerStart = reconcile.TriggerStart
	// TriggerConfigReload is the reconcile that follows a configuration reload.
	TriggerConfigReload = reconcile.TriggerReload
)

// Service is learnsync's service mode. Make one with New and call Run.
//
// It is made of parts with their own state: the run queue (what waits for
// a run, the run in progress), the schedules (the timer loops), readiness
// (what the runs say about /readyz) and the progress log (long fetches).
// Service itself holds the configuration in use and the directory.
type Service struct {
	store      Store
	build      BuildFunc
	load       func() (*config.Config, error)
	log        *slog.Logger
	clock      Clock
	statusRuns int
	metrics    *metrics
	started    time.Time
	ln         net.Listener
	full       bool
	version    string
	election   Election
	leader     leadership

	queue     *runQueue
	public    *public
	schedules *scheduler
	readiness *readiness
	progress  *progressLog
	cycles    cycleLog

	// applyCtx is what applies run with: not cancelled by a shutdown, only
	// when its grace period is over.
	applyCtx context.Context

	mu       sync.Mutex // guards the configuration in use
	cfg      *config.Config
	engine   *reconcile.Engine
	loadedAt time.Time
}

// New checks the options and builds the first engine.
func New(opts Options) (*Service, error) {
	if opts.Config == nil || opts.Store == nil || opts.Build == nil {
		return nil, errors.New("service: Config, Store and Build are required")
	}
	s := &Service{
		store: opts.Store, build: opts.Build, load: opts.Load, log: opts.Logger, clock: opts.Clock,
		statusRuns: opts.StatusRuns, ln: opts.Listener, full: opts.FullStart,
		version: opts.Version, election: opts.Election,
		queue: newRunQueue(), readiness: newReadiness(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = realClock{}
	}
	jitter := opts.Jitter
	if jitter == nil {
		jitter = func(max time.Duration) time.Duration { return rand.N(max) }
	}
	interval := opts.ProgressInterval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if s.statusRuns <= 0 {
		s.statusRuns = 10
	}
	s.schedules = &scheduler{clock: s.clock, jitter: jitter, fire: s.enqueue}
	s.progress = newProgressLog(s.clock, s.log, interval)
	s.metrics = newMetrics(func() bool { ok, _ := s.Ready(); return ok })
	s.leaderMetrics()
	if opts.SCIMStore == nil {
		opts.SCIMStore, _ = opts.Store.(scim.Store)
	}
	s.public = newPublic(s, opts.SCIMStore, opts.PublicListener)
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

// checkSchedules makes sure every schedule is set: config.Load parses
// them, a configuration made by hand may lack them.
func checkSchedules(cfg *config.Config) error {
	var errs []error
	for i, src := range cfg.Sources {
		if src.Schedule.IsZero() {
			errs = append(errs, fmt.Errorf("sources[%d].schedule: not set", i))
		}
		if src.FullSync.IsZero() {
			errs = append(errs, fmt.Errorf("sources[%d].full_sync: not set", i))
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
	if err := s.public.start(cfg); err != nil {
		srv.Close()
		<-served
		return err
	}
	s.restore(ctx)

	applyCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	s.applyCtx = applyCtx
	worked := s.begin(ctx, cfg)

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
				s.startSchedules(ctx, cfg)
			}
		}
	}

	// Stop: no more ticks; fetches see ctx cancelled; an apply runs on.
	if s.election == nil {
		s.schedules.stop() // a leader's term stops its own
	}
	busy := s.queue.stop()
	grace := s.config().Server.ShutdownTimeout
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
	s.public.stop(shutCtx)
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

// begin starts the runs: at once when this instance is alone, else
// whenever it is elected. The channel is closed once they are over.
func (s *Service) begin(ctx context.Context, cfg *config.Config) <-chan struct{} {
	if s.election != nil {
		s.log.Info("high availability: campaigning for the leadership", "instance", s.election.Name(), "lease", s.election.Lease())
		return s.campaign(ctx)
	}
	worked := make(chan struct{})
	go func() { defer close(worked); s.worker(ctx) }()
	s.schedules.start(ctx, cfg.Sources)
	mode := reconcile.FetchAuto
	if s.full {
		mode = reconcile.FetchFull
	}
	s.queue.startCycle(sourceNames(cfg), mode, TriggerStart)
	return worked
}

func (s *Service) config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// restore reads what the directory remembers (sources frozen before a
// restart, gauges) so that readiness and metrics do not start from zero.
func (s *Service) restore(ctx context.Context) {
	st, err := s.store.StoredStatus(ctx)
	if err != nil {
		s.log.Warn("read directory status", "error", err)
		return
	}
	configured := configuredSources(s.config())
	for _, name := range s.readiness.restore(st.Sources, configured) {
		s.metrics.sourceFrozen.WithLabelValues(name).Set(1)
	}
	s.metrics.observeDirectory(st, configured)
}

func sourceNames(cfg *config.Config) []string {
	names := make([]string, len(cfg.Sources))
	for i, src := range cfg.Sources {
		names[i] = src.Name
	}
	return names
}

func configuredSources(cfg *config.Config) map[string]bool {
	configured := make(map[string]bool, len(cfg.Sources))
	for _, src := range cfg.Sources {
		configured[src.Name] = true
	}
	return configured
}

// enqueue asks for a scheduled fetch of source (see runQueue.add): a tick
// that finds the source's previous fetch still running, or still waiting
// for its run, is skipped and counted.
func (s *Service) enqueue(source, kind string, mode reconcile.FetchMode, due time.Time) {
	switch s.queue.add(source, mode, due) {
	case fetchCovered:
		s.log.Debug("fetch due: covered by the fetch waiting or running", "source", source, "kind", kind)
	case fetchSkipped:
		s.metrics.fetchSkipped.WithLabelValues(source, kind).Inc()
		s.log.Warn("scheduled fetch skipped: the previous one is still running or waiting", "source", source, "kind", kind)
	default:
		s.log.Debug("fetch due", "source", source, "kind", kind)
		s.queue.poke()
	}
}

// worker carries out the runs one at a time: applies never overlap, and
// fetches that come due meanwhile join the next run.
func (s *Service) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.queue.wake:
		}
		for ctx.Err() == nil {
			now := s.clock.Now()
			b, ok := s.queue.take(now)
			if !ok {
				break
			}
			s.progress.start(b.fetch, now)
			s.runBatch(ctx, b)
		}
	}
}

func (s *Service) runBatch(ctx context.Context, b batch) {
	s.mu.Lock()
	eng, cfg := s.engine, s.cfg
	s.mu.Unlock()
	defer func() {
		s.progress.clear()
		s.queue.finish()
	}()

	e := *eng
	apply := applyStore{Store: s.store, ctx: s.applyCtx, log: s.log}
	e.Store = apply
	if ss, ok := s.store.(reconcile.ScopedStore); ok {
		e.Store = scopedApplyStore{ScopedStore: ss, apply: apply}
	}
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
	// --full makes the first cycle a full reconcile as well as a full fetch.
	full := (b.trigger == TriggerStart || b.trigger == TriggerElected) && s.full
	out, err := e.Run(ctx, reconcile.RunOptions{Trigger: b.trigger, Fetch: fetch, FullReconcile: full})
	if err != nil {
		if ctx.Err() != nil {
			s.log.Info("run abandoned: the service is stopping or no longer leads; nothing of it was written", "trigger", b.trigger)
			return
		}
		if errors.Is(err, ha.ErrDeposed) {
			s.log.Warn("run refused: this instance is no longer the leader; nothing of it was committed", "trigger", b.trigger)
			return
		}
		s.log.Error("run failed: the directory could not be read or written", "trigger", b.trigger, "error", err)
		s.metrics.runs.WithLabelValues(resultLabelError).Inc()
		s.readiness.runFailed(err)
		return
	}
	s.metrics.observeRun(out)
	s.cycles.ended(out)
	if out.NoChange {
		// Nothing was written: the history and the directory's gauges
		// are as they were.
		s.readiness.runEnded(out)
		return
	}
	// The directory's gauges are set before the run counts for readiness,
	// so that a scrape after /readyz says ready sees them.
	if n, err := s.store.PruneRuns(s.applyCtx, cfg.History.KeepRuns); err != nil {
		s.log.Warn("prune run history", "error", err)
	} else if n > 0 {
		s.log.Debug("pruned run history", "runs", n)
	}
	if st, err := s.store.StoredStatus(s.applyCtx); err != nil {
		s.log.Warn("read directory status", "error", err)
	} else {
		s.metrics.observeDirectory(st, configuredSources(cfg))
	}
	s.readiness.runEnded(out)
}

// hooks are the callbacks each source's connector reports its traffic to.
func (s *Service) hooks(source string) connectors.Hooks {
	return connectors.Hooks{
		Request:   func(_ string, status int, _ time.Duration) { s.metrics.request(source, status) },
		Throttled: func(_ string, wait time.Duration) { s.metrics.throttle(source, wait) },
		Progress:  func(p connectors.Progress) { s.progress.report(source, p) },
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
			old.DatabaseName(), cfg.DatabaseName()))
	}
	if cfg.Server.Listen != old.Server.Listen {
		return refuse(fmt.Errorf("server.listen changed from %s to %s: restart learnsync to move the ops endpoint",
			old.Server.Listen, cfg.Server.Listen))
	}
	if cfg.Server.Public.Listen != old.Server.Public.Listen {
		return refuse(fmt.Errorf("server.public.listen changed from %q to %q: restart learnsync to move the public endpoint",
			old.Server.Public.Listen, cfg.Server.Public.Listen))
	}
	if err := checkSchedules(cfg); err != nil {
		return refuse(err)
	}
	eng, err := s.build(cfg, s.hooks)
	if err != nil {
		return refuse(err)
	}
	before := configuredSources(old)
	var added, removed []string
	now := configuredSources(cfg)
	for _, src := range cfg.Sources {
		if !before[src.Name] {
			added = append(added, src.Name)
		}
	}
	for name := range before {
		if !now[name] {
			removed = append(removed, name)
		}
	}
	// The worker sees the new configuration and the new queue together.
	s.mu.Lock()
	s.cfg, s.engine, s.loadedAt = cfg, eng, s.clock.Now()
	s.queue.reloaded(added, removed)
	s.readiness.forget(removed)
	s.mu.Unlock()
	s.public.reload(cfg)
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
	s.queue.poke()
	return cfg, true
}

// Ready says whether the service is doing its job, and if not, why: it
// has applied a run since it started, its last run could be carried out
// (the directory was readable and writable) and was not blocked, and no
// source has been frozen for longer than its stale_after.
func (s *Service) Ready() (bool, []string) {
	now := s.clock.Now()
	var why []string
	if s.queue.isStopping() {
		why = append(why, "the service is stopping")
	}
	var sources []config.Source
	if cfg := s.config(); cfg != nil {
		sources = cfg.Sources
	}
	if s.election != nil {
		if st := s.election.State(); st.Role != ha.RoleLeader {
			why = append(why, s.standbyReasons(st, now)...)
			return len(why) == 0, why
		}
	}
	why = append(why, s.readiness.reasons(sources, now)...)
	return len(why) == 0, why
}

// Status reads the status report with what the service knows besides
// the directory.
func (s *Service) Status(ctx context.Context) (*StatusReport, error) {
	cfg := s.config()
	now := s.clock.Now()
	st, err := ReadStatus(ctx, s.store, cfg, now, s.statusRuns)
	if err != nil {
		return nil, err
	}
	ready, why := s.Ready()
	if why == nil {
		why = []string{}
	}
	s.mu.Lock()
	loadedAt := s.loadedAt
	s.mu.Unlock()
	st.Service = &ServiceState{
		StartedAt: s.started.UTC(), Ready: ready, NotReady: why, Config: cfg.Path,
		ConfigLoadedAt: loadedAt.UTC(), Running: s.queue.busy(), Version: s.version,
	}
	if s.election != nil {
		st.HA = s.haStatus(ctx)
	}
	if n, last, ok := s.cycles.state(); ok {
		st.Service.Cycles = n
		st.Service.LastCycle = &CycleReport{EndedAt: last.EndedAt.UTC(), Trigger: string(last.Trigger),
			Reconcile: last.Reconcile, Result: string(last.Result), Run: last.ID}
	}
	if a := s.Addr(); a != nil {
		st.Service.Listen = a.String()
	}
	for i := range st.Sources {
		ss := &st.Sources[i]
		ss.Fetching, ss.Queued = s.queue.source(ss.Name)
		next, nextFull := s.schedules.nextOf(ss.Name)
		ss.NextFetch, ss.NextFullSync = timePtr(next), timePtr(nextFull)
		if p, since, ok := s.progress.of(ss.Name); ok && ss.Fetching {
			ss.Progress = &FetchProgress{Pages: p.Pages, Users: p.Users, Groups: p.Groups,
				RateWaits: p.Waits, Seconds: now.Sub(since).Seconds()}
		}
		// The service's own view is fresher than the history for a
		// source whose failed run was never recorded.
		if since, ok := s.readiness.frozen(ss.Name); ok && ss.FrozenSince == nil {
			ss.FrozenSince = timePtr(since)
			ss.Stale = stale(since, staleAfterOf(cfg, ss.Name), now)
		}
	}
	return st, nil
}

// staleAfterOf returns the named source's stale_after (0: not configured).
func staleAfterOf(cfg *config.Config, name string) time.Duration {
	if i := cfg.SourceIndex(name); i >= 0 {
		return cfg.Sources[i].StaleAfter
	}
	return 0
}
