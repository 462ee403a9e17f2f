package reconcile

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// A full run over sources that all read whole (files) need not read their
// mirrors back: a successful fetch is the whole new mirror. What the run
// writes is found as an incremental run finds it, from the stored hashes
// (read while the files are read) and the stored rows of what differs. The
// parsed files and the mirrors read back are then never in memory at once.

// snapshotsOnly reports whether every source the run fetches reads whole
// and none is pushed or left as it is.
func (c *cycle) snapshotsOnly() bool {
	for _, src := range c.e.Sources {
		if c.opts.Fetch[src.Rules.Name] == FetchNone || connectors.IsPushed(src.Connector) || !readsWhole(src.Connector) {
			return false
		}
	}
	return len(c.e.Sources) > 0
}

// fetchSnapshots fetches the sources (all snapshots) while the directory is
// read and builds each mirror from its fetch. A failed or partial fetch
// needs the stored mirrors after all: they are then read as a run reads
// them otherwise.
func (c *cycle) fetchSnapshots(ctx context.Context, ss ScopedStore, cursors map[string]string, in *inputs) *inputs {
	c.prefetch = newPrefetcher(ss)
	in.fetches = c.fetchAll(ctx, cursors)
	c.prefetch.wait()
	in.mirrors, in.built = map[string]*Mirror{}, map[string]*MirrorDelta{}
	for _, f := range in.fetches {
		if f.err != nil || !f.result.Full {
			in.mirrors, in.built = nil, nil
			break
		}
		if in.err = c.buildMirror(ctx, ss, f, in); in.err != nil {
			break
		}
	}
	if in.err == nil && in.mirrors == nil {
		in.mirrors, in.err = ss.LoadMirrors(ctx)
	}
	if in.err != nil {
		in.state.release()
	}
	return in
}

// buildMirror makes the mirror of a snapshot from its fetch, and the delta
// the commit writes from the stored rows that differ.
func (c *cycle) buildMirror(ctx context.Context, ss ScopedStore, f fetched, in *inputs) error {
	r, fresh, err := f.delta, f.fresh, f.deltaErr
	if r == nil && err == nil {
		r, fresh, err = snapshotDelta(ctx, ss, f.name, f.result, nil)
	}
	if err != nil {
		return err
	}
	var users, groups []string
	if !fresh {
		// The stored rows of what differs. A fresh source has none: its
		// mirror, if stored, is its cursor alone.
		u, g := touchedIDs(r)
		if len(r.DeletedUsers) > 0 {
			with, err := ss.MirrorGroupsWith(ctx, f.name, r.DeletedUsers)
			if err != nil {
				return err
			}
			for _, id := range with {
				g[id] = true
			}
		}
		users, groups = slices.Collect(maps.Keys(u)), slices.Collect(maps.Keys(g))
	}
	part, err := ss.MirrorPart(ctx, f.name, users, groups)
	if err != nil {
		return err
	}
	if part == nil {
		m := NewMirror(f.name)
		// Never stored: the whole fetch is new, as Update on an empty
		// mirror says.
		in.built[f.name] = m.Update(f.result, c.now)
		in.mirrors[f.name] = m
		return nil
	}
	d := part.Update(r, c.now)
	d.Full = true
	in.built[f.name], in.mirrors[f.name] = d, snapshotMirror(f.name, f.result, c.now)
	return nil
}

// snapshotMirror is the mirror a full result makes, as Update makes it of an
// empty mirror (without a delta of every row).
func snapshotMirror(source string, r *connectors.Result, now time.Time) *Mirror {
	m := NewMirror(source)
	m.Cursor, m.FullAt, m.FetchedAt = r.Cursor, now, now
	for i := range r.Users {
		m.Users[r.Users[i].ExternalID] = &r.Users[i]
	}
	for i := range r.Groups {
		m.Groups[r.Groups[i].ExternalID] = &r.Groups[i]
	}
	for gid := range m.Groups {
		if list := memberSet(r.Members[gid]); len(list) > 0 {
			m.Members[gid] = list
		}
	}
	return m
}
