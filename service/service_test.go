package service

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/internal/testkit"
	"github.com/learnsync/learnsync/reconcile"
)

func oneSource(schedule, fullSync string) func(string) *config.Config {
	return func(dir string) *config.Config { return testConfig(dir, testSource("hr", schedule, fullSync)) }
}

// One cycle at start; then incremental fetches on the schedule and full
// ones on full_sync, each followed by a reconcile.
func TestScheduleTicks(t *testing.T) {
	hr := newFakeSource("hr", "alice", "bob")
	h := newHarness(t, oneSource("@every 1m", "@every 1h"), hr)
	h.start(nil)
	rs := h.waitRuns(1)
	if rs[0].Trigger != TriggerStart || fetched(rs[0], "hr") != "full/ok" || rs[0].Summary.Create != 2 {
		t.Fatalf("first run: %s", describe(rs))
	}

	h.advance(time.Minute)
	rs = h.waitRuns(2)
	if rs[1].Trigger != reconcile.TriggerSchedule || fetched(rs[1], "hr") != "incremental/ok" {
		t.Errorf("second run: %s", describe(rs))
	}
	// Nothing changed: the cycle counts (/status, learnsync_runs_total)
	// but writes nothing, not even its run record.
	if n := len(h.recorded()); n != 1 {
		t.Errorf("a cycle with nothing to do recorded a run: %d recorded", n)
	}
	if st, err := h.svc.Status(t.Context()); err != nil || st.Service.Cycles != 2 || st.Service.LastCycle == nil ||
		st.Service.LastCycle.Run != 0 || st.Service.LastCycle.Reconcile != reconcile.ModeIncremental {
		t.Errorf("/status after a cycle with nothing to do: %+v %v", st.Service, err)
	}
	if _, body := h.get("/metrics"); !strings.Contains(body, `learnsync_runs_total{result="ok"} 2`) {
		t.Error("learnsync_runs_total does not count the cycle with nothing to do")
	}
	hr.set(func(s *fakeSource) { s.users[0].Title = "Engineer" })
	h.advance(time.Minute)
	rs = h.waitRuns(3)
	if fetched(rs[2], "hr") != "full/ok" || rs[2].Summary.Update != 1 {
		t.Errorf("a changed source is fetched and applied: %s", describe(rs))
	}

	for i := range 57 {
		h.advance(time.Minute)
		h.waitRuns(4 + i)
	}
	// At 1h both the schedule and full_sync are due: the full fetch either
	// replaces the incremental one that waits or follows it; never skipped.
	h.advance(time.Minute)
	rs = h.waitIdle()[60:]
	last := rs[len(rs)-1]
	if len(rs) > 2 || last.Trigger != reconcile.TriggerFullSync || fetched(last, "hr") != "full/ok" {
		t.Errorf("runs at 1h: %s", describe(rs))
	}
	if n := hr.full.Load(); n != 2 {
		t.Errorf("%d full fetches, want 2 (start, full_sync)", n)
	}
	for _, kind := range []string{kindSchedule, kindFullSync} {
		if got := testutil.ToFloat64(h.svc.metrics.fetchSkipped.WithLabelValues("hr", kind)); got != 0 {
			t.Errorf("skipped %s = %v, want 0", kind, got)
		}
	}

	st, err := h.svc.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	now := h.clock.Now()
	if src := st.Sources[0]; src.NextFetch == nil || !src.NextFetch.Equal(now.Add(time.Minute)) ||
		src.NextFullSync == nil || !src.NextFullSync.Equal(now.Add(time.Hour)) {
		t.Errorf("next fetches = %v, %v; want now+1m, now+1h", src.NextFetch, src.NextFullSync)
	}
}

// A tick that comes while the source's fetch still runs is skipped and
// counted; the fetch that runs is not disturbed.
func TestOverlappingFetchSkipped(t *testing.T) {
	hr := newFakeSource("hr", "alice")
	gate := make(chan struct{})
	hr.setGate(gate)
	h := newHarness(t, oneSource("@every 1m", "@every 24h"), hr)
	h.start(nil)
	hr.waitStarted(t)

	h.advance(time.Minute)
	h.advance(time.Minute)
	skipped := h.svc.metrics.fetchSkipped.WithLabelValues("hr", kindSchedule)
	eventually(t, "2 skipped fetches", func() bool { return testutil.ToFloat64(skipped) == 2 })
	if n := hr.full.Load() + hr.incremental.Load(); n != 1 {
		t.Errorf("%d fetches while the first one ran, want 1", n)
	}
	if !strings.Contains(h.logs.String(), "scheduled fetch skipped") {
		t.Error("the skip is not logged")
	}

	gate <- struct{}{}
	h.waitRuns(1)
	h.advance(time.Minute)
	hr.waitStarted(t) // started twice: once above, now again
	gate <- struct{}{}
	rs := h.waitRuns(2)
	if fetched(rs[1], "hr") != "incremental/ok" {
		t.Errorf("after the skips: %s", describe(rs))
	}
	if got := testutil.ToFloat64(skipped); got != 2 {
		t.Errorf("skipped = %v, want 2", got)
	}
}

// Runs are serialized: a source that comes due while another source's run
// is in progress waits for it, and the directory never sees two runs at
// once.
func TestRunsNeverOverlap(t *testing.T) {
	a, b := newFakeSource("a", "alice"), newFakeSource("b", "bob")
	h := newHarness(t, func(dir string) *config.Config {
		return testConfig(dir, testSource("a", "@every 60s", "@every 24h"), testSource("b", "@every 90s", "@every 24h"))
	}, a, b)
	h.start(nil)
	h.waitRuns(1)

	gate := make(chan struct{})
	a.setGate(gate)
	h.advance(60 * time.Second) // a's tick: its run waits in the fetch
	a.waitStarted(t)
	a.waitStarted(t)
	h.advance(30 * time.Second) // b's tick while a's run is in progress
	time.Sleep(50 * time.Millisecond)
	if n := b.full.Load() + b.incremental.Load(); n != 1 {
		t.Fatalf("b fetched %d times while a's run was in progress, want 1 (the start)", n)
	}
	_, queued := h.svc.queue.source("b")
	if !queued {
		t.Error("b is not waiting for the next run")
	}
	close(gate)
	rs := h.waitRuns(3)
	if fetched(rs[1], "a") != "incremental/ok" || fetched(rs[1], "b") != "" ||
		fetched(rs[2], "b") != "incremental/ok" || fetched(rs[2], "a") != "" {
		t.Errorf("runs: %s", describe(rs))
	}
	if got := testutil.ToFloat64(h.svc.metrics.fetchSkipped.WithLabelValues("b", kindSchedule)); got != 0 {
		t.Errorf("b's waiting fetch counted as skipped: %v", got)
	}
	if m := h.store.maxInflight.Load(); m != 1 {
		t.Errorf("%d runs used the directory at once, want 1", m)
	}
}

func TestJitter(t *testing.T) {
	hr := newFakeSource("hr", "alice")
	h := newHarness(t, func(dir string) *config.Config {
		src := testSource("hr", "@every 1m", "@every 24h")
		src.ScheduleJitter = 20 * time.Second // the harness's jitter is half the bound
		return testConfig(dir, src)
	}, hr)
	h.start(nil)
	h.waitRuns(1)
	start := h.clock.Now()
	st, _ := h.svc.Status(t.Context())
	if next := st.Sources[0].NextFetch; next == nil || !next.Equal(start.Add(70*time.Second)) {
		t.Errorf("next fetch = %v, want start+1m10s", next)
	}
	h.advance(time.Minute)
	time.Sleep(20 * time.Millisecond)
	if n := len(h.runs()); n != 1 {
		t.Fatalf("a jittered tick ran at 1m (%d runs)", n)
	}
	h.advance(10 * time.Second)
	h.waitRuns(2)
	// The next tick keeps to the schedule: 2m + jitter, not 1m10s + 1m + jitter.
	h.advance(time.Minute)
	h.waitRuns(3)
}

// Ready after the first run applies; a run that cannot use the directory
// makes it not ready at once, a source that fails only once it has been
// frozen longer than its stale_after.
func TestReadinessFirstRunAndFailures(t *testing.T) {
	hr := newFakeSource("hr", "alice")
	gate := make(chan struct{})
	hr.setGate(gate)
	h := newHarness(t, func(dir string) *config.Config {
		src := testSource("hr", "@every 1m", "@every 24h")
		src.StaleAfter = 2 * time.Minute
		return testConfig(dir, src)
	}, hr)
	h.start(nil)
	hr.waitStarted(t)

	if code, body := h.get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	h.wantNotReady("before the first run", "first run has not finished")
	close(gate)
	h.waitRuns(1)
	if code, body := h.get("/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz after the first run = %d %q", code, body)
	}

	// The source fails: frozen, still ready for two failed runs in a row;
	// the third makes it unready (and stale_after, 2m, passes after it).
	hr.setFail(errDown)
	for i, want := range []int{200, 200, 503, 503} { // frozen for 0, 1, 2, 3 minutes
		h.advance(time.Minute)
		rs := h.waitRuns(2 + i)
		if r := rs[len(rs)-1]; r.Result != reconcile.ResultFailed || fetched(r, "hr") != "incremental/failed" {
			t.Fatalf("run with its only source down: %s", describe(rs))
		}
		if code, body := h.get("/readyz"); code != want {
			t.Errorf("/readyz with hr frozen for %dm = %d %q, want %d", i, code, body, want)
		}
	}
	if _, body := h.get("/readyz"); !strings.Contains(body, "source hr has been frozen for 3m0s (stale_after 2m0s): fetch hr: 503") ||
		!strings.Contains(body, "the last 4 runs failed") {
		t.Errorf("/readyz does not say why: %q", body)
	}
	h.recoverSource(hr, 6, "recovering")

	// The directory cannot be read: not ready at once.
	h.store.broken.Store(true)
	h.advance(time.Minute)
	eventually(t, "a run error", func() bool {
		return testutil.ToFloat64(h.svc.metrics.runs.WithLabelValues(resultLabelError)) == 1 && h.idle()
	})
	h.wantNotReady("after a run error", "the last run failed: disk I/O error")
	h.store.broken.Store(false)
	h.advance(time.Minute)
	h.waitRuns(7)
	if code, body := h.get("/readyz"); code != 200 {
		t.Errorf("/readyz after the directory came back = %d %q", code, body)
	}
}

// A source that keeps failing freezes; the service stays ready while the
// other sources apply, until the source has been frozen longer than its
// stale_after.
func TestReadinessStaleSource(t *testing.T) {
	hr, okta := newFakeSource("hr", "alice"), newFakeSource("okta", "alice", "bob")
	h := newHarness(t, func(dir string) *config.Config {
		o := testSource("okta", "@every 1m", "@every 24h")
		o.StaleAfter = 5 * time.Minute
		return testConfig(dir, testSource("hr", "@every 24h", "@every 24h"), o)
	}, hr, okta)
	h.start(nil)
	h.waitRuns(1)

	okta.setFail(errDown)
	h.advance(time.Minute)
	rs := h.waitRuns(2)
	if fetched(rs[1], "okta") != "incremental/failed" {
		t.Fatalf("run with okta down: %s", describe(rs))
	}
	if code, body := h.get("/readyz"); code != 200 {
		t.Errorf("/readyz with okta frozen for a minute = %d %q", code, body)
	}
	frozen := h.svc.metrics.sourceFrozen.WithLabelValues("okta")
	if testutil.ToFloat64(frozen) != 1 {
		t.Error("learnsync_source_frozen{source=okta} is not 1")
	}
	for i := range 6 {
		h.advance(time.Minute)
		h.waitRuns(3 + i)
	}
	h.wantNotReady("with okta frozen for 6m", "source okta has been frozen for 6m0s (stale_after 5m0s)", errDown.Error())
	st, err := h.svc.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if o := st.Sources[1]; !o.Stale || o.FrozenSince == nil || o.LastFetch == nil || o.LastFetch.Result != "failed" {
		t.Errorf("status of okta = %+v", o)
	}

	h.recoverSource(okta, 9, "okta recovered")
	if testutil.ToFloat64(frozen) != 0 {
		t.Error("learnsync_source_frozen{source=okta} is not back to 0")
	}
}

// A blocked run makes the service not ready: nothing is applied until
// someone acts.
func TestReadinessBlocked(t *testing.T) {
	hr := newFakeSource("hr", "a", "b", "c", "d", "e")
	h := newHarness(t, func(dir string) *config.Config {
		cfg := testConfig(dir, testSource("hr", "@every 1m", "@every 24h"))
		cfg.Safety.MaxDeactivations = 2
		return cfg
	}, hr)
	h.start(nil)
	h.waitRuns(1)
	hr.set(func(s *fakeSource) { s.users = s.users[:1] })
	h.advance(time.Minute)
	rs := h.waitRuns(2)
	if rs[1].Result != reconcile.ResultBlocked {
		t.Fatalf("run deactivating 4 of 5: %s", describe(rs))
	}
	h.wantNotReady("after a blocked run", "blocked by a safety limit")
	if got := testutil.ToFloat64(h.svc.metrics.blocked); got != 1 {
		t.Errorf("learnsync_run_blocked = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.svc.metrics.runs.WithLabelValues("blocked")); got != 1 {
		t.Errorf("learnsync_runs_total{result=blocked} = %v, want 1", got)
	}

	// A run whose only fetch fails says nothing about the plan: still blocked.
	hr.setFail(errDown)
	h.advance(time.Minute)
	h.waitRuns(3)
	h.wantNotReady("after a failed run that followed a blocked one", "blocked")
	// The source is fixed: the next run applies, the service is ready again.
	hr.setFail(nil)
	hr.set(func(s *fakeSource) { s.users = append(s.users, newFakeSource("", "b", "c", "d", "e").users...) })
	h.advance(time.Minute)
	rs = h.waitRuns(4)
	if rs[3].Result != reconcile.ResultOK {
		t.Fatalf("run after the fix: %s", describe(rs))
	}
	if code, body := h.get("/readyz"); code != 200 {
		t.Errorf("/readyz after the fix = %d %q", code, body)
	}
	if got := testutil.ToFloat64(h.svc.metrics.blocked); got != 0 {
		t.Errorf("learnsync_run_blocked = %v, want 0", got)
	}
}

// SIGHUP with a bad configuration keeps the running one; with a good one,
// the new schedules, sources and rules take effect.
func TestReload(t *testing.T) {
	hr, lms := newFakeSource("hr", "alice", "bob"), newFakeSource("lms", "carol")
	h := newHarness(t, oneSource("@every 1m", "@every 24h"), hr, lms)
	h.start(nil)
	h.waitRuns(1)

	// Bad: refused, the old schedule keeps running.
	h.setNext(nil, errBadConfig)
	h.reload <- struct{}{}
	refused := h.svc.metrics.reloads.WithLabelValues("refused")
	eventually(t, "the reload to be refused", func() bool { return testutil.ToFloat64(refused) == 1 })
	if logs := h.logs.String(); !strings.Contains(logs, "configuration reload refused") || !strings.Contains(logs, "sources[0].type: unknown") {
		t.Errorf("the refusal does not say why:\n%s", logs)
	}
	h.advance(time.Minute)
	h.waitRuns(2)

	// A configuration that moves the database is refused too.
	moved := testConfig(t.TempDir(), testSource("hr", "@every 1m", "@every 24h"))
	h.setNext(moved, nil)
	h.reload <- struct{}{}
	eventually(t, "the second refusal", func() bool { return testutil.ToFloat64(refused) == 2 })
	if !strings.Contains(h.logs.String(), "directory.dsn changed") {
		t.Error("moving the database is not refused with its reason")
	}

	// Good: a new source, a new schedule for hr, one pool less.
	good := testConfig(h.cfg.BaseDir, testSource("hr", "@every 10m", "@every 24h"), testSource("lms", "@every 10m", "@every 24h"))
	good.Licenses = good.Licenses[:1]
	h.setNext(good, nil)
	h.reload <- struct{}{}
	rs := h.waitRuns(3)
	if r := rs[2]; r.Trigger != TriggerConfigReload || fetched(r, "lms") != "full/ok" || fetched(r, "hr") != "" || r.Summary.Create != 1 {
		t.Errorf("run after the reload: %s", describe(rs))
	}
	if got := testutil.ToFloat64(h.svc.metrics.reloads.WithLabelValues("ok")); got != 1 {
		t.Errorf("reloads ok = %v", got)
	}
	st, err := h.svc.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Sources) != 2 || len(st.Pools) != 1 || st.Pools[0].Name != "basic" || st.Pools[0].Assigned != 3 {
		t.Errorf("status after the reload: sources %+v, pools %+v", st.Sources, st.Pools)
	}
	// The old loops stopped; the new ones wait.
	h.loops = 4
	h.settle()
	h.advance(time.Minute)
	time.Sleep(20 * time.Millisecond)
	if n := len(h.runs()); n != 3 {
		t.Errorf("hr still ticks every minute after its schedule became 10m (%d runs)", n)
	}
	h.advance(9 * time.Minute)
	rs = h.waitIdle()[3:]
	var hrs, lmss int
	for _, r := range rs {
		if fetched(r, "hr") != "" {
			hrs++
		}
		if fetched(r, "lms") != "" {
			lmss++
		}
	}
	if hrs != 1 || lmss != 1 {
		t.Errorf("at 10m each source is fetched once: %s", describe(rs))
	}
}

var errBadConfig = config.Errors{connectors.Errorf("sources[0].type", "unknown source type \"okra\"")}

// SIGTERM during an apply: the apply finishes, then Run returns nil.
func TestShutdownLetsApplyFinish(t *testing.T) {
	hr := newFakeSource("hr", "alice", "bob", "carol")
	h := newHarness(t, oneSource("@every 1m", "@every 24h"), hr)
	entered, proceed := make(chan struct{}), make(chan struct{})
	h.store.beforeCommit = func(ctx context.Context) {
		close(entered)
		<-proceed
		if ctx.Err() != nil {
			t.Error("the apply's context was cancelled by the shutdown")
		}
	}
	h.start(nil)
	<-entered
	h.cancel() // as SIGTERM does
	time.Sleep(50 * time.Millisecond)
	select {
	case <-h.done:
		t.Fatal("Run returned while the apply was in progress")
	default:
	}
	close(proceed)
	if err := h.stop(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	rs := h.runs()
	if len(rs) != 1 || rs[0].Result != reconcile.ResultOK || rs[0].Summary.Create != 3 {
		t.Fatalf("runs after the shutdown: %s", describe(rs))
	}
	checkDirectory(t, h, 3)
}

// An apply that outlasts server.shutdown_timeout is abandoned: its
// transaction rolls back and nothing of the run is kept.
func TestShutdownAbandonsSlowApply(t *testing.T) {
	hr := newFakeSource("hr", "alice", "bob", "carol")
	h := newHarness(t, withShutdownTimeout(100*time.Millisecond), hr)
	entered := make(chan struct{})
	h.store.beforeCommit = func(ctx context.Context) {
		close(entered)
		<-ctx.Done() // a very slow apply: it ends only when abandoned
	}
	h.start(nil)
	<-entered
	stopLeavingNothing(t, h, "an abandoned apply (100ms shutdown_timeout)")
	if !strings.Contains(h.logs.String(), "did not finish within server.shutdown_timeout") {
		t.Error("abandoning the apply is not logged")
	}
}

// SIGTERM during a fetch cancels it at once; nothing is written.
func TestShutdownCancelsFetch(t *testing.T) {
	hr := newFakeSource("hr", "alice")
	hr.setGate(make(chan struct{})) // never opens
	h := newHarness(t, withShutdownTimeout(time.Minute), hr)
	h.start(nil)
	hr.waitStarted(t)
	stopLeavingNothing(t, h, "a cancelled fetch")
}

// recoverSource lets src's fetches succeed again, moves to the next tick,
// waits for the runs-th run and checks that /readyz says ready (after what).
func (h *harness) recoverSource(src *fakeSource, runs int, what string) {
	h.t.Helper()
	src.setFail(nil)
	h.advance(time.Minute)
	h.waitRuns(runs)
	if code, body := h.get("/readyz"); code != 200 {
		h.t.Errorf("/readyz after %s = %d %q", what, code, body)
	}
}

// withShutdownTimeout is one source hr with server.shutdown_timeout d.
func withShutdownTimeout(d time.Duration) func(dir string) *config.Config {
	return func(dir string) *config.Config {
		cfg := testConfig(dir, testSource("hr", "@every 1m", "@every 24h"))
		cfg.Server.ShutdownTimeout = d
		return cfg
	}
}

// stopLeavingNothing stops the service during what (a fetch or an apply):
// Run returns nil within 3 seconds, and nothing of the run is kept.
func stopLeavingNothing(t *testing.T, h *harness, what string) {
	t.Helper()
	began := time.Now()
	if err := h.stop(); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("stopping during %s took %v", what, took)
	}
	if rs := h.runs(); len(rs) != 0 {
		t.Errorf("%s left runs: %s", what, describe(rs))
	}
	checkDirectory(t, h, 0)
}

// checkDirectory checks the database is sound and holds people people.
func checkDirectory(t *testing.T, h *harness, people int) {
	t.Helper()
	ctx := context.Background()
	if v, err := h.store.IntegrityCheck(ctx); err != nil || v != "ok" {
		t.Errorf("integrity_check = %q, %v", v, err)
	}
	st, err := h.store.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != people {
		t.Errorf("%d people in the directory, want %d", st.Active, people)
	}
}

// A long fetch logs its progress every few seconds, not at every page.
func TestProgressLogged(t *testing.T) {
	hr := newFakeSource("hr", "alice")
	h := newHarness(t, oneSource("@every 1h", "@every 24h"), hr)
	hr.during = func(hooks connectors.Hooks) {
		for i := 1; i <= 12; i++ { // a page every second for 12 seconds
			h.clock.Advance(time.Second)
			hooks.OnProgress(connectors.Progress{Pages: i, Users: 100 * i, Waits: i / 4})
		}
	}
	h.start(nil)
	h.waitRuns(1)
	logs := h.logs.String()
	if n := strings.Count(logs, `msg="fetch in progress"`); n != 2 {
		t.Errorf("%d progress lines in 12s of fetching, want 2 (at 5s and 10s):\n%s", n, logs)
	}
	if !strings.Contains(logs, `source=hr pages=5 users=500 groups=0 rate_waits=1 elapsed=5s`) {
		t.Errorf("progress line lacks the counts:\n%s", logs)
	}
}

func TestStatusDocument(t *testing.T) {
	hr := newFakeSource("hr", "alice", "bob", "carol")
	hr.groups["Eng"] = []string{"alice", "bob", "carol"}
	h := newHarness(t, oneSource("@every 1m", "@every 24h"), hr)
	h.start(nil)
	h.waitRuns(1)
	h.clock.Advance(30 * time.Second)

	code, body := h.get("/status")
	if code != 200 {
		t.Fatalf("/status = %d %s", code, body)
	}
	var st StatusReport
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/status is not JSON: %v\n%s", err, body)
	}
	if st.Service == nil || !st.Service.Ready || st.Service.Listen == "" || st.Service.Running {
		t.Errorf("service = %+v", st.Service)
	}
	if len(st.Sources) != 1 {
		t.Fatalf("sources = %+v", st.Sources)
	}
	src := st.Sources[0]
	if src.Name != "hr" || src.Type != "fake" || !src.Cursor || src.CursorAgeSeconds == nil || *src.CursorAgeSeconds != 30 ||
		src.Users != 3 || src.LastFetch == nil || src.LastFetch.Result != "ok" || src.LastFetch.Mode != "full" || src.Stale {
		t.Errorf("source = %+v (last fetch %+v)", src, src.LastFetch)
	}
	if len(st.Runs) != 1 || st.Runs[0].Trigger != TriggerStart {
		t.Errorf("runs = %+v", st.Runs)
	}
	if st.People.Active != 3 || len(st.Pools) != 2 || st.Pools[1].Name != "pro" || st.Pools[1].Assigned != 2 || st.Pools[1].Waiting != 1 {
		t.Errorf("people %+v, pools %+v", st.People, st.Pools)
	}
	if code, _ := h.get("/nope"); code != http.StatusNotFound {
		t.Errorf("/nope = %d", code)
	}
}

// /metrics after a few runs, scraped over HTTP and parsed as Prometheus
// parses it.
func TestMetricsScrapedAfterRuns(t *testing.T) {
	hr := newFakeSource("hr", "alice", "bob", "carol")
	hr.groups["Eng"] = []string{"alice", "bob", "carol"}
	okta := newFakeSource("okta", "alice")
	okta.during = func(hooks connectors.Hooks) {
		hooks.OnRequest("users", 200, time.Millisecond)
		hooks.OnRequest("users", 429, time.Millisecond)
		hooks.OnThrottled("users", 1500*time.Millisecond)
		hooks.OnRequest("groups", 0, time.Millisecond)
	}
	h := newHarness(t, func(dir string) *config.Config {
		cfg := testConfig(dir, testSource("hr", "@every 1m", "@every 24h"), testSource("okta", "@every 24h", "@every 24h"))
		cfg.Safety.MaxDeactivationPercent = 0
		return cfg
	}, hr, okta)
	h.start(nil)
	h.waitRuns(1)
	hr.set(func(s *fakeSource) { s.users = s.users[:2] }) // carol leaves
	h.advance(time.Minute)
	h.waitRuns(2)

	code, body := h.get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	fams := testkit.ParseMetrics(t, []byte(body))
	testkit.CheckMetrics(t, fams, []testkit.Sample{
		{Name: "learnsync_runs_total", Labels: []string{"result=ok"}, Value: 2},
		{Name: "learnsync_runs_total", Labels: []string{"result=failed"}, Value: 0},
		{Name: "learnsync_run_duration_seconds", Value: 2},
		{Name: "learnsync_fetches_total", Labels: []string{"source=hr", "mode=full", "result=ok"}, Value: 2},
		{Name: "learnsync_fetches_total", Labels: []string{"source=okta", "mode=full", "result=ok"}, Value: 1},
		{Name: "learnsync_fetch_duration_seconds", Labels: []string{"source=hr", "mode=full"}, Value: 2},
		{Name: "learnsync_fetch_skipped_total", Labels: []string{"source=hr", "kind=schedule"}, Value: 0},
		{Name: "learnsync_api_requests_total", Labels: []string{"source=okta", "status=200"}, Value: 1},
		{Name: "learnsync_api_requests_total", Labels: []string{"source=okta", "status=429"}, Value: 1},
		{Name: "learnsync_api_requests_total", Labels: []string{"source=okta", "status=error"}, Value: 1},
		{Name: "learnsync_throttled_waits_total", Labels: []string{"source=okta"}, Value: 1},
		{Name: "learnsync_throttled_wait_seconds_total", Labels: []string{"source=okta"}, Value: 1.5},
		{Name: "learnsync_throttled_waits_total", Labels: []string{"source=hr"}, Value: 0},
		{Name: "learnsync_people", Labels: []string{"state=active"}, Value: 2},
		{Name: "learnsync_people", Labels: []string{"state=inactive"}, Value: 1},
		{Name: "learnsync_pool_seats", Labels: []string{"pool=pro"}, Value: 2},
		{Name: "learnsync_pool_seats_assigned", Labels: []string{"pool=pro"}, Value: 2},
		{Name: "learnsync_pool_seats_waiting", Labels: []string{"pool=pro"}, Value: 0},
		{Name: "learnsync_pool_seats_assigned", Labels: []string{"pool=basic"}, Value: 2},
		{Name: "learnsync_plan_changes_total", Labels: []string{"kind=person_create"}, Value: 3},
		{Name: "learnsync_plan_changes_total", Labels: []string{"kind=person_deactivate"}, Value: 1},
		{Name: "learnsync_plan_changes_total", Labels: []string{"kind=license_grant"}, Value: 5},
		{Name: "learnsync_plan_changes_total", Labels: []string{"kind=license_revoke"}, Value: 1},
		{Name: "learnsync_plan_changes_total", Labels: []string{"kind=membership_remove"}, Value: 1},
		{Name: "learnsync_run_blocked", Value: 0},
		{Name: "learnsync_source_frozen", Labels: []string{"source=okta"}, Value: 0},
		{Name: "learnsync_ready", Value: 1},
		{Name: "learnsync_config_reloads_total", Labels: []string{"result=ok"}, Value: 0},
	})
	start := h.runs()[0].StartedAt
	if got := testkit.MetricValue(t, fams, "learnsync_source_last_success_timestamp_seconds", "source=okta"); got != float64(start.Unix()) {
		t.Errorf("okta's last success = %v, want %v (the start)", got, start.Unix())
	}
	if got := testkit.MetricValue(t, fams, "learnsync_source_last_success_timestamp_seconds", "source=hr"); got != float64(start.Add(time.Minute).Unix()) {
		t.Errorf("hr's last success = %v, want start+1m", got)
	}
	for name := range fams {
		if !strings.HasPrefix(name, "learnsync_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("metric %s has no learnsync_ prefix", name)
		}
	}
}

// A restarted service remembers since when a source has been frozen: the
// run history in the directory says it.
func TestRestartRemembersFrozenSource(t *testing.T) {
	hr, okta := newFakeSource("hr", "alice"), newFakeSource("okta", "bob")
	okta.setFail(errDown)
	h := newHarness(t, func(dir string) *config.Config {
		return testConfig(dir, testSource("hr", "@every 1m", "@every 24h"), testSource("okta", "@every 1m", "@every 24h"))
	}, hr, okta)
	// Before the restart: okta has been failing for two hours.
	before := h.clock.Now().Add(-2 * time.Hour)
	err := h.store.RecordRun(t.Context(), &reconcile.Run{Trigger: reconcile.TriggerSchedule, StartedAt: before, EndedAt: before,
		Result: reconcile.ResultFailed, Sources: []reconcile.SourceRun{{Name: "okta", Mode: "incremental", Result: "failed", Error: "fetch okta: 401"}}})
	if err != nil {
		t.Fatal(err)
	}
	h.start(nil)
	h.waitRuns(1)
	rs := h.recorded() // the run before the restart, and the first after
	if len(rs) != 2 || rs[1].Result != reconcile.ResultPartial {
		t.Fatalf("first run after the restart: %s", describe(rs))
	}
	h.wantNotReady("after the restart", "source okta has been frozen for 2h0m0s")
	st, err := h.svc.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if o := st.Sources[1]; o.FrozenSince == nil || !o.FrozenSince.Equal(before) || !o.Stale {
		t.Errorf("okta in /status = %+v", o)
	}
}
