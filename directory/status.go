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

// Status is what the directory can say about its own health: each source's
// mirror and last fetch, the people and the license pools. It is cheap to
// read (counts, not rows), so the ops endpoint and the metrics can ask for it
// after every run.
type Status struct {
	// Sources has every source with a mirror or a fetch in the kept run
	// history, sorted by name.
	Sources []SourceStatus
	// Active and Inactive count the people in the directory.
	Active, Inactive int
	// Pools are the license pools, sorted by name.
	Pools []ExportLicense
}

// SourceStatus is what the directory knows about one source.
type SourceStatus struct {
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
	LastFetch *Fetch
	// FrozenSince is the start of the oldest failed fetch after the last
	// successful one: the source has been frozen since then. Zero when its
	// last fetch did not fail.
	FrozenSince time.Time
}

// Fetch is one fetch of a source as a run recorded it.
type Fetch struct {
	// RunID and At are the run's id and start.
	RunID int64
	At    time.Time
	reconcile.SourceRun
}

// maxStatusRuns bounds how far back Status looks for each source's last
// fetch. history.keep_runs usually bounds it first.
const maxStatusRuns = 10000

// Status reads the directory's status. The reads are separate statements
// (not one transaction: a read transaction would queue behind a long apply),
// so a run committing meanwhile may show in some parts and not others.
func (s *Store) Status(ctx context.Context) (*Status, error) {
	st := &Status{Pools: []ExportLicense{}}
	bySource := make(map[string]*SourceStatus)
	get := func(name string) *SourceStatus {
		if ss := bySource[name]; ss != nil {
			return ss
		}
		ss := &SourceStatus{Source: name}
		bySource[name] = ss
		return ss
	}

	rows, err := s.db.QueryContext(ctx, `SELECT source, cursor <> '', full_at, fetched_at FROM mirrors`)
	if err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	for rows.Next() {
		var name string
		var hasCursor bool
		var full, fetched sql.NullTime
		if err := rows.Scan(&name, &hasCursor, &full, &fetched); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read status: %w", err)
		}
		ss := get(name)
		ss.HasCursor, ss.FullAt, ss.FetchedAt = hasCursor, full.Time, fetched.Time
	}
	if err := closeRows(rows, "status"); err != nil {
		return nil, err
	}
	for _, q := range []struct {
		query string
		set   func(*SourceStatus, int)
	}{
		{`SELECT source, COUNT(*) FROM mirror_users GROUP BY source`, func(ss *SourceStatus, n int) { ss.Users = n }},
		{`SELECT source, COUNT(*) FROM mirror_groups GROUP BY source`, func(ss *SourceStatus, n int) { ss.Groups = n }},
	} {
		err := s.countBy(ctx, q.query, func(name string, n int) { q.set(get(name), n) })
		if err != nil {
			return nil, err
		}
	}
	if err := s.lastFetches(ctx, get); err != nil {
		return nil, err
	}
	err = s.countBy(ctx, `SELECT CASE WHEN active THEN 'active' ELSE 'inactive' END, COUNT(*) FROM people GROUP BY active`,
		func(state string, n int) {
			if state == "active" {
				st.Active += n
			} else {
				st.Inactive += n
			}
		})
	if err != nil {
		return nil, err
	}
	assigned := make(map[string]int)
	if err := s.countBy(ctx, `SELECT pool, COUNT(*) FROM assignments WHERE revoked_at IS NULL GROUP BY pool`,
		func(pool string, n int) { assigned[pool] = n }); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT name, seats, waiting FROM pools ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read status: %w", err)
	}
	for rows.Next() {
		var p ExportLicense
		if err := rows.Scan(&p.Name, &p.Seats, &p.Waiting); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read status: %w", err)
		}
		p.Assigned = assigned[p.Name]
		st.Pools = append(st.Pools, p)
	}
	if err := closeRows(rows, "pools"); err != nil {
		return nil, err
	}
	for _, ss := range bySource {
		st.Sources = append(st.Sources, *ss)
	}
	slices.SortFunc(st.Sources, func(a, b SourceStatus) int { return cmp.Compare(a.Source, b.Source) })
	return st, nil
}

// countBy runs a query of (key, count) rows.
func (s *Store) countBy(ctx context.Context, query string, fn func(key string, n int)) error {
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("read status: %w", err)
	}
	for rows.Next() {
		var key string
		var n int
		if err := rows.Scan(&key, &n); err != nil {
			rows.Close()
			return fmt.Errorf("read status: %w", err)
		}
		fn(key, n)
	}
	return closeRows(rows, "status")
}

// lastFetches walks the run history from the newest run and finds, for each
// source, its last fetch and how long it has been failing.
func (s *Store) lastFetches(ctx context.Context, get func(string) *SourceStatus) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, started_at, sources FROM runs ORDER BY id DESC LIMIT ?`, maxStatusRuns)
	if err != nil {
		return fmt.Errorf("read status: %w", err)
	}
	good := make(map[string]bool) // a successful fetch was found: older runs don't matter
	for rows.Next() {
		var id int64
		var at time.Time
		var raw string
		if err := rows.Scan(&id, &at, &raw); err != nil {
			rows.Close()
			return fmt.Errorf("read status: %w", err)
		}
		var srcs []reconcile.SourceRun
		if err := json.Unmarshal([]byte(raw), &srcs); err != nil {
			rows.Close()
			return fmt.Errorf("read status: run %d: %w", id, err)
		}
		for _, sr := range srcs {
			if sr.Mode == "" || sr.Result == "unchanged" || good[sr.Name] {
				continue
			}
			ss := get(sr.Name)
			if ss.LastFetch == nil {
				ss.LastFetch = &Fetch{RunID: id, At: at, SourceRun: sr}
			}
			if sr.Result == "failed" {
				ss.FrozenSince = at
			} else {
				good[sr.Name] = true
			}
		}
	}
	return closeRows(rows, "runs")
}
