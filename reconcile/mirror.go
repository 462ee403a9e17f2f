package reconcile

import (
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
	u.flush()
	m.Cursor = r.Cursor
	m.FetchedAt = now
	// The delta shares the mirror's lists: Update never edits a list in
	// place, it replaces it.
	d.Members = make(map[string][]string, len(u.changed))
	d.GroupHashes = make(map[string]int64, len(u.changed)+len(d.UpsertGroups))
	for gid := range u.changed {
		g, ok := m.Groups[gid]
		if !ok {
			continue // deleted: its row goes, members and all
		}
		list := m.Members[gid]
		if list == nil {
			list = []string{}
		}
		d.Members[gid] = list
		d.GroupHashes[gid] = GroupHash(g, slices.Values(list))
	}
	for _, g := range d.UpsertGroups {
		d.GroupHashes[g.ExternalID] = GroupHash(g, slices.Values(m.Members[g.ExternalID]))
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
	// edits are the single adds (true) and removals (false) of members
	// not yet merged into a group's sorted list: a delta adds members one
	// at a time, and inserting each into a large group's list would move
	// the whole list every time.
	edits map[string]map[string]bool
}

// has reports whether uid is a member of gid, pending edits included.
func (u *updater) has(gid, uid string) bool {
	if in, ok := u.edits[gid][uid]; ok {
		return in
	}
	_, in := slices.BinarySearch(u.m.Members[gid], uid)
	return in
}

func (u *updater) edit(gid, uid string, in bool) {
	e := u.edits[gid]
	if e == nil {
		if u.edits == nil {
			u.edits = make(map[string]map[string]bool)
		}
		e = make(map[string]bool)
		u.edits[gid] = e
	}
	e[uid] = in
	u.changed[gid] = true
}

func (u *updater) add(gid, uid string) {
	if !u.has(gid, uid) {
		u.edit(gid, uid, true)
		u.d.MembersAdded++
	}
}

func (u *updater) remove(gid, uid string) {
	if u.has(gid, uid) {
		u.edit(gid, uid, false)
		u.d.MembersRemoved++
	}
}

// flushGroup merges the pending edits of a group into a new sorted list.
func (u *updater) flushGroup(gid string) {
	e, ok := u.edits[gid]
	if !ok {
		return
	}
	delete(u.edits, gid)
	old := u.m.Members[gid]
	list := make([]string, 0, len(old)+len(e))
	for _, uid := range old {
		if in, edited := e[uid]; !edited || in {
			list = append(list, uid)
		}
	}
	for uid, in := range e {
		if _, was := slices.BinarySearch(old, uid); in && !was {
			list = append(list, uid)
		}
	}
	slices.Sort(list)
	u.setList(gid, list)
}

// flush merges every pending edit.
func (u *updater) flush() {
	for gid := range u.edits {
		u.flushGroup(gid)
	}
}

// setList makes list (sorted, without repeats) the members of gid.
func (u *updater) setList(gid string, list []string) {
	if len(list) == 0 {
		delete(u.m.Members, gid)
		return
	}
	u.m.Members[gid] = slices.Clip(list)
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
	u.flushGroup(gid)
	u.d.MembersRemoved += len(u.m.Members[gid])
	delete(u.m.Members, gid)
	delete(u.m.Groups, gid)
	u.d.DeleteGroups = append(u.d.DeleteGroups, gid)
}

// setMembers replaces a group's member list.
func (u *updater) setMembers(gid string, members []string) {
	u.flushGroup(gid)
	next := memberSet(members)
	old := u.m.Members[gid]
	added, removed := sortedDiff(old, next)
	if added+removed == 0 {
		return
	}
	u.d.MembersAdded += added
	u.d.MembersRemoved += removed
	u.changed[gid] = true
	u.setList(gid, next)
}

// sortedDiff counts the ids of next not in old and those of old not in
// next; both are sorted, without repeats.
func sortedDiff(old, next []string) (added, removed int) {
	i, j := 0, 0
	for i < len(old) && j < len(next) {
		switch {
		case old[i] == next[j]:
			i++
			j++
		case old[i] < next[j]:
			removed++
			i++
		default:
			added++
			j++
		}
	}
	return added + len(next) - j, removed + len(old) - i
}

func (u *updater) replace(r *connectors.Result) {
	m := u.m
	if len(m.Users) == 0 && len(m.Groups) == 0 {
		// An empty mirror (a first import): nothing to delete, and the
		// sizes are known.
		m.Users = make(map[string]*connectors.User, len(r.Users))
		m.Groups = make(map[string]*connectors.Group, len(r.Groups))
		u.d.UpsertUsers = make([]*connectors.User, 0, len(r.Users))
		u.d.UpsertGroups = make([]*connectors.Group, 0, len(r.Groups))
		for i := range r.Users {
			u.upsertUser(&r.Users[i])
		}
		for i := range r.Groups {
			u.upsertGroup(&r.Groups[i])
		}
		for gid := range m.Groups {
			u.setMembers(gid, r.Members[gid])
		}
		return
	}
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
			for _, uid := range members {
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

// memberSet returns a group's member ids sorted and without repeats: the
// list itself when it already is (a connector's result hands its lists
// over; the file source sorts them), a sorted copy otherwise. A mirror
// never changes a list in place.
func memberSet(members []string) []string {
	for i := 1; i < len(members); i++ {
		if members[i-1] >= members[i] {
			return slices.Compact(slices.Sorted(slices.Values(members)))
		}
	}
	return slices.Clip(members)
}
