package service

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/learnsync/learnsync/reconcile"
)

// metrics are the service's Prometheus metrics, in a registry of their own
// (no global state: every Service, and every test, has its own).
type metrics struct {
	reg *prometheus.Registry

	runs              *prometheus.CounterVec
	runDuration       prometheus.Histogram
	lastRun           prometheus.Gauge
	lastRunSuccess    prometheus.Gauge
	blocked           prometheus.Gauge
	planChanges       *prometheus.CounterVec
	fetches           *prometheus.CounterVec
	fetchDuration     *prometheus.HistogramVec
	fetchSkipped      *prometheus.CounterVec
	sourceLastSuccess *prometheus.GaugeVec
	sourceFrozen      *prometheus.GaugeVec
	apiRequests       *prometheus.CounterVec
	throttled         *prometheus.CounterVec
	throttledSeconds  *prometheus.CounterVec
	people            *prometheus.GaugeVec
	poolSeats         *prometheus.GaugeVec
	poolAssigned      *prometheus.GaugeVec
	poolWaiting       *prometheus.GaugeVec
	reloads           *prometheus.CounterVec

	mu    sync.Mutex
	pools map[string]bool // pool label values set, to drop pools that went away
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

// histogram and histogramVec use fetchBuckets.
func histogram(name, help string) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: fetchBuckets})
}

func histogramVec(name, help string, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: fetchBuckets}, labels)
}

// fetchBuckets span a file read of a few milliseconds to a full fetch of a
// large tenant (minutes).
var fetchBuckets = []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900}

func newMetrics(ready func() bool) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		runs: counterVec("learnsync_runs_total",
			"Runs (fetch, plan, apply) by result: ok, partial, blocked, failed; error = the run could not be carried out (directory unreadable or unwritable).", "result"),
		runDuration: histogram("learnsync_run_duration_seconds", "Duration of runs, fetches included."),
		lastRun:     gauge("learnsync_last_run_timestamp_seconds", "When the last run ended, whatever its result."),
		lastRunSuccess: gauge("learnsync_last_success_timestamp_seconds",
			"When the last run that applied (ok or partial) ended."),
		blocked: gauge("learnsync_run_blocked",
			"1 while the last run was blocked by a safety limit (nothing is applied until someone acts), else 0."),
		planChanges: counterVec("learnsync_plan_changes_total",
			"Changes applied to the directory, by kind.", "kind"),
		fetches: counterVec("learnsync_fetches_total",
			"Fetches by source, mode (full, incremental) and result (ok, failed).", "source", "mode", "result"),
		fetchDuration: histogramVec("learnsync_fetch_duration_seconds",
			"Duration of fetches by source and mode.", "source", "mode"),
		fetchSkipped: counterVec("learnsync_fetch_skipped_total",
			"Scheduled fetches skipped because the source's previous fetch was still running or waiting to run, by source and kind (schedule, full_sync).", "source", "kind"),
		sourceLastSuccess: gaugeVec("learnsync_source_last_success_timestamp_seconds",
			"When a fetch of the source was last committed with its mirror and cursor.", "source"),
		sourceFrozen: gaugeVec("learnsync_source_frozen",
			"1 while the source's last fetch failed (its mirror is frozen), else 0.", "source"),
		apiRequests: counterVec("learnsync_api_requests_total",
			"HTTP requests to identity providers by source and status code (\"error\" = no answer).", "source", "status"),
		throttled: counterVec("learnsync_throttled_waits_total",
			"Waits for an identity provider's rate limit, by source.", "source"),
		throttledSeconds: counterVec("learnsync_throttled_wait_seconds_total",
			"Time spent waiting for an identity provider's rate limit, by source.", "source"),
		people:       gaugeVec("learnsync_people", "People in the directory by state (active, inactive).", "state"),
		poolSeats:    gaugeVec("learnsync_pool_seats", "Seats of each license pool (0 = unlimited).", "pool"),
		poolAssigned: gaugeVec("learnsync_pool_seats_assigned", "Seats assigned in each license pool.", "pool"),
		poolWaiting: gaugeVec("learnsync_pool_seats_waiting",
			"People who qualify for a license pool but wait for a seat.", "pool"),
		reloads: counterVec("learnsync_config_reloads_total",
			"Configuration reloads (SIGHUP) by result: ok, refused (the running configuration stays).", "result"),
		pools: map[string]bool{},
	}
	readyGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "learnsync_ready",
		Help: "1 when /readyz answers 200, else 0.",
	}, func() float64 {
		if ready() {
			return 1
		}
		return 0
	})
	m.reg.MustRegister(m.runs, m.runDuration, m.lastRun, m.lastRunSuccess, m.blocked, m.planChanges, m.fetches,
		m.fetchDuration, m.fetchSkipped, m.sourceLastSuccess, m.sourceFrozen, m.apiRequests, m.throttled,
		m.throttledSeconds, m.people, m.poolSeats, m.poolAssigned, m.poolWaiting, m.reloads, readyGauge,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Series that exist from the start, so that rate() and absent() work
	// before the first event.
	for _, r := range []reconcile.RunResult{reconcile.ResultOK, reconcile.ResultPartial, reconcile.ResultBlocked, reconcile.ResultFailed} {
		m.runs.WithLabelValues(string(r))
	}
	m.runs.WithLabelValues(resultLabelError)
	for _, k := range changeKinds {
		m.planChanges.WithLabelValues(k)
	}
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("refused")
	return m
}

// resultLabelError labels a run that could not be carried out at all.
const resultLabelError = "error"

// changeKinds are the values of learnsync_plan_changes_total's kind label.
var changeKinds = []string{
	"person_create", "person_update", "person_deactivate", "person_reactivate", "person_delete",
	"group_create", "group_update", "group_delete", "membership_add", "membership_remove",
	"license_grant", "license_revoke",
}

func (m *metrics) addSource(name string) {
	m.fetchSkipped.WithLabelValues(name, kindSchedule)
	m.fetchSkipped.WithLabelValues(name, kindFullSync)
	m.sourceFrozen.WithLabelValues(name)
	m.throttled.WithLabelValues(name)
	m.throttledSeconds.WithLabelValues(name)
}

func (m *metrics) removeSource(name string) {
	for _, v := range []*prometheus.GaugeVec{m.sourceLastSuccess, m.sourceFrozen} {
		v.DeleteLabelValues(name)
	}
}

// observeRun records a finished run.
func (m *metrics) observeRun(out *reconcile.Outcome) {
	r := out.Run
	m.runs.WithLabelValues(string(r.Result)).Inc()
	m.runDuration.Observe(r.EndedAt.Sub(r.StartedAt).Seconds())
	m.lastRun.Set(unix(r.EndedAt))
	if out.Applied || out.NoChange {
		m.lastRunSuccess.Set(unix(r.EndedAt))
		s := r.Summary
		for kind, n := range map[string]int{
			"person_create": s.Create, "person_update": s.Update, "person_deactivate": s.Deactivate,
			"person_reactivate": s.Reactivate, "person_delete": s.Delete,
			"group_create": s.GroupsCreate, "group_update": s.GroupsUpdate, "group_delete": s.GroupsDelete,
			"membership_add": s.MembersAdd, "membership_remove": s.MembersDel,
			"license_grant": s.Grant, "license_revoke": s.Revoke,
		} {
			m.planChanges.WithLabelValues(kind).Add(float64(n))
		}
	}
	if r.Result == reconcile.ResultBlocked {
		m.blocked.Set(1)
	} else if r.Result != reconcile.ResultFailed {
		// A failed run says nothing about whether the plan is still blocked.
		m.blocked.Set(0)
	}
	for _, sr := range r.Sources {
		if !sr.Fetched() {
			continue
		}
		m.fetches.WithLabelValues(sr.Name, string(sr.Mode), string(sr.Result)).Inc()
		m.fetchDuration.WithLabelValues(sr.Name, string(sr.Mode)).Observe(sr.Duration.Seconds())
		if sr.Result == reconcile.SourceFailed {
			m.sourceFrozen.WithLabelValues(sr.Name).Set(1)
			continue
		}
		m.sourceFrozen.WithLabelValues(sr.Name).Set(0)
		if out.Applied {
			m.sourceLastSuccess.WithLabelValues(sr.Name).Set(unix(r.StartedAt))
		}
	}
}

// observeDirectory sets the gauges that describe the directory.
func (m *metrics) observeDirectory(st *StoredStatus, configured map[string]bool) {
	m.people.WithLabelValues("active").Set(float64(st.People.Active))
	m.people.WithLabelValues("inactive").Set(float64(st.People.Inactive))
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[string]bool, len(st.Pools))
	for _, p := range st.Pools {
		seen[p.Name] = true
		m.poolSeats.WithLabelValues(p.Name).Set(float64(p.Seats))
		m.poolAssigned.WithLabelValues(p.Name).Set(float64(p.Assigned))
		m.poolWaiting.WithLabelValues(p.Name).Set(float64(p.Waiting))
	}
	for name := range m.pools {
		if !seen[name] {
			m.poolSeats.DeleteLabelValues(name)
			m.poolAssigned.DeleteLabelValues(name)
			m.poolWaiting.DeleteLabelValues(name)
		}
	}
	m.pools = seen
	for _, ss := range st.Sources {
		if configured[ss.Name] && !ss.FetchedAt.IsZero() {
			m.sourceLastSuccess.WithLabelValues(ss.Name).Set(unix(ss.FetchedAt))
		}
	}
}

func (m *metrics) request(source string, status int) {
	label := "error"
	if status > 0 {
		label = strconv.Itoa(status)
	}
	m.apiRequests.WithLabelValues(source, label).Inc()
}

func (m *metrics) throttle(source string, wait time.Duration) {
	m.throttled.WithLabelValues(source).Inc()
	m.throttledSeconds.WithLabelValues(source).Add(wait.Seconds())
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
