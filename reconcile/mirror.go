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
	// AddMembers and RemoveMembers hold the rows that change; the members of
	// deleted groups and of deleted users are among RemoveMembers.
	AddMembers    []connectors.Membership
	RemoveMembers []connectors.Membership
}

// Rows counts the rows the delta writes (cursors and timestamps aside).
func (d *MirrorDelta) Rows() int {
	return len(d.UpsertUsers) + len(d.DeleteUsers) + len(d.UpsertGroups) + len(d.DeleteGroups) +
		len(d.AddMembers) + len(d.RemoveMembers)
}

// Update applies a fetch result to the mirror in place and returns what
// changed. Records that did not change are not in the delta, so a fetch that
// finds nothing new writes no rows.
func (m *Mirror) Update(r *connectors.Result, now time.Time) *MirrorDelta {
	d := &MirrorDelta{Source: m.Source, Cursor: r.Cursor, Full: r.Full, FetchedAt: now}
	if r.Full {
		m.replace(r, d)
		m.FullAt = now
	} else {
		m.merge(r, d)
	}
	m.Cursor = r.Cursor
	m.FetchedAt = now
	d.sort()
	return d
}

func (m *Mirror) upsertUser(u *connectors.User, d *MirrorDelta) {
	if old, ok := m.Users[u.ExternalID]; ok && *old == *u {
		return
	}
	m.Users[u.ExternalID] = u
	d.UpsertUsers = append(d.UpsertUsers, u)
}

func (m *Mirror) upsertGroup(g *connectors.Group, d *MirrorDelta) {
	if old, ok := m.Groups[g.ExternalID]; ok && *old == *g {
		return
	}
	m.Groups[g.ExternalID] = g
	d.UpsertGroups = append(d.UpsertGroups, g)
}

func (m *Mirror) deleteGroup(gid string, d *MirrorDelta) {
	if _, ok := m.Groups[gid]; !ok {
		return
	}
	for uid := range m.Members[gid] {
		d.RemoveMembers = append(d.RemoveMembers, connectors.Membership{GroupID: gid, UserID: uid})
	}
	delete(m.Members, gid)
	delete(m.Groups, gid)
	d.DeleteGroups = append(d.DeleteGroups, gid)
}

// setMembers replaces a group's member list.
func (m *Mirror) setMembers(gid string, members []string, d *MirrorDelta) {
	old := m.Members[gid]
	next := make(map[string]struct{}, len(members))
	for _, uid := range members {
		next[uid] = struct{}{}
		if _, ok := old[uid]; !ok {
			d.AddMembers = append(d.AddMembers, connectors.Membership{GroupID: gid, UserID: uid})
		}
	}
	for uid := range old {
		if _, ok := next[uid]; !ok {
			d.RemoveMembers = append(d.RemoveMembers, connectors.Membership{GroupID: gid, UserID: uid})
		}
	}
	if len(next) == 0 {
		delete(m.Members, gid)
		return
	}
	m.Members[gid] = next
}

func (m *Mirror) replace(r *connectors.Result, d *MirrorDelta) {
	seenUsers := make(map[string]struct{}, len(r.Users))
	for i := range r.Users {
		u := &r.Users[i]
		seenUsers[u.ExternalID] = struct{}{}
		m.upsertUser(u, d)
	}
	for uid := range m.Users {
		if _, ok := seenUsers[uid]; !ok {
			delete(m.Users, uid)
			d.DeleteUsers = append(d.DeleteUsers, uid)
		}
	}
	seenGroups := make(map[string]struct{}, len(r.Groups))
	for i := range r.Groups {
		g := &r.Groups[i]
		seenGroups[g.ExternalID] = struct{}{}
		m.upsertGroup(g, d)
	}
	for gid := range m.Groups {
		if _, ok := seenGroups[gid]; !ok {
			m.deleteGroup(gid, d)
		}
	}
	for gid := range seenGroups {
		m.setMembers(gid, r.Members[gid], d)
	}
}

func (m *Mirror) merge(r *connectors.Result, d *MirrorDelta) {
	for i := range r.Users {
		m.upsertUser(&r.Users[i], d)
	}
	for i := range r.Groups {
		m.upsertGroup(&r.Groups[i], d)
	}
	for _, gid := range r.DeletedGroups {
		m.deleteGroup(gid, d)
	}
	if len(r.DeletedUsers) > 0 {
		gone := make(map[string]struct{}, len(r.DeletedUsers))
		for _, uid := range r.DeletedUsers {
			if _, ok := m.Users[uid]; ok {
				delete(m.Users, uid)
				d.DeleteUsers = append(d.DeleteUsers, uid)
			}
			gone[uid] = struct{}{}
		}
		for gid, members := range m.Members {
			for uid := range members {
				if _, ok := gone[uid]; ok {
					delete(members, uid)
					d.RemoveMembers = append(d.RemoveMembers, connectors.Membership{GroupID: gid, UserID: uid})
				}
			}
		}
	}
	for gid, members := range r.Members {
		if _, ok := m.Groups[gid]; ok {
			m.setMembers(gid, members, d)
		}
	}
	for _, ms := range r.RemovedMembers {
		if set, ok := m.Members[ms.GroupID]; ok {
			if _, in := set[ms.UserID]; in {
				delete(set, ms.UserID)
				d.RemoveMembers = append(d.RemoveMembers, ms)
			}
		}
	}
	for _, ms := range r.AddedMembers {
		if _, ok := m.Groups[ms.GroupID]; !ok {
			continue
		}
		set := m.Members[ms.GroupID]
		if set == nil {
			set = make(map[string]struct{})
			m.Members[ms.GroupID] = set
		}
		if _, in := set[ms.UserID]; !in {
			set[ms.UserID] = struct{}{}
			d.AddMembers = append(d.AddMembers, ms)
		}
	}
}

func (d *MirrorDelta) sort() {
	slices.SortFunc(d.UpsertUsers, func(a, b *connectors.User) int { return compareStr(a.ExternalID, b.ExternalID) })
	slices.Sort(d.DeleteUsers)
	slices.SortFunc(d.UpsertGroups, func(a, b *connectors.Group) int { return compareStr(a.ExternalID, b.ExternalID) })
	slices.Sort(d.DeleteGroups)
	byGroupUser := func(a, b connectors.Membership) int {
		if c := compareStr(a.GroupID, b.GroupID); c != 0 {
			return c
		}
		return compareStr(a.UserID, b.UserID)
	}
	slices.SortFunc(d.AddMembers, byGroupUser)
	slices.SortFunc(d.RemoveMembers, byGroupUser)
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
