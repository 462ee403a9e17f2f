package service

import (
	"context"
	"time"

	"github.com/learnsync/learnsync/config"
	"github.com/learnsync/learnsync/reconcile"
)

// StatusReport is the document /status serves and `learnsync status
// --output json` prints: the configured sources with their mirror, cursor
// age and last fetch, the last runs, the people and the license pools.
// Service holds what only a running service knows, and is absent from the
// command's output.
type StatusReport struct {
	GeneratedAt time.Time     `json:"generated_at"`
	Service     *ServiceState `json:"service,omitempty"`
	// HA is the election, when several instances share the directory.
	HA      *HAStatus       `json:"ha,omitempty"`
	Sources []SourceReport  `json:"sources"`
	Runs    []reconcile.Run `json:"runs"`
	People  People          `json:"people"`
	Pools   []Pool          `json:"pools"`
}

// ServiceState is the live state of a running service.
type ServiceState struct {
	StartedAt time.Time `json:"started_at"`
	Ready     bool      `json:"ready"`
	// NotReady says why /readyz answers 503 (empty when ready).
	NotReady       []string  `json:"not_ready"`
	Config         string    `json:"config"`
	ConfigLoadedAt time.Time `json:"config_loaded_at"`
	Listen         string    `json:"listen"`
	// Running is true while a run is in progress.
	Running bool `json:"running"`
	// Cycles counts the cycles since the service started, LastCycle is the
	// last of them: a cycle with nothing to do records no run, so Runs
	// (the recorded history) may be older.
	Cycles    int          `json:"cycles"`
	LastCycle *CycleReport `json:"last_cycle,omitempty"`
	// Version is this instance's learnsync version.
	Version string `json:"version"`
}

// SourceReport is one configured source in the status report.
type SourceReport struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Schedule string `json:"schedule"`
	FullSync string `json:"full_sync"`
	// Cursor is true when a cursor is stored (the next fetch can be
	// incremental where the source supports it).
	Cursor bool `json:"cursor"`
	// FetchedAt is when a fetch of the source was last committed with its
	// mirror and cursor; CursorAgeSeconds is how long ago that was.
	FetchedAt        *time.Time `json:"fetched_at"`
	CursorAgeSeconds *float64   `json:"cursor_age_seconds"`
	// FullAt is when a full fetch was last committed.
	FullAt *time.Time `json:"full_at"`
	// Users and Groups count the source's mirror.
	Users  int `json:"users"`
	Groups int `json:"groups"`
	// LastFetch is the newest fetch in the kept run history.
	LastFetch *FetchReport `json:"last_fetch"`
	// FrozenSince is when the source's fetches began to fail; null when its
	// last fetch did not fail. Stale: frozen for longer than StaleAfter.
	FrozenSince *time.Time `json:"frozen_since"`
	StaleAfter  string     `json:"stale_after"`
	Stale       bool       `json:"stale"`

	// Only in a running service:
	Fetching     bool           `json:"fetching,omitempty"`
	Queued       bool           `json:"queued,omitempty"`
	NextFetch    *time.Time     `json:"next_fetch,omitempty"`
	NextFullSync *time.Time     `json:"next_full_sync,omitempty"`
	Progress     *FetchProgress `json:"progress,omitempty"`
}

// FetchReport is one fetch as its run recorded it.
type FetchReport struct {
	Run             int64     `json:"run"`
	At              time.Time `json:"at"`
	Mode            string    `json:"mode"`
	Result          string    `json:"result"`
	Error           string    `json:"error,omitempty"`
	Users           int       `json:"users"`
	Groups          int       `json:"groups"`
	Requests        int       `json:"requests"`
	Problems        int       `json:"problems"`
	DurationSeconds float64   `json:"duration_seconds"`
}

// FetchProgress is how far a running fetch has come.
type FetchProgress struct {
	Pages     int     `json:"pages"`
	Users     int     `json:"users"`
	Groups    int     `json:"groups"`
	RateWaits int     `json:"rate_waits"`
	Seconds   float64 `json:"seconds"`
}

// People counts the directory's people.
type People struct {
	Active   int `json:"active"`
	Inactive int `json:"inactive"`
}

// Pool is one license pool's seats.
type Pool struct {
	Name     string `json:"name"`
	Seats    int    `json:"seats"`
	Assigned int    `json:"assigned"`
	Waiting  int    `json:"waiting"`
}

// ReadStatus reads the status report for cfg's sources with the last
// runs (newest first, without the plans of blocked runs). now is the clock
// for the ages.
func ReadStatus(ctx context.Context, store StatusStore, cfg *config.Config, now time.Time, runs int) (*StatusReport, error) {
	ds, err := store.StoredStatus(ctx)
	if err != nil {
		return nil, err
	}
	rs, err := store.Runs(ctx, runs)
	if err != nil {
		return nil, err
	}
	for i := range rs {
		rs[i].Plan = nil
	}
	st := &StatusReport{
		GeneratedAt: now.UTC(),
		Sources:     []SourceReport{},
		Runs:        rs,
		People:      ds.People,
		Pools:       ds.Pools,
	}
	known := make(map[string]StoredSource, len(ds.Sources))
	for _, s := range ds.Sources {
		known[s.Name] = s
	}
	for _, src := range cfg.Sources {
		d := known[src.Name]
		ss := SourceReport{
			Name: src.Name, Type: src.Type, Schedule: src.Schedule.String(), FullSync: src.FullSync.String(),
			Cursor: d.HasCursor, FetchedAt: timePtr(d.FetchedAt), FullAt: timePtr(d.FullAt),
			Users: d.Users, Groups: d.Groups, FrozenSince: timePtr(d.FrozenSince),
			StaleAfter: src.StaleAfter.String(), Stale: stale(d.FrozenSince, src.StaleAfter, now),
		}
		if !d.FetchedAt.IsZero() {
			age := now.Sub(d.FetchedAt).Seconds()
			ss.CursorAgeSeconds = &age
		}
		if f := d.LastFetch; f != nil {
			ss.LastFetch = &FetchReport{
				Run: f.RunID, At: f.At.UTC(), Mode: string(f.Mode), Result: string(f.Result), Error: f.Error, Users: f.Users, Groups: f.Groups,
				Requests: f.Requests, Problems: f.Problems, DurationSeconds: f.Duration.Seconds(),
			}
		}
		st.Sources = append(st.Sources, ss)
	}
	return st, nil
}

// stale reports whether a source frozen since since has been frozen for
// longer than its bound (0 = never stale).
func stale(since time.Time, bound time.Duration, now time.Time) bool {
	return !since.IsZero() && bound > 0 && now.Sub(since) > bound
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
