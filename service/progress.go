package service

import (
	"log/slog"
	"sync"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/reconcile"
)

// progressLog follows the fetches of the run in progress: it logs a long
// fetch's progress every interval and keeps the last report for /status.
type progressLog struct {
	clock    Clock
	log      *slog.Logger
	interval time.Duration

	mu      sync.Mutex
	fetches map[string]*fetchProgress
}

type fetchProgress struct {
	since, logged time.Time
	last          connectors.Progress
}

func newProgressLog(clock Clock, log *slog.Logger, interval time.Duration) *progressLog {
	return &progressLog{clock: clock, log: log, interval: interval, fetches: map[string]*fetchProgress{}}
}

// start begins following the fetches of sources, starting at now.
func (pl *progressLog) start(sources map[string]reconcile.FetchMode, now time.Time) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for name := range sources {
		pl.fetches[name] = &fetchProgress{since: now, logged: now}
	}
}

// clear forgets every fetch: the run is over.
func (pl *progressLog) clear() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	clear(pl.fetches)
}

// report takes a fetch's progress and logs it when interval has passed
// since it was last logged.
func (pl *progressLog) report(source string, p connectors.Progress) {
	now := pl.clock.Now()
	pl.mu.Lock()
	fp := pl.fetches[source]
	if fp == nil { // a fetch outside a run of the service (cannot happen today)
		fp = &fetchProgress{since: now, logged: now}
		pl.fetches[source] = fp
	}
	fp.last = p
	due := now.Sub(fp.logged) >= pl.interval
	if due {
		fp.logged = now
	}
	since := fp.since
	pl.mu.Unlock()
	if due {
		pl.log.Info("fetch in progress", "source", source, "pages", p.Pages, "users", p.Users, "groups", p.Groups,
			"rate_waits", p.Waits, "elapsed", now.Sub(since).Round(time.Second))
	}
}

// of returns the last progress of source's fetch and when it began.
func (pl *progressLog) of(source string) (last connectors.Progress, since time.Time, ok bool) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	fp := pl.fetches[source]
	if fp == nil {
		return connectors.Progress{}, time.Time{}, false
	}
	return fp.last, fp.since, true
}
