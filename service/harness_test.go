package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/internal/testkit"
	"github.com/learnsync/learnsync/reconcile"
)

// fakeClock is a Clock that moves only when the test says so.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

type fakeTimer struct {
	c *fakeClock
	w *waiter
}

func (t fakeTimer) C() <-chan time.Time { return t.w.ch }

func (t fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, w := range t.c.waiters {
		if w == t.w {
			t.c.waiters = append(t.c.waiters[:i], t.c.waiters[i+1:]...)
			return true
		}
	}
	return false
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &waiter{at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		w.ch <- c.now
	} else {
		c.waiters = append(c.waiters, w)
	}
	return fakeTimer{c, w}
}

// Advance moves the clock and fires every timer that is due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

func (c *fakeClock) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// eventually polls cond for up to 5 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fakeSource is a connector the test steers: what it returns, whether it
// fails, and whether it waits for the test before returning.
type fakeSource struct {
	name string

	mu      sync.Mutex
	users   []connectors.User
	groups  map[string][]string // group name → member ids
	version int
	fail    error
	gate    chan struct{} // when set, a fetch waits for a value from it
	during  func(h connectors.Hooks)
	hooks   connectors.Hooks

	full, incremental atomic.Int32
	started           chan string // receives the source's name as a fetch begins
}

var _ connectors.Incremental = (*fakeSource)(nil)

func newFakeSource(name string, users ...string) *fakeSource {
	s := &fakeSource{name: name, groups: map[string][]string{}, started: make(chan string, 100)}
	for _, u := range users {
		s.users = append(s.users, connectors.User{ExternalID: u, UserName: u, Email: u + "@example.com", Status: connectors.StatusActive})
	}
	return s
}

func (s *fakeSource) FetchAll(ctx context.Context) (*connectors.Result, error) {
	s.full.Add(1)
	return s.fetch(ctx, true)
}

// FetchChanges returns an empty delta while nothing changed since the
// cursor, else everything.
func (s *fakeSource) FetchChanges(ctx context.Context, cursor string) (*connectors.Result, error) {
	s.incremental.Add(1)
	return s.fetch(ctx, cursor != s.cursor())
}

func (s *fakeSource) cursor() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("v%d", s.version)
}

func (s *fakeSource) fetch(ctx context.Context, full bool) (*connectors.Result, error) {
	s.started <- s.name
	s.mu.Lock()
	gate, during, hooks := s.gate, s.during, s.hooks
	s.mu.Unlock()
	if during != nil {
		during(hooks)
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	r := &connectors.Result{Full: full, Cursor: fmt.Sprintf("v%d", s.version)}
	if !full {
		return r, nil
	}
	r.Users = append(r.Users, s.users...)
	r.Members = map[string][]string{}
	for name, members := range s.groups {
		r.Groups = append(r.Groups, connectors.Group{ExternalID: name, Name: name})
		r.Members[name] = members
	}
	return r, nil
}

// set changes the source's data and its version.
func (s *fakeSource) set(fn func(s *fakeSource)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
	s.version++
}

func (s *fakeSource) setGate(g chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = g
}

func (s *fakeSource) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// waitStarted waits until the source's next fetch begins.
func (s *fakeSource) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-s.started:
	case <-time.After(5 * time.Second):
		t.Fatalf("source %s: no fetch began", s.name)
	}
}

// hookedStore wraps the directory to watch and steer the engine's writes.
type hookedStore struct {
	*directory.Store
	inflight, maxInflight atomic.Int32
	// beforeCommit, when set, runs as Commit begins, with Commit's context.
	beforeCommit func(ctx context.Context)
	// broken makes reading the directory fail.
	broken atomic.Bool
}

func (h *hookedStore) enter() func() {
	n := h.inflight.Add(1)
	for {
		m := h.maxInflight.Load()
		if n <= m || h.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	return func() { h.inflight.Add(-1) }
}

func (h *hookedStore) LoadState(ctx context.Context) (*reconcile.State, error) {
	defer h.enter()()
	if h.broken.Load() {
		return nil, errors.New("disk I/O error")
	}
	return h.Store.LoadState(ctx)
}

// Marks is the first read of every run that may be incremental.
func (h *hookedStore) Marks(ctx context.Context) (*reconcile.Marks, error) {
	if h.broken.Load() {
		return nil, errors.New("disk I/O error")
	}
	return h.Store.Marks(ctx)
}

func (h *hookedStore) Commit(ctx context.Context, c *reconcile.Commit) error {
	defer h.enter()()
	if h.beforeCommit != nil {
		h.beforeCommit(ctx)
	}
	return h.Store.Commit(ctx, c)
}

func (h *hookedStore) RecordRun(ctx context.Context, r *reconcile.Run) error {
	defer h.enter()()
	return h.Store.RecordRun(ctx, r)
}

// StoredStatus is the directory's status the way the command wires it in.
func (h *hookedStore) StoredStatus(ctx context.Context) (*StoredStatus, error) {
	ds, err := h.Store.Status(ctx)
	if err != nil {
		return nil, err
	}
	st := &StoredStatus{People: People{Active: ds.Active, Inactive: ds.Inactive}, Pools: []Pool{}}
	for _, p := range ds.Pools {
		st.Pools = append(st.Pools, Pool(p))
	}
	for _, src := range ds.Sources {
		st.Sources = append(st.Sources, StoredSource{Name: src.Source, HasCursor: src.HasCursor, FetchedAt: src.FetchedAt,
			FullAt: src.FullAt, Users: src.Users, Groups: src.Groups, FrozenSince: src.FrozenSince})
		if f := src.LastFetch; f != nil {
			st.Sources[len(st.Sources)-1].LastFetch = &StoredFetch{RunID: f.RunID, At: f.At, SourceRun: f.SourceRun}
		}
	}
	return st, nil
}

// harness runs a Service on a fake clock, fake sources and a real
// directory in t.TempDir.
type harness struct {
	t       *testing.T
	clock   *fakeClock
	store   *hookedStore
	sources map[string]*fakeSource
	cfg     *config.Config
	svc     *Service
	logs    *testkit.LogBuffer
	reload  chan struct{}
	cancel  context.CancelFunc
	done    chan error
	base    string // http://addr
	// loops is how many schedule timers should be waiting between ticks.
	loops int
	// nextCfg is what a reload loads (an error refuses it).
	loadMu  sync.Mutex
	nextCfg *config.Config
	nextErr error
	// cycles are the runs of every cycle the service carried out, oldest
	// first: a cycle with nothing to do records no run.
	cyclesMu sync.Mutex
	cycles   []reconcile.Run
}

func testSource(name, schedule, fullSync string) config.Source {
	return config.Source{Name: name, Type: "fake", Schedule: config.MustParseSchedule(schedule),
		FullSync: config.MustParseSchedule(fullSync), SyncGroups: []string{"*"},
		StaleAfter: time.Hour}
}

func testConfig(dir string, sources ...config.Source) *config.Config {
	cfg := config.Default()
	cfg.Path = filepath.Join(dir, "learnsync.yaml")
	cfg.BaseDir = dir
	cfg.Directory.DSN = "learnsync.db"
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Server.ShutdownTimeout = 5 * time.Second
	cfg.Sources = sources
	cfg.Licenses = []config.License{{Name: "basic", AllActive: true}, {Name: "pro", Seats: 2, Groups: []string{"Eng"}}}
	return cfg
}

// build is the harness's BuildFunc: the cmd's wiring, with fake sources.
func (h *harness) build(cfg *config.Config, hooks func(string) connectors.Hooks) (*reconcile.Engine, error) {
	e := &reconcile.Engine{
		Rules:  reconcile.Rules{MatchOn: cfg.Identity.MatchOn, DeleteAfter: cfg.Deprovision.DeleteAfter},
		Safety: reconcile.Safety{MaxDeactivations: cfg.Safety.MaxDeactivations, MaxDeactivationPercent: cfg.Safety.MaxDeactivationPercent},
		Logger: slog.New(slog.NewTextHandler(h.logs, nil)),
	}
	for _, l := range cfg.Licenses {
		e.Rules.Licenses = append(e.Rules.Licenses, reconcile.LicenseRule{Name: l.Name, Seats: l.Seats, Groups: l.Groups, AllActive: l.AllActive})
	}
	for _, s := range cfg.Sources {
		src := h.sources[s.Name]
		if src == nil {
			return nil, fmt.Errorf("no fake source %q", s.Name)
		}
		src.mu.Lock()
		src.hooks = hooks(s.Name)
		src.mu.Unlock()
		rules := reconcile.SourceRules{Name: s.Name, ScopeGroups: s.Scope.Groups, SyncGroups: s.SyncGroups}
		e.Rules.Sources = append(e.Rules.Sources, rules)
		e.Sources = append(e.Sources, reconcile.Source{Rules: rules, Connector: src})
	}
	return e, nil
}

// newHarness prepares a service for cfg's sources; start runs it.
func newHarness(t *testing.T, cfg func(dir string) *config.Config, sources ...*fakeSource) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, clock: newFakeClock(), sources: map[string]*fakeSource{}, logs: &testkit.LogBuffer{}, reload: make(chan struct{}, 1)}
	for _, s := range sources {
		h.sources[s.name] = s
	}
	h.cfg = cfg(dir)
	st, err := directory.Open(t.Context(), h.cfg.DatabasePath(), directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h.store = &hookedStore{Store: st}
	return h
}

func (h *harness) options() Options {
	return Options{
		Config: h.cfg, Store: h.store, Build: h.build,
		Load: func() (*config.Config, error) {
			h.loadMu.Lock()
			defer h.loadMu.Unlock()
			return h.nextCfg, h.nextErr
		},
		Logger: slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock:  h.clock,
		Jitter: func(max time.Duration) time.Duration { return max / 2 },
	}
}

// setNext sets what the next reload loads.
func (h *harness) setNext(cfg *config.Config, err error) {
	h.loadMu.Lock()
	defer h.loadMu.Unlock()
	h.nextCfg, h.nextErr = cfg, err
}

// start runs the service with opts (h.options() when nil) and waits until
// its schedules wait for their first tick.
// startPublic starts the service with a public listener on a free loopback
// port and returns that listener.
func (h *harness) startPublic() net.Listener {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	opts := h.options()
	opts.PublicListener = ln
	h.start(&opts)
	return ln
}

func (h *harness) start(opts *Options) {
	t := h.t
	t.Helper()
	if opts == nil {
		o := h.options()
		opts = &o
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Listener = ln
	h.svc, err = New(*opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.base = "http://" + ln.Addr().String()
	h.svc.cycles.observe = func(r reconcile.Run) {
		h.cyclesMu.Lock()
		defer h.cyclesMu.Unlock()
		h.cycles = append(h.cycles, r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.svc.Run(ctx, h.reload) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			t.Error("the service did not stop")
		}
	})
	h.loops = 2 * len(h.cfg.Sources)
	if opts.Election != nil {
		h.loops = 0 // a standby runs no schedules
	}
	h.settle()
}

// settle waits until every schedule waits for its next tick.
func (h *harness) settle() {
	h.t.Helper()
	eventually(h.t, fmt.Sprintf("%d schedule timers", h.loops), func() bool { return h.clock.waiting() == h.loops })
}

// advance moves the fake clock and waits for the schedules to rearm.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	h.settle()
}

// stop cancels the service (as SIGTERM does) and returns Run's result.
func (h *harness) stop() error {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		h.t.Fatal("the service did not stop within 10s")
		return nil
	}
}

// runs returns the runs of the service's cycles, oldest first, as the
// service saw them end (recorded or not).
func (h *harness) runs() []reconcile.Run {
	h.cyclesMu.Lock()
	defer h.cyclesMu.Unlock()
	return slices.Clone(h.cycles)
}

// recorded returns the runs the directory recorded, oldest first.
func (h *harness) recorded() []reconcile.Run {
	h.t.Helper()
	rs, err := h.store.Runs(context.Background(), 1000)
	if err != nil {
		h.t.Fatal(err)
	}
	slices.Reverse(rs)
	return rs
}

func (h *harness) idle() bool {
	return h.svc.queue.idle()
}

// waitIdle waits until no run is in progress or due, and returns the runs.
func (h *harness) waitIdle() []reconcile.Run {
	h.t.Helper()
	eventually(h.t, "the service to be idle", h.idle)
	return h.runs()
}

// waitRuns waits until the service carried out n cycles and is idle.
func (h *harness) waitRuns(n int) []reconcile.Run {
	h.t.Helper()
	eventually(h.t, fmt.Sprintf("%d runs", n), func() bool { return h.idle() && len(h.runs()) >= n })
	rs := h.runs()
	if len(rs) != n {
		h.t.Fatalf("%d runs, want %d: %s", len(rs), n, describe(rs))
	}
	return rs
}

func describe(rs []reconcile.Run) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "\n  run %d %s %s:", r.ID, r.Trigger, r.Result)
		for _, s := range r.Sources {
			fmt.Fprintf(&b, " %s=%s/%s", s.Name, s.Mode, s.Result)
		}
	}
	return b.String()
}

// fetched returns how a run fetched source name ("" when it did not).
func fetched(r reconcile.Run, name string) string {
	for _, s := range r.Sources {
		if s.Name == name && s.Result != "unchanged" {
			return string(s.Mode) + "/" + string(s.Result)
		}
	}
	return ""
}

// get fetches a path of the ops endpoint.
func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	code, body := testkit.Get(h.t, h.base+path)
	return code, string(body)
}

// wantNotReady checks that /readyz answers 503 with a body that gives each
// of reasons; when says at which point of the test.
func (h *harness) wantNotReady(when string, reasons ...string) {
	h.t.Helper()
	code, body := h.get("/readyz")
	ok := code == http.StatusServiceUnavailable
	for _, r := range reasons {
		ok = ok && strings.Contains(body, r)
	}
	if !ok {
		h.t.Errorf("/readyz %s = %d %q", when, code, body)
	}
}

var errDown = errors.New("503 Service Unavailable")
