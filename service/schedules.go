package service

import (
	"context"
	"sync"
	"time"

	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/reconcile"
)

// Kinds of scheduled fetch: a source's schedule and its full_sync.
const (
	kindSchedule = "schedule"
	kindFullSync = "full_sync"
)

// scheduler runs the timer loops of the sources' schedules and remembers
// when each fires next. Each tick calls fire.
type scheduler struct {
	clock  Clock
	jitter func(time.Duration) time.Duration
	fire   func(source, kind string, mode reconcile.FetchMode, due time.Time)

	// loops are the timer loops of the current configuration; only Run's
	// goroutine starts and stops them.
	loops *scheduleLoops

	mu   sync.Mutex
	next map[string]map[string]time.Time // source → kind → when
}

// scheduleLoops are the timer loops of one configuration.
type scheduleLoops struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// start replaces the running loops (if any) with those of sources.
func (sc *scheduler) start(ctx context.Context, sources []config.Source) {
	sc.stop()
	sc.mu.Lock()
	sc.next = map[string]map[string]time.Time{}
	sc.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	loops := &scheduleLoops{cancel: cancel}
	for _, src := range sources {
		for _, k := range []struct {
			kind  string
			sched config.Schedule
			mode  reconcile.FetchMode
		}{{kindSchedule, src.Schedule, reconcile.FetchAuto}, {kindFullSync, src.FullSync, reconcile.FetchFull}} {
			loops.wg.Add(1)
			go func() {
				defer loops.wg.Done()
				sc.tick(ctx, src.Name, k.kind, k.mode, k.sched, src.ScheduleJitter)
			}()
		}
	}
	sc.loops = loops
}

// stop ends the running loops and waits for them.
func (sc *scheduler) stop() {
	if sc.loops != nil {
		sc.loops.cancel()
		sc.loops.wg.Wait()
		sc.loops = nil
	}
}

// tick fires one schedule of one source until ctx ends.
func (sc *scheduler) tick(ctx context.Context, source, kind string, mode reconcile.FetchMode, sched config.Schedule, jitter time.Duration) {
	due := sched.Next(sc.clock.Now())
	for {
		at := due
		if jitter > 0 {
			at = at.Add(sc.jitter(jitter))
		}
		sc.setNext(source, kind, at)
		timer := sc.clock.NewTimer(at.Sub(sc.clock.Now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C():
		}
		if ctx.Err() != nil {
			return
		}
		sc.fire(source, kind, mode, at)
		// Keep to the schedule's own times (jitter does not add up), but
		// never catch up on times missed while the machine slept.
		due = sched.Next(due)
		if now := sc.clock.Now(); due.Before(now) {
			due = sched.Next(now)
		}
	}
}

func (sc *scheduler) setNext(source, kind string, at time.Time) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.next[source] == nil {
		sc.next[source] = map[string]time.Time{}
	}
	sc.next[source][kind] = at
}

// nextOf returns when source's schedule and full_sync fire next (zero:
// not known).
func (sc *scheduler) nextOf(source string) (fetch, fullSync time.Time) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	n := sc.next[source] // a nil map reads as zero times
	return n[kindSchedule], n[kindFullSync]
}
