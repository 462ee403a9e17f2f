package reconcile

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// memStore is an in-memory Store for the reconciler's unit tests. It applies
// plans the way the SQLite store does, so plans can be chained run by run.
type memStore struct {
	state   *State
	mirrors map[string]*Mirror
	runs    []*Run
	nextID  int64
	commits int
	failOn  error // returned by Commit when set
}

func newMemStore() *memStore {
	return &memStore{state: NewState(), mirrors: map[string]*Mirror{}, nextID: 1}
}

func (m *memStore) Cursors(context.Context) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range m.mirrors {
		out[k] = v.Cursor
	}
	return out, nil
}

func (m *memStore) LoadState(context.Context) (*State, error) { return cloneState(m.state), nil }

func (m *memStore) LoadMirrors(context.Context) (map[string]*Mirror, error) {
	out := make(map[string]*Mirror, len(m.mirrors))
	for k, v := range m.mirrors {
		out[k] = cloneMirror(v)
	}
	return out, nil
}

func (m *memStore) RecordRun(_ context.Context, r *Run) error {
	r.ID = int64(len(m.runs) + 1)
	m.runs = append(m.runs, r)
	return nil
}

func (m *memStore) Commit(_ context.Context, c *Commit) error {
	if m.failOn != nil {
		return m.failOn
	}
	st := cloneState(m.state)
	if err := applyPlan(st, c.Plan, c.Now, &m.nextID); err != nil {
		return err
	}
	for _, d := range c.Mirrors {
		mir := m.mirrors[d.Source]
		if mir == nil {
			mir = NewMirror(d.Source)
		} else {
			mir = cloneMirror(mir)
		}
		applyDelta(mir, d)
		m.mirrors[d.Source] = mir
	}
	m.state = st
	m.commits++
	c.Run.ID = int64(len(m.runs) + 1)
	m.runs = append(m.runs, c.Run)
	return nil
}

func cloneState(s *State) *State {
	c := NewState()
	copyValues(c.People, s.People)
	maps.Copy(c.Identities, s.Identities)
	copyValues(c.Groups, s.Groups)
	for gid, ids := range s.Members {
		c.Members[gid] = slices.Clone(ids)
	}
	copyValues(c.Pools, s.Pools)
	copyMaps(c.Assignments, s.Assignments)
	return c
}

func cloneMirror(m *Mirror) *Mirror {
	c := NewMirror(m.Source)
	c.Cursor, c.FullAt, c.FetchedAt = m.Cursor, m.FullAt, m.FetchedAt
	copyValues(c.Users, m.Users)
	copyValues(c.Groups, m.Groups)
	for gid, ids := range m.Members {
		c.Members[gid] = slices.Clone(ids)
	}
	return c
}

// copyValues copies src into dst, each value a copy of its own.
func copyValues[K comparable, V any](dst, src map[K]*V) {
	for k, v := range src {
		cv := *v
		dst[k] = &cv
	}
}

// copyMaps copies src into dst, each inner map a copy of its own.
func copyMaps[K, K2 comparable, V any](dst, src map[K]map[K2]V) {
	for k, m := range src {
		dst[k] = maps.Clone(m)
	}
}

func applyDelta(m *Mirror, d *MirrorDelta) {
	m.Cursor = d.Cursor
	for _, g := range d.DeleteGroups {
		delete(m.Groups, g)
		delete(m.Members, g)
	}
	for _, u := range d.DeleteUsers {
		delete(m.Users, u)
	}
	for _, u := range d.UpsertUsers {
		cu := *u
		m.Users[u.ExternalID] = &cu
	}
	for _, g := range d.UpsertGroups {
		cg := *g
		m.Groups[g.ExternalID] = &cg
	}
	for gid, list := range d.Members {
		if len(list) == 0 {
			delete(m.Members, gid)
			continue
		}
		m.Members[gid] = slices.Clone(list)
	}
}

// applyPlan applies a plan to a state the way directory.Store.Commit does.
func applyPlan(st *State, p *Plan, now time.Time, nextID *int64) error {
	newIDs := map[string]int64{}
	pid := func(r PersonRef) (int64, error) {
		if r.ID != 0 {
			if _, ok := st.People[r.ID]; !ok {
				return 0, fmt.Errorf("unknown person %d", r.ID)
			}
			return r.ID, nil
		}
		id, ok := newIDs[r.Key]
		if !ok {
			return 0, fmt.Errorf("unknown new person %q", r.Key)
		}
		return id, nil
	}
	for _, c := range p.Pools {
		if c.Op != OpDelete {
			st.Pools[c.Pool] = &Pool{Name: c.Pool, Seats: c.Seats, Waiting: c.Waiting}
		}
	}
	for _, c := range p.People {
		for _, u := range c.Unlink() {
			delete(st.Identities, u)
		}
	}
	// People are deleted right after the unlinks, as the SQLite store does,
	// so that an identity of a deleted person can move in the same plan.
	for _, c := range p.People {
		if c.Op == OpDelete {
			delete(st.People, c.Person.ID)
			for ref, id := range st.Identities {
				if id == c.Person.ID {
					delete(st.Identities, ref)
				}
			}
			for gid, ids := range st.Members {
				st.Members[gid] = removeID(ids, c.Person.ID)
			}
			for _, a := range st.Assignments {
				delete(a, c.Person.ID)
			}
		}
	}
	for _, c := range p.People {
		switch c.Op {
		case OpCreate:
			id := *nextID
			*nextID++
			newIDs[c.Person.Key] = id
			st.People[id] = &Person{ID: id, Key: c.Person.Key, Profile: c.Profile, Active: true, FirstSeen: InstantOf(now)}
		case OpUpdate, OpReactivate, OpDeactivate:
			per := st.People[c.Person.ID]
			if per == nil {
				return fmt.Errorf("unknown person %d", c.Person.ID)
			}
			if c.Op != OpDeactivate || len(c.Fields()) > 0 || c.OldKey() != "" {
				per.Profile, per.Key = c.Profile, c.Person.Key
			}
			switch c.Op {
			case OpReactivate:
				per.Active, per.DeactivatedAt = true, 0
			case OpDeactivate:
				per.Active, per.DeactivatedAt = false, InstantOf(now)
			}
		}
	}
	for _, c := range p.People {
		for _, l := range c.Link {
			id, err := pid(c.Person)
			if err != nil {
				return err
			}
			if _, dup := st.Identities[l]; dup {
				return fmt.Errorf("identity %v linked twice", l)
			}
			st.Identities[l] = id
		}
	}
	for _, c := range p.Groups {
		switch c.Op {
		case OpCreate:
			id := *nextID
			*nextID++
			st.Groups[c.Group] = &Group{ID: id, Ref: c.Group, Name: c.Name, Description: c.Description}
		case OpUpdate:
			g := st.Groups[c.Group]
			g.Name, g.Description = c.Name, c.Description
		case OpDelete:
			delete(st.Members, st.Groups[c.Group].ID)
			delete(st.Groups, c.Group)
		}
	}
	for _, c := range p.Members {
		g := st.Groups[c.Group.Ref]
		if g == nil {
			return fmt.Errorf("unknown group %v", c.Group.Ref)
		}
		id, err := pid(*c.Person)
		if err != nil {
			return err
		}
		if c.Op() == OpAdd {
			i, dup := slices.BinarySearch(st.Members[g.ID], id)
			if dup {
				return fmt.Errorf("member %d of %v added twice", id, c.Group.Ref)
			}
			st.Members[g.ID] = slices.Insert(st.Members[g.ID], i, id)
		} else {
			st.Members[g.ID] = removeID(st.Members[g.ID], id)
		}
	}
	for _, c := range p.Licenses {
		id, err := pid(*c.Person)
		if err != nil {
			return err
		}
		if c.Op == OpGrant {
			if st.Assignments[c.Pool] == nil {
				st.Assignments[c.Pool] = map[int64]Instant{}
			}
			if _, dup := st.Assignments[c.Pool][id]; dup {
				return fmt.Errorf("seat of %s granted twice to %d", c.Pool, id)
			}
			st.Assignments[c.Pool][id] = InstantOf(now)
		} else {
			delete(st.Assignments[c.Pool], id)
		}
	}
	for _, c := range p.Pools {
		if c.Op == OpDelete {
			delete(st.Pools, c.Pool)
			delete(st.Assignments, c.Pool)
		}
	}
	return nil
}

// fakeConnector serves a programmable snapshot.
type fakeConnector struct {
	result *connectors.Result
	err    error
	calls  int
}

func (f *fakeConnector) FetchAll(context.Context) (*connectors.Result, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	r := *f.result
	r.Full = true
	return &r, nil
}

// removeID removes id from the sorted ids.
func removeID(ids []int64, id int64) []int64 {
	if i, ok := slices.BinarySearch(ids, id); ok {
		return slices.Delete(ids, i, i+1)
	}
	return ids
}
