package directory

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/learnsync/learnsync/reconcile"
)

// StoreStatus is what the directory can say about its own health: each
// source's mirror and last fetch, the people and the license pools. It is
// cheap to read (counts, not rows), so the ops endpoint and the metrics can
// ask for it after every run.
type StoreStatus struct {
	// Sources has every source with a mirror or a fetch in the kept run
	// history, sorted by name.
	Sources []MirrorStatus
	// Active and Inactive count the people in the directory.
	Active, Inactive int
	// Pools are the license pools, sorted by name.
	Pools []ExportLicense
}

// MirrorStatus is what the directory knows about one source: its mirror,
// its cursor and its fetches in the run history.
type MirrorStatus struct {
	Source string
	// HasCursor is true when a cursor is stored: the next fetch can be
	// incremental where the source supports it.
	HasCursor bool
	// FetchedAt is when a fetch of this source was last committed with its
	// mirror and cursor; FullAt when a full fetch was. Zero: never.
	FetchedAt, FullAt time.Time
	// Users and Groups count the mirror's rows.
	Users, Groups int
	// LastFetch is the newest fetch of this source in the run history; nil
	// when none is kept.
	LastFetch *RecordedFetch
	// FrozenSince is the start of the oldest failed fetch after the last
	// successful one (reconcile.FrozenSince): the source has been frozen
	// since then. Zero when its last fetch did not fail.
	FrozenSince time.Time
}

// RecordedFetch is one fetch of a source as a run recorded it.
type RecordedFetch struct {
	// RunID and At are the run's id and start.
	RunID int64
	At    time.Time
	reconcile.SourceRun
}

// maxStatusRuns bounds how far back Status looks for each source's last
// fetch. history.keep_runs usually bounds it first.
const maxStatusRuns = 10000

// Status reads the directory's status in one snapshot (see Snapshot: a
// read transaction that does not wait for an apply in progress), so a run
// committing meanwhile shows in all of it or in none.
func (s *Store) Status(ctx context.Context) (*StoreStatus, error) {
	ctx, end, serr := s.Snapshot(ctx)
	if serr != nil {
		return nil, serr
	}
	defer end()
	st := &StoreStatus{Pools: []ExportLicense{}}
	bySource := make(map[string]*MirrorStatus)
	get := func(name string) *MirrorStatus {
		if ss := bySource[name]; ss != nil {
			return ss
		}
		ss := &MirrorStatus{Source: name}
		bySource[name] = ss
		return ss
	}
	var name string
	var hasCursor bool
	var full, fetched sql.NullTime
	err := eachRow(ctx, s.db, "read status", `SELECT source, cursor <> '', full_at, fetched_at FROM mirrors`, nil,
		[]any{&name, &hasCursor, &full, &fetched}, func() error {
			ss := get(name)
			ss.HasCursor, ss.FullAt, ss.FetchedAt = hasCursor, full.Time, fetched.Time
			return nil
		})
	if err != nil {
		return nil, err
	}
	assigned := make(map[string]int)
	for _, q := range []struct {
		query string
		set   func(key string, n int)
	}{
		{`SELECT source, COUNT(*) FROM mirror_users GROUP BY source`, func(src string, n int) { get(src).Users = n }},
		{`SELECT source, COUNT(*) FROM mirror_groups GROUP BY source`, func(src string, n int) { get(src).Groups = n }},
		{`SELECT CASE WHEN active <> 0 THEN 'active' ELSE 'inactive' END, COUNT(*) FROM people GROUP BY active`,
			func(state string, n int) {
				if state == "active" {
					st.Active += n
				} else {
					st.Inactive += n
				}
			}},
		{`SELECT pool, COUNT(*) FROM assignments WHERE revoked_at IS NULL GROUP BY pool`, func(pool string, n int) { assigned[pool] = n }},
	} {
		var key string
		var n int
		if err := eachRow(ctx, s.db, "read status", q.query, nil, []any{&key, &n}, func() error { q.set(key, n); return nil }); err != nil {
			return nil, err
		}
	}
	if err := s.lastFetches(ctx, get); err != nil {
		return nil, err
	}
	var p ExportLicense
	err = eachRow(ctx, s.db, "read status", `SELECT name, seats, waiting FROM pools ORDER BY name`, nil,
		[]any{&p.Name, &p.Seats, &p.Waiting}, func() error {
			p.Assigned = assigned[p.Name]
			st.Pools = append(st.Pools, p)
			return nil
		})
	if err != nil {
		return nil, err
	}
	for _, ss := range bySource {
		st.Sources = append(st.Sources, *ss)
	}
	slices.SortFunc(st.Sources, func(a, b MirrorStatus) int { return cmp.Compare(a.Source, b.Source) })
	return st, nil
}

// lastFetches walks the run history from the newest run and finds, for each
// source, its last fetch and, from its fetches since the last successful
// one, how long it has been frozen.
func (s *Store) lastFetches(ctx context.Context, get func(string) *MirrorStatus) error {
	type fetchAt struct {
		at time.Time
		sr reconcile.SourceRun
	}
	// recent holds each source's fetches, newest first, back to the first
	// one that left it not frozen: older runs don't matter.
	recent := make(map[string][]fetchAt)
	done := make(map[string]bool)
	var id int64
	var at time.Time
	var raw string
	err := eachRow(ctx, s.db, "read status", `SELECT id, started_at, sources FROM runs ORDER BY id DESC LIMIT ?`,
		[]any{maxStatusRuns}, []any{&id, &at, &raw}, func() error {
			var srcs []reconcile.SourceRun
			if err := json.Unmarshal([]byte(raw), &srcs); err != nil {
				return fmt.Errorf("read status: run %d: %w", id, err)
			}
			for _, sr := range srcs {
				if !sr.Fetched() || done[sr.Name] {
					continue
				}
				ss := get(sr.Name)
				if ss.LastFetch == nil {
					ss.LastFetch = &RecordedFetch{RunID: id, At: at, SourceRun: sr}
				}
				recent[sr.Name] = append(recent[sr.Name], fetchAt{at, sr})
				done[sr.Name] = reconcile.FrozenSince(time.Time{}, sr, at).IsZero()
			}
			return nil
		})
	if err != nil {
		return err
	}
	for name, fs := range recent {
		var since time.Time
		for i := len(fs) - 1; i >= 0; i-- {
			since = reconcile.FrozenSince(since, fs[i].sr, fs[i].at)
		}
		get(name).FrozenSince = since
	}
	return nil
}
