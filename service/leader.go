package service

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/ha"
	"github.com/learnsync/learnsync/reconcile"
)

// TriggerElected is the first cycle of an instance that became the leader.
const TriggerElected reconcile.Trigger = "elected"

// Election is what the service needs of the leader election (ha.Elector)
// when several instances share one directory. Only the leader runs the
// schedules, fetches, reconciles and applies; a standby serves the ops
// endpoint and the SCIM endpoints, and wakes the leader after a push.
type Election interface {
	// Name is this instance's name.
	Name() string
	// Lease is the lease's length.
	Lease() time.Duration
	// Campaign takes part in the election until ctx ends, calling lead
	// for each term of this instance (see ha.Elector.Campaign).
	Campaign(ctx context.Context, lead func(ctx context.Context, epoch int64))
	// State is what the instance knows of the election.
	State() ha.State
	// Changes counts the leader changes the instance has seen.
	Changes() int64
	// Wake asks the leader for a run that reconciles source.
	Wake(ctx context.Context, source string) error
	// Listen calls woken for every Wake until ctx ends (listening after
	// each (re)connection).
	Listen(ctx context.Context, listening func(), woken func(source string))
	// Instances lists the instances alive.
	Instances(ctx context.Context) ([]ha.Instance, error)
}

// HAStatus is /status's "ha": this instance's role, the leader's term, and
// every instance alive with its version (mixed versions show during a
// rolling upgrade).
type HAStatus struct {
	Instance  string        `json:"instance"`
	Role      string        `json:"role"`
	Leader    string        `json:"leader"`
	Since     *time.Time    `json:"since"`
	Epoch     int64         `json:"epoch"`
	Lease     string        `json:"lease"`
	Instances []ha.Instance `json:"instances"`
	// Error is why the election's tables could not be read, if they could not.
	Error string `json:"error,omitempty"`
}

// leadership is the service's side of the election: the term in progress.
type leadership struct {
	mu  sync.Mutex
	ctx context.Context // of the term in progress; nil: a standby
}

func (l *leadership) term() context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ctx
}

// leaderMetrics registers learnsync_leader and learnsync_leader_changes_total.
func (s *Service) leaderMetrics() {
	isLeader := func() float64 {
		if s.election != nil && s.election.State().Role == ha.RoleLeader {
			return 1
		}
		if s.election == nil {
			return 1 // one instance alone is its own leader
		}
		return 0
	}
	s.metrics.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "learnsync_leader",
			Help: "1 while this instance is the leader (it runs the schedules and applies), 0 on a standby."}, isLeader),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "learnsync_leader_changes_total",
			Help: "Leader changes (new epochs) this instance has seen, its own elections included."},
			func() float64 {
				if s.election == nil {
					return 0
				}
				return float64(s.election.Changes())
			}))
}

// campaign runs the election until ctx ends; the returned channel is closed
// once the last term's runs have returned.
func (s *Service) campaign(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.election.Campaign(ctx, s.lead)
	}()
	return done
}

// lead is one term of this instance as the leader: the schedules, the
// worker and the wake-up listener run until ctx ends (the leadership is
// lost, or the service stops), and the first cycle fetches every source.
func (s *Service) lead(ctx context.Context, epoch int64) {
	s.log.Info("leading: running the schedules", "epoch", epoch)
	worked := make(chan struct{})
	go func() { defer close(worked); s.worker(ctx) }()
	cfg := s.config()
	// The term's context and its schedules change together (a reload
	// restarts the schedules of the term in progress, if any).
	s.leader.mu.Lock()
	s.leader.ctx = ctx
	s.schedules.start(ctx, cfg.Sources)
	s.leader.mu.Unlock()
	listened := make(chan struct{})
	go func() {
		defer close(listened)
		s.election.Listen(ctx, func() { s.pushAll(cfg) }, func(source string) {
			if cfg := s.config(); cfg.SourceIndex(source) >= 0 {
				s.log.Debug("woken by a push on another instance", "source", source)
				s.RequestRun(source)
			}
		})
	}()
	mode := reconcile.FetchAuto
	if s.full {
		mode = reconcile.FetchFull
	}
	s.queue.startCycle(sourceNames(cfg), mode, TriggerElected)

	<-ctx.Done()
	s.leader.mu.Lock()
	s.leader.ctx = nil
	s.schedules.stop()
	s.schedules.mu.Lock()
	s.schedules.next = nil // a standby has no next fetch
	s.schedules.mu.Unlock()
	s.leader.mu.Unlock()
	<-worked
	<-listened
	s.queue.clear()
	s.log.Info("no longer leading: schedules stopped", "epoch", epoch)
}

// pushAll queues a run of every scim source: wake-ups may have been missed
// while nobody listened.
func (s *Service) pushAll(cfg *config.Config) {
	sources, _ := scimSources(cfg)
	for _, src := range sources {
		s.queue.push(src.Name)
	}
	if len(sources) > 0 {
		s.queue.poke()
	}
}

// startSchedules (re)starts the schedules of cfg, on a leader only.
func (s *Service) startSchedules(ctx context.Context, cfg *config.Config) {
	if s.election == nil {
		s.schedules.start(ctx, cfg.Sources)
		return
	}
	s.leader.mu.Lock()
	defer s.leader.mu.Unlock()
	if s.leader.ctx != nil {
		s.schedules.start(s.leader.ctx, cfg.Sources)
	}
}

// leading says whether this instance may run: it is the leader, or alone.
func (s *Service) leading() bool {
	return s.election == nil || s.leader.term() != nil
}

// wakeLeader asks the leader, on another instance, for a run of source.
func (s *Service) wakeLeader(source string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.election.Lease())
	defer cancel()
	if err := s.election.Wake(ctx, source); err != nil {
		s.log.Warn("wake the leader after a push (it reconciles the push on its next run)", "source", source, "error", err)
	}
}

// standbyReasons says why a standby is not ready: it cannot read the
// election, or sees no live leader.
func (s *Service) standbyReasons(st ha.State, now time.Time) []string {
	lease := s.election.Lease()
	switch {
	case st.Checked.IsZero():
		return []string{"the election has not been read yet"}
	case st.Err != "":
		return []string{"the database cannot be reached: " + st.Err}
	case now.Sub(st.Checked) > 2*lease:
		return []string{fmt.Sprintf("the election was last read %s ago", now.Sub(st.Checked).Round(time.Second))}
	case !st.Live:
		return []string{"no live leader: the lease has expired and no instance has taken it yet"}
	}
	return nil
}

// haStatus is the "ha" of /status.
func (s *Service) haStatus(ctx context.Context) *HAStatus {
	st := s.election.State()
	out := &HAStatus{Instance: s.election.Name(), Role: st.Role, Leader: st.Leader, Epoch: st.Epoch,
		Lease: s.election.Lease().String(), Instances: []ha.Instance{}}
	if !st.Since.IsZero() {
		out.Since = timePtr(st.Since)
	}
	if in, err := s.election.Instances(ctx); err != nil {
		out.Error = err.Error()
	} else if in != nil {
		out.Instances = in
	}
	return out
}
