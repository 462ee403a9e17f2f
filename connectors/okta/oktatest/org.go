package oktatest

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/learnsync/learnsync/connectors/fault"
)

func (s *Server) newID(prefix string) string {
	s.seq++
	n := strconv.FormatInt(s.seq, 36)
	return prefix + strings.Repeat("0", 17-len(n)) + n
}

// fill gives an object without an id a new one with prefix, and its zero
// timestamps the org's time.
func (s *Server) fill(id *string, prefix string, stamps ...*time.Time) {
	if *id == "" {
		*id = s.newID(prefix)
	}
	now := s.stamp()
	for _, t := range stamps {
		if t.IsZero() {
			*t = now
		}
	}
}

// AddUser adds u and returns it with its id and timestamps filled in. An
// empty Status is ACTIVE.
func (s *Server) AddUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fill(&u.ID, "00u", &u.Created, &u.StatusChanged, &u.LastUpdated)
	u.Status = cmp.Or(u.Status, StatusActive)
	if u.Activated.IsZero() && u.Status != StatusStaged {
		u.Activated = u.Created
	}
	u.Profile = maps.Clone(u.Profile)
	if u.Profile == nil {
		u.Profile = map[string]any{}
	}
	u.person = nil
	s.put(&u)
	return copyUser(&u)
}

// put stores u, in place of any user with its id.
func (s *Server) put(u *User) {
	if old, ok := s.users[u.ID]; ok {
		s.unindex(old)
	}
	s.users[u.ID] = u
	s.index(u)
}

// AddPerson adds a user with login and email login, the names, and status,
// and returns the id.
func (s *Server) AddPerson(login, first, last, status string) string {
	return s.AddUser(User{Status: status, Profile: map[string]any{
		"login": login, "email": login, "firstName": first, "lastName": last,
	}}).ID
}

// AddPeople adds n ACTIVE users named user00001@example.com … and returns
// their ids.
func (s *Server) AddPeople(n int) []string {
	return s.AddPeopleFunc(n, func(i int) Person {
		login := fmt.Sprintf("user%05d@example.com", i+1)
		return Person{Login: login, Email: login, FirstName: "User", LastName: fmt.Sprintf("%05d", i+1)}
	})
}

// AddPeopleFunc adds n users, the i-th made from person(i), all created at
// the org's current time, and returns their ids in order. It is the bulk
// loader of large orgs: the users are stored as compact records (no
// profile map until one changes), in one allocation.
func (s *Server) AddPeopleFunc(n int, person func(i int) Person) []string {
	people := make([]Person, n)
	for i := range people {
		people[i] = person(i)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.stamp()
	users := make([]User, n)
	ids := s.newIDs("00u", n)
	for i := range users {
		u := &users[i]
		p := &people[i]
		*u = User{ID: ids[i], Status: cmp.Or(p.Status, StatusActive), Created: now, StatusChanged: now,
			LastUpdated: now, person: p}
		if u.Status != StatusStaged {
			u.Activated = now
		}
		s.put(u)
	}
	return ids
}

// newIDs returns n new ids with prefix, cut from one string.
func (s *Server) newIDs(prefix string, n int) []string {
	var b strings.Builder
	const size = 20
	b.Grow(n * size)
	for range n {
		b.WriteString(s.newID(prefix))
	}
	all := b.String()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = all[i*size : (i+1)*size]
	}
	return ids
}

func copyUser(u *User) User {
	c := *u
	c.Profile = maps.Clone(u.profile())
	c.person = nil
	return c
}

// User returns the user with id.
func (s *Server) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return User{}, false
	}
	return copyUser(u), true
}

// UpdateUser changes the user with id through fn and stamps lastUpdated
// (and statusChanged, if fn changed the status). It panics if there is no
// such user.
func (s *Server) UpdateUser(id string, fn func(*User)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.mustUser(id)
	before, id := u.Status, u.ID
	s.unindexTime(u)
	u.own()
	fn(u)
	now := s.stamp()
	u.LastUpdated = now
	s.indexTime(u)
	if u.ID != id {
		s.order = nil
	}
	if u.Status != before {
		s.statusChanged(u, now)
	}
}

func (s *Server) statusChanged(u *User, now time.Time) {
	u.StatusChanged = now
	switch u.Status {
	case StatusActive:
		if u.Activated.IsZero() {
			u.Activated = now
		}
	case StatusDeprovisioned:
		// Deactivating a user removes their app assignments.
		for _, a := range s.apps {
			delete(a.users, u.ID)
		}
	}
}

// SetUserStatus changes a user's status, as a lifecycle operation would.
func (s *Server) SetUserStatus(id, status string) {
	s.UpdateUser(id, func(u *User) { u.Status = status })
}

// SetProfile sets one profile attribute of a user (nil removes it).
func (s *Server) SetProfile(id, key string, value any) {
	s.UpdateUser(id, func(u *User) {
		if value == nil {
			delete(u.Profile, key)
		} else {
			u.Profile[key] = value
		}
	})
}

// DeleteUser deletes a user outright: it is gone from every listing, its
// groups' lastMembershipUpdated moves and its app assignments go.
func (s *Server) DeleteUser(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unindex(s.mustUser(id))
	delete(s.users, id)
	now := s.stamp()
	for gid, m := range s.members {
		if i, ok := slices.BinarySearch(m, id); ok {
			s.members[gid] = slices.Delete(m, i, i+1)
			s.groups[gid].LastMembershipUpdated = now
			s.groupsChanged()
		}
	}
	for _, a := range s.apps {
		delete(a.users, id)
	}
}

func (s *Server) mustUser(id string) *User { return fault.Find(s.users, "oktatest: no user", id) }

func (s *Server) mustGroup(id string) *Group { return fault.Find(s.groups, "oktatest: no group", id) }

// AddGroup adds g and returns it with its id, type and timestamps filled in.
func (s *Server) AddGroup(g Group) Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fill(&g.ID, "00g", &g.Created, &g.LastUpdated, &g.LastMembershipUpdated)
	g.Type = cmp.Or(g.Type, GroupTypeOkta)
	s.groups[g.ID] = &g
	s.members[g.ID] = nil
	s.gorder, s.gtime = nil, nil
	return g
}

// UpdateGroup changes a group's profile through fn and stamps lastUpdated.
func (s *Server) UpdateGroup(id string, fn func(*Group)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup(id)
	fn(g)
	g.LastUpdated = s.stamp()
	s.gorder, s.gtime = nil, nil // fn may have changed the id too
}

// DeleteGroup deletes a group outright.
func (s *Server) DeleteGroup(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustGroup(id)
	delete(s.groups, id)
	delete(s.members, id)
	s.gorder, s.gtime = nil, nil
	for _, a := range s.apps {
		delete(a.groups, id)
	}
}

// AddMember adds users to a group and stamps its lastMembershipUpdated.
func (s *Server) AddMember(groupID string, userIDs ...string) { s.member(groupID, userIDs, true) }

// RemoveMember removes users from a group and stamps its
// lastMembershipUpdated.
func (s *Server) RemoveMember(groupID string, userIDs ...string) {
	s.member(groupID, userIDs, false)
}

// member adds users to a group's sorted member list, or removes them.
func (s *Server) member(groupID string, userIDs []string, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.mustGroup(groupID)
	for _, id := range userIDs {
		if add {
			s.mustUser(id)
		}
		m := s.members[groupID]
		switch i, ok := slices.BinarySearch(m, id); {
		case add && !ok:
			s.members[groupID] = slices.Insert(m, i, id)
		case !add && ok:
			s.members[groupID] = slices.Delete(m, i, i+1)
		}
	}
	g.LastMembershipUpdated = s.stamp()
	s.groupsChanged()
}

// Members returns the ids of a group's members, sorted.
func (s *Server) Members(groupID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.members[groupID]) == 0 {
		return nil
	}
	return slices.Clone(s.members[groupID])
}

// AddApp adds an app and returns its id.
func (s *Server) AddApp(label string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.newID("0oa")
	s.apps[id] = &app{id: id, label: label, users: make(map[string]time.Time), groups: make(map[string]time.Time)}
	return id
}

func (s *Server) mustApp(id string) *app {
	a, ok := s.apps[id]
	if !ok {
		panic("oktatest: no app " + id)
	}
	return a
}

// AssignUser assigns users to an app directly.
func (s *Server) AssignUser(appID string, userIDs ...string) { s.assign(appID, userIDs, false, true) }

// UnassignUser removes users' direct assignments to an app.
func (s *Server) UnassignUser(appID string, userIDs ...string) {
	s.assign(appID, userIDs, false, false)
}

// AssignGroup assigns groups to an app: their members get the app.
func (s *Server) AssignGroup(appID string, groupIDs ...string) { s.assign(appID, groupIDs, true, true) }

// UnassignGroup removes groups' assignments to an app.
func (s *Server) UnassignGroup(appID string, groupIDs ...string) {
	s.assign(appID, groupIDs, true, false)
}

// assign adds users or groups to an app's assignments, or removes them.
func (s *Server) assign(appID string, ids []string, groups, add bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.mustApp(appID)
	assigned := a.users
	if groups {
		assigned = a.groups
	}
	for _, id := range ids {
		switch {
		case !add:
			delete(assigned, id)
			continue
		case groups:
			s.mustGroup(id)
		default:
			s.mustUser(id)
		}
		assigned[id] = s.stamp()
	}
}

// SetAppUsersDirectOnly makes /apps/{id}/users list only users assigned
// directly. Real Okta (and the default) also lists users assigned through a
// group, with scope GROUP; this checks that a client does not rely on it.
func (s *Server) SetAppUsersDirectOnly(direct bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.directApp = direct
}
