package service

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/ha"
	"github.com/learnsync/learnsync/internal/testkit"
)

// fakeElection is an election the test decides: elect makes this instance
// the leader, depose ends its term.
type fakeElection struct {
	elect chan struct{}

	mu      sync.Mutex
	state   ha.State
	depose  context.CancelFunc
	changes int64
	wakes   []string
	woken   func(string)
}

func newFakeElection() *fakeElection {
	return &fakeElection{elect: make(chan struct{}),
		state: ha.State{Role: ha.RoleStandby, Leader: "other", Epoch: 1, Live: true, Checked: time.Now()}}
}

func (f *fakeElection) Name() string         { return "me" }
func (f *fakeElection) Lease() time.Duration { return time.Second }
func (f *fakeElection) State() ha.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}
func (f *fakeElection) Changes() int64 { f.mu.Lock(); defer f.mu.Unlock(); return f.changes }

func (f *fakeElection) set(fn func(*ha.State)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.state)
}

func (f *fakeElection) Campaign(ctx context.Context, lead func(context.Context, int64)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.elect:
		}
		lctx, cancel := context.WithCancel(ctx)
		f.mu.Lock()
		f.state.Epoch++
		f.state.Role, f.state.Leader, f.depose = ha.RoleLeader, "me", cancel
		f.changes++
		epoch := f.state.Epoch
		f.mu.Unlock()
		lead(lctx, epoch)
		cancel()
		f.set(func(s *ha.State) { s.Role, s.Leader = ha.RoleStandby, "other" })
	}
}

func (f *fakeElection) Wake(_ context.Context, source string) error {
	f.mu.Lock()
	f.wakes = append(f.wakes, source)
	woken := f.woken
	f.mu.Unlock()
	if woken != nil {
		woken(source) // the leader is this very instance's listener
	}
	return nil
}

func (f *fakeElection) Listen(ctx context.Context, listening func(), woken func(string)) {
	f.mu.Lock()
	f.woken = woken
	f.mu.Unlock()
	listening()
	<-ctx.Done()
	f.mu.Lock()
	f.woken = nil
	f.mu.Unlock()
}

func (f *fakeElection) Instances(context.Context) ([]ha.Instance, error) {
	return []ha.Instance{{Instance: "other", Version: "v1", Role: ha.RoleLeader}, {Instance: "me", Version: "v2", Role: ha.RoleStandby}}, nil
}

func (f *fakeElection) wakesOf() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.wakes...)
}

// TestStandbyAndLeader: a standby runs nothing, is ready while it sees a
// live leader, shows the election in /status and wakes the leader for a
// push; elected, it runs a first cycle and the schedules; deposed, it stops
// them and runs nothing more.
func TestStandbyAndLeader(t *testing.T) {
	hr := newFakeSource("hr", "alice")
	h := newHarness(t, func(dir string) *config.Config { return testConfig(dir, testSource("hr", "@every 1m", "0 3 * * *")) }, hr)
	el := newFakeElection()
	opts := h.options()
	opts.Election, opts.Version = el, "v2"
	h.start(&opts)

	time.Sleep(50 * time.Millisecond)
	if rs := h.runs(); len(rs) != 0 || h.clock.waiting() != 0 {
		t.Fatalf("a standby ran %d runs, %d timers", len(rs), h.clock.waiting())
	}
	if code, body := h.get("/readyz"); code != http.StatusOK {
		t.Errorf("standby with a live leader: /readyz %d %s", code, body)
	}
	wantLeaderMetric(t, h, 0)
	var st StatusReport
	_, body := h.get("/status")
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.HA == nil || st.HA.Role != "standby" || st.HA.Leader != "other" || st.HA.Epoch != 1 || st.HA.Instance != "me" ||
		len(st.HA.Instances) != 2 || st.HA.Instances[1].Version != "v2" || st.Service.Version != "v2" {
		t.Errorf("/status on a standby: ha %+v, version %q", st.HA, st.Service.Version)
	}
	h.svc.RequestRun("hr")
	if w := el.wakesOf(); len(w) != 1 || w[0] != "hr" {
		t.Errorf("a standby's push woke %v, want [hr]", w)
	}
	if rs := h.runs(); len(rs) != 0 {
		t.Fatalf("a standby's push ran %d runs here", len(rs))
	}
	el.set(func(s *ha.State) { s.Live = false })
	h.wantNotReady("with no live leader", "no live leader")
	el.set(func(s *ha.State) { s.Err = "connection refused" })
	h.wantNotReady("without the database", "the database cannot be reached: connection refused")
	el.set(func(s *ha.State) { s.Err, s.Live = "", true })

	// Elected: a first cycle that fetches every source, then the schedules.
	el.elect <- struct{}{}
	rs := h.waitRuns(1)
	if rs[0].Trigger != TriggerElected || fetched(rs[0], "hr") == "" {
		t.Fatalf("first run of the leader: %s", describe(rs))
	}
	h.loops = 2
	h.settle()
	wantLeaderMetric(t, h, 1)
	if code, body := h.get("/readyz"); code != http.StatusOK {
		t.Errorf("leader after its first run: /readyz %d %s", code, body)
	}
	h.advance(time.Minute)
	h.waitRuns(2)

	// Deposed: the schedules stop, ticks run nothing.
	el.mu.Lock()
	el.depose()
	el.mu.Unlock()
	eventually(t, "the schedules to stop", func() bool { return h.clock.waiting() == 0 && el.State().Role == ha.RoleStandby })
	h.clock.Advance(time.Minute)
	time.Sleep(50 * time.Millisecond)
	if rs := h.runs(); len(rs) != 2 {
		t.Fatalf("a deposed leader ran on: %s", describe(rs))
	}
	wantLeaderMetric(t, h, 0)
	if n := testkit.MetricValue(t, testkit.ParseMetrics(t, []byte(metricsBody(t, h))), "learnsync_leader_changes_total"); n != 1 {
		t.Errorf("learnsync_leader_changes_total = %v, want 1", n)
	}
	if !strings.Contains(h.logs.String(), "no longer leading") {
		t.Error("no log line says the instance stopped leading")
	}
}

func metricsBody(t *testing.T, h *harness) string {
	t.Helper()
	_, body := h.get("/metrics")
	return body
}

func wantLeaderMetric(t *testing.T, h *harness, want float64) {
	t.Helper()
	if got := testkit.MetricValue(t, testkit.ParseMetrics(t, []byte(metricsBody(t, h))), "learnsync_leader"); got != want {
		t.Errorf("learnsync_leader = %v, want %v", got, want)
	}
}
