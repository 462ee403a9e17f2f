// Package ha elects one leader among several learnsync instances that share
// one PostgreSQL directory, and fences the leader's writes.
//
// The election is a lease row with a monotonically increasing epoch, timed
// by the database's clock: an instance takes the lease when it has expired
// (a new epoch), the leader renews it every third of its length, and an
// instance whose renewal is refused, or has not succeeded by the time the
// lease would end, steps down at once. Fence checks, inside each apply
// transaction, that the instance still holds the current epoch, and locks
// the lease row until COMMIT, so a takeover waits for that apply or makes
// it fail: a deposed leader that wakes up commits nothing.
//
// Why not a session advisory lock: a pooler in transaction mode hands the
// session to other clients (the lock is held by nobody, or by everybody),
// and a connection a client believes alive may already be gone on the
// server, or be kept alive by the server while its client is frozen. The
// lease needs nothing of a session: every statement stands alone.
package ha

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultLease is the default of ha.lease.
const DefaultLease = 15 * time.Second

// ErrDeposed is returned (wrapped) by Fence when the instance no longer
// holds the current epoch: its apply must not commit.
var ErrDeposed = errors.New("this instance is no longer the leader")

// Roles of an instance.
const (
	RoleLeader  = "leader"
	RoleStandby = "standby"
)

// Options configure an Elector.
type Options struct {
	// Instance names this instance (ha.instance); empty: host name and pid.
	Instance string
	// Lease is how long a lease lasts without renewal (ha.lease); zero:
	// DefaultLease.
	Lease time.Duration
	// Version is this instance's learnsync version, shown to the others.
	Version string
	// Logger; nil discards.
	Logger *slog.Logger
}

// State is what an instance knows of the election.
type State struct {
	// Role is RoleLeader or RoleStandby (this instance).
	Role string
	// Leader is the instance holding the lease; empty when none ever did.
	Leader string
	// Since is when the leader's term began (the database's clock).
	Since time.Time
	// Epoch is the leader's term: it grows by one with each new leader.
	Epoch int64
	// Live says the lease had not expired when it was last read.
	Live bool
	// Checked is when the lease was last read or renewed (this instance's
	// clock); zero: never.
	Checked time.Time
	// Err is why the database could not be read, if it could not.
	Err string
}

// Instance is one learnsync instance that has joined the election.
type Instance struct {
	Instance  string    `json:"instance"`
	Version   string    `json:"version"`
	Role      string    `json:"role"`
	StartedAt time.Time `json:"started_at"`
	SeenAt    time.Time `json:"seen_at"`
}

// Elector campaigns for the lease of one directory. Make one with New.
type Elector struct {
	db      *sql.DB
	name    string
	lease   time.Duration
	version string
	log     *slog.Logger
	started time.Time

	mu      sync.Mutex
	state   State
	held    int64     // epoch this instance holds, 0: none
	until   time.Time // when its lease ends at the latest (this machine's clock)
	changes int64     // leader changes seen
	observe func(State)
}

// DefaultInstance is ha.instance's default: the host name and the pid.
func DefaultInstance() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// New creates the election's tables when they are missing and returns an
// Elector that has not campaigned yet.
func New(ctx context.Context, db *sql.DB, opts Options) (*Elector, error) {
	if opts.Instance == "" {
		opts.Instance = DefaultInstance()
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Elector{db: db, name: opts.Instance, lease: opts.Lease, version: opts.Version,
		log: opts.Logger.With("instance", opts.Instance), started: time.Now(),
		state: State{Role: RoleStandby}}
	if err := createTables(ctx, db); err != nil {
		return nil, err
	}
	return e, nil
}

// Name is this instance's name.
func (e *Elector) Name() string { return e.name }

// Lease is the lease's length.
func (e *Elector) Lease() time.Duration { return e.lease }

// State returns what this instance knows of the election now. A leader
// whose lease has run out without a renewal is a standby already, though
// it has not stepped down yet (it was frozen, and has just resumed).
func (e *Elector) State() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.state
	if st.Role == RoleLeader && !time.Now().Before(e.until) {
		st.Role, st.Live = RoleStandby, false
	}
	return st
}

// extend records when the lease of epoch ends at the latest.
func (e *Elector) extend(epoch int64, until time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.held == epoch {
		e.until = until
	}
}

// Changes counts the leader changes this instance has seen (a new epoch),
// its own elections included.
func (e *Elector) Changes() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changes
}

// OnChange sets a func called with the new state whenever the role, the
// leader or the epoch changes. Set it before Campaign.
func (e *Elector) OnChange(f func(State)) { e.observe = f }

// Campaign takes part in the election until ctx ends. Whenever this
// instance becomes the leader it calls lead with a context that ends when
// the leadership does (a refused or late renewal, or ctx), and waits for
// lead to return before it campaigns again. When ctx ends it gives up a
// lease it holds, so that a standby takes over at once.
func (e *Elector) Campaign(ctx context.Context, lead func(ctx context.Context, epoch int64)) {
	tick := e.lease / 3
	for ctx.Err() == nil {
		start := time.Now()
		epoch, err := e.tryAcquire(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			e.failed(err)
			e.log.Warn("leader election: the database could not be reached", "error", err)
		case epoch > 0:
			e.hold(ctx, epoch, start, lead)
			continue // campaign again at once: the lease is gone
		}
		e.heartbeat(ctx)
		t := time.NewTimer(tick)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// hold is one term: lead runs while the lease is renewed in time.
func (e *Elector) hold(ctx context.Context, epoch int64, renewed time.Time, lead func(context.Context, int64)) {
	e.log.Info("became the leader", "epoch", epoch)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); lead(lctx, epoch) }()
	// The lease ends lease after the renewal's statement reached the
	// server, which is after it was sent: counting from the sending, by
	// this machine's monotonic clock, errs on the safe side.
	deadline := renewed.Add(e.lease)
	e.extend(epoch, deadline)
	retry := max(e.lease/20, 10*time.Millisecond)
	wait := e.lease / 3
	for {
		t := time.NewTimer(min(wait, max(time.Until(deadline), 0)))
		select {
		case <-ctx.Done():
			t.Stop()
			cancel()
			<-done
			e.release(epoch)
			return
		case <-done:
			t.Stop()
			e.release(epoch)
			return
		case <-t.C:
		}
		start := time.Now()
		if !start.Before(deadline) {
			e.stepDown(cancel, done, epoch, "the lease was not renewed in time (a pause, or a slow database)")
			return
		}
		rctx, rcancel := context.WithDeadline(ctx, deadline)
		ok, err := e.renew(rctx, epoch)
		rcancel()
		switch {
		case err == nil && ok && time.Now().Before(deadline):
			deadline, wait = start.Add(e.lease), e.lease/3
			e.extend(epoch, deadline)
			e.heartbeat(ctx)
		case err == nil:
			e.stepDown(cancel, done, epoch, "the lease was refused: another instance holds it")
			return
		default:
			e.log.Warn("renew the lease", "epoch", epoch, "error", err)
			wait = retry // the lease ends at deadline unless a retry gets through
		}
	}
}

// stepDown ends the term at once: lead's context is cancelled, then this
// instance waits for it to return.
func (e *Elector) stepDown(cancel context.CancelFunc, done <-chan struct{}, epoch int64, why string) {
	e.log.Warn("stepping down", "epoch", epoch, "reason", why)
	e.mu.Lock()
	e.held = 0
	e.mu.Unlock()
	e.setState(func(s *State) { s.Role = RoleStandby })
	cancel()
	<-done
}

func (e *Elector) failed(err error) {
	e.setState(func(s *State) { s.Err = err.Error(); s.Checked = time.Now() })
}

// setState changes the state under the lock and reports a change of role,
// leader or epoch.
func (e *Elector) setState(change func(*State)) {
	e.mu.Lock()
	before := e.state
	change(&e.state)
	now := e.state
	if now.Epoch != before.Epoch {
		e.changes++
	}
	observe := e.observe
	e.mu.Unlock()
	if observe != nil && (now.Role != before.Role || now.Leader != before.Leader || now.Epoch != before.Epoch) {
		observe(now)
	}
}
