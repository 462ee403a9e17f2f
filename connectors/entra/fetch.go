package entra

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"

	abs "github.com/microsoft/kiota-abstractions-go"
	graphgroups "github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	graphsp "github.com/microsoftgraph/msgraph-sdk-go/serviceprincipals"
	graphusers "github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/learnsync/learnsync/connectors"
)

// userSelect is every user property the connector maps. accountEnabled,
// department, employeeId and userType are returned only when selected.
var userSelect = []string{"id", "userPrincipalName", "mail", "givenName", "surname", "displayName",
	"jobTitle", "department", "employeeId", "accountEnabled", "userType"}

var groupSelect = []string{"displayName", "description", "members"}

// pageSize is asked for with Prefer: odata.maxpagesize and $top; Graph
// allows up to 999 for directory objects.
const pageSize = 999

// listWorkers bounds the parallel per-group member listings.
const listWorkers = 4

// lookupBatch is how many ids one $filter=id in (...) may hold.
const lookupBatch = 15

// fetch is the state of one FetchAll or FetchChanges.
type fetch struct {
	c        *Connector
	ctx      context.Context
	st       *stats
	mu       sync.Mutex
	progress connectors.Progress
	problems []connectors.Problem
}

func (c *Connector) newFetch(ctx context.Context) *fetch {
	ctx, st := withStats(ctx)
	return &fetch{c: c, ctx: ctx, st: st}
}

func (f *fetch) problem(object, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.problems = append(f.problems, connectors.Problem{Object: object, Reason: reason})
}

// page counts one page and reports progress.
func (f *fetch) page(users, groups int) {
	f.mu.Lock()
	f.progress.Pages++
	f.progress.Users += users
	f.progress.Groups += groups
	f.progress.Waits = int(f.st.waits.Load())
	p := f.progress
	f.mu.Unlock()
	f.c.opts.Hooks.OnProgress(p)
}

// emptyAnswer is the error for a page the SDK decoded to nothing (a JSON
// null): without it, the next line would dereference nil in a worker
// goroutine and take the whole process down.
func (f *fetch) emptyAnswer(what string) error {
	return &connectors.AnswerError{Kind: connectors.KindEmpty, Msg: fmt.Sprintf("entra source %q: %s: empty answer (no page)", f.c.opts.Name, what)}
}

func preferHeaders() *abs.RequestHeaders {
	h := abs.NewRequestHeaders()
	h.Add("Prefer", fmt.Sprintf("odata.maxpagesize=%d", pageSize))
	return h
}

// graphUser is a user record of a delta page.
type graphUser struct {
	id, upn, mail, given, surname, display, title, department, employeeID, userType string
	enabled                                                                         *bool
	// removed is the @removed reason ("changed" = soft-deleted, "deleted").
	removed string
	// raw is the Graph user object as sent, when rules read it.
	raw map[string]any
}

// graphGroup is a group merged from all its occurrences in a delta round.
type graphGroup struct {
	id         string
	name, desc *string
	removed    string
	// members maps user ids to present (true) or removed (false); the last
	// occurrence wins.
	members map[string]bool
	// memberChanged says the member list changed, users or not.
	memberChanged bool
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// raw reads a string from the SDK's untyped additional data, where JSON
// strings are *string.
func raw(v any) string {
	switch s := v.(type) {
	case *string:
		return str(s)
	case string:
		return s
	}
	return ""
}

func removedReason(extra map[string]any) (string, bool) {
	v, ok := extra["@removed"]
	if !ok {
		return "", false
	}
	reason := "deleted"
	if m, ok := v.(map[string]any); ok {
		if r := raw(m["reason"]); r != "" {
			reason = r
		}
	}
	return reason, true
}

// deltaPage is one page of a Graph delta query: users' or groups'.
type deltaPage[V any] interface {
	GetValue() []V
	GetOdataNextLink() *string
	GetOdataDeltaLink() *string
}

// deltaQuery is one delta query (/users/delta or /groups/delta) for
// deltaRound: kind names its records ("user", "group"), get asks for a
// page (link "" is the first page of a new round), take reads a record
// with an id and says whether it is one more object of the round, and
// page counts a page's new objects.
type deltaQuery[V interface{ GetId() *string }] struct {
	kind string
	get  func(link string) (deltaPage[V], error)
	take func(id string, v V) bool
	page func(n int)
}

// deltaRound pages through q from link ("" = a new round) to the
// deltaLink and returns it. Pages are followed by hand through WithUrl:
// the SDK's page iterator can lose the deltaLink (msgraph-sdk-go #272).
func deltaRound[V interface{ GetId() *string }](f *fetch, q deltaQuery[V], link string) (string, error) {
	what := "read " + q.kind + "s delta"
	page, err := q.get(link)
	seen := map[string]bool{}
	for {
		if err != nil {
			return "", f.c.classify(what, err)
		}
		if page == nil {
			return "", f.emptyAnswer(what)
		}
		n := 0
		for _, v := range page.GetValue() {
			if any(v) == nil {
				continue
			}
			id := str(v.GetId())
			if id == "" {
				f.problem(q.kind+" (no id)", "delta record without an id")
				continue
			}
			if q.take(id, v) {
				n++
			}
		}
		q.page(n)
		if next := str(page.GetOdataNextLink()); next != "" {
			if err := f.checkLink(what, next); err != nil {
				return "", err
			}
			if seen[next] {
				return "", fmt.Errorf("entra source %q: %s: nextLink repeats", f.c.opts.Name, what)
			}
			seen[next] = true
			page, err = q.get(next)
			continue
		}
		if delta := str(page.GetOdataDeltaLink()); delta != "" {
			if err := f.checkLink(what, delta); err != nil {
				return "", err
			}
			return delta, nil
		}
		return "", fmt.Errorf("entra source %q: %s: a page had neither nextLink nor deltaLink", f.c.opts.Name, what)
	}
}

// userRound pages through /users/delta from link ("" = a new round) to the
// deltaLink.
func (f *fetch) userRound(link string) (map[string]*graphUser, string, error) {
	b := f.c.graph.Users().Delta()
	conf := &graphusers.DeltaRequestBuilderGetRequestConfiguration{Headers: preferHeaders()}
	users := map[string]*graphUser{}
	delta, err := deltaRound(f, deltaQuery[models.Userable]{
		kind: "user",
		get: func(link string) (deltaPage[models.Userable], error) {
			if link != "" {
				return b.WithUrl(link).GetAsDeltaGetResponse(f.ctx, conf)
			}
			conf.QueryParameters = &graphusers.DeltaRequestBuilderGetQueryParameters{Select: f.c.userSelect()}
			defer func() { conf.QueryParameters = nil }()
			return b.GetAsDeltaGetResponse(f.ctx, conf)
		},
		take: func(id string, u models.Userable) bool {
			users[id] = graphUserOf(id, u)
			if !f.c.opts.Attrs.Empty() && users[id].removed == "" {
				users[id].raw = rawUser(u)
			}
			return true
		},
		page: func(n int) { f.page(n, 0) },
	}, link)
	if err != nil {
		return nil, "", err
	}
	return users, delta, nil
}

// graphUserOf reads the delta record u of the user id.
func graphUserOf(id string, u models.Userable) *graphUser {
	gu := &graphUser{id: id}
	if reason, ok := removedReason(u.GetAdditionalData()); ok {
		gu.removed = reason
		return gu
	}
	gu.upn = str(u.GetUserPrincipalName())
	gu.mail = str(u.GetMail())
	gu.given = str(u.GetGivenName())
	gu.surname = str(u.GetSurname())
	gu.display = str(u.GetDisplayName())
	gu.title = str(u.GetJobTitle())
	gu.department = str(u.GetDepartment())
	gu.employeeID = str(u.GetEmployeeId())
	gu.userType = str(u.GetUserType())
	gu.enabled = u.GetAccountEnabled()
	return gu
}

// groupRound pages through /groups/delta. A group with many members comes
// several times, each with part of members@delta: the parts are merged.
func (f *fetch) groupRound(link string) (map[string]*graphGroup, string, error) {
	b := f.c.graph.Groups().Delta()
	conf := &graphgroups.DeltaRequestBuilderGetRequestConfiguration{}
	groups := map[string]*graphGroup{}
	delta, err := deltaRound(f, deltaQuery[models.Groupable]{
		kind: "group",
		get: func(link string) (deltaPage[models.Groupable], error) {
			if link != "" {
				return b.WithUrl(link).GetAsDeltaGetResponse(f.ctx, conf)
			}
			conf.QueryParameters = &graphgroups.DeltaRequestBuilderGetQueryParameters{Select: groupSelect}
			defer func() { conf.QueryParameters = nil }()
			return b.GetAsDeltaGetResponse(f.ctx, conf)
		},
		take: func(id string, g models.Groupable) bool {
			gg, seen := groups[id]
			if !seen {
				gg = &graphGroup{id: id, members: map[string]bool{}}
				groups[id] = gg
			}
			f.mergeGroup(gg, g)
			return !seen
		},
		page: func(n int) { f.page(0, n) },
	}, link)
	if err != nil {
		return nil, "", err
	}
	return groups, delta, nil
}

// mergeGroup merges the delta record g into gg.
func (f *fetch) mergeGroup(gg *graphGroup, g models.Groupable) {
	extra := g.GetAdditionalData()
	if reason, ok := removedReason(extra); ok {
		gg.removed = reason
		return
	}
	gg.removed = ""
	if p := g.GetDisplayName(); p != nil {
		gg.name = p
	}
	if p := g.GetDescription(); p != nil {
		gg.desc = p
	}
	f.mergeMembers(gg, extra["members@delta"])
}

func (f *fetch) mergeMembers(g *graphGroup, v any) {
	if v == nil {
		return
	}
	list, ok := v.([]any)
	if !ok {
		f.problem("group "+g.id, "members@delta is not a list")
		return
	}
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		id := raw(m["id"])
		if id == "" {
			f.problem("group "+g.id, "member without an id")
			continue
		}
		g.memberChanged = true
		// Nested groups, devices and service principals are not people;
		// with transitive_groups the nested members are listed separately.
		if t := raw(m["@odata.type"]); t != "" && t != "#microsoft.graph.user" {
			continue
		}
		_, removed := m["@removed"]
		g.members[id] = !removed
	}
}

// mapUser maps a Graph user; it records a problem and returns false when
// the record cannot be used.
func (f *fetch) mapUser(u *graphUser) (connectors.User, bool) {
	if u.upn == "" {
		f.problem("user "+u.id, "no userPrincipalName")
		return connectors.User{}, false
	}
	email := u.mail
	if email == "" {
		email = u.upn
	}
	status := connectors.StatusActive
	if u.enabled != nil && !*u.enabled {
		status = connectors.StatusInactive
	}
	return connectors.User{
		ExternalID:     u.id,
		UserName:       u.upn,
		Email:          email,
		GivenName:      u.given,
		FamilyName:     u.surname,
		DisplayName:    u.display,
		Title:          u.title,
		Department:     u.department,
		EmployeeNumber: u.employeeID,
		Status:         status,
		Attrs:          f.c.opts.Attrs.Keep(func() map[string]any { return u.raw }),
	}, true
}

// typeOK applies user_type. Accounts without a userType are members.
func (f *fetch) typeOK(userType string) bool {
	switch f.c.cfg.UserType {
	case UserTypeMember:
		return userType == "" || strings.EqualFold(userType, "Member")
	case UserTypeGuest:
		return strings.EqualFold(userType, "Guest")
	}
	return true
}

// scope is what service_principal_id allows: users assigned directly or
// through a group, and the assigned groups.
type scope struct {
	users  map[string]bool
	groups map[string]bool
	types  map[string]string
	hash   string
}

// readScope reads the app's assignments and expands assigned groups to
// their direct members (Entra does not pass an app assignment on to nested
// groups).
func (f *fetch) readScope() (*scope, error) {
	sc := &scope{users: map[string]bool{}, groups: map[string]bool{}, types: map[string]string{}}
	b := f.c.graph.ServicePrincipals().ByServicePrincipalId(f.c.cfg.ServicePrincipalID).AppRoleAssignedTo()
	top := int32(pageSize)
	page, err := b.Get(f.ctx, &graphsp.ItemAppRoleAssignedToRequestBuilderGetRequestConfiguration{
		QueryParameters: &graphsp.ItemAppRoleAssignedToRequestBuilderGetQueryParameters{Top: &top}})
	for {
		if err != nil {
			err = f.c.classify("read app assignments of service_principal_id", err)
			if ae := connectors.AsAnswerError(err); ae != nil && ae.Kind == connectors.KindStatus && ae.Status == http.StatusNotFound {
				missing := *ae
				missing.Terminal = true
				missing.Msg = fmt.Sprintf("entra source %q: service_principal_id %s not found: %s", f.c.opts.Name, f.c.cfg.ServicePrincipalID, ae.Code)
				return nil, &missing
			}
			return nil, err
		}
		if page == nil {
			return nil, f.emptyAnswer("read app assignments of service_principal_id")
		}
		for _, a := range page.GetValue() {
			if a == nil || a.GetPrincipalId() == nil {
				continue
			}
			id := a.GetPrincipalId().String()
			switch str(a.GetPrincipalType()) {
			case "User":
				sc.users[id] = true
			case "Group":
				sc.groups[id] = true
			}
		}
		f.page(0, 0)
		next := str(page.GetOdataNextLink())
		if next == "" {
			break
		}
		if err := f.checkLink("read app role assignments", next); err != nil {
			return nil, err
		}
		page, err = b.WithUrl(next).Get(f.ctx, nil)
	}
	groupIDs := keys(sc.groups)
	members, err := f.listGroupUsers(groupIDs, false)
	if err != nil {
		return nil, err
	}
	for _, ms := range members {
		for _, m := range ms {
			sc.users[m.id] = true
			sc.types[m.id] = m.userType
		}
	}
	h := sha256.New()
	for _, id := range keys(sc.users) {
		fmt.Fprintf(h, "u:%s\n", id)
	}
	for _, id := range groupIDs {
		fmt.Fprintf(h, "g:%s\n", id)
	}
	sc.hash = hex.EncodeToString(h.Sum(nil)[:16])
	return sc, nil
}

type member struct{ id, userType string }

// listGroupUsers lists the user members of each group, direct or
// transitive, a few groups at a time.
func (f *fetch) listGroupUsers(groupIDs []string, transitive bool) (map[string][]member, error) {
	out := make(map[string][]member, len(groupIDs))
	var mu sync.Mutex
	err := f.each(groupIDs, func(ctx context.Context, gid string) error {
		ms, err := f.groupUsers(ctx, gid, transitive)
		if err != nil {
			return err
		}
		mu.Lock()
		out[gid] = ms
		mu.Unlock()
		return nil
	})
	return out, err
}

func (f *fetch) groupUsers(ctx context.Context, gid string, transitive bool) ([]member, error) {
	top := int32(pageSize)
	sel := []string{"id", "userType"}
	var page models.UserCollectionResponseable
	var err error
	var next func(string) (models.UserCollectionResponseable, error)
	item := f.c.graph.Groups().ByGroupId(gid)
	what := "read members of group " + gid
	if transitive {
		b := item.TransitiveMembers().GraphUser()
		what = "read transitive members of group " + gid
		page, err = b.Get(ctx, &graphgroups.ItemTransitiveMembersGraphUserRequestBuilderGetRequestConfiguration{
			QueryParameters: &graphgroups.ItemTransitiveMembersGraphUserRequestBuilderGetQueryParameters{Select: sel, Top: &top}})
		next = func(u string) (models.UserCollectionResponseable, error) { return b.WithUrl(u).Get(ctx, nil) }
	} else {
		b := item.Members().GraphUser()
		page, err = b.Get(ctx, &graphgroups.ItemMembersGraphUserRequestBuilderGetRequestConfiguration{
			QueryParameters: &graphgroups.ItemMembersGraphUserRequestBuilderGetQueryParameters{Select: sel, Top: &top}})
		next = func(u string) (models.UserCollectionResponseable, error) { return b.WithUrl(u).Get(ctx, nil) }
	}
	var out []member
	for {
		if err != nil {
			return nil, f.c.classify(what, err)
		}
		if page == nil {
			return nil, f.emptyAnswer(what)
		}
		for _, u := range page.GetValue() {
			if u == nil || str(u.GetId()) == "" {
				continue
			}
			out = append(out, member{id: str(u.GetId()), userType: str(u.GetUserType())})
		}
		f.page(0, 0)
		link := str(page.GetOdataNextLink())
		if link == "" {
			return out, nil
		}
		if err := f.checkLink("read group members", link); err != nil {
			return nil, err
		}
		page, err = next(link)
	}
}

// ancestors returns the groups that contain gid, directly or nested.
func (f *fetch) ancestors(ctx context.Context, gid string) ([]string, error) {
	b := f.c.graph.Groups().ByGroupId(gid).TransitiveMemberOf().GraphGroup()
	top := int32(pageSize)
	page, err := b.Get(ctx, &graphgroups.ItemTransitiveMemberOfGraphGroupRequestBuilderGetRequestConfiguration{
		QueryParameters: &graphgroups.ItemTransitiveMemberOfGraphGroupRequestBuilderGetQueryParameters{
			Select: []string{"id"}, Top: &top}})
	var out []string
	for {
		if err != nil {
			return nil, f.c.classify("read groups containing group "+gid, err)
		}
		if page == nil {
			return nil, f.emptyAnswer("read groups containing group " + gid)
		}
		for _, g := range page.GetValue() {
			if g != nil && str(g.GetId()) != "" {
				out = append(out, str(g.GetId()))
			}
		}
		f.page(0, 0)
		link := str(page.GetOdataNextLink())
		if link == "" {
			return out, nil
		}
		if err := f.checkLink("read groups containing a group", link); err != nil {
			return nil, err
		}
		page, err = b.WithUrl(link).Get(ctx, nil)
	}
}

// lookupTypes fills types with the userType of ids, 15 users a request.
// Users that no longer exist stay absent.
func (f *fetch) lookupTypes(ids []string, types map[string]string) error {
	for len(ids) > 0 {
		n := min(lookupBatch, len(ids))
		batch := ids[:n]
		ids = ids[n:]
		quoted := make([]string, 0, len(batch))
		for _, id := range batch {
			if !idPattern.MatchString(id) {
				continue
			}
			quoted = append(quoted, "'"+id+"'")
		}
		if len(quoted) == 0 {
			continue
		}
		filter := "id in (" + strings.Join(quoted, ",") + ")"
		b := f.c.graph.Users()
		page, err := b.Get(f.ctx, &graphusers.UsersRequestBuilderGetRequestConfiguration{
			QueryParameters: &graphusers.UsersRequestBuilderGetQueryParameters{Filter: &filter, Select: []string{"id", "userType"}}})
		for {
			if err != nil {
				return f.c.classify("look up user types", err)
			}
			if page == nil {
				return f.emptyAnswer("look up user types")
			}
			for _, u := range page.GetValue() {
				if u != nil && str(u.GetId()) != "" {
					types[str(u.GetId())] = str(u.GetUserType())
				}
			}
			link := str(page.GetOdataNextLink())
			if link == "" {
				break
			}
			if err := f.checkLink("look up user types", link); err != nil {
				return err
			}
			page, err = b.WithUrl(link).Get(f.ctx, nil)
		}
	}
	return nil
}

// each runs fn for every id on a few workers and returns the first error;
// after an error the remaining ids are skipped.
func (f *fetch) each(ids []string, fn func(ctx context.Context, id string) error) error {
	if err := connectors.Each(f.ctx, listWorkers, ids, fn); err != nil {
		return err
	}
	return f.ctx.Err()
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// full runs a new delta round and returns the complete state. sc is the
// scope when the caller has read it already.
func (f *fetch) full(sc *scope) (*connectors.Result, error) {
	f.problems = nil
	var err error
	if f.c.cfg.ServicePrincipalID != "" && sc == nil {
		if sc, err = f.readScope(); err != nil {
			return nil, err
		}
	}
	// Groups before users: a user who joins a group between the two rounds
	// is then in the users round, and the membership comes with the next
	// groups delta, instead of a membership to a user not yet read.
	groups, groupsLink, err := f.groupRound("")
	if err != nil {
		return nil, err
	}
	users, usersLink, err := f.userRound("")
	if err != nil {
		return nil, err
	}

	res := &connectors.Result{Full: true, Members: map[string][]string{}}
	kept := map[string]bool{}
	for _, id := range keys(users) {
		u := users[id]
		if u.removed != "" || !f.typeOK(u.userType) || sc != nil && !sc.users[id] {
			continue
		}
		cu, ok := f.mapUser(u)
		if !ok {
			continue
		}
		res.Users = append(res.Users, cu)
		kept[id] = true
	}
	var groupIDs []string
	for _, id := range keys(groups) {
		g := groups[id]
		if g.removed != "" || sc != nil && !sc.groups[id] {
			continue
		}
		if str(g.name) == "" {
			f.problem("group "+id, "no displayName")
			continue
		}
		res.Groups = append(res.Groups, connectors.Group{ExternalID: id, Name: *g.name, Description: str(g.desc)})
		groupIDs = append(groupIDs, id)
	}
	if f.c.cfg.TransitiveGroups {
		lists, err := f.listGroupUsers(groupIDs, true)
		if err != nil {
			return nil, err
		}
		for gid, ms := range lists {
			for _, m := range ms {
				if kept[m.id] {
					res.Members[gid] = append(res.Members[gid], m.id)
				}
			}
		}
	} else {
		for _, gid := range groupIDs {
			for m, present := range groups[gid].members {
				if present && kept[m] {
					res.Members[gid] = append(res.Members[gid], m)
				}
			}
		}
	}
	for gid := range res.Members {
		slices.Sort(res.Members[gid])
		res.Members[gid] = slices.Compact(res.Members[gid])
	}
	cur := cursor{Users: usersLink, Groups: groupsLink, Config: f.c.fingerprint}
	if sc != nil {
		cur.Scope = sc.hash
	}
	res.Cursor = f.c.encodeCursor(cur)
	f.finish(res)
	f.c.log.Info("entra: full round", "users", len(res.Users), "groups", len(res.Groups),
		"problems", len(res.Problems), "requests", res.Requests, "throttled", f.st.waits.Load())
	return res, nil
}

// changes continues the delta round of prev.
func (f *fetch) changes(prev cursor) (*connectors.Result, error) {
	var sc *scope
	if f.c.cfg.ServicePrincipalID != "" {
		var err error
		if sc, err = f.readScope(); err != nil {
			return nil, err
		}
		if sc.hash != prev.Scope {
			f.c.log.Info("entra: the app's assignments changed; starting a full round")
			return f.full(sc)
		}
	}
	// Groups before users, as in full.
	groups, groupsLink, err := f.groupRound(prev.Groups)
	if err != nil {
		return nil, err
	}
	users, usersLink, err := f.userRound(prev.Users)
	if err != nil {
		return nil, err
	}

	res := &connectors.Result{}
	types := map[string]string{}
	if sc != nil {
		for id, t := range sc.types {
			types[id] = t
		}
	}
	goneUsers := f.changedUsers(res, users, sc, types)
	changed, goneGroups := f.changedGroups(res, groups, sc)
	inScope := func(id string) bool {
		if goneUsers[id] || sc != nil && !sc.users[id] {
			return false
		}
		if f.c.cfg.UserType == UserTypeAll {
			return true
		}
		t, known := types[id]
		return known && f.typeOK(t)
	}
	if f.c.cfg.TransitiveGroups {
		err = f.transitiveChanges(res, changed, goneGroups, sc, types, inScope)
	} else {
		err = f.directChanges(res, groups, changed, sc, types, goneUsers, inScope)
	}
	if err != nil {
		return nil, err
	}

	cur := cursor{Users: usersLink, Groups: groupsLink, Config: f.c.fingerprint}
	if sc != nil {
		cur.Scope = sc.hash
	}
	res.Cursor = f.c.encodeCursor(cur)
	f.finish(res)
	f.c.log.Info("entra: incremental round", "users", len(res.Users), "deleted_users", len(res.DeletedUsers),
		"groups", len(res.Groups), "deleted_groups", len(res.DeletedGroups),
		"added_members", len(res.AddedMembers), "removed_members", len(res.RemovedMembers),
		"requests", res.Requests, "throttled", f.st.waits.Load())
	return res, nil
}

// changedUsers adds the changed users of a delta round to res and returns
// the ones that left the source. It records each user's type in types.
func (f *fetch) changedUsers(res *connectors.Result, users map[string]*graphUser, sc *scope, types map[string]string) map[string]bool {
	goneUsers := map[string]bool{}
	for _, id := range keys(users) {
		u := users[id]
		if u.removed != "" {
			res.DeletedUsers = append(res.DeletedUsers, id)
			goneUsers[id] = true
			continue
		}
		types[id] = u.userType
		if sc != nil && !sc.users[id] {
			// Outside the app's assignments, which have not changed: it was
			// never in the mirror.
			continue
		}
		if !f.typeOK(u.userType) {
			// Its user type changed: it leaves the source.
			res.DeletedUsers = append(res.DeletedUsers, id)
			goneUsers[id] = true
			continue
		}
		if cu, ok := f.mapUser(u); ok {
			res.Users = append(res.Users, cu)
		}
	}
	return goneUsers
}

// changedGroups adds the changed and deleted groups of a delta round to
// res. It returns the groups whose members changed and the deleted ones.
func (f *fetch) changedGroups(res *connectors.Result, groups map[string]*graphGroup, sc *scope) (changed []string, gone map[string]bool) {
	gone = map[string]bool{}
	for _, id := range keys(groups) {
		g := groups[id]
		if g.removed != "" {
			res.DeletedGroups = append(res.DeletedGroups, id)
			gone[id] = true
			continue
		}
		if sc != nil && !sc.groups[id] {
			continue
		}
		switch {
		case g.name == nil:
			// Only its members changed; the mirror keeps its name.
		case *g.name == "":
			f.problem("group "+id, "no displayName")
		default:
			res.Groups = append(res.Groups, connectors.Group{ExternalID: id, Name: *g.name, Description: str(g.desc)})
		}
		if g.memberChanged {
			changed = append(changed, id)
		}
	}
	return changed, gone
}

// directChanges adds the single membership changes of the changed groups
// to res, after looking up the type of members the round did not show.
func (f *fetch) directChanges(res *connectors.Result, groups map[string]*graphGroup, changed []string,
	sc *scope, types map[string]string, goneUsers map[string]bool, inScope func(string) bool) error {
	if f.c.cfg.UserType != UserTypeAll {
		var unknown []string
		for _, gid := range changed {
			for m, present := range groups[gid].members {
				if _, known := types[m]; present && !known && !goneUsers[m] && (sc == nil || sc.users[m]) {
					unknown = append(unknown, m)
				}
			}
		}
		slices.Sort(unknown)
		if err := f.lookupTypes(slices.Compact(unknown), types); err != nil {
			return err
		}
	}
	for _, gid := range changed {
		for _, m := range keys(groups[gid].members) {
			switch {
			case !groups[gid].members[m]:
				res.RemovedMembers = append(res.RemovedMembers, connectors.Membership{GroupID: gid, UserID: m})
			case inScope(m):
				res.AddedMembers = append(res.AddedMembers, connectors.Membership{GroupID: gid, UserID: m})
			}
		}
	}
	return nil
}

// transitiveChanges re-reads the transitive members of every group whose
// direct members changed and of every group containing one of those, and
// returns them as whole lists (Result.Members).
func (f *fetch) transitiveChanges(res *connectors.Result, changed []string, gone map[string]bool,
	sc *scope, types map[string]string, inScope func(string) bool) error {
	targets := map[string]bool{}
	var mu sync.Mutex
	err := f.each(changed, func(ctx context.Context, gid string) error {
		up, err := f.ancestors(ctx, gid)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		targets[gid] = true
		for _, a := range up {
			targets[a] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	var ids []string
	for _, gid := range keys(targets) {
		if !gone[gid] && (sc == nil || sc.groups[gid]) {
			ids = append(ids, gid)
		}
	}
	lists, err := f.listGroupUsers(ids, true)
	if err != nil {
		return err
	}
	res.Members = make(map[string][]string, len(lists))
	for _, gid := range ids {
		list := []string{}
		for _, m := range lists[gid] {
			types[m.id] = m.userType
			if inScope(m.id) {
				list = append(list, m.id)
			}
		}
		slices.Sort(list)
		res.Members[gid] = slices.Compact(list)
	}
	return nil
}

func (f *fetch) finish(res *connectors.Result) {
	sort.Slice(res.Users, func(i, j int) bool { return res.Users[i].ExternalID < res.Users[j].ExternalID })
	sort.Slice(res.Groups, func(i, j int) bool { return res.Groups[i].ExternalID < res.Groups[j].ExternalID })
	res.Problems = f.problems
	res.Requests = int(f.st.requests.Load())
}

// checkLink refuses a next or delta link that leaves graph_url: following it
// would send the access token to another server (the SDK's allowed-hosts
// check compares host names only, not ports).
func (f *fetch) checkLink(what, link string) error {
	if f.c.ownLink(link) {
		return nil
	}
	return fmt.Errorf("entra source %q: %s: Graph named a page outside graph_url (%.200s); not following it", f.c.opts.Name, what, link)
}
