package oktatest

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// oktaTime formats t the way Okta does.
func oktaTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func (s *Server) link(kind, id string) map[string]any {
	return map[string]any{"href": s.Server.URL + "/api/v1/" + kind + "/" + id}
}

func (s *Server) userJSON(u *User) map[string]any {
	m := map[string]any{
		"status":          u.Status,
		"created":         oktaTime(u.Created),
		"activated":       oktaTime(u.Activated),
		"statusChanged":   oktaTime(u.StatusChanged),
		"lastLogin":       nil,
		"lastUpdated":     oktaTime(u.LastUpdated),
		"passwordChanged": nil,
		"type":            map[string]any{"id": "oty1fakeoktatest0000"},
		"profile":         u.profile(),
		"credentials":     map[string]any{"provider": map[string]any{"type": "OKTA", "name": "OKTA"}},
		"_links":          map[string]any{"self": s.link("users", u.ID)},
	}
	if !u.OmitID {
		m["id"] = u.ID
	}
	return m
}

func (s *Server) groupJSON(g *Group) map[string]any {
	class := "okta:user_group"
	if g.Type == GroupTypeApp {
		class = "okta:windows_security_principal"
	}
	return map[string]any{
		"id":                    g.ID,
		"created":               oktaTime(g.Created),
		"lastUpdated":           oktaTime(g.LastUpdated),
		"lastMembershipUpdated": oktaTime(g.LastMembershipUpdated),
		"objectClass":           []string{class},
		"type":                  g.Type,
		"profile":               map[string]any{"name": g.Name, "description": g.Description},
		"_links":                map[string]any{"self": s.link("groups", g.ID), "users": map[string]any{"href": s.Server.URL + "/api/v1/groups/" + g.ID + "/users"}},
	}
}

// attr is an attribute's value for search and filter: a string or a time,
// and whether the object has it.
type attr struct {
	s      string
	t      time.Time
	isTime bool
	ok     bool
}

func text(s string) attr                            { return attr{s: s, ok: true} }
func when(t time.Time, ok bool) attr                { return attr{t: t, isTime: true, ok: ok} }
func whenSet(t time.Time) attr                      { return when(t, !t.IsZero()) }
func (a attr) get() (string, time.Time, bool, bool) { return a.s, a.t, a.isTime, a.ok }

// attrs is a getter of the attributes in m, and of more (if not nil) for
// the others.
func attrs(m map[string]attr, more getter) getter {
	return func(name string) (string, time.Time, bool, bool) {
		if a, ok := m[name]; ok {
			return a.get()
		}
		if more != nil {
			return more(name)
		}
		return attr{}.get()
	}
}

// userAttr reads a user attribute for search and filter.
func userAttr(u *User) getter {
	return attrs(map[string]attr{
		"id": text(u.ID), "status": text(u.Status), "type.id": text("oty1fakeoktatest0000"),
		"created": whenSet(u.Created), "activated": whenSet(u.Activated),
		"statusChanged": whenSet(u.StatusChanged), "lastUpdated": whenSet(u.LastUpdated),
	}, func(name string) (string, time.Time, bool, bool) {
		if key, ok := strings.CutPrefix(name, "profile."); ok {
			v, ok := u.profileAttr(key)
			if ok && v != nil && v != "" {
				return text(fmt.Sprint(v)).get()
			}
		}
		return attr{}.get()
	})
}

// groupAttr reads a group attribute for search and filter.
func groupAttr(g *Group) getter {
	return attrs(map[string]attr{
		"id":                    text(g.ID),
		"type":                  text(g.Type),
		"profile.name":          text(g.Name),
		"profile.description":   {s: g.Description, ok: g.Description != ""},
		"created":               when(g.Created, true),
		"lastUpdated":           when(g.LastUpdated, true),
		"lastMembershipUpdated": when(g.LastMembershipUpdated, true),
	}, nil)
}

// userFilterAttrs are what Okta's users `filter` accepts; every other
// attribute needs `search`.
var userFilterAttrs = map[string]bool{"status": true, "lastUpdated": true, "id": true,
	"profile.login": true, "profile.email": true, "profile.firstName": true, "profile.lastName": true}

var groupFilterAttrs = map[string]bool{"type": true, "id": true, "lastUpdated": true, "lastMembershipUpdated": true}

func validFilter(clauses []clause, attrs map[string]bool) bool {
	for _, c := range clauses {
		if !attrs[c.attr] {
			return false
		}
		switch c.op {
		case "eq":
		case "gt", "ge", "lt", "le":
			if c.attr != "lastUpdated" && c.attr != "lastMembershipUpdated" {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	search, filter, prefix := q.Get("search"), q.Get("filter"), q.Get("q")
	if search != "" && filter != "" {
		writeError(w, http.StatusBadRequest, "E0000031", "Invalid search criteria.", "search and filter cannot be combined")
		return
	}
	var (
		match      func(*User) bool
		hideDeprov = true
		paged      = true
		e          expr
		err        error
		clauses    []clause
	)
	switch {
	case search != "":
		e, _, err = parseExpr(search)
		if err != nil {
			writeError(w, http.StatusBadRequest, "E0000031", "Invalid search criteria.", err.Error())
			return
		}
		match = func(u *User) bool { return e.eval(userAttr(u)) }
		hideDeprov = false
	case filter != "":
		e, clauses, err = parseExpr(filter)
		if err != nil || !validFilter(clauses, userFilterAttrs) {
			writeError(w, http.StatusBadRequest, "E0000031", "Invalid search criteria.", "filter: unsupported expression")
			return
		}
		match = func(u *User) bool { return e.eval(userAttr(u)) }
		for _, c := range clauses {
			if c.attr == "status" {
				hideDeprov = false
			}
		}
	case prefix != "":
		p := strings.ToLower(prefix)
		match = func(u *User) bool {
			for _, k := range []string{"login", "email", "firstName", "lastName"} {
				if v, ok := first(u.profileAttr(k)).(string); ok && strings.HasPrefix(strings.ToLower(v), p) {
					return true
				}
			}
			return false
		}
		paged = false // q= does not page: it returns the first `limit` matches.
	default:
		match = func(*User) bool { return true }
	}
	limit, after, ok := pageParams(w, r, 200, 200, paged)
	if !ok {
		return
	}
	// Walk the users in id order from the cursor and stop one past the
	// page: a page costs the same however large the org is. A delta query
	// walks only the users its lastUpdated bound lets through.
	var users []*User
	if t, ok := timeFloor(e, "lastUpdated"); ok {
		users = s.usersSince(t)
	} else {
		users = s.userOrder()
	}
	var list []*User
	for i := sort.Search(len(users), func(i int) bool { return users[i].ID >= after }); i < len(users) && len(list) <= limit; i++ {
		u := users[i]
		if u.ID == after || (hideDeprov && u.Status == StatusDeprovisioned) {
			continue
		}
		if match(u) {
			list = append(list, u)
		}
	}
	page := writePage(w, r, s.Server.URL, list, func(u *User) string { return u.ID }, limit, paged)
	out := make([]map[string]any, len(page))
	for i, u := range page {
		out[i] = s.userJSON(u)
	}
	writeJSON(w, out)
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	match := func(*Group) bool { return true }
	var e expr
	switch {
	case q.Get("filter") != "":
		var clauses []clause
		var err error
		e, clauses, err = parseExpr(q.Get("filter"))
		if err != nil || !validFilter(clauses, groupFilterAttrs) {
			writeError(w, http.StatusBadRequest, "E0000031", "Invalid search criteria.", "filter: unsupported expression")
			return
		}
		match = func(g *Group) bool { return e.eval(groupAttr(g)) }
	case q.Get("search") != "":
		var err error
		e, _, err = parseExpr(q.Get("search"))
		if err != nil {
			writeError(w, http.StatusBadRequest, "E0000031", "Invalid search criteria.", err.Error())
			return
		}
		match = func(g *Group) bool { return e.eval(groupAttr(g)) }
	case q.Get("q") != "":
		p := strings.ToLower(q.Get("q"))
		match = func(g *Group) bool { return strings.HasPrefix(strings.ToLower(g.Name), p) }
	}
	var groups []*Group
	if t, ok := timeFloor(e, "lastUpdated", "lastMembershipUpdated"); ok {
		groups = s.groupsSince(t)
	} else {
		groups = s.groupOrder()
	}
	var list []*Group
	for _, g := range groups {
		if match(g) {
			list = append(list, g)
		}
	}
	writeList(w, r, s.Server.URL, list, func(g *Group) string { return g.ID }, 10000, 10000, func(_ int, g *Group) map[string]any {
		return s.groupJSON(g)
	})
}

func (s *Server) listGroupUsers(w http.ResponseWriter, r *http.Request, groupID string) {
	if _, ok := s.groups[groupID]; !ok {
		writeNotFound(w, groupID)
		return
	}
	var list []*User
	for _, id := range s.members[groupID] {
		if u, ok := s.users[id]; ok {
			list = append(list, u)
		}
	}
	writeList(w, r, s.Server.URL, list, func(u *User) string { return u.ID }, 1000, 1000, func(_ int, u *User) map[string]any {
		return s.userJSON(u)
	})
}

type appUser struct {
	user     *User
	scope    string
	assigned time.Time
}

func (s *Server) listAppUsers(w http.ResponseWriter, r *http.Request, appID string) {
	a, ok := s.apps[appID]
	if !ok {
		writeNotFound(w, appID)
		return
	}
	byID := make(map[string]*appUser)
	for id, at := range a.users {
		if u, ok := s.users[id]; ok {
			byID[id] = &appUser{user: u, scope: "USER", assigned: at}
		}
	}
	if !s.directApp {
		for gid, at := range a.groups {
			for _, id := range s.members[gid] {
				u, ok := s.users[id]
				if !ok || u.Status == StatusDeprovisioned || byID[id] != nil {
					continue
				}
				byID[id] = &appUser{user: u, scope: "GROUP", assigned: at}
			}
		}
	}
	list := slices.Collect(maps.Values(byID))
	sort.Slice(list, func(i, j int) bool { return list[i].user.ID < list[j].user.ID })
	writeList(w, r, s.Server.URL, list, func(u *appUser) string { return u.user.ID }, 50, 500, func(_ int, au *appUser) map[string]any {
		u := au.user
		return map[string]any{
			"id":              u.ID,
			"externalId":      nil,
			"created":         oktaTime(au.assigned),
			"lastUpdated":     oktaTime(au.assigned),
			"scope":           au.scope,
			"status":          "ACTIVE",
			"statusChanged":   oktaTime(au.assigned),
			"passwordChanged": nil,
			"syncState":       "DISABLED",
			"credentials":     map[string]any{"userName": first(u.profileAttr("login"))},
			"profile":         map[string]any{},
			"_links": map[string]any{
				"app":  map[string]any{"href": s.Server.URL + "/api/v1/apps/" + appID},
				"user": s.link("users", u.ID),
			},
		}
	})
}

func (s *Server) listAppGroups(w http.ResponseWriter, r *http.Request, appID string) {
	a, ok := s.apps[appID]
	if !ok {
		writeNotFound(w, appID)
		return
	}
	ids := slices.Sorted(maps.Keys(a.groups))
	writeList(w, r, s.Server.URL, ids, func(id string) string { return id }, 20, 200, func(i int, id string) map[string]any {
		return map[string]any{
			"id":          id,
			"lastUpdated": oktaTime(a.groups[id]),
			"priority":    i,
			"profile":     map[string]any{},
			"_links": map[string]any{
				"app":   map[string]any{"href": s.Server.URL + "/api/v1/apps/" + appID},
				"group": s.link("groups", id),
			},
		}
	})
}

// writeList answers one page of items (see paginate), each rendered by
// render with its index in the page.
func writeList[T any](w http.ResponseWriter, r *http.Request, base string, items []T, id func(T) string, defLimit, maxLimit int, render func(int, T) map[string]any) {
	page, ok := paginate(w, r, base, items, id, defLimit, maxLimit, true)
	if !ok {
		return
	}
	out := make([]map[string]any, len(page))
	for i, item := range page {
		out[i] = render(i, item)
	}
	writeJSON(w, out)
}

// encodeCursor makes an opaque `after` cursor: the client must pass it back
// as it is, never build one.
func encodeCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("oktatest:" + id))
}

func decodeCursor(c string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", false
	}
	return strings.CutPrefix(string(b), "oktatest:")
}

// paginate cuts one page out of items (sorted by id) after the request's
// cursor and writes the Link headers.
func paginate[T any](w http.ResponseWriter, r *http.Request, base string, items []T, id func(T) string, defLimit, maxLimit int, paged bool) ([]T, bool) {
	limit, after, ok := pageParams(w, r, defLimit, maxLimit, paged)
	if !ok {
		return nil, false
	}
	if after != "" {
		i := sort.Search(len(items), func(i int) bool { return id(items[i]) > after })
		items = items[i:]
	}
	return writePage(w, r, base, items, id, limit, paged), true
}

// pageParams reads limit (default defLimit, at most maxLimit) and the id
// the after cursor stands for.
func pageParams(w http.ResponseWriter, r *http.Request, defLimit, maxLimit int, paged bool) (limit int, after string, ok bool) {
	q := r.URL.Query()
	limit = defLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "E0000001", "Api validation failed: limit", "limit: must be a positive number")
			return 0, "", false
		}
		limit = min(n, maxLimit)
	}
	if c := q.Get("after"); c != "" && paged {
		last, ok := decodeCursor(c)
		if !ok {
			writeError(w, http.StatusBadRequest, "E0000001", "Api validation failed: after", "after: invalid cursor")
			return 0, "", false
		}
		after = last
	}
	return limit, after, true
}

// writePage cuts items (those after the cursor, in id order) to limit and
// writes the Link headers: self and, if more items follow, next, as two
// separate header lines as Okta sends them.
func writePage[T any](w http.ResponseWriter, r *http.Request, base string, items []T, id func(T) string, limit int, paged bool) []T {
	self := base + r.URL.Path
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	w.Header().Add("Link", "<"+self+">; rel=\"self\"")
	if len(items) > limit {
		items = items[:limit]
		if paged {
			nq := r.URL.Query()
			nq.Set("limit", strconv.Itoa(limit))
			nq.Set("after", encodeCursor(id(items[len(items)-1])))
			w.Header().Add("Link", "<"+base+r.URL.Path+"?"+nq.Encode()+">; rel=\"next\"")
		}
	}
	return items
}
