// Package onelogintest is a fake OneLogin for tests: a TLS server with the
// real wire format of the endpoints learnsync reads (the v2 token endpoint,
// /api/2/users, /api/2/roles, /api/2/roles/{id}/users, the v1 /api/1/groups),
// programmable users, roles and groups, a controllable clock, rate-limit
// headers and fault injection.
//
// A test builds one with New and points a onelogin source at it:
//
//	srv := onelogintest.New(t)
//	srv.AddUser(onelogintest.User{Username: "ada", Email: "ada@example.com", Status: 1, State: 1})
//	// config: api_url: srv.URL, client_id: srv.ClientID,
//	//         client_secret: srv.ClientSecret, ca_file: srv.CAFile
package onelogintest

import (
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors/fault"
)

// Paths of the fake's endpoints.
const (
	TokenPath  = "/auth/oauth2/v2/token"
	UsersPath  = "/api/2/users"
	RolesPath  = "/api/2/roles"
	GroupsPath = "/api/1/groups"
)

// jsonType is the Content-Type of OneLogin's JSON answers.
const jsonType = "application/json; charset=utf-8"

// RoleUsersPath is the path of a role's user list.
func RoleUsersPath(roleID int64) string { return fmt.Sprintf("%s/%d/users", RolesPath, roleID) }

// UserPath is the path of one user.
func UserPath(id int64) string { return fmt.Sprintf("%s/%d", UsersPath, id) }

// User is an account of the fake. Empty strings are sent as null, like
// OneLogin does for unset attributes; GroupID and ManagerUserID 0 mean none.
type User struct {
	ID            int64
	Username      string
	Email         string
	Firstname     string
	Lastname      string
	Title         string
	Department    string
	Status        int
	State         int
	GroupID       int64
	ManagerUserID int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// CustomAttributes are the account's custom user fields, sent as
	// custom_attributes (every defined field, null when unset).
	CustomAttributes map[string]any
	// Override replaces or adds attributes of the JSON as sent, to make
	// malformed records ("status": "x", "id": null).
	Override map[string]any
}

// Role is a OneLogin role and the ids of the users assigned to it.
type Role struct {
	ID    int64
	Name  string
	Users []int64
}

// Group is a OneLogin group (API v1).
type Group struct {
	ID        int64
	Name      string
	Reference string
}

// Server is a fake OneLogin account. The embedded fault.Server (URL, the
// api_url to configure; CAFile; faults; request counts) names the requests
// by URL path.
type Server struct {
	*fault.Server
	// ClientID and ClientSecret are the credentials the token endpoint
	// accepts. The secret is random for every server.
	ClientID     string
	ClientSecret string

	mu            sync.Mutex
	frozen        bool
	now           time.Time
	users         map[int64]*User
	roles         map[int64]*Role
	groups        map[int64]*Group
	lastID        int64
	tokens        map[string]time.Time
	tokenLife     time.Duration
	rateLimit     int
	rateWindow    time.Duration
	windowStart   time.Time
	used          int
	maxPage       int
	groupPageSize int
}

// New starts a fake OneLogin for the test and stops it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		ClientID:      "learnsync-test-client",
		ClientSecret:  "ol-secret-" + randHex(16),
		users:         map[int64]*User{},
		roles:         map[int64]*Role{},
		groups:        map[int64]*Group{},
		lastID:        1000,
		tokens:        map[string]time.Time{},
		tokenLife:     10 * time.Hour,
		rateLimit:     5000,
		rateWindow:    time.Hour,
		maxPage:       100,
		groupPageSize: 50,
	}
	s.Server = fault.Start(t, "onelogin", fault.Handler{Answer: s.answer, Error: faultError, JSONType: jsonType})
	return s
}

// Now is the fake's clock: the real time until SetNow freezes it.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clock()
}

func (s *Server) clock() time.Time {
	if s.frozen {
		return s.now
	}
	return time.Now().UTC()
}

// SetNow freezes the fake's clock at t. It stamps updated_at and the Date
// header, and decides when tokens expire.
func (s *Server) SetNow(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen, s.now = true, t.UTC()
}

// Advance moves the clock forward (freezing it at the current time first).
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.frozen {
		s.frozen, s.now = true, time.Now().UTC()
	}
	s.now = s.now.Add(d)
}

// newID returns id, or the next free id if it is 0, and keeps the next
// free id past it.
func (s *Server) newID(id int64) int64 {
	if id == 0 {
		s.lastID++
		id = s.lastID
	}
	s.lastID = max(s.lastID, id)
	return id
}

// AddUser adds a user, giving it an id if it has none and stamping
// created_at and updated_at with the clock if unset. It returns the user.
func (s *Server) AddUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.ID = s.newID(u.ID)
	now := s.clock()
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = now
	}
	s.users[u.ID] = &u
	return u
}

// UpdateUser changes a user and stamps updated_at with the clock.
func (s *Server) UpdateUser(id int64, change func(*User)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		panic(fmt.Sprintf("onelogintest: no user %d", id))
	}
	change(u)
	u.ID = id
	u.UpdatedAt = s.clock()
}

// DeleteUser removes a user and its role assignments; like OneLogin, a
// deleted user just disappears from every list.
func (s *Server) DeleteUser(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.users, id)
	for _, r := range s.roles {
		r.Users = slices.DeleteFunc(r.Users, func(u int64) bool { return u == id })
	}
}

// AddRole adds a role (an id is assigned if it has none) and returns it.
func (s *Server) AddRole(r Role) Role {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.ID = s.newID(r.ID)
	r.Users = slices.Clone(r.Users)
	s.roles[r.ID] = &r
	return r
}

// SetRoleUsers replaces a role's users. As in OneLogin, this does not change
// the users' updated_at.
func (s *Server) SetRoleUsers(roleID int64, userIDs ...int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.roles[roleID]
	if !ok {
		panic(fmt.Sprintf("onelogintest: no role %d", roleID))
	}
	r.Users = slices.Clone(userIDs)
}

// DeleteRole removes a role.
func (s *Server) DeleteRole(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.roles, id)
}

// AddGroup adds a group (an id is assigned if it has none) and returns it.
func (s *Server) AddGroup(g Group) Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	g.ID = s.newID(g.ID)
	s.groups[g.ID] = &g
	return g
}

// DeleteGroup removes a group. Users keep their group_id, as the fake does
// not know what OneLogin does to them.
func (s *Server) DeleteGroup(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.groups, id)
}

// SetTokenLifetime sets expires_in of the tokens issued from now on
// (default 10 hours).
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenLife = d
}

// ExpireTokens makes every token issued so far invalid: the API answers 401.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// SetRateLimit sets the account's budget: limit API requests per window
// (default 5000 per hour), counted on the fake's clock. Once spent, the API
// answers 429 until the window ends. limit 0 turns the headers off.
func (s *Server) SetRateLimit(limit int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateLimit, s.rateWindow = limit, window
	s.windowStart, s.used = time.Time{}, 0
}

// SpendRate uses n requests of the current rate-limit window, as the
// account's other integrations would.
func (s *Server) SpendRate(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roll()
	s.used = min(s.used+n, s.rateLimit)
}

// SetGroupPageSize sets the page size of the v1 groups list (default 50).
func (s *Server) SetGroupPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groupPageSize = n
}

// TokenRequests returns how many token requests reached the fake.
func (s *Server) TokenRequests() int { return s.Requests(TokenPath) }

// Queries returns the query strings of the requests to path, in order.
func (s *Server) Queries(path string) []url.Values {
	var qs []url.Values
	for _, r := range s.RequestLog() {
		if r.Path == path {
			qs = append(qs, r.Query)
		}
	}
	return qs
}

// answer gives the real answer.
func (s *Server) answer(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w.Header().Set("Date", s.clock().Format(http.TimeFormat))
	if r.URL.Path == TokenPath {
		s.token(w, r)
		return
	}
	v1 := strings.HasPrefix(r.URL.Path, "/api/1/")
	if r.Method != http.MethodGet {
		writeError(w, v1, http.StatusNotFound, "No Route Exists")
		return
	}
	if !s.authorized(r) {
		if v1 {
			writeError(w, true, http.StatusUnauthorized, "Authentication Failure")
		} else {
			writeError(w, false, http.StatusUnauthorized, "Unauthorized")
		}
		return
	}
	if !s.spend(w) {
		writeError(w, v1, http.StatusTooManyRequests, "Too Many Requests")
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == UsersPath:
		s.listUsers(w, r)
	case len(parts) == 4 && r.URL.Path == UsersPath+"/"+parts[3]:
		s.getUser(w, r, parts[3])
	case r.URL.Path == RolesPath:
		s.listRoles(w, r)
	case len(parts) == 5 && parts[0] == "api" && parts[1] == "2" && parts[2] == "roles" && parts[4] == "users":
		s.roleUsers(w, r, parts[3])
	case r.URL.Path == GroupsPath:
		s.listGroups(w, r)
	default:
		writeError(w, v1, http.StatusNotFound, "No Route Exists")
	}
}

// faultError is OneLogin's error answer for a fault's status.
func faultError(w http.ResponseWriter, r *http.Request, f *fault.Fault) {
	writeError(w, strings.HasPrefix(r.URL.Path, "/api/1/") || r.URL.Path == TokenPath, f.Status,
		cmp.Or(f.Message, http.StatusText(f.Status)))
}

// writeError writes OneLogin's error shapes: v1 (and the token endpoint)
// wrap it in "status", v2 uses statusCode/name/message.
func writeError(w http.ResponseWriter, v1 bool, status int, msg string) {
	var body any
	if v1 {
		body = map[string]any{"status": map[string]any{
			"error": true, "code": status, "type": v1Type(status), "message": msg,
		}}
	} else {
		body = map[string]any{"statusCode": status, "name": v2Name(status), "message": msg}
	}
	writeJSON(w, status, body)
}

func v1Type(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad request"
	case http.StatusUnauthorized:
		return "Unauthorized"
	case http.StatusNotFound:
		return "not found"
	default:
		return strings.ToLower(http.StatusText(status))
	}
}

func v2Name(status int) string {
	return strings.ReplaceAll(http.StatusText(status), " ", "") + "Error"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", jsonType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// token is POST /auth/oauth2/v2/token with client credentials.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, true, http.StatusNotFound, "No Route Exists")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeError(w, true, http.StatusBadRequest,
			"Content Type is not specified or specified incorrectly. Content-Type header must be set to application/json")
		return
	}
	var body struct {
		GrantType string `json:"grant_type"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.GrantType != "client_credentials" {
		writeError(w, true, http.StatusBadRequest, "grant_type is incorrect/absent")
		return
	}
	id, secret := credentials(r.Header.Get("Authorization"))
	if id != s.ClientID || secret != s.ClientSecret {
		writeError(w, true, http.StatusUnauthorized, "Authentication Failure")
		return
	}
	tok := randHex(20)
	now := s.clock()
	s.tokens[tok] = now.Add(s.tokenLife)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  tok,
		"created_at":    now.Format("2006-01-02T15:04:05.000Z"),
		"expires_in":    int64(math.Ceil(s.tokenLife.Seconds())),
		"refresh_token": randHex(20),
		"token_type":    "bearer",
		"account_id":    123456,
	})
}

// credentials reads "client_id:<id>, client_secret:<secret>" or Basic.
func credentials(h string) (id, secret string) {
	if rest, ok := strings.CutPrefix(h, "Basic "); ok {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return "", ""
		}
		id, secret, _ = strings.Cut(string(b), ":")
		return id, secret
	}
	for part := range strings.SplitSeq(h, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), ":")
		switch strings.TrimSpace(k) {
		case "client_id":
			id = strings.TrimSpace(v)
		case "client_secret":
			secret = strings.TrimSpace(v)
		}
	}
	return id, secret
}

// authorized accepts "bearer <token>" (v2) and "bearer:<token>" (v1).
func (s *Server) authorized(r *http.Request) bool {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(h) < 7 || !strings.EqualFold(h[:6], "bearer") {
		return false
	}
	tok := strings.TrimSpace(strings.TrimPrefix(h[6:], ":"))
	exp, ok := s.tokens[tok]
	return ok && s.clock().Before(exp)
}

// spend counts one request against the rate limit and sets the headers; it
// reports false when the budget is spent.
func (s *Server) spend(w http.ResponseWriter) bool {
	if s.rateLimit <= 0 {
		return true
	}
	now := s.roll()
	reset := int64(math.Ceil(s.windowStart.Add(s.rateWindow).Sub(now).Seconds()))
	ok := s.used < s.rateLimit
	if ok {
		s.used++
	}
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(s.rateLimit))
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(s.rateLimit-s.used))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
	return ok
}

// roll starts a new rate-limit window when the last one has ended.
func (s *Server) roll() time.Time {
	now := s.clock()
	if s.windowStart.IsZero() || !now.Before(s.windowStart.Add(s.rateWindow)) {
		s.windowStart, s.used = now, 0
	}
	return now
}

// page is one page of a v2 list.
type page struct{ limit, number int }

// v2Page reads limit, page and cursor (base64 of "limit=N&page=P", as
// OneLogin's cursors are).
func (s *Server) v2Page(q url.Values) (page, error) {
	p := page{limit: 50, number: 1}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, fmt.Errorf("invalid limit")
		}
		p.limit = n
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, fmt.Errorf("invalid page")
		}
		p.number = n
	}
	if c := q.Get("cursor"); c != "" {
		b, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			return p, fmt.Errorf("invalid cursor")
		}
		cq, err := url.ParseQuery(string(b))
		if err != nil {
			return p, fmt.Errorf("invalid cursor")
		}
		l, err1 := strconv.Atoi(cq.Get("limit"))
		n, err2 := strconv.Atoi(cq.Get("page"))
		if err1 != nil || err2 != nil || l < 1 || n < 1 {
			return p, fmt.Errorf("invalid cursor")
		}
		p = page{limit: l, number: n}
	}
	p.limit = min(p.limit, s.maxPage)
	return p, nil
}

func cursor(limit, number int) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "limit=%d&page=%d", limit, number))
}

// paginate cuts items to the page and writes the pagination headers.
func paginate[T any](w http.ResponseWriter, items []T, p page) []T {
	total := len(items)
	pages := max((total+p.limit-1)/p.limit, 1)
	from := min((p.number-1)*p.limit, total)
	to := min(from+p.limit, total)
	h := w.Header()
	h.Set("Total-Count", strconv.Itoa(total))
	h.Set("Total-Pages", strconv.Itoa(pages))
	h.Set("Current-Page", strconv.Itoa(p.number))
	h.Set("Page-Items", strconv.Itoa(to-from))
	if p.number > 1 {
		h.Set("Before-Cursor", cursor(p.limit, p.number-1))
	}
	if p.number < pages {
		h.Set("After-Cursor", cursor(p.limit, p.number+1))
	}
	return items[from:to]
}

// defaultUserFields are what /api/2/users returns without `fields`: title,
// department and manager_user_id are only sent when asked for.
var defaultUserFields = []string{
	"activated_at", "created_at", "directory_id", "distinguished_name", "email", "external_id",
	"firstname", "group_id", "id", "invalid_login_attempts", "invitation_sent_at", "last_login",
	"lastname", "locked_until", "member_of", "password_changed_at", "phone", "samaccountname",
	"state", "status", "updated_at", "username",
}

// customAttributes is the custom_attributes object of a user: OneLogin
// sends an object (empty when the account defines no custom fields).
func customAttributes(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func userJSON(u *User, fields []string) map[string]any {
	str := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	id := func(n int64) any {
		if n == 0 {
			return nil
		}
		return n
	}
	all := map[string]any{
		"id": u.ID, "username": str(u.Username), "email": str(u.Email),
		"firstname": str(u.Firstname), "lastname": str(u.Lastname),
		"title": str(u.Title), "department": str(u.Department),
		"status": u.Status, "state": u.State, "group_id": id(u.GroupID),
		"manager_user_id": id(u.ManagerUserID), "manager_ad_id": nil,
		"created_at":   u.CreatedAt.Format("2006-01-02T15:04:05.000Z"),
		"updated_at":   u.UpdatedAt.Format("2006-01-02T15:04:05.000Z"),
		"activated_at": nil, "directory_id": nil, "distinguished_name": nil, "external_id": nil,
		"invalid_login_attempts": 0, "invitation_sent_at": nil, "last_login": nil,
		"locked_until": nil, "member_of": nil, "password_changed_at": nil, "phone": nil,
		"samaccountname": nil, "company": nil, "comment": nil, "trusted_idp_id": nil,
		"custom_attributes": customAttributes(u.CustomAttributes),
	}
	out := map[string]any{"id": u.ID}
	for _, f := range fields {
		if v, ok := all[f]; ok {
			out[f] = v
		}
	}
	for k, v := range u.Override {
		out[k] = v
	}
	return out
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p, ok := s.page(w, r)
	if !ok {
		return
	}
	var since time.Time
	if v := q.Get("updated_since"); v != "" {
		var err error
		if since, err = time.Parse(time.RFC3339, v); err != nil {
			writeError(w, false, http.StatusBadRequest, "updated_since is not an ISO8601 timestamp")
			return
		}
	}
	fields := defaultUserFields
	if v := q.Get("fields"); v != "" {
		fields = nil
		for f := range strings.SplitSeq(v, ",") {
			fields = append(fields, strings.TrimSpace(f))
		}
	}
	var list []*User
	for _, u := range s.users {
		if !since.IsZero() && u.UpdatedAt.Before(since) {
			continue
		}
		list = append(list, u)
	}
	slices.SortFunc(list, func(a, b *User) int { return cmp.Compare(a.ID, b.ID) })
	out := []map[string]any{}
	for _, u := range paginate(w, list, p) {
		out = append(out, userJSON(u, fields))
	}
	writeJSON(w, http.StatusOK, out)
}

// lookup finds the object with the id rawID, or answers 404.
func lookup[T any](w http.ResponseWriter, objects map[int64]*T, rawID string) (*T, bool) {
	id, err := strconv.ParseInt(rawID, 10, 64)
	o, ok := objects[id]
	if err != nil || !ok {
		writeError(w, false, http.StatusNotFound, "The resource with the given id could not be found")
		return nil, false
	}
	return o, true
}

// page reads the page a v2 list request asks for, or answers 400.
func (s *Server) page(w http.ResponseWriter, r *http.Request) (page, bool) {
	p, err := s.v2Page(r.URL.Query())
	if err != nil {
		writeError(w, false, http.StatusBadRequest, err.Error())
		return p, false
	}
	return p, true
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, rawID string) {
	u, ok := lookup(w, s.users, rawID)
	if !ok {
		return
	}
	fields := slices.Concat(defaultUserFields, []string{"title", "department", "manager_user_id", "company", "comment"})
	if v := r.URL.Query().Get("fields"); v != "" {
		fields = strings.Split(v, ",")
	}
	writeJSON(w, http.StatusOK, userJSON(u, fields))
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request) {
	p, ok := s.page(w, r)
	if !ok {
		return
	}
	var list []*Role
	for _, ro := range s.roles {
		list = append(list, ro)
	}
	slices.SortFunc(list, func(a, b *Role) int { return cmp.Compare(a.ID, b.ID) })
	out := []map[string]any{}
	for _, ro := range paginate(w, list, p) {
		out = append(out, map[string]any{"id": ro.ID, "name": ro.Name})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) roleUsers(w http.ResponseWriter, r *http.Request, rawID string) {
	ro, ok := lookup(w, s.roles, rawID)
	if !ok {
		return
	}
	p, ok := s.page(w, r)
	if !ok {
		return
	}
	ids := slices.Clone(ro.Users)
	slices.Sort(ids)
	out := []map[string]any{}
	for _, uid := range paginate(w, ids, p) {
		m := map[string]any{"id": uid, "added_by": nil, "added_at": s.clock().Format(time.RFC3339), "assigned": true}
		if u, ok := s.users[uid]; ok {
			m["name"] = strings.TrimSpace(u.Firstname + " " + u.Lastname)
			m["username"] = u.Username
			m["email"] = u.Email
		}
		out = append(out, m)
	}
	writeJSON(w, http.StatusOK, out)
}

// listGroups is the v1 list: {"status", "pagination", "data"} with an
// after_cursor query parameter.
func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	number := 1
	c := r.URL.Query().Get("after_cursor")
	if c == "" {
		c = r.URL.Query().Get("before_cursor")
	}
	if c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "page="))
		if err != nil || err2 != nil || n < 1 {
			writeError(w, true, http.StatusBadRequest, "Invalid cursor")
			return
		}
		number = n
	}
	var list []*Group
	for _, g := range s.groups {
		list = append(list, g)
	}
	slices.SortFunc(list, func(a, b *Group) int { return cmp.Compare(a.ID, b.ID) })
	size := max(s.groupPageSize, 1)
	from := min((number-1)*size, len(list))
	to := min(from+size, len(list))
	data := []map[string]any{}
	for _, g := range list[from:to] {
		var ref any
		if g.Reference != "" {
			ref = g.Reference
		}
		data = append(data, map[string]any{"id": g.ID, "name": g.Name, "reference": ref})
	}
	pag := map[string]any{"before_cursor": nil, "after_cursor": nil, "previous_link": nil, "next_link": nil}
	link := func(param string, n int) (string, string) {
		c := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "page=%d", n))
		return c, s.URL + GroupsPath + "?" + param + "=" + url.QueryEscape(c)
	}
	if number > 1 {
		c, l := link("before_cursor", number-1)
		pag["before_cursor"], pag["previous_link"] = c, l
	}
	if to < len(list) {
		c, l := link("after_cursor", number+1)
		pag["after_cursor"], pag["next_link"] = c, l
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status":     map[string]any{"error": false, "code": 200, "type": "success", "message": "Success"},
		"pagination": pag,
		"data":       data,
	})
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
