package okta

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/okta/okta-sdk-golang/v2/okta"
	"github.com/okta/okta-sdk-golang/v2/okta/query"

	"github.com/learnsync/learnsync/connectors"
)

// statuses maps Okta's user statuses. A status not in this map is skipped
// and reported as a problem, so that a status Okta adds later is noticed
// rather than guessed.
var statuses = map[string]connectors.Status{
	"ACTIVE":           connectors.StatusActive,
	"PROVISIONED":      connectors.StatusActive,
	"RECOVERY":         connectors.StatusActive,
	"PASSWORD_EXPIRED": connectors.StatusActive,
	"LOCKED_OUT":       connectors.StatusActive,
	"SUSPENDED":        connectors.StatusInactive,
	"DEPROVISIONED":    connectors.StatusInactive,
	"STAGED":           connectors.StatusSkip,
}

// progressEvery spaces out Progress reports.
const progressEvery = 2 * time.Second

// run is one fetch.
type run struct {
	c     *Connector
	ctx   context.Context
	st    *fetchState
	start time.Time

	mu       sync.Mutex
	progress connectors.Progress
	reported time.Time
	problems []connectors.Problem
}

func (c *Connector) newRun(ctx context.Context) *run {
	st := &fetchState{}
	return &run{c: c, ctx: withState(ctx, st), st: st, start: c.now(), reported: time.Now()}
}

// finish stamps a successful result with the request count and the next
// cursor: the earliest Date Okta sent during this fetch, minus the overlap.
// Okta stamps Date when it answers, just after it ran the query, so no
// query of the fetch saw the org earlier than that (to the second).
func (r *run) finish(res *connectors.Result, err error) (*connectors.Result, error) {
	if err != nil {
		return nil, err
	}
	res.Requests = int(r.st.requests.Load())
	date := r.st.earliestDate()
	if date.IsZero() {
		date = r.start
	}
	res.Cursor = oktaTime(date.Add(-CursorOverlap))
	res.Problems = r.problems
	r.report(true)
	r.c.logger.Debug("okta fetch done", "full", res.Full, "users", len(res.Users), "groups", len(res.Groups),
		"deleted_users", len(res.DeletedUsers), "requests", res.Requests, "waits", r.st.waits.Load(),
		"problems", len(res.Problems), "took", time.Since(r.start).Round(time.Millisecond))
	return res, nil
}

func (r *run) problem(object, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, connectors.Problem{Object: object, Reason: fmt.Sprintf(format, args...)})
}

// page counts a page and reports progress now and then.
func (r *run) page(users, groups int) {
	r.mu.Lock()
	r.progress.Pages++
	r.progress.Users += users
	r.progress.Groups += groups
	r.mu.Unlock()
	r.report(false)
}

func (r *run) report(final bool) {
	r.mu.Lock()
	if !final && time.Since(r.reported) < progressEvery {
		r.mu.Unlock()
		return
	}
	r.reported = time.Now()
	p := r.progress
	p.Waits = int(r.st.waits.Load())
	r.mu.Unlock()
	r.c.hooks.OnProgress(p)
}

// httpStatus returns the status of Okta's own error answer to a failed
// request (a group deleted while its members are read), or 0. A proxy's
// page is not Okta's answer: its status says nothing about the group.
func httpStatus(err error) int {
	if ae := connectors.AsAnswerError(err); ae != nil && ae.Kind == connectors.KindStatus {
		return ae.Status
	}
	return 0
}

// oauthTerminal are OAuth token errors that retrying cannot fix.
var oauthTerminal = []string{"invalid_client", "invalid_scope", "unauthorized_client", "access_denied", "invalid_grant", "invalid_request"}

// apiError turns an SDK error into the error of the fetch: an
// *connectors.AnswerError, terminal for refused credentials. The
// transport's own AnswerErrors pass through the SDK unchanged (they wrap
// nothing the SDK would retry). Okta's error bodies never carry the token,
// and neither does anything added here.
func (r *run) apiError(ctx context.Context, what string, resp *okta.Response, err error) error {
	name := r.c.name
	if ctx.Err() != nil {
		return fmt.Errorf("okta source %q: %s: %w", name, what, ctx.Err())
	}
	// http.Client puts the request's URL in front of a transport error; the
	// URL of an OAuth token request holds the signed client assertion, a
	// credential for an hour. The transport's own message names the
	// endpoint already.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if ae := connectors.AsAnswerError(err); ae != nil {
		out := *ae
		out.Msg = fmt.Sprintf("okta source %q: %s: %s", name, what, ae.Msg)
		return &out
	}
	ae := &connectors.AnswerError{Kind: connectors.KindStatus}
	if resp != nil && resp.Response != nil {
		ae.Status = resp.StatusCode
		if resp.Request != nil {
			ae.Endpoint = endpointFamily(resp.Request.URL.Path)
		}
	}
	status := ae.Status
	var oe *okta.Error
	if !errors.As(err, &oe) {
		oe = nil
	} else {
		ae.Code = oe.ErrorCode
	}
	switch {
	case oe != nil && (status == http.StatusUnauthorized || status == http.StatusForbidden):
		summary := oe.ErrorSummary
		if summary == "" {
			summary = oe.ErrorDescription
		}
		ae.Terminal = true
		ae.Msg = fmt.Sprintf("okta source %q: %s: %s (HTTP %d%s)", name, what, summary, status, codeSuffix(oe.ErrorCode))
	case oe != nil && status == 0 && slices.Contains(oauthTerminal, oe.ErrorMessage):
		ae.Endpoint, ae.Terminal, ae.Code = "oauth2/v1/token", true, oe.ErrorMessage
		ae.Msg = fmt.Sprintf("okta source %q: %s: OAuth token refused: %s: %s", name, what, oe.ErrorMessage, oe.ErrorDescription)
	case oe != nil && status != 0:
		ae.Msg = fmt.Sprintf("okta source %q: %s: HTTP %d%s: %v", name, what, status, codeSuffix(oe.ErrorCode), err)
	case oe != nil:
		ae.Msg = fmt.Sprintf("okta source %q: %s: %v", name, what, err)
	case isDecodeError(err):
		// Complete JSON (the transport checked that), but not of the
		// shape the SDK expects.
		ae.Kind = connectors.KindNotObject
		ae.Msg = fmt.Sprintf("okta source %q: %s: %v", name, what, err)
	default:
		return fmt.Errorf("okta source %q: %s: %w", name, what, err)
	}
	return ae
}

// isDecodeError reports whether err is the SDK failing to decode JSON.
func isDecodeError(err error) bool {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	return errors.As(err, &te) || errors.As(err, &se)
}

func codeSuffix(code string) string {
	if code == "" {
		return ""
	}
	return ", " + code
}

// listPages reads a listing page by page with the SDK's resp.Next. It
// refuses a next link it has seen before: a misread Link header would
// otherwise page forever.
func listPages[T any](ctx context.Context, r *run, what string,
	first func(context.Context) ([]T, *okta.Response, error), each func([]T)) error {
	items, resp, err := first(ctx)
	seen := make(map[string]bool)
	for {
		if err != nil {
			return r.apiError(ctx, what, resp, err)
		}
		each(items)
		if resp == nil || !resp.HasNextPage() {
			return nil
		}
		if seen[resp.NextPage] {
			return fmt.Errorf("okta source %q: %s: Okta repeated the next link %s; stopping instead of paging forever", r.c.name, what, resp.NextPage)
		}
		seen[resp.NextPage] = true
		var next []T
		resp, err = resp.Next(ctx, &next)
		items = next
	}
}

// users are the users read by one search, by id.
type users struct {
	byID    map[string]connectors.User // active and inactive
	skipped map[string]bool            // STAGED
}

// searchUsers reads every user whose lastUpdated is after since, in every
// status: the plain listing would hide DEPROVISIONED users.
func (r *run) searchUsers(ctx context.Context, since time.Time) (*users, error) {
	out := &users{byID: make(map[string]connectors.User), skipped: make(map[string]bool)}
	search := fmt.Sprintf(`lastUpdated gt "%s"`, oktaTime(since))
	qp := query.NewQueryParams(query.WithSearch(search), query.WithLimit(int64(r.c.cfg.PageSize)))
	err := listPages(ctx, r, "search users",
		func(ctx context.Context) ([]*okta.User, *okta.Response, error) {
			return r.c.client.User.ListUsers(ctx, qp)
		},
		func(page []*okta.User) {
			for _, u := range page {
				cu, ok := r.mapUser(u)
				if !ok {
					continue
				}
				// A user may come twice if the index shifts while paging;
				// the later copy wins.
				delete(out.byID, cu.ExternalID)
				delete(out.skipped, cu.ExternalID)
				if cu.Status == connectors.StatusSkip {
					out.skipped[cu.ExternalID] = true
				} else {
					out.byID[cu.ExternalID] = cu
				}
			}
			r.page(len(page), 0)
		})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// mapUser maps an Okta user; malformed records and unknown statuses are
// problems.
func (r *run) mapUser(u *okta.User) (connectors.User, bool) {
	if u == nil {
		r.problem("user (null)", "empty record")
		return connectors.User{}, false
	}
	var p okta.UserProfile
	if u.Profile != nil {
		p = *u.Profile
	}
	login := profileString(p, "login")
	if u.Id == "" {
		object := "user (no id)"
		if login != "" {
			object = "user " + login
		}
		r.problem(object, "record has no id")
		return connectors.User{}, false
	}
	status, ok := statuses[u.Status]
	if !ok {
		r.problem("user "+u.Id, "unknown status %q", u.Status)
		return connectors.User{}, false
	}
	first, last := profileString(p, "firstName"), profileString(p, "lastName")
	display := profileString(p, "displayName")
	if display == "" {
		display = strings.TrimSpace(first + " " + last)
	}
	return connectors.User{
		ExternalID:     u.Id,
		UserName:       login,
		Email:          profileString(p, "email"),
		GivenName:      first,
		FamilyName:     last,
		DisplayName:    display,
		Title:          profileString(p, "title"),
		Department:     profileString(p, "department"),
		EmployeeNumber: profileString(p, "employeeNumber"),
		Manager:        profileString(p, "manager"),
		CostCenter:     profileString(p, "costCenter"),
		Status:         status,
		Attrs:          r.c.attrs.Keep(rawUser(u, p)),
	}, true
}

// rawUser is the Okta user object as the API sends it, for the rules
// (`user.status`, `user.profile.<attribute>`), without links and
// credentials. It is built only when the rules read it.
func rawUser(u *okta.User, p okta.UserProfile) func() map[string]any {
	return func() map[string]any {
		m := map[string]any{"id": u.Id, "status": u.Status, "profile": map[string]any(p)}
		for k, t := range map[string]*time.Time{"created": u.Created, "activated": u.Activated, "statusChanged": u.StatusChanged,
			"lastLogin": u.LastLogin, "lastUpdated": u.LastUpdated, "passwordChanged": u.PasswordChanged} {
			if t != nil {
				m[k] = t.UTC().Format("2006-01-02T15:04:05.000Z")
			}
		}
		if u.Type != nil && u.Type.Id != "" {
			m["type"] = map[string]any{"id": u.Type.Id}
		}
		return m
	}
}

// profileString reads a profile attribute; Okta sends null for unset ones
// and custom attributes may be numbers.
func profileString(p okta.UserProfile, key string) string {
	switch v := p[key].(type) {
	case string:
		return strings.TrimSpace(v)
	case float64:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%f", v), "0"), ".")
	case bool:
		return fmt.Sprint(v)
	}
	return ""
}

// groupFilter is the filter for groups of the configured types, changed
// after since if since is set.
func (r *run) groupFilter(since time.Time) string {
	types := make([]string, len(r.c.cfg.GroupTypes))
	for i, t := range r.c.cfg.GroupTypes {
		types[i] = fmt.Sprintf(`type eq "%s"`, t)
	}
	f := strings.Join(types, " or ")
	if since.IsZero() {
		return f
	}
	ts := oktaTime(since)
	return fmt.Sprintf(`(%s) and (lastUpdated gt "%s" or lastMembershipUpdated gt "%s")`, f, ts, ts)
}

// listGroups reads the groups of the configured types (changed after since,
// if set), sorted by id.
func (r *run) listGroups(ctx context.Context, since time.Time) ([]connectors.Group, error) {
	byID := make(map[string]connectors.Group)
	qp := query.NewQueryParams(query.WithFilter(r.groupFilter(since)), query.WithLimit(int64(r.c.cfg.PageSize)))
	err := listPages(ctx, r, "list groups",
		func(ctx context.Context) ([]*okta.Group, *okta.Response, error) {
			return r.c.client.Group.ListGroups(ctx, qp)
		},
		func(page []*okta.Group) {
			for _, g := range page {
				if g == nil || g.Id == "" {
					r.problem("group (no id)", "record has no id")
					continue
				}
				// The filter already asks for these types; checking again
				// keeps a lenient server from widening the scope.
				if !slices.Contains(r.c.cfg.GroupTypes, g.Type) {
					continue
				}
				byID[g.Id] = groupOf(g)
			}
			r.page(0, len(page))
		})
	if err != nil {
		return nil, err
	}
	out := make([]connectors.Group, 0, len(byID))
	for _, g := range byID {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ExternalID < out[j].ExternalID })
	return out, nil
}

// groupOf maps an Okta group: named by its profile, or by its id where the
// profile has no name.
func groupOf(g *okta.Group) connectors.Group {
	if g.Profile == nil {
		return connectors.Group{ExternalID: g.Id, Name: g.Id}
	}
	return connectors.Group{ExternalID: g.Id, Name: cmp.Or(g.Profile.Name, g.Id), Description: g.Profile.Description}
}

// groupMembers reads the ids of a group's members who are not skipped.
func (r *run) groupMembers(ctx context.Context, groupID string) ([]string, error) {
	set := make(map[string]bool)
	qp := query.NewQueryParams(query.WithLimit(int64(r.c.cfg.PageSize)))
	err := listPages(ctx, r, "list members of group "+groupID,
		func(ctx context.Context) ([]*okta.User, *okta.Response, error) {
			return r.c.client.Group.ListGroupUsers(ctx, groupID, qp)
		},
		func(page []*okta.User) {
			for _, u := range page {
				if u == nil || u.Id == "" {
					r.problem("group "+groupID, "member record has no id")
					continue
				}
				if st, ok := statuses[u.Status]; ok && st != connectors.StatusSkip {
					set[u.Id] = true
				}
			}
			r.page(0, 0)
		})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// members reads the member lists of several groups at once, within the rate
// budget. Groups deleted meanwhile (404) are returned in gone. The first
// error stops the rest.
func (r *run) members(parent context.Context, ids []string) (lists map[string][]string, gone map[string]bool, err error) {
	lists = make(map[string][]string, len(ids))
	gone = make(map[string]bool)
	if len(ids) == 0 {
		return lists, gone, nil
	}
	var mu sync.Mutex
	err = connectors.Each(parent, memberWorkers, ids, func(ctx context.Context, id string) error {
		m, err := r.groupMembers(ctx, id)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			lists[id] = m
		case httpStatus(err) == http.StatusNotFound:
			gone[id] = true
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if err := parent.Err(); err != nil {
		return nil, nil, fmt.Errorf("okta source %q: list members: %w", r.c.name, err)
	}
	return lists, gone, nil
}

// appScope reads the users assigned to the app directly (Okta also lists
// users assigned through a group here, marked scope GROUP) and the groups
// assigned to it.
func (r *run) appScope(ctx context.Context) (direct map[string]bool, groups []string, err error) {
	appID := r.c.cfg.AppID
	direct = make(map[string]bool)
	qp := query.NewQueryParams(query.WithLimit(int64(r.c.cfg.PageSize)))
	err = listPages(ctx, r, "list users of app "+appID,
		func(ctx context.Context) ([]*okta.AppUser, *okta.Response, error) {
			return r.c.client.Application.ListApplicationUsers(ctx, appID, qp)
		},
		func(page []*okta.AppUser) {
			for _, u := range page {
				if u != nil && u.Id != "" {
					direct[u.Id] = true
				}
			}
			r.page(0, 0)
		})
	if err != nil {
		return nil, nil, r.appError(err)
	}
	err = listPages(ctx, r, "list groups of app "+appID,
		func(ctx context.Context) ([]*okta.ApplicationGroupAssignment, *okta.Response, error) {
			return r.c.client.Application.ListApplicationGroupAssignments(ctx, appID, qp)
		},
		func(page []*okta.ApplicationGroupAssignment) {
			for _, g := range page {
				if g != nil && g.Id != "" {
					groups = append(groups, g.Id)
				}
			}
			r.page(0, 0)
		})
	if err != nil {
		return nil, nil, r.appError(err)
	}
	slices.Sort(groups)
	return direct, slices.Compact(groups), nil
}

// appError makes a missing app a configuration error.
func (r *run) appError(err error) error {
	if httpStatus(err) == http.StatusNotFound {
		ae := *connectors.AsAnswerError(err)
		ae.Terminal = true
		ae.Msg = fmt.Sprintf("okta source %q: app_id %q: Okta has no such app (HTTP 404)", r.c.name, r.c.cfg.AppID)
		return &ae
	}
	return err
}

// parallel runs fns at once. The first error cancels the others and is the
// one returned.
func parallel(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Go(func() {
			if err := fn(ctx); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// reading is what read returns: the users, the groups, their member lists
// and the groups that were gone when their members were listed.
type reading struct {
	us     *users
	groups []connectors.Group
	lists  map[string][]string
	gone   map[string]bool
}

// read searches the users updated after usersSince while it lists the
// groups changed after groupsSince and then their member lists. memberIDs,
// if set, turns the groups' ids into the ids of the groups whose members
// are read.
func (r *run) read(usersSince, groupsSince time.Time, memberIDs func(ctx context.Context, ids []string) ([]string, error)) (*reading, error) {
	var rd reading
	err := parallel(r.ctx,
		func(ctx context.Context) (err error) {
			rd.us, err = r.searchUsers(ctx, usersSince)
			return err
		},
		func(ctx context.Context) (err error) {
			if rd.groups, err = r.listGroups(ctx, groupsSince); err != nil {
				return err
			}
			ids := make([]string, len(rd.groups))
			for i, g := range rd.groups {
				ids[i] = g.ExternalID
			}
			if memberIDs != nil {
				if ids, err = memberIDs(ctx, ids); err != nil {
					return err
				}
			}
			rd.lists, rd.gone, err = r.members(ctx, ids)
			return err
		})
	if err != nil {
		return nil, err
	}
	return &rd, nil
}

// full reads the whole org (or the app's part of it). Users (one endpoint
// family) are read while groups and members (others) are, so that the
// wall time is the longer of the two, not their sum.
func (r *run) full() (*connectors.Result, error) {
	var (
		scope     map[string]bool
		appGroups []string
	)
	rd, err := r.read(epoch, time.Time{}, func(ctx context.Context, ids []string) ([]string, error) {
		if r.c.cfg.AppID != "" {
			var err error
			if scope, appGroups, err = r.appScope(ctx); err != nil {
				return nil, err
			}
		}
		ids = append(ids, appGroups...)
		slices.Sort(ids)
		return slices.Compact(ids), nil
	})
	if err != nil {
		return nil, err
	}
	us, groups, lists, gone := rd.us, rd.groups, rd.lists, rd.gone
	if scope != nil {
		for _, g := range appGroups {
			for _, id := range lists[g] {
				scope[id] = true
			}
		}
	}

	res := &connectors.Result{Full: true, Members: make(map[string][]string)}
	in := make(map[string]bool, len(us.byID))
	for id, u := range us.byID {
		if scope == nil || scope[id] {
			res.Users = append(res.Users, u)
			in[id] = true
		}
	}
	sort.Slice(res.Users, func(i, j int) bool { return res.Users[i].ExternalID < res.Users[j].ExternalID })
	for _, g := range groups {
		if gone[g.ExternalID] {
			continue
		}
		res.Groups = append(res.Groups, g)
		var m []string
		for _, id := range lists[g.ExternalID] {
			// Members not among the users are skipped (STAGED), out of
			// the app's scope, or created after the users were read.
			if in[id] {
				m = append(m, id)
			}
		}
		if len(m) > 0 {
			res.Members[g.ExternalID] = m
		}
	}
	return res, nil
}

// changes reads what changed after since: one users search and one groups
// filter (at once), then the member lists of the changed groups only.
func (r *run) changes(since time.Time) (*connectors.Result, error) {
	rd, err := r.read(since, since, nil)
	if err != nil {
		return nil, err
	}
	us, groups, lists, gone := rd.us, rd.groups, rd.lists, rd.gone
	res := &connectors.Result{Members: make(map[string][]string)}
	for _, u := range us.byID {
		res.Users = append(res.Users, u)
	}
	sort.Slice(res.Users, func(i, j int) bool { return res.Users[i].ExternalID < res.Users[j].ExternalID })
	// A user who became STAGED again (lifecycle reset) leaves the mirror.
	for id := range us.skipped {
		res.DeletedUsers = append(res.DeletedUsers, id)
	}
	slices.Sort(res.DeletedUsers)
	for _, g := range groups {
		if gone[g.ExternalID] {
			res.DeletedGroups = append(res.DeletedGroups, g.ExternalID)
			continue
		}
		res.Groups = append(res.Groups, g)
		// Every changed group gets an entry, empty or not: it replaces
		// the group's member list.
		m := lists[g.ExternalID]
		if m == nil {
			m = []string{}
		}
		res.Members[g.ExternalID] = m
	}
	return res, nil
}
