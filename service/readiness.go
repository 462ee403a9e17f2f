package service

import (
	"fmt"
	"sync"
	"time"

	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/reconcile"
)

// failedRunsUnready is how many failed runs in a row make the service
// unready, whatever the sources' stale_after: one failure is an outage to
// ride out, several in a row need someone to look.
const failedRunsUnready = 3

// readiness keeps what the service's runs say about whether it does its
// job: /readyz and learnsync_ready read it.
type readiness struct {
	mu          sync.Mutex
	applied     bool
	ran         bool   // a run has ended (whatever its result)
	runError    string // why the last run could not be carried out, if it could not
	blocked     string // why the last run that got as far as a plan was blocked, if it was
	frozenSince map[string]time.Time
	lastErrors  map[string]string
	// failedRuns counts the runs in a row that ended failed (every source
	// fetched in them failed) or could not be carried out.
	failedRuns int
}

func newReadiness() *readiness {
	return &readiness{frozenSince: map[string]time.Time{}, lastErrors: map[string]string{}}
}

// restore takes the sources the directory says were frozen before a
// restart (of those configured) and returns their names.
func (r *readiness) restore(sources []StoredSource, configured map[string]bool) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var frozen []string
	for _, ss := range sources {
		if configured[ss.Name] && !ss.FrozenSince.IsZero() {
			r.frozenSince[ss.Name] = ss.FrozenSince
			if ss.LastFetch != nil {
				r.lastErrors[ss.Name] = ss.LastFetch.Error
			}
			frozen = append(frozen, ss.Name)
		}
	}
	return frozen
}

// runFailed records a run that could not be carried out.
func (r *readiness) runFailed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran, r.runError = true, err.Error()
	r.failedRuns++
}

// runEnded records a run that was carried out, whatever its result.
func (r *readiness) runEnded(out *reconcile.Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if out.Applied || out.NoChange {
		r.applied = true // nothing to do: the directory is at its plan
	}
	r.ran, r.runError = true, ""
	if out.Run.Result == reconcile.ResultFailed {
		r.failedRuns++
	} else {
		r.failedRuns = 0
	}
	switch out.Run.Result {
	case reconcile.ResultBlocked:
		r.blocked = out.Run.Error
	case reconcile.ResultOK, reconcile.ResultPartial:
		r.blocked = ""
		// A failed run (its fetches all failed) says nothing of the plan.
	}
	for _, sr := range out.Run.Sources {
		switch since := reconcile.FrozenSince(r.frozenSince[sr.Name], sr, out.Run.StartedAt); {
		case !sr.Fetched():
		case !since.IsZero():
			r.frozenSince[sr.Name] = since
			r.lastErrors[sr.Name] = sr.Error
		default:
			delete(r.frozenSince, sr.Name)
			delete(r.lastErrors, sr.Name)
		}
	}
}

// forget drops what it knows of sources a reload removed.
func (r *readiness) forget(names []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, name := range names {
		delete(r.frozenSince, name)
		delete(r.lastErrors, name)
	}
}

// frozen returns since when source has been frozen, as the service saw it.
func (r *readiness) frozen(source string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	since, ok := r.frozenSince[source]
	return since, ok
}

// reasons says why the service is not ready at now, for the configured
// sources: nothing when it is.
func (r *readiness) reasons(sources []config.Source, now time.Time) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var why []string
	if !r.applied {
		if !r.ran {
			why = append(why, "the first run has not finished yet")
		} else {
			why = append(why, "no run has applied since the service started")
		}
	}
	// A run whose fetches all failed is "failed" too, but that is the
	// sources' trouble: each counts through its stale_after below, so that
	// a short outage of one identity provider does not flap readiness.
	if r.runError != "" {
		why = append(why, "the last run failed: "+r.runError)
	}
	if r.failedRuns >= failedRunsUnready && r.runError == "" {
		why = append(why, fmt.Sprintf("the last %d runs failed: no source could be fetched", r.failedRuns))
	}
	if r.blocked != "" {
		why = append(why, "the last run was blocked by a safety limit, nothing is applied until someone acts: "+r.blocked)
	}
	for _, src := range sources {
		since, frozen := r.frozenSince[src.Name]
		if frozen && stale(since, src.StaleAfter, now) {
			why = append(why, fmt.Sprintf("source %s has been frozen for %s (stale_after %s): %s",
				src.Name, now.Sub(since).Round(time.Second), src.StaleAfter, r.lastErrors[src.Name]))
		}
	}
	return why
}
