// Package onelogin is the learnsync source for OneLogin: users from the REST
// API v2, roles (v2) and the users' groups (v1) as groups, full and
// incremental fetches over net/http with a small typed client.
//
// See docs/onelogin.md for what an incremental fetch covers and what only
// the periodic full fetch catches.
package onelogin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/learnsync/learnsync/connectors"
)

// Type registers the onelogin source type.
var Type = connectors.TypeOf(DefaultConfig, New)

var _ connectors.Incremental = (*Connector)(nil)

// External ids of groups: roles and OneLogin groups share the source's
// group namespace, so each carries its kind.
const (
	rolePrefix  = "role:"
	groupPrefix = "group:"
)

// CursorOverlap is how far before the start of the previous fetch an
// incremental fetch asks for changes: it covers the second resolution of the
// Date header and changes indexed a little late. Users seen twice are simply
// replaced again.
const CursorOverlap = 2 * time.Minute

// userFields are the user attributes requested; the list endpoint leaves
// title, department and manager_user_id out unless asked.
const userFields = "id,username,email,firstname,lastname,title,department,status,state,group_id,manager_user_id,updated_at"

// Connector fetches one OneLogin account.
type Connector struct {
	cfg    Config
	opts   connectors.Options
	log    *slog.Logger
	client *client
}

// New builds a connector from a validated config.
func New(cfg *Config, opts connectors.Options) (*Connector, error) {
	if errs := cfg.Validate(opts); len(errs) > 0 {
		return nil, fmt.Errorf("source %q: invalid onelogin config: %w", opts.Name, errors.Join(errs...))
	}
	hc, err := connectors.NewHTTPClient(connectors.ResolvePath(opts.BaseDir, cfg.CAFile), cfg.RequestTimeout)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", opts.Name, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Connector{
		cfg:  *cfg,
		opts: opts,
		log:  log,
		client: &client{
			base:    strings.TrimRight(cfg.APIURL, "/"),
			http:    hc,
			id:      cfg.ClientID,
			secret:  cfg.ClientSecret,
			hooks:   opts.Hooks,
			now:     opts.Clock(),
			backoff: connectors.DefaultBackoff,
			budget:  &connectors.Budget{Share: cfg.RateLimitShare, MaxWait: maxWait},
			timeout: cfg.RequestTimeout,
		},
	}, nil
}

// FetchAll returns every user, role and group of the account.
func (c *Connector) FetchAll(ctx context.Context) (*connectors.Result, error) {
	return c.fetch(ctx, nil)
}

// FetchChanges returns the users updated since the cursor, and every role and
// group with their current members. An unreadable cursor gets a full result.
func (c *Connector) FetchChanges(ctx context.Context, cursor string) (*connectors.Result, error) {
	prev, err := parseCursor(cursor)
	if err != nil {
		c.log.Info("cursor unusable, fetching everything", "reason", err)
		return c.fetch(ctx, nil)
	}
	return c.fetch(ctx, prev)
}

// cursorState is what an incremental fetch needs from the previous one: the
// server time it started (minus CursorOverlap), and the roles and groups it
// saw, so that deleted ones can be reported.
type cursorState struct {
	V      int       `json:"v"`
	Since  time.Time `json:"since"`
	Roles  []string  `json:"roles"`
	Groups []string  `json:"groups"`
}

func parseCursor(s string) (*cursorState, error) {
	if s == "" {
		return nil, errors.New("empty cursor")
	}
	var cs cursorState
	if err := json.Unmarshal([]byte(s), &cs); err != nil {
		return nil, fmt.Errorf("not a onelogin cursor: %v", err)
	}
	if cs.V != 1 || cs.Since.IsZero() {
		return nil, fmt.Errorf("not a onelogin cursor (version %d)", cs.V)
	}
	return &cs, nil
}

// pull is one fetch in progress: its traffic, counts and problems.
type pull struct {
	c        *Connector
	st       stats
	pages    int
	users    int
	groups   int
	problems []connectors.Problem
}

func (p *pull) problem(object, format string, args ...any) {
	p.problems = append(p.problems, connectors.Problem{Object: object, Reason: fmt.Sprintf(format, args...)})
}

func (p *pull) progress() {
	p.c.opts.Hooks.OnProgress(connectors.Progress{Pages: p.pages, Users: p.users, Groups: p.groups, Waits: p.st.waits})
}

// userRec is a mapped user with the links resolved after the listing.
type userRec struct {
	user    connectors.User
	groupID string
	manager string
}

type roleRec struct {
	id, name string
	members  []string
}

type groupRec struct{ id, name string }

func (c *Connector) fetch(ctx context.Context, prev *cursorState) (*connectors.Result, error) {
	p := &pull{c: c}
	since := ""
	if prev != nil {
		since = prev.Since.UTC().Format(time.RFC3339)
	}
	users, start, err := p.listUsers(ctx, since)
	if err != nil {
		return nil, fmt.Errorf("source %q: fetch onelogin users: %w", c.opts.Name, err)
	}
	roles, err := p.listRoles(ctx)
	if err != nil {
		return nil, fmt.Errorf("source %q: fetch onelogin roles: %w", c.opts.Name, err)
	}
	groups, err := p.listGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("source %q: fetch onelogin groups: %w", c.opts.Name, err)
	}
	if err := p.resolveManagers(ctx, users, prev != nil); err != nil {
		return nil, fmt.Errorf("source %q: fetch onelogin managers: %w", c.opts.Name, err)
	}

	res := &connectors.Result{Full: prev == nil, Members: map[string][]string{}}
	known := make(map[string]bool, len(users))
	for _, u := range users {
		res.Users = append(res.Users, u.user)
		known[u.user.ExternalID] = true
	}
	next := cursorState{V: 1, Since: start.Add(-CursorOverlap).UTC().Truncate(time.Second)}
	for _, r := range roles {
		gid := rolePrefix + r.id
		res.Groups = append(res.Groups, connectors.Group{ExternalID: gid, Name: r.name, Description: "OneLogin role"})
		next.Roles = append(next.Roles, r.id)
		members := r.members
		if res.Full {
			// A full result is self-contained: members are users of it.
			members = slices.DeleteFunc(members, func(id string) bool { return !known[id] })
		}
		if len(members) > 0 || !res.Full {
			// In a delta, an empty list says "no members any more".
			res.Members[gid] = append([]string{}, members...)
		}
	}
	groupIDs := make(map[string]bool, len(groups))
	for _, g := range groups {
		res.Groups = append(res.Groups, connectors.Group{ExternalID: groupPrefix + g.id, Name: g.name, Description: "OneLogin group"})
		next.Groups = append(next.Groups, g.id)
		groupIDs[g.id] = true
	}
	for _, u := range users {
		uid := u.user.ExternalID
		if u.groupID != "" && !groupIDs[u.groupID] {
			p.problem("user "+uid, "group_id %s is not among the account's groups; membership skipped", u.groupID)
		}
		if res.Full {
			if groupIDs[u.groupID] {
				gid := groupPrefix + u.groupID
				res.Members[gid] = append(res.Members[gid], uid)
			}
			continue
		}
		// A user is in at most one OneLogin group, but the delta does not know
		// which one they left: remove them from every other group.
		for _, g := range groups {
			m := connectors.Membership{GroupID: groupPrefix + g.id, UserID: uid}
			if g.id == u.groupID {
				res.AddedMembers = append(res.AddedMembers, m)
			} else {
				res.RemovedMembers = append(res.RemovedMembers, m)
			}
		}
	}
	if prev != nil {
		res.DeletedGroups = append(gone(prev.Roles, next.Roles, rolePrefix), gone(prev.Groups, next.Groups, groupPrefix)...)
	}
	for _, ids := range res.Members {
		slices.SortFunc(ids, compareIDs)
	}
	b, err := json.Marshal(next)
	if err != nil {
		return nil, err
	}
	res.Cursor = string(b)
	res.Problems = p.problems
	res.Requests = p.st.requests
	p.groups = len(res.Groups)
	p.progress()
	c.log.Debug("onelogin fetch done", "full", res.Full, "users", len(res.Users), "groups", len(res.Groups),
		"problems", len(res.Problems), "requests", res.Requests, "since", since)
	return res, nil
}

// gone returns the ids of before that are not in after, as external ids.
func gone(before, after []string, prefix string) []string {
	var out []string
	for _, id := range before {
		if !slices.Contains(after, id) {
			out = append(out, prefix+id)
		}
	}
	return out
}

// compareIDs orders numeric ids numerically, then anything else by text.
func compareIDs(a, b string) int {
	return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
}

// apiUser is a user of /api/2/users as far as learnsync reads it.
type apiUser struct {
	ID            flexID `json:"id"`
	Username      string `json:"username"`
	Email         string `json:"email"`
	Firstname     string `json:"firstname"`
	Lastname      string `json:"lastname"`
	Title         string `json:"title"`
	Department    string `json:"department"`
	Status        *int   `json:"status"`
	State         *int   `json:"state"`
	GroupID       flexID `json:"group_id"`
	ManagerUserID flexID `json:"manager_user_id"`
}

// listUsers pages through /api/2/users (all users, or those updated since
// since) and returns them with the server time of the first answer.
func (p *pull) listUsers(ctx context.Context, since string) ([]userRec, time.Time, error) {
	start := p.c.client.now()
	first := true
	fields := userFields
	if !p.c.opts.Attrs.Empty() {
		// The rules read the user's own attributes too.
		fields += ",custom_attributes"
	}
	q := url.Values{"limit": {strconv.Itoa(p.c.cfg.PageSize)}, "fields": {fields}}
	if since != "" {
		q.Set("updated_since", since)
	}
	index := map[string]int{}
	var out []userRec
	err := p.listV2(ctx, "users", "/api/2/users", q, func(a *answer, items []json.RawMessage) {
		if first {
			first = false
			if t, err := http.ParseTime(a.header.Get("Date")); err == nil {
				start = t
			}
		}
		for i, raw := range items {
			rec, ok := p.mapUser(raw, p.pages, i)
			if !ok {
				continue
			}
			// Pages over a changing list may repeat a user: keep the latest.
			if j, dup := index[rec.user.ExternalID]; dup {
				out[j] = rec
				continue
			}
			index[rec.user.ExternalID] = len(out)
			out = append(out, rec)
		}
		p.users = len(out)
	})
	slices.SortFunc(out, func(a, b userRec) int { return compareIDs(a.user.ExternalID, b.user.ExternalID) })
	return out, start, err
}

// mapUser maps one element of a users page; malformed ones become problems.
func (p *pull) mapUser(raw json.RawMessage, page, i int) (userRec, bool) {
	var u apiUser
	if err := json.Unmarshal(raw, &u); err != nil {
		var idOnly struct {
			ID flexID `json:"id"`
		}
		obj := fmt.Sprintf("user #%d of page %d", i+1, page)
		if json.Unmarshal(raw, &idOnly) == nil && idOnly.ID != "" {
			obj = "user " + string(idOnly.ID)
		}
		p.problem(obj, "cannot decode: %s", clean(err.Error(), 200))
		return userRec{}, false
	}
	if u.ID == "" || u.ID == "0" {
		p.problem(fmt.Sprintf("user #%d of page %d", i+1, page), "no id")
		return userRec{}, false
	}
	id := string(u.ID)
	status, why := mapStatus(u.Status, u.State)
	if why != "" {
		p.problem("user "+id, "%s; skipped", why)
	}
	user := connectors.User{
		ExternalID:  id,
		UserName:    strings.TrimSpace(u.Username),
		Email:       strings.TrimSpace(u.Email),
		GivenName:   strings.TrimSpace(u.Firstname),
		FamilyName:  strings.TrimSpace(u.Lastname),
		Title:       strings.TrimSpace(u.Title),
		Department:  strings.TrimSpace(u.Department),
		DisplayName: strings.TrimSpace(strings.TrimSpace(u.Firstname) + " " + strings.TrimSpace(u.Lastname)),
		Status:      status,
		Attrs:       p.keep().Keep(func() map[string]any { return rawObject(raw) }),
	}
	if user.UserName == "" {
		// OneLogin accepts the email as login when there is no username.
		user.UserName = user.Email
	}
	if user.DisplayName == "" {
		user.DisplayName = user.UserName
	}
	manager := string(u.ManagerUserID)
	if manager == "0" {
		manager = ""
	}
	group := string(u.GroupID)
	if group == "0" {
		group = ""
	}
	return userRec{user: user, groupID: group, manager: manager}, true
}

// keep is what of the raw users the rules read (nil for none).
func (p *pull) keep() *connectors.Selection {
	if p.c == nil {
		return nil
	}
	return p.c.opts.Attrs
}

// rawObject decodes a users page element as it came (OneLogin v2's user,
// custom_attributes included) for the rules; it decoded once already.
func rawObject(raw json.RawMessage) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

// OneLogin's user status and state codes.
var (
	knownStatus = map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true, 7: true, 8: true}
	knownState  = map[int]bool{0: true, 1: true, 2: true, 3: true}
)

// mapStatus maps OneLogin's status and state. A missing state counts as
// approved (1); anything unknown is skipped with a reason.
func mapStatus(status, state *int) (connectors.Status, string) {
	if status == nil {
		return connectors.StatusSkip, "no status"
	}
	s, st := *status, 1
	if state != nil {
		st = *state
	}
	switch {
	case !knownStatus[s]:
		return connectors.StatusSkip, fmt.Sprintf("unknown status %d", s)
	case !knownState[st]:
		return connectors.StatusSkip, fmt.Sprintf("unknown state %d", st)
	case s == 0 || st == 0: // never activated, or not approved
		return connectors.StatusSkip, ""
	case s == 2 || st == 2 || st == 3: // suspended, rejected, unlicensed
		return connectors.StatusInactive, ""
	default: // 1, 3, 4, 5, 7, 8 with state 1: can sign in or is about to
		return connectors.StatusActive, ""
	}
}

// resolveManagers turns manager_user_id into the manager's user name (or
// email). A delta looks up managers that are not in it, one request each.
func (p *pull) resolveManagers(ctx context.Context, users []userRec, delta bool) error {
	names := make(map[string]string, len(users))
	for _, u := range users {
		names[u.user.ExternalID] = u.user.UserName
	}
	for i := range users {
		id := users[i].manager
		if id == "" {
			continue
		}
		name, ok := names[id]
		if !ok && delta {
			var err error
			if name, err = p.getUserName(ctx, id); err != nil {
				return err
			}
			names[id] = name
		}
		users[i].user.Manager = name
	}
	return nil
}

// getUserName reads one user's login; a user that does not exist (any more)
// has none.
func (p *pull) getUserName(ctx context.Context, id string) (string, error) {
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return "", nil
	}
	a, err := p.c.client.get(ctx, &p.st, "user", "/api/2/users/"+id, url.Values{"fields": {"id,username,email"}})
	if isStatus(err, http.StatusNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var u apiUser
	if err := json.Unmarshal(a.body, &u); err != nil {
		p.problem("user "+id, "manager record cannot be decoded: %s", clean(err.Error(), 200))
		return "", nil
	}
	return cmp.Or(strings.TrimSpace(u.Username), strings.TrimSpace(u.Email)), nil
}

// named decodes the id and the name of a role or a group (kind), item i
// of the current page. It records a problem and returns false for a record
// without them.
func (p *pull) named(kind string, i int, raw json.RawMessage) (id, name string, ok bool) {
	var r struct {
		ID   flexID `json:"id"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.ID == "" {
		p.problem(fmt.Sprintf("%s #%d of page %d", kind, i+1, p.pages), "cannot decode or no id")
		return "", "", false
	}
	name = strings.TrimSpace(r.Name)
	if name == "" {
		p.problem(kind+" "+string(r.ID), "no name; skipped")
		return "", "", false
	}
	return string(r.ID), name, true
}

// listRoles reads every role and its users.
func (p *pull) listRoles(ctx context.Context) ([]roleRec, error) {
	var roles []roleRec
	q := url.Values{"limit": {strconv.Itoa(p.c.cfg.PageSize)}}
	err := p.listV2(ctx, "roles", "/api/2/roles", q, func(_ *answer, items []json.RawMessage) {
		for i, raw := range items {
			if id, name, ok := p.named("role", i, raw); ok {
				roles = append(roles, roleRec{id: id, name: name})
			}
		}
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(roles, func(a, b roleRec) int { return compareIDs(a.id, b.id) })
	roles = slices.CompactFunc(roles, func(a, b roleRec) bool { return a.id == b.id })
	kept := roles[:0]
	for _, r := range roles {
		members, err := p.roleUsers(ctx, r.id)
		if isStatus(err, http.StatusNotFound) {
			// Deleted since the listing: it is gone.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("role %s: %w", r.id, err)
		}
		r.members = members
		kept = append(kept, r)
		p.groups++
		p.progress()
	}
	return kept, nil
}

// roleUsers lists the users assigned to a role.
func (p *pull) roleUsers(ctx context.Context, roleID string) ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	q := url.Values{"limit": {strconv.Itoa(p.c.cfg.PageSize)}}
	err := p.listV2(ctx, "role_users", "/api/2/roles/"+url.PathEscape(roleID)+"/users", q, func(_ *answer, items []json.RawMessage) {
		for i, raw := range items {
			var m struct {
				ID       flexID `json:"id"`
				Assigned *bool  `json:"assigned"`
			}
			if err := json.Unmarshal(raw, &m); err != nil || m.ID == "" {
				p.problem(fmt.Sprintf("member #%d of role %s", i+1, roleID), "cannot decode or no id")
				continue
			}
			if m.Assigned != nil && !*m.Assigned {
				continue
			}
			if !seen[string(m.ID)] {
				seen[string(m.ID)] = true
				ids = append(ids, string(m.ID))
			}
		}
	})
	return ids, err
}

// listV2 pages through a v2 list: a bare JSON array per page, the next page
// named by the After-Cursor header.
func (p *pull) listV2(ctx context.Context, endpoint, path string, q url.Values, page func(*answer, []json.RawMessage)) error {
	seen := map[string]bool{}
	for {
		a, err := p.c.client.get(ctx, &p.st, endpoint, path, q)
		if err != nil {
			return err
		}
		var items []json.RawMessage
		if err := json.Unmarshal(a.body, &items); err != nil {
			return &connectors.AnswerError{Endpoint: endpoint, Status: a.status, Kind: connectors.KindNotObject,
				Msg: fmt.Sprintf("GET %s: answer is not a JSON array: %s", path, clean(err.Error(), 200))}
		}
		p.pages++
		page(a, items)
		p.progress()
		next := strings.TrimSpace(a.header.Get("After-Cursor"))
		if next == "" || len(items) == 0 {
			return nil
		}
		if seen[next] {
			return fmt.Errorf("GET %s: After-Cursor %q repeats; the listing would never end", path, clean(next, 80))
		}
		seen[next] = true
		q = cloneValues(q)
		q.Set("cursor", next)
	}
}

// listGroups pages through the v1 groups list.
func (p *pull) listGroups(ctx context.Context) ([]groupRec, error) {
	var groups []groupRec
	seenCursor := map[string]bool{}
	q := url.Values{}
	for {
		a, err := p.c.client.get(ctx, &p.st, "groups", "/api/1/groups", q)
		if err != nil {
			return nil, err
		}
		var body struct {
			Pagination struct {
				AfterCursor *string `json:"after_cursor"`
			} `json:"pagination"`
			Data *[]json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(a.body, &body); err != nil || body.Data == nil {
			return nil, &connectors.AnswerError{Endpoint: "groups", Status: a.status, Kind: connectors.KindNotObject,
				Msg: "GET /api/1/groups: answer is not a v1 list (status, pagination, data)"}
		}
		p.pages++
		for i, raw := range *body.Data {
			if id, name, ok := p.named("group", i, raw); ok {
				groups = append(groups, groupRec{id: id, name: name})
				p.groups++
			}
		}
		p.progress()
		if body.Pagination.AfterCursor == nil || *body.Pagination.AfterCursor == "" || len(*body.Data) == 0 {
			break
		}
		next := *body.Pagination.AfterCursor
		if seenCursor[next] {
			return nil, fmt.Errorf("GET /api/1/groups: after_cursor repeats; the listing would never end")
		}
		seenCursor[next] = true
		q = url.Values{"after_cursor": {next}}
	}
	slices.SortFunc(groups, func(a, b groupRec) int { return compareIDs(a.id, b.id) })
	return slices.CompactFunc(groups, func(a, b groupRec) bool { return a.id == b.id }), nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// flexID is an id that OneLogin sends as a number (or, in places, a
// string); null and absent give "".
type flexID string

// UnmarshalJSON accepts a JSON integer, a string or null.
func (id *flexID) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		*id = ""
		return nil
	}
	if strings.HasPrefix(s, `"`) {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*id = flexID(strings.TrimSpace(str))
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("id %s is not a number or string", clean(s, 40))
	}
	if _, err := strconv.ParseInt(n.String(), 10, 64); err != nil {
		return fmt.Errorf("id %s is not an integer", clean(n.String(), 40))
	}
	*id = flexID(n.String())
	return nil
}
