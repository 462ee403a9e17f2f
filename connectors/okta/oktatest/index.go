package oktatest

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"time"
)

// The fake answers a delta query (`lastUpdated gt T`, and for groups
// `lastUpdated gt T or lastMembershipUpdated gt T`) from an index by time,
// so it costs what changed, not the size of the org: users are kept in
// (lastUpdated, id) order as they change, groups in (last change, id)
// order, rebuilt when a group changed. The answer is the same as a walk of
// every record: the index only picks the candidates, the expression still
// decides.

// Person is one user of AddPeopleFunc. It is stored as it is (no profile
// map), and its profile is login, email, firstName and lastName.
type Person struct {
	Login, Email, FirstName, LastName string
	// Status is ACTIVE if empty.
	Status string
}

// profile returns u's profile: its own map, or a new one made from its
// Person.
func (u *User) profile() map[string]any {
	if u.Profile != nil || u.person == nil {
		return u.Profile
	}
	p := u.person
	return map[string]any{"login": p.Login, "email": p.Email, "firstName": p.FirstName, "lastName": p.LastName}
}

// profileAttr reads one profile attribute of u.
func (u *User) profileAttr(key string) (any, bool) {
	if u.Profile != nil || u.person == nil {
		v, ok := u.Profile[key]
		return v, ok
	}
	switch key {
	case "login":
		return u.person.Login, true
	case "email":
		return u.person.Email, true
	case "firstName":
		return u.person.FirstName, true
	case "lastName":
		return u.person.LastName, true
	}
	return nil, false
}

// own gives u a profile map of its own, before it changes.
func (u *User) own() {
	if u.person != nil {
		u.Profile = u.profile()
		u.person = nil
	}
}

func byTime(a, b *User) int {
	return cmp.Or(a.LastUpdated.Compare(b.LastUpdated), strings.Compare(a.ID, b.ID))
}

func byID(a, b *User) int { return strings.Compare(a.ID, b.ID) }

// index adds a new user to the users' indexes.
func (s *Server) index(u *User) {
	s.indexTime(u)
	if n := len(s.order); s.order != nil && (n == 0 || s.order[n-1].ID < u.ID) {
		s.order = append(s.order, u)
	} else {
		s.order = nil
	}
}

// indexTime adds u to the index by lastUpdated.
func (s *Server) indexTime(u *User) {
	if n := len(s.byTime); n == 0 || byTime(s.byTime[n-1], u) < 0 {
		s.byTime = append(s.byTime, u)
	} else {
		i, _ := slices.BinarySearchFunc(s.byTime, u, byTime)
		s.byTime = slices.Insert(s.byTime, i, u)
	}
}

// unindex removes a user who goes from the users' indexes.
func (s *Server) unindex(u *User) {
	s.unindexTime(u)
	if i, ok := slices.BinarySearchFunc(s.order, u, byID); ok && s.order[i] == u {
		s.order = slices.Delete(s.order, i, i+1)
	} else {
		s.order = nil
	}
}

// unindexTime removes u from the index by lastUpdated, before its
// lastUpdated changes.
func (s *Server) unindexTime(u *User) {
	if i, ok := slices.BinarySearchFunc(s.byTime, u, byTime); ok && s.byTime[i] == u {
		s.byTime = slices.Delete(s.byTime, i, i+1)
	} else if i := slices.Index(s.byTime, u); i >= 0 {
		s.byTime = slices.Delete(s.byTime, i, i+1) // its stamp was changed behind the index
	}
}

// userOrder returns the users in id order.
func (s *Server) userOrder() []*User {
	if s.order == nil {
		s.order = slices.SortedFunc(func(yield func(*User) bool) {
			for _, u := range s.users {
				if !yield(u) {
					return
				}
			}
		}, byID)
	}
	return s.order
}

// usersSince returns, in id order, the users whose lastUpdated is t or
// later.
func (s *Server) usersSince(t time.Time) []*User {
	i := sort.Search(len(s.byTime), func(i int) bool { return !s.byTime[i].LastUpdated.Before(t) })
	return slices.SortedFunc(slices.Values(s.byTime[i:]), byID)
}

// groupChanged is the later of a group's lastUpdated and
// lastMembershipUpdated.
func groupChanged(g *Group) time.Time {
	if g.LastMembershipUpdated.After(g.LastUpdated) {
		return g.LastMembershipUpdated
	}
	return g.LastUpdated
}

// groupsChanged marks the groups' indexes stale after a group changed.
func (s *Server) groupsChanged() { s.gtime = nil }

// groupOrder returns the groups in id order.
func (s *Server) groupOrder() []*Group {
	if s.gorder == nil {
		s.gorder = make([]*Group, 0, len(s.groups))
		for _, g := range s.groups {
			s.gorder = append(s.gorder, g)
		}
		slices.SortFunc(s.gorder, func(a, b *Group) int { return strings.Compare(a.ID, b.ID) })
	}
	return s.gorder
}

// groupsSince returns, in id order, the groups whose lastUpdated or
// lastMembershipUpdated is t or later.
func (s *Server) groupsSince(t time.Time) []*Group {
	if s.gtime == nil {
		s.gtime = slices.Clone(s.groupOrder())
		slices.SortStableFunc(s.gtime, func(a, b *Group) int { return groupChanged(a).Compare(groupChanged(b)) })
	}
	i := sort.Search(len(s.gtime), func(i int) bool { return !groupChanged(s.gtime[i]).Before(t) })
	return slices.SortedFunc(slices.Values(s.gtime[i:]), func(a, b *Group) int { return strings.Compare(a.ID, b.ID) })
}

// timeFloor returns a time that every record matching e has in one of the
// attributes attrs, or at least one of them at or after (false if e says
// nothing of the kind).
func timeFloor(e expr, attrs ...string) (time.Time, bool) {
	switch e := e.(type) {
	case cmpExpr:
		if e.isTime && slices.Contains(attrs, e.attr) && (e.op == "gt" || e.op == "ge" || e.op == "eq") {
			return e.t, true
		}
	case andExpr:
		l, lok := timeFloor(e.l, attrs...)
		r, rok := timeFloor(e.r, attrs...)
		switch {
		case lok && rok:
			return later(l, r), true
		case lok:
			return l, true
		case rok:
			return r, true
		}
	case orExpr:
		l, lok := timeFloor(e.l, attrs...)
		r, rok := timeFloor(e.r, attrs...)
		if lok && rok {
			if l.Before(r) {
				return l, true
			}
			return r, true
		}
	}
	return time.Time{}, false
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// first drops the ok of a map lookup.
func first(v any, _ bool) any { return v }
