package okta

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/fault"
	"github.com/learnsync/learnsync/connectors/okta/oktatest"
)

// fastRetry keeps retry tests short.
var fastRetry = connectors.Backoff{Attempts: 3, Base: 5 * time.Millisecond, Max: 20 * time.Millisecond}

type recorder struct {
	mu        sync.Mutex
	requests  int
	statuses  map[int]int
	throttled int
	progress  int
}

func (r *recorder) hooks() connectors.Hooks {
	r.statuses = make(map[int]int)
	return connectors.Hooks{
		Request: func(_ string, status int, _ time.Duration) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.requests++
			r.statuses[status]++
		},
		Throttled: func(string, time.Duration) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.throttled++
		},
		Progress: func(connectors.Progress) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.progress++
		},
	}
}

func testConfig(t *testing.T, srv *oktatest.Server) *Config {
	cfg := DefaultConfig()
	cfg.OrgURL = srv.URL()
	cfg.APIToken = connectors.Secret(srv.Token)
	cfg.CAFile = srv.CACertFile(t)
	cfg.PageSize = 3
	return cfg
}

func newTestConnector(t *testing.T, cfg *Config, hooks connectors.Hooks) *Connector {
	t.Helper()
	c, err := New(cfg, connectors.Options{Name: "okta-test", Logger: slog.New(slog.DiscardHandler), Hooks: hooks})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.tr.retry = fastRetry
	return c
}

func userIDs(us []connectors.User) []string {
	var ids []string
	for _, u := range us {
		ids = append(ids, u.ExternalID)
	}
	return ids
}

func groupIDs(gs []connectors.Group) []string {
	var ids []string
	for _, g := range gs {
		ids = append(ids, g.ExternalID)
	}
	return ids
}

func findUser(us []connectors.User, id string) (connectors.User, bool) {
	for _, u := range us {
		if u.ExternalID == id {
			return u, true
		}
	}
	return connectors.User{}, false
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestFetchAll(t *testing.T) {
	srv := oktatest.New(t)
	byStatus := make(map[string]string)
	for _, st := range oktatest.Statuses {
		byStatus[st] = srv.AddPerson(strings.ToLower(st)+"@example.com", "First", st, st)
	}
	full := srv.AddUser(oktatest.User{Status: oktatest.StatusActive, Profile: map[string]any{
		"login": "ada@example.com", "email": "ada.l@example.com", "firstName": "Ada", "lastName": "Lovelace",
		"displayName": "Countess Ada", "title": "Analyst", "department": "Engines", "employeeNumber": "1815",
		"manager": "Babbage", "costCenter": "CC-7", "nickName": nil,
	}}).ID
	weird := srv.AddPerson("weird@example.com", "W", "X", "FROZEN")
	srv.AddUser(oktatest.User{OmitID: true, Profile: map[string]any{"login": "noid@example.com"}})

	eng := srv.AddGroup(oktatest.Group{Name: "Engineering", Description: "builders"})
	sales := srv.AddGroup(oktatest.Group{Name: "Sales"})
	appGroup := srv.AddGroup(oktatest.Group{Name: "AD Users", Type: oktatest.GroupTypeApp})
	srv.AddGroup(oktatest.Group{Name: "Everyone", Type: oktatest.GroupTypeBuiltIn})
	// Five members, of whom the STAGED one is skipped: two pages of three.
	srv.AddMember(eng.ID, full, byStatus["ACTIVE"], byStatus["SUSPENDED"], byStatus["DEPROVISIONED"], byStatus["STAGED"])
	srv.AddMember(appGroup.ID, byStatus["LOCKED_OUT"])

	var rec recorder
	c := newTestConnector(t, testConfig(t, srv), rec.hooks())
	res, err := c.FetchAll(context.Background())
	if err != nil {
		t.Fatalf("FetchAll: %v", err)
	}
	if !res.Full {
		t.Error("Full = false")
	}

	want := map[string]connectors.Status{
		"ACTIVE": connectors.StatusActive, "PROVISIONED": connectors.StatusActive,
		"RECOVERY": connectors.StatusActive, "PASSWORD_EXPIRED": connectors.StatusActive,
		"LOCKED_OUT": connectors.StatusActive, "SUSPENDED": connectors.StatusInactive,
		"DEPROVISIONED": connectors.StatusInactive,
	}
	if len(res.Users) != len(want)+1 {
		t.Errorf("got %d users %v, want %d", len(res.Users), userIDs(res.Users), len(want)+1)
	}
	for st, ws := range want {
		u, ok := findUser(res.Users, byStatus[st])
		if !ok {
			t.Errorf("%s user missing", st)
			continue
		}
		if u.Status != ws {
			t.Errorf("%s user status = %s, want %s", st, u.Status, ws)
		}
		if u.DisplayName != "First "+st {
			t.Errorf("%s user display name = %q, want first + last", st, u.DisplayName)
		}
	}
	if _, ok := findUser(res.Users, byStatus["STAGED"]); ok {
		t.Error("STAGED user not skipped")
	}
	if _, ok := findUser(res.Users, weird); ok {
		t.Error("user with unknown status not skipped")
	}
	got, _ := findUser(res.Users, full)
	wantUser := connectors.User{ExternalID: full, UserName: "ada@example.com", Email: "ada.l@example.com",
		GivenName: "Ada", FamilyName: "Lovelace", DisplayName: "Countess Ada", Title: "Analyst",
		Department: "Engines", EmployeeNumber: "1815", Manager: "Babbage", CostCenter: "CC-7",
		Status: connectors.StatusActive}
	if got != wantUser {
		t.Errorf("profile mapping:\n got %+v\nwant %+v", got, wantUser)
	}

	var reasons []string
	for _, p := range res.Problems {
		reasons = append(reasons, p.String())
	}
	if len(res.Problems) != 2 ||
		!slices.ContainsFunc(reasons, func(s string) bool { return strings.Contains(s, weird) && strings.Contains(s, "FROZEN") }) ||
		!slices.ContainsFunc(reasons, func(s string) bool { return strings.Contains(s, "noid@example.com") && strings.Contains(s, "no id") }) {
		t.Errorf("problems = %q, want the unknown status and the record without id", reasons)
	}

	if g := groupIDs(res.Groups); !slices.Equal(g, sorted(eng.ID, sales.ID, appGroup.ID)) {
		t.Errorf("groups = %v, want OKTA_GROUP and APP_GROUP ones only", g)
	}
	if res.Groups[0].Name != "Engineering" || res.Groups[0].Description != "builders" {
		t.Errorf("group 0 = %+v", res.Groups[0])
	}
	if m := res.Members[eng.ID]; !slices.Equal(m, sorted(full, byStatus["ACTIVE"], byStatus["SUSPENDED"], byStatus["DEPROVISIONED"])) {
		t.Errorf("members of Engineering = %v", m)
	}
	if m := res.Members[appGroup.ID]; !slices.Equal(m, []string{byStatus["LOCKED_OUT"]}) {
		t.Errorf("members of AD Users = %v", m)
	}
	if _, ok := res.Members[sales.ID]; ok {
		t.Errorf("empty group has a member entry")
	}

	// Paging: 11 users in pages of 3 is 4 pages, all through search (the
	// plain listing would hide DEPROVISIONED); 5 members are 2 pages.
	var userPages, memberPages int
	for _, r := range srv.RequestLog() {
		switch r.Path {
		case "/api/v1/users":
			userPages++
			if r.Query.Get("search") == "" {
				t.Errorf("users request without search: %v", r.Query)
			}
		case "/api/v1/groups/" + eng.ID + "/users":
			memberPages++
		}
	}
	if userPages != 4 || memberPages != 2 {
		t.Errorf("user pages = %d (want 4), member pages = %d (want 2)", userPages, memberPages)
	}
	if res.Requests != srv.TotalRequests() || rec.requests != res.Requests || rec.statuses[200] != res.Requests {
		t.Errorf("Requests = %d, fake saw %d, hook saw %d (%v)", res.Requests, srv.TotalRequests(), rec.requests, rec.statuses)
	}
	if rec.progress == 0 {
		t.Error("no progress reported")
	}

	cur, err := time.Parse(time.RFC3339Nano, res.Cursor)
	if err != nil {
		t.Fatalf("cursor %q: %v", res.Cursor, err)
	}
	if d := srv.Now().Sub(cur); d < CursorOverlap || d > CursorOverlap+5*time.Second {
		t.Errorf("cursor is %s before the org's clock, want about %s", d, CursorOverlap)
	}
}

func TestFetchChanges(t *testing.T) {
	srv := oktatest.New(t)
	a := srv.AddPerson("a@example.com", "A", "A", "ACTIVE")
	b := srv.AddPerson("b@example.com", "B", "B", "ACTIVE")
	cu := srv.AddPerson("c@example.com", "C", "C", "ACTIVE")
	d := srv.AddPerson("d@example.com", "D", "D", "ACTIVE")
	srv.AddPeople(20) // bystanders that must not be fetched again
	g1 := srv.AddGroup(oktatest.Group{Name: "G1"})
	g2 := srv.AddGroup(oktatest.Group{Name: "G2"})
	srv.AddMember(g1.ID, a, b)
	srv.AddMember(g2.ID, a)
	// Everything above is older than the full fetch's overlap.
	srv.Advance(time.Minute)

	c := newTestConnector(t, testConfig(t, srv), connectors.Hooks{})
	ctx := context.Background()
	first, err := c.FetchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}

	srv.Advance(30 * time.Second)
	srv.SetProfile(a, "title", "Chief")            // profile change
	srv.SetUserStatus(b, oktatest.StatusSuspended) // status change
	srv.AddMember(g1.ID, cu)                       // membership change
	g3 := srv.AddGroup(oktatest.Group{Name: "G3"}) // new group
	srv.AddMember(g3.ID, d)
	// The next cycle comes a while later; changes made within
	// CursorOverlap before a fetch are seen again by the one after it.
	srv.Advance(CursorOverlap + time.Second)
	srv.ResetRequests()

	res, err := c.FetchChanges(ctx, first.Cursor)
	if err != nil {
		t.Fatalf("FetchChanges: %v", err)
	}
	if res.Full {
		t.Fatal("incremental fetch returned a full result")
	}
	if got := userIDs(res.Users); !slices.Equal(got, sorted(a, b)) {
		t.Fatalf("changed users = %v, want %v", got, sorted(a, b))
	}
	if u, _ := findUser(res.Users, a); u.Title != "Chief" {
		t.Errorf("a.Title = %q", u.Title)
	}
	if u, _ := findUser(res.Users, b); u.Status != connectors.StatusInactive {
		t.Errorf("b.Status = %s", u.Status)
	}
	if got := groupIDs(res.Groups); !slices.Equal(got, sorted(g1.ID, g3.ID)) {
		t.Errorf("changed groups = %v, want G1 and G3", got)
	}
	if m := res.Members[g1.ID]; !slices.Equal(m, sorted(a, b, cu)) {
		t.Errorf("G1 members = %v", m)
	}
	if m := res.Members[g3.ID]; !slices.Equal(m, []string{d}) {
		t.Errorf("G3 members = %v", m)
	}
	if _, ok := res.Members[g2.ID]; ok {
		t.Error("unchanged group G2's members were fetched")
	}
	if len(res.DeletedUsers)+len(res.DeletedGroups) != 0 {
		t.Errorf("deleted: %v %v", res.DeletedUsers, res.DeletedGroups)
	}
	if n := srv.Requests("/api/v1/groups/" + g2.ID + "/users"); n != 0 {
		t.Errorf("G2 members requested %d times", n)
	}
	// 1 users search + 1 groups filter + 1 member list for each of G1, G3.
	if res.Requests != 4 || srv.TotalRequests() != 4 {
		t.Errorf("incremental made %d requests (fake saw %d), want 4", res.Requests, srv.TotalRequests())
	}

	// A group whose members all left gets an empty list, which replaces
	// the old one.
	srv.Advance(time.Minute)
	srv.RemoveMember(g3.ID, d)
	srv.Advance(CursorOverlap + time.Second)
	res2, err := c.FetchChanges(ctx, res.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := res2.Members[g3.ID]; !ok || len(m) != 0 {
		t.Errorf("emptied G3: Members entry %v (present %v), want an empty list", m, ok)
	}

	// Nothing changed: at most 2 requests, whatever the size of the org.
	srv.Advance(time.Minute)
	srv.ResetRequests()
	res3, err := c.FetchChanges(ctx, res2.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if len(res3.Users)+len(res3.Groups)+len(res3.Members) != 0 {
		t.Errorf("nothing changed, got %d users, %d groups, %d member lists", len(res3.Users), len(res3.Groups), len(res3.Members))
	}
	if srv.TotalRequests() > 2 || res3.Requests > 2 {
		t.Errorf("nothing changed took %d requests (fake saw %d), want at most 2", res3.Requests, srv.TotalRequests())
	}
	if res3.Cursor <= res2.Cursor {
		t.Errorf("cursor did not advance: %s then %s", res2.Cursor, res3.Cursor)
	}

	// Only the configured group types; a STAGED user (lifecycle reset)
	// leaves the mirror; an unknown status is a problem, not a deletion;
	// a user deleted outright is left to the next full fetch.
	everyone := srv.AddGroup(oktatest.Group{Name: "Everyone", Type: oktatest.GroupTypeBuiltIn})
	srv.AddMember(everyone.ID, a)
	srv.SetUserStatus(cu, oktatest.StatusStaged)
	srv.SetUserStatus(d, "FROZEN")
	srv.DeleteUser(b)
	srv.Advance(CursorOverlap + time.Second)
	res4, err := c.FetchChanges(ctx, res3.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if len(res4.Users) != 0 || !slices.Equal(res4.DeletedUsers, []string{cu}) {
		t.Errorf("users = %v, deleted = %v; want only %s deleted", userIDs(res4.Users), res4.DeletedUsers, cu)
	}
	if len(res4.Problems) != 1 || !strings.Contains(res4.Problems[0].String(), "FROZEN") {
		t.Errorf("problems = %v", res4.Problems)
	}
	// G1 lost b (deleted) and c (staged); the built-in group is not read.
	if got := groupIDs(res4.Groups); !slices.Equal(got, []string{g1.ID}) {
		t.Errorf("changed groups = %v, want G1 only", got)
	}
	if m := res4.Members[g1.ID]; !slices.Equal(m, []string{a}) {
		t.Errorf("G1 members = %v, want only a", m)
	}

	// A bad cursor falls back to a full fetch.
	res5, err := c.FetchChanges(ctx, "yesterday")
	if err != nil {
		t.Fatal(err)
	}
	if !res5.Full || len(res5.Users) != 21 {
		t.Errorf("bad cursor: Full=%v users=%d, want a full result of 21", res5.Full, len(res5.Users))
	}
	if _, ok := findUser(res5.Users, b); ok {
		t.Error("full fetch still has the deleted user")
	}
}

func TestRateLimitStorm(t *testing.T) {
	srv := oktatest.New(t)
	ids := srv.AddPeople(6)
	var groups []string
	for i := range 6 {
		g := srv.AddGroup(oktatest.Group{Name: "G" + string(rune('A'+i))})
		srv.AddMember(g.ID, ids[i])
		groups = append(groups, g.ID)
	}
	// Member lists are read by several workers at once; with 3 requests
	// a second, their first requests and those right after each reset run
	// into 429s.
	srv.SetRateWindow(time.Second)
	srv.SetRateLimit(oktatest.FamilyGroups, 3)

	cfg := testConfig(t, srv)
	cfg.RateLimitShare = 1
	var rec recorder
	c := newTestConnector(t, cfg, rec.hooks())
	start := time.Now()
	res, err := c.FetchAll(context.Background())
	if err != nil {
		t.Fatalf("FetchAll in a 429 storm: %v", err)
	}
	if len(res.Users) != 6 || len(res.Members) != 6 {
		t.Errorf("got %d users and %d member lists, want 6 and 6", len(res.Users), len(res.Members))
	}
	for i, g := range groups {
		if m := res.Members[g]; !slices.Equal(m, []string{ids[i]}) {
			t.Errorf("members of %s = %v", g, m)
		}
	}
	var tooMany int
	for _, r := range srv.RequestLog() {
		if r.Status == http.StatusTooManyRequests {
			tooMany++
		}
	}
	if tooMany == 0 || rec.statuses[429] != tooMany || rec.throttled < tooMany {
		t.Errorf("429s at the fake = %d, seen by hooks %d, throttled %d", tooMany, rec.statuses[429], rec.throttled)
	}
	t.Logf("7 group requests at 3 per second: %d 429s, %s", tooMany, time.Since(start).Round(time.Millisecond))
}

func TestThrottlingBound(t *testing.T) {
	srv := oktatest.New(t)
	srv.AddPeople(1)
	srv.SetRateWindow(time.Second)
	srv.Inject(fault.Fault{Endpoint: "/api/v1/users", Times: -1, Status: http.StatusTooManyRequests})
	c := newTestConnector(t, testConfig(t, srv), connectors.Hooks{})
	c.tr.maxThrottles = 1
	res, err := c.FetchAll(context.Background())
	if res != nil || err == nil || !strings.Contains(err.Error(), "throttling bound") || errors.Is(err, connectors.ErrTerminal) {
		t.Fatalf("FetchAll = %v, %v; want a non-terminal error about the bound", res, err)
	}
	fault.CheckAnswer(t, err, fault.Throttled)
	if n := srv.Requests("/api/v1/users"); n != 2 {
		t.Errorf("%d requests, want 2 (one wait)", n)
	}
}

func TestRateBudgetShare(t *testing.T) {
	srv := oktatest.New(t)
	srv.AddPeople(7)
	srv.SetRateWindow(time.Second)
	srv.SetRateLimit(oktatest.FamilyUsers, 4)

	cfg := testConfig(t, srv)
	cfg.PageSize = 2
	cfg.RateLimitShare = 0.5
	var rec recorder
	c := newTestConnector(t, cfg, rec.hooks())
	res, err := c.FetchAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Users) != 7 {
		t.Errorf("got %d users", len(res.Users))
	}
	// Half of 4 per window is left to the org's other integrations: the
	// connector waits instead of ever being refused.
	for _, r := range srv.RequestLog() {
		if r.Status == http.StatusTooManyRequests {
			t.Fatalf("got a 429; the budget should have paced the requests")
		}
	}
	if rec.throttled == 0 {
		t.Error("4 pages at 2 per window never waited")
	}
}

func TestServerErrorOnMiddlePage(t *testing.T) {
	srv := oktatest.New(t)
	srv.AddPeople(8)
	srv.Inject(fault.Fault{Endpoint: "/api/v1/users", Nth: 2, Times: -1, Status: http.StatusInternalServerError})

	c := newTestConnector(t, testConfig(t, srv), connectors.Hooks{})
	res, err := c.FetchAll(context.Background())
	if err == nil || res != nil {
		t.Fatalf("FetchAll = %v, %v; want nil and an error", res, err)
	}
	if errors.Is(err, connectors.ErrTerminal) {
		t.Errorf("a 500 is not terminal: %v", err)
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), "okta-test") {
		t.Errorf("error %q should name the source and the status", err)
	}
	// Page 1, then page 2 tried fastRetry.Attempts times.
	if n := srv.Requests("/api/v1/users"); n != 1+fastRetry.Attempts {
		t.Errorf("users requests = %d, want %d", n, 1+fastRetry.Attempts)
	}

	// One 500 is retried and the fetch goes on.
	srv.ClearFaults()
	srv.Inject(fault.Fault{Endpoint: "/api/v1/users", Nth: 2, Status: http.StatusInternalServerError})
	res, err = c.FetchAll(context.Background())
	if err != nil || len(res.Users) != 8 {
		t.Fatalf("after one 500: %v, %v", res, err)
	}
}

func TestUnauthorized(t *testing.T) {
	srv := oktatest.New(t)
	srv.AddPeople(2)
	cfg := testConfig(t, srv)
	cfg.APIToken = "00wrongtoken-do-not-print"
	c := newTestConnector(t, cfg, connectors.Hooks{})
	res, err := c.FetchAll(context.Background())
	if res != nil || !errors.Is(err, connectors.ErrTerminal) {
		t.Fatalf("FetchAll = %v, %v; want a terminal error", res, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"okta-test"`) || !strings.Contains(msg, "Invalid token provided") {
		t.Errorf("error %q should name the source and Okta's errorSummary", msg)
	}
	if strings.Contains(msg, "do-not-print") || strings.Contains(msg, srv.Token) {
		t.Errorf("error %q shows a token", msg)
	}
	// Users and groups are read at once; neither 401 is retried.
	if u, g := srv.Requests("/api/v1/users"), srv.Requests("/api/v1/groups"); u > 1 || g > 1 || u+g == 0 {
		t.Errorf("a 401 was retried: %d users and %d groups requests", u, g)
	}

	// 403 on a member list, with the right token.
	g := srv.AddGroup(oktatest.Group{Name: "G"})
	srv.Inject(fault.Fault{Endpoint: "/api/v1/groups/" + g.ID + "/users", Times: -1, Status: http.StatusForbidden})
	c = newTestConnector(t, testConfig(t, srv), connectors.Hooks{})
	if _, err := c.FetchAll(context.Background()); !errors.Is(err, connectors.ErrTerminal) || !strings.Contains(err.Error(), "permission") {
		t.Errorf("403: %v, want a terminal error with Okta's summary", err)
	}
}

func TestAppScope(t *testing.T) {
	for _, directOnly := range []bool{false, true} {
		srv := oktatest.New(t)
		srv.SetAppUsersDirectOnly(directOnly)
		direct := srv.AddPerson("direct@example.com", "D", "D", "ACTIVE")
		viaGroup := srv.AddPerson("group@example.com", "G", "G", "ACTIVE")
		viaGroup2 := srv.AddPerson("group2@example.com", "G", "2", "SUSPENDED")
		outside := srv.AddPerson("outside@example.com", "O", "O", "ACTIVE")
		app := srv.AddApp("LMS")
		assigned := srv.AddGroup(oktatest.Group{Name: "LMS users"})
		other := srv.AddGroup(oktatest.Group{Name: "Everyone else"})
		srv.AddMember(assigned.ID, viaGroup, viaGroup2)
		srv.AddMember(other.ID, outside, direct)
		srv.AssignUser(app, direct)
		srv.AssignGroup(app, assigned.ID)

		cfg := testConfig(t, srv)
		cfg.AppID = app
		c := newTestConnector(t, cfg, connectors.Hooks{})
		res, err := c.FetchAll(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := userIDs(res.Users); !slices.Equal(got, sorted(direct, viaGroup, viaGroup2)) {
			t.Errorf("directOnly=%v: users = %v, want the app's three", directOnly, got)
		}
		if m := res.Members[other.ID]; !slices.Equal(m, []string{direct}) {
			t.Errorf("members of the unassigned group = %v, want only in-scope users", m)
		}
		// With app_id an incremental fetch reads the scope whole.
		res2, err := c.FetchChanges(context.Background(), res.Cursor)
		if err != nil || !res2.Full || len(res2.Users) != 3 {
			t.Errorf("FetchChanges with app_id: full=%v users=%d err=%v", res2 != nil && res2.Full, len(res2.Users), err)
		}
	}

	srv := oktatest.New(t)
	cfg := testConfig(t, srv)
	cfg.AppID = "0oanosuchapp"
	c := newTestConnector(t, cfg, connectors.Hooks{})
	if _, err := c.FetchAll(context.Background()); !errors.Is(err, connectors.ErrTerminal) || !strings.Contains(err.Error(), "0oanosuchapp") {
		t.Errorf("unknown app: %v, want a terminal error naming it", err)
	}
}

func TestPrivateKey(t *testing.T) {
	srv := oktatest.New(t)
	u := srv.AddPerson("a@example.com", "A", "A", "ACTIVE")
	g := srv.AddGroup(oktatest.Group{Name: "G"})
	srv.AddMember(g.ID, u)
	key := srv.EnableOAuth("0oaservice", "okta.users.read", "okta.groups.read")

	cfg := testConfig(t, srv)
	cfg.APIToken = ""
	cfg.ClientID = "0oaservice"
	cfg.PrivateKey = connectors.Secret(key)
	c := newTestConnector(t, cfg, connectors.Hooks{})
	for i := range 2 {
		res, err := c.FetchAll(context.Background())
		if err != nil {
			t.Fatalf("FetchAll with a private key: %v", err)
		}
		if len(res.Users) != 1 || len(res.Members[g.ID]) != 1 {
			t.Errorf("got %d users, members %v", len(res.Users), res.Members)
		}
		// Users and groups are read at once, so the first fetch may ask
		// for two tokens; the second reuses them.
		n := srv.Requests("/oauth2/v1/token")
		if (i == 0 && (n < 1 || n > 2)) || (i == 1 && n != 0) {
			t.Errorf("fetch %d requested %d tokens", i+1, n)
		}
		srv.ResetRequests()
	}

	// The app's scope was not granted: the token request is refused.
	cfg.AppID = srv.AddApp("LMS")
	c = newTestConnector(t, cfg, connectors.Hooks{})
	_, err := c.FetchAll(context.Background())
	if !errors.Is(err, connectors.ErrTerminal) || !strings.Contains(err.Error(), "invalid_scope") {
		t.Errorf("scope not granted: %v, want a terminal invalid_scope error", err)
	}
}

func TestGroupDeletedWhileFetching(t *testing.T) {
	srv := oktatest.New(t)
	u := srv.AddPerson("a@example.com", "A", "A", "ACTIVE")
	g1 := srv.AddGroup(oktatest.Group{Name: "G1"})
	g2 := srv.AddGroup(oktatest.Group{Name: "G2"})
	srv.AddMember(g1.ID, u)
	srv.AddMember(g2.ID, u)
	srv.Inject(fault.Fault{Endpoint: "/api/v1/groups/" + g2.ID + "/users", Times: -1, Status: http.StatusNotFound})
	c := newTestConnector(t, testConfig(t, srv), connectors.Hooks{})
	res, err := c.FetchAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := groupIDs(res.Groups); !slices.Equal(got, []string{g1.ID}) {
		t.Errorf("groups = %v, want G2 left out", got)
	}
}

func TestNetworkErrorsFail(t *testing.T) {
	srv := fault.Start(t, "okta-reset", fault.Handler{Answer: http.NotFound})
	// The client reads EOF, which the SDK would retry forever.
	srv.Inject(fault.Fault{Endpoint: "*", Reset: true, Times: -1})
	c := rawConnector(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.FetchAll(ctx)
	if err == nil || res != nil || ctx.Err() != nil {
		t.Fatalf("FetchAll = %v, %v (ctx %v); want a prompt error", res, err, ctx.Err())
	}
	hits := map[string]int{}
	for _, r := range srv.RequestLog() {
		hits[r.Path]++
	}
	most := 0
	for _, n := range hits {
		most = max(most, n)
	}
	if most != fastRetry.Attempts {
		t.Errorf("requests per path %v, want at most and at least one path with %d attempts", hits, fastRetry.Attempts)
	}
}

func TestPagingLoopIsRefused(t *testing.T) {
	c := rawConnector(t, fault.Start(t, "okta-loop", fault.Handler{Answer: func(w http.ResponseWriter, r *http.Request) {
		// A broken server that always points to the same next page.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Add("Link", `<https://`+r.Host+`/api/v1/users?after=same&limit=1>; rel="next"`)
		_, _ = w.Write([]byte(`[{"id":"00u1","status":"ACTIVE","profile":{"login":"a@example.com"}}]`))
	}}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.FetchAll(ctx); err == nil || !strings.Contains(err.Error(), "next link") {
		t.Errorf("FetchAll = %v, want the paging loop refused", err)
	}
}

// rawConnector is a connector of an org whose answers srv gives.
func rawConnector(t *testing.T, srv *fault.Server) *Connector {
	cfg := DefaultConfig()
	cfg.OrgURL = srv.URL
	cfg.APIToken = "token"
	cfg.CAFile = srv.CAFile
	return newTestConnector(t, cfg, connectors.Hooks{})
}
