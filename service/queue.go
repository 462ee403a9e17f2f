package service

import (
	"sync"
	"time"

	"github.com/learnsync/learnsync/reconcile"
)

// runQueue holds the fetches that wait for a run and the run in progress.
// A single worker takes them one batch at a time: applies never overlap,
// and fetches that come due meanwhile join the next run.
type runQueue struct {
	wake chan struct{}

	mu      sync.Mutex
	pending map[string]reconcile.FetchMode // sources waiting for a run
	running map[string]reconcile.FetchMode // sources the current run fetches
	inRun   bool
	// lastStart is when each source's last fetch began, and how.
	lastStart map[string]fetchStart
	wantRun   bool              // a run is due even without fetches (after a reload)
	trigger   reconcile.Trigger // of the next run, when not from the schedules
	stopping  bool
}

type fetchStart struct {
	at   time.Time
	mode reconcile.FetchMode
}

// batch is what one run does.
type batch struct {
	fetch   map[string]reconcile.FetchMode
	trigger reconcile.Trigger
}

func newRunQueue() *runQueue {
	return &runQueue{
		wake:    make(chan struct{}, 1),
		pending: map[string]reconcile.FetchMode{}, running: map[string]reconcile.FetchMode{},
		lastStart: map[string]fetchStart{},
	}
}

// poke wakes the worker.
func (q *runQueue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// enqueueResult says what became of a scheduled fetch.
type enqueueResult int

const (
	// fetchQueued: the fetch waits for the next run.
	fetchQueued enqueueResult = iota
	// fetchCovered: a fetch waiting or running does what this one would.
	fetchCovered
	// fetchSkipped: the source's previous fetch is still running or
	// waiting; this one is dropped.
	fetchSkipped
)

// add asks for a fetch of source due at due. Full fetches win: a full one
// replaces an incremental fetch that waits, or follows one that runs; an
// incremental one that finds a full fetch waiting is covered by it. So is a
// fetch due at (or before) the start of the source's last fetch, when that
// fetch was at least as full: the schedule and the full_sync of a source
// often fall on the same minute.
func (q *runQueue) add(source string, mode reconcile.FetchMode, due time.Time) enqueueResult {
	q.mu.Lock()
	defer q.mu.Unlock()
	queued, isQueued := q.pending[source]
	running, isRunning := q.running[source]
	last, fetched := q.lastStart[source]
	switch {
	case isQueued && queued == reconcile.FetchFull && mode != reconcile.FetchFull,
		fetched && !last.at.Before(due) && (last.mode == reconcile.FetchFull || mode != reconcile.FetchFull):
		return fetchCovered
	case isQueued:
		if mode == reconcile.FetchFull && queued != reconcile.FetchFull {
			q.pending[source] = mode
			return fetchQueued
		}
		return fetchSkipped
	case isRunning:
		if mode == reconcile.FetchFull && running != reconcile.FetchFull {
			q.pending[source] = mode
			return fetchQueued
		}
		return fetchSkipped
	}
	q.pending[source] = mode
	return fetchQueued
}

// startCycle queues a fetch of every named source for one run with trigger.
func (q *runQueue) startCycle(names []string, mode reconcile.FetchMode, trigger reconcile.Trigger) {
	q.mu.Lock()
	for _, name := range names {
		q.pending[name] = mode
	}
	q.trigger = trigger
	q.mu.Unlock()
	q.poke()
}

// reloaded queues the sources a reload added, drops those it removed, and
// asks for a run with the reload's trigger.
func (q *runQueue) reloaded(added, removed []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, name := range added {
		q.pending[name] = reconcile.FetchAuto
	}
	for _, name := range removed {
		delete(q.pending, name)
	}
	q.wantRun, q.trigger = true, TriggerConfigReload
}

// take moves every pending fetch into one run that starts at now.
func (q *runQueue) take(now time.Time) (batch, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopping || (len(q.pending) == 0 && !q.wantRun) {
		return batch{}, false
	}
	b := batch{fetch: q.pending, trigger: q.trigger}
	if b.trigger == "" {
		b.trigger = reconcile.TriggerSchedule
		for _, m := range b.fetch {
			if m == reconcile.FetchFull {
				b.trigger = reconcile.TriggerFullSync
			}
		}
	}
	q.running, q.pending = b.fetch, map[string]reconcile.FetchMode{}
	q.wantRun, q.trigger, q.inRun = false, "", true
	for name, mode := range b.fetch {
		q.lastStart[name] = fetchStart{at: now, mode: mode}
	}
	return b, true
}

// clear drops every fetch that waits: the instance no longer leads, the
// new leader fetches.
func (q *runQueue) clear() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending, q.wantRun, q.trigger = map[string]reconcile.FetchMode{}, false, ""
}

// finish ends the run in progress.
func (q *runQueue) finish() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.running, q.inRun = map[string]reconcile.FetchMode{}, false
}

// stop makes take refuse every further run and says whether one is in
// progress.
func (q *runQueue) stop() (busy bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopping = true
	return q.inRun
}

func (q *runQueue) isStopping() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stopping
}

// busy says whether a run is in progress.
func (q *runQueue) busy() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.inRun
}

// source says whether the run in progress fetches name, and whether a
// fetch of it waits for the next run.
func (q *runQueue) source(name string) (fetching, queued bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, fetching = q.running[name]
	_, queued = q.pending[name]
	return fetching, queued
}

// idle says whether no run is in progress or due.
func (q *runQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.inRun && len(q.pending) == 0 && !q.wantRun
}
