package reconcile

import (
	"maps"
	"slices"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// MirrorDelta is what a fetch changed in a source's mirror: the rows a store
// writes, together with the new cursor, in the same transaction.
type MirrorDelta struct {
	Source       string
	Cursor       string
	Full         bool
	FetchedAt    time.Time
	UpsertUsers  []*connectors.User
	DeleteUsers  []string
	UpsertGroups []*connectors.Group
	DeleteGroups []string
	// Members holds the complete, sorted member list of every remaining
	// group whose members changed. A store keeps a group's members together,
	// so that a large mirror loads and saves as a few thousand rows rather
	// than one row per membership.
	Members map[string][]string
	// MembersAdded and MembersRemoved count the memberships that changed.
	MembersAdded, MembersRemoved int
	// GroupHashes holds the GroupHash of every remaining group that the
	// delta upserts or whose members changed.
	GroupHashes map[string]int64
}

// Rows counts the records the delta changes (cursors and timestamps aside).
func (d *MirrorDelta) Rows() int {
	return len(d.UpsertUsers) + len(d.DeleteUsers) + len(d.UpsertGroups) + len(d.DeleteGroups) +
		d.MembersAdded + d.MembersRemoved
}

// Update applies a fetch result to the mirror in place and returns what
// changed. Records that did not change are not in the delta, so a fetch that
// finds nothing new writes no rows.
func (m *Mirror) Update(r *connectors.Result, now time.Time) *MirrorDelta {
	d := &MirrorDelta{Source: m.Source, Cursor: r.Cursor, Full: r.Full, FetchedAt: now}
	u := &updater{m: m, d: d, changed: make(map[string]bool)}
	if r.Full {
		u.replace(r)
		m.FullAt = now
	} else {
		u.merge(r)
	}
	m.Cursor = r.Cursor
	m.FetchedAt = now
	d.Members = make(map[string][]string, len(u.changed))
	for gid := range u.changed {
		if _, ok := m.Groups[gid]; !ok {
			continue // deleted: its row goes, members and all
		}
		list := make([]string, 0, len(m.Members[gid]))
		for uid := range m.Members[gid] {
			list = append(list, uid)
		}
		slices.Sort(list)
		d.Members[gid] = list
	}
	d.GroupHashes = make(map[string]int64, len(u.changed)+len(d.UpsertGroups))
	for gid := range u.changed {
		if g, ok := m.Groups[gid]; ok {
			d.GroupHashes[gid] = GroupHash(g, maps.Keys(m.Members[gid]))
		}
	}
	for _, g := range d.UpsertGroups {
		d.GroupHashes[g.ExternalID] = GroupHash(g, maps.Keys(m.Members[g.ExternalID]))
	}
	d.sort()
	return d
}

// updater applies one result to a mirror and records what changed.
type updater struct {
	m *Mirror
	d *MirrorDelta
	// changed names the groups whose member lists changed.
	changed map[string]bool
}

func (u *updater) add(gid, uid string) {
	set := u.m.Members[gid]
	if set == nil {
		set = make(map[string]struct{})
		u.m.Members[gid] = set
	}
	if _, in := set[uid]; !in {
		set[uid] = struct{}{}
		u.d.MembersAdded++
		u.changed[gid] = true
	}
}

func (u *updater) remove(gid, uid string) {
	set := u.m.Members[gid]
	if _, in := set[uid]; in {
		delete(set, uid)
		if len(set) == 0 {
			delete(u.m.Members, gid)
		}
		u.d.MembersRemoved++
		u.changed[gid] = true
	}
}

func (u *updater) upsertUser(x *connectors.User) {
	if old, ok := u.m.Users[x.ExternalID]; ok && *old == *x {
		return
	}
	u.m.Users[x.ExternalID] = x
	u.d.UpsertUsers = append(u.d.UpsertUsers, x)
}

func (u *updater) upsertGroup(g *connectors.Group) {
	if old, ok := u.m.Groups[g.ExternalID]; ok && *old == *g {
		return
	}
	u.m.Groups[g.ExternalID] = g
	u.d.UpsertGroups = append(u.d.UpsertGroups, g)
}

func (u *updater) deleteUser(uid string) {
	if _, ok := u.m.Users[uid]; !ok {
		return
	}
	delete(u.m.Users, uid)
	u.d.DeleteUsers = append(u.d.DeleteUsers, uid)
}

func (u *updater) deleteGroup(gid string) {
	if _, ok := u.m.Groups[gid]; !ok {
		return
	}
	u.d.MembersRemoved += len(u.m.Members[gid])
	delete(u.m.Members, gid)
	delete(u.m.Groups, gid)
	u.d.DeleteGroups = append(u.d.DeleteGroups, gid)
}

// setMembers replaces a group's member list.
func (u *updater) setMembers(gid string, members []string) {
	if len(u.m.Members[gid]) == 0 {
		// Nobody to remove (every group of a first import): add the list
		// to a set of its size rather than grow one and index it twice.
		if len(members) > 0 && u.m.Members[gid] == nil {
			u.m.Members[gid] = make(map[string]struct{}, len(members))
		}
		for _, uid := range members {
			u.add(gid, uid)
		}
		return
	}
	next := make(map[string]struct{}, len(members))
	for _, uid := range members {
		next[uid] = struct{}{}
		u.add(gid, uid)
	}
	if len(next) == len(u.m.Members[gid]) {
		return // every member is in the list: nobody to remove
	}
	for uid := range u.m.Members[gid] {
		if _, ok := next[uid]; !ok {
			u.remove(gid, uid)
		}
	}
}

func (u *updater) replace(r *connectors.Result) {
	m := u.m
	users := seen(r.Users, func(x *connectors.User) string { u.upsertUser(x); return x.ExternalID })
	for uid := range m.Users {
		if _, ok := users[uid]; !ok {
			u.deleteUser(uid)
		}
	}
	groups := seen(r.Groups, func(g *connectors.Group) string { u.upsertGroup(g); return g.ExternalID })
	for gid := range m.Groups {
		if _, ok := groups[gid]; !ok {
			u.deleteGroup(gid)
		}
	}
	for gid := range groups {
		u.setMembers(gid, r.Members[gid])
	}
}

// seen calls upsert with every record of a full fetch and returns the set
// of the ids it returns: the records the source still has.
func seen[T any](records []T, upsert func(*T) string) map[string]struct{} {
	ids := make(map[string]struct{}, len(records))
	for i := range records {
		ids[upsert(&records[i])] = struct{}{}
	}
	return ids
}

func (u *updater) merge(r *connectors.Result) {
	m := u.m
	for i := range r.Users {
		u.upsertUser(&r.Users[i])
	}
	for i := range r.Groups {
		u.upsertGroup(&r.Groups[i])
	}
	for _, gid := range r.DeletedGroups {
		u.deleteGroup(gid)
	}
	if len(r.DeletedUsers) > 0 {
		gone := make(map[string]struct{}, len(r.DeletedUsers))
		for _, uid := range r.DeletedUsers {
			u.deleteUser(uid)
			gone[uid] = struct{}{}
		}
		for gid, members := range m.Members {
			for uid := range members {
				if _, ok := gone[uid]; ok {
					u.remove(gid, uid)
				}
			}
		}
	}
	for gid, members := range r.Members {
		if _, ok := m.Groups[gid]; ok {
			u.setMembers(gid, members)
		}
	}
	for _, ms := range r.RemovedMembers {
		u.remove(ms.GroupID, ms.UserID)
	}
	for _, ms := range r.AddedMembers {
		if _, ok := m.Groups[ms.GroupID]; ok {
			u.add(ms.GroupID, ms.UserID)
		}
	}
}

func (d *MirrorDelta) sort() {
	slices.SortFunc(d.UpsertUsers, func(a, b *connectors.User) int { return compareStr(a.ExternalID, b.ExternalID) })
	slices.Sort(d.DeleteUsers)
	slices.SortFunc(d.UpsertGroups, func(a, b *connectors.Group) int { return compareStr(a.ExternalID, b.ExternalID) })
	slices.Sort(d.DeleteGroups)
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
