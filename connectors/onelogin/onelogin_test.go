package onelogin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/fault"
	"github.com/learnsync/learnsync/connectors/onelogin/onelogintest"
	"github.com/learnsync/learnsync/internal/testkit"
)

// recorder keeps what the hooks saw.
type recorder struct {
	mu        sync.Mutex
	requests  []string // "endpoint status"
	throttled []string // "endpoint wait"
	progress  []connectors.Progress
}

func (r *recorder) hooks() connectors.Hooks {
	return connectors.Hooks{
		Request: func(ep string, status int, _ time.Duration) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.requests = append(r.requests, fmt.Sprintf("%s %d", ep, status))
		},
		Throttled: func(ep string, d time.Duration) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.throttled = append(r.throttled, fmt.Sprintf("%s %s", ep, d.Round(time.Second)))
		},
		Progress: func(p connectors.Progress) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.progress = append(r.progress, p)
		},
	}
}

func (r *recorder) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.requests {
		if x == s {
			n++
		}
	}
	return n
}

func (r *recorder) waits() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.throttled)
}

func testConfig(srv *onelogintest.Server) Config {
	cfg := *DefaultConfig()
	cfg.APIURL = srv.URL
	cfg.ClientID = srv.ClientID
	cfg.ClientSecret = connectors.Secret(srv.ClientSecret)
	cfg.CAFile = srv.CAFile
	return cfg
}

func newConnector(t *testing.T, cfg Config, opts connectors.Options) (*Connector, *recorder) {
	t.Helper()
	rec := &recorder{}
	if opts.Name == "" {
		opts.Name = "ol-test"
	}
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.Hooks = rec.hooks()
	c, err := New(&cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	// Retries in milliseconds keep the tests fast; the logic is the same.
	c.client.backoff = connectors.Backoff{Attempts: 3, Base: time.Millisecond, Max: 5 * time.Millisecond}
	return c, rec
}

func byID(users []connectors.User) map[string]connectors.User {
	m := map[string]connectors.User{}
	for _, u := range users {
		m[u.ExternalID] = u
	}
	return m
}

func id(n int64) string { return fmt.Sprint(n) }

func TestFetchAllPagesAndMapping(t *testing.T) {
	srv := onelogintest.New(t)
	srv.SetGroupPageSize(2)
	sales := srv.AddGroup(onelogintest.Group{Name: "Sales"})
	eng := srv.AddGroup(onelogintest.Group{Name: "Engineering"})
	empty := srv.AddGroup(onelogintest.Group{Name: "Empty"})
	boss := srv.AddUser(onelogintest.User{Username: "boss", Email: "boss@example.com", Firstname: "Bo", Lastname: "Ss", Status: 1, State: 1, GroupID: eng.ID})
	ada := srv.AddUser(onelogintest.User{
		Username: "ada", Email: "Ada@Example.com", Firstname: "Ada", Lastname: "Lovelace",
		Title: "Engineer", Department: "R&D", Status: 1, State: 1, GroupID: eng.ID, ManagerUserID: boss.ID,
	})
	nouser := srv.AddUser(onelogintest.User{Email: "nouser@example.com", Status: 3, State: 1, GroupID: sales.ID})
	susp := srv.AddUser(onelogintest.User{Username: "sus", Email: "sus@example.com", Firstname: "Sus", Status: 2, State: 1})
	staged := srv.AddUser(onelogintest.User{Username: "new", Email: "new@example.com", Status: 0, State: 1})
	learners := srv.AddRole(onelogintest.Role{Name: "Learners", Users: []int64{ada.ID, nouser.ID, susp.ID, 999999}})
	admins := srv.AddRole(onelogintest.Role{Name: "Admins"})

	cfg := testConfig(srv)
	cfg.PageSize = 2
	c, rec := newConnector(t, cfg, connectors.Options{})
	res, err := c.FetchAll(context.Background())
	if err != nil {
		t.Fatalf("FetchAll: %v", err)
	}
	if !res.Full {
		t.Error("FetchAll result is not Full")
	}
	if len(res.Problems) != 0 {
		t.Errorf("problems: %v", res.Problems)
	}
	users := byID(res.Users)
	if len(users) != 5 {
		t.Fatalf("got %d users, want 5: %+v", len(users), res.Users)
	}
	wantAda := connectors.User{
		ExternalID: id(ada.ID), UserName: "ada", Email: "Ada@Example.com", GivenName: "Ada",
		FamilyName: "Lovelace", DisplayName: "Ada Lovelace", Title: "Engineer", Department: "R&D",
		Manager: "boss", Status: connectors.StatusActive,
	}
	if got := users[id(ada.ID)]; got != wantAda {
		t.Errorf("ada:\n got %+v\nwant %+v", got, wantAda)
	}
	if got := users[id(nouser.ID)]; got.UserName != "nouser@example.com" || got.DisplayName != "nouser@example.com" || got.Status != connectors.StatusActive {
		t.Errorf("user without username: %+v", got)
	}
	if got := users[id(susp.ID)].Status; got != connectors.StatusInactive {
		t.Errorf("suspended user status = %s", got)
	}
	if got := users[id(staged.ID)].Status; got != connectors.StatusSkip {
		t.Errorf("unactivated user status = %s", got)
	}

	wantGroups := []connectors.Group{
		{ExternalID: "role:" + id(learners.ID), Name: "Learners", Description: "OneLogin role"},
		{ExternalID: "role:" + id(admins.ID), Name: "Admins", Description: "OneLogin role"},
		{ExternalID: "group:" + id(sales.ID), Name: "Sales", Description: "OneLogin group"},
		{ExternalID: "group:" + id(eng.ID), Name: "Engineering", Description: "OneLogin group"},
		{ExternalID: "group:" + id(empty.ID), Name: "Empty", Description: "OneLogin group"},
	}
	if !slices.Equal(res.Groups, wantGroups) {
		t.Errorf("groups:\n got %+v\nwant %+v", res.Groups, wantGroups)
	}
	wantMembers := map[string][]string{
		// 999999 is not a user of the account: a full result leaves it out.
		"role:" + id(learners.ID): {id(ada.ID), id(nouser.ID), id(susp.ID)},
		"group:" + id(sales.ID):   {id(nouser.ID)},
		"group:" + id(eng.ID):     {id(boss.ID), id(ada.ID)},
	}
	if len(res.Members) != len(wantMembers) {
		t.Errorf("members: got %v, want %v", res.Members, wantMembers)
	}
	for g, want := range wantMembers {
		if got := res.Members[g]; !slices.Equal(got, want) {
			t.Errorf("members of %s = %v, want %v", g, got, want)
		}
	}

	// 5 users at 2 a page, 4 role members at 2 a page, 3 groups at 2 a page.
	if n := srv.Requests(onelogintest.UsersPath); n != 3 {
		t.Errorf("users pages requested = %d, want 3", n)
	}
	if n := srv.Requests(onelogintest.RoleUsersPath(learners.ID)); n != 2 {
		t.Errorf("role user pages requested = %d, want 2", n)
	}
	if n := srv.Requests(onelogintest.GroupsPath); n != 2 {
		t.Errorf("group pages requested = %d, want 2", n)
	}
	qs := srv.Queries(onelogintest.UsersPath)
	if qs[0].Get("limit") != "2" || !strings.Contains(qs[0].Get("fields"), "manager_user_id") || qs[0].Has("updated_since") {
		t.Errorf("first users query = %v", qs[0])
	}
	if qs[1].Get("cursor") == "" || qs[2].Get("cursor") == qs[1].Get("cursor") {
		t.Errorf("users pages not followed by After-Cursor: %v", qs)
	}
	if res.Requests != srv.TotalRequests() {
		t.Errorf("Result.Requests = %d, server saw %d", res.Requests, srv.TotalRequests())
	}
	if n := rec.count("users 200"); n != 3 {
		t.Errorf("hooks saw %d users answers, want 3", n)
	}
	if len(rec.progress) == 0 || rec.progress[len(rec.progress)-1].Users != 5 {
		t.Errorf("progress = %+v", rec.progress)
	}
	if res.Cursor == "" {
		t.Error("no cursor")
	}
}

func TestStatusAndState(t *testing.T) {
	srv := onelogintest.New(t)
	type want struct {
		status  connectors.Status
		problem bool
	}
	cases := []struct {
		name          string
		status, state int
		override      map[string]any
		want          want
	}{
		{"active", 1, 1, nil, want{connectors.StatusActive, false}},
		{"locked", 3, 1, nil, want{connectors.StatusActive, false}},
		{"password expired", 4, 1, nil, want{connectors.StatusActive, false}},
		{"awaiting password reset", 5, 1, nil, want{connectors.StatusActive, false}},
		{"password pending", 7, 1, nil, want{connectors.StatusActive, false}},
		{"security questions", 8, 1, nil, want{connectors.StatusActive, false}},
		{"suspended", 2, 1, nil, want{connectors.StatusInactive, false}},
		{"rejected", 1, 2, nil, want{connectors.StatusInactive, false}},
		{"unlicensed", 1, 3, nil, want{connectors.StatusInactive, false}},
		{"suspended and unlicensed", 2, 3, nil, want{connectors.StatusInactive, false}},
		{"unactivated", 0, 1, nil, want{connectors.StatusSkip, false}},
		{"unapproved", 1, 0, nil, want{connectors.StatusSkip, false}},
		{"unactivated and rejected", 0, 2, nil, want{connectors.StatusSkip, false}},
		{"unknown status", 6, 1, nil, want{connectors.StatusSkip, true}},
		{"unknown state", 1, 9, nil, want{connectors.StatusSkip, true}},
		{"no status", 1, 1, map[string]any{"status": nil}, want{connectors.StatusSkip, true}},
		{"no state", 1, 1, map[string]any{"state": nil}, want{connectors.StatusActive, false}},
	}
	ids := map[string]string{}
	for _, tc := range cases {
		u := srv.AddUser(onelogintest.User{Username: tc.name, Email: strings.ReplaceAll(tc.name, " ", ".") + "@example.com",
			Status: tc.status, State: tc.state, Override: tc.override})
		ids[tc.name] = id(u.ID)
	}
	c, _ := newConnector(t, testConfig(srv), connectors.Options{})
	res, err := c.FetchAll(context.Background())
	if err != nil {
		t.Fatalf("FetchAll: %v", err)
	}
	users := byID(res.Users)
	problems := map[string]string{}
	for _, p := range res.Problems {
		problems[p.Object] = p.Reason
	}
	for _, tc := range cases {
		u, ok := users[ids[tc.name]]
		if !ok {
			t.Errorf("%s: user missing", tc.name)
			continue
		}
		if u.Status != tc.want.status {
			t.Errorf("%s (status %d, state %d): %s, want %s", tc.name, tc.status, tc.state, u.Status, tc.want.status)
		}
		_, hasProblem := problems["user "+ids[tc.name]]
		if hasProblem != tc.want.problem {
			t.Errorf("%s: problem reported = %v, want %v (%v)", tc.name, hasProblem, tc.want.problem, problems)
		}
	}
	if r := problems["user "+ids["unknown status"]]; !strings.Contains(r, "unknown status 6") {
		t.Errorf("unknown status problem = %q", r)
	}
}

func TestMalformedRecordsAreProblems(t *testing.T) {
	srv := onelogintest.New(t)
	good := srv.AddUser(onelogintest.User{Username: "good", Email: "good@example.com", Status: 1, State: 1})
	srv.AddUser(onelogintest.User{Username: "noid", Status: 1, State: 1, Override: map[string]any{"id": nil}})
	bad := srv.AddUser(onelogintest.User{Username: "bad", Status: 1, State: 1, Override: map[string]any{"email": 42}})
	strID := srv.AddUser(onelogintest.User{Username: "strid", Email: "s@example.com", Status: 1, State: 1})
	srv.UpdateUser(strID.ID, func(u *onelogintest.User) { u.Override = map[string]any{"id": id(strID.ID)} })
	srv.AddRole(onelogintest.Role{Name: "  "})
	srv.AddGroup(onelogintest.Group{Name: "Ops"})
	orphan := srv.AddUser(onelogintest.User{Username: "orphan", Email: "o@example.com", Status: 1, State: 1, GroupID: 424242})

	c, _ := newConnector(t, testConfig(srv), connectors.Options{})
	res, err := c.FetchAll(context.Background())
	if err != nil {
		t.Fatalf("FetchAll: %v", err)
	}
	users := byID(res.Users)
	if _, ok := users[id(good.ID)]; !ok {
		t.Error("good user missing")
	}
	if _, ok := users[id(strID.ID)]; !ok {
		t.Error("user with a string id missing")
	}
	if _, ok := users[id(bad.ID)]; ok {
		t.Error("undecodable user was kept")
	}
	if _, ok := users[id(orphan.ID)]; !ok {
		t.Error("user with an unknown group was dropped")
	}
	if len(users) != 3 {
		t.Errorf("users = %v", res.Users)
	}
	var objs []string
	for _, p := range res.Problems {
		objs = append(objs, p.Object)
	}
	slices.Sort(objs)
	want := []string{"user #2 of page 1", "user " + id(bad.ID), "user " + id(orphan.ID)}
	slices.Sort(want)
	// The nameless role is the fourth problem; its id is the server's.
	if len(objs) != 4 || !strings.HasPrefix(objs[0], "role ") || !slices.Equal(objs[1:], want) {
		t.Errorf("problems = %v, want a role and %v", res.Problems, want)
	}
	if len(res.Groups) != 1 || res.Groups[0].Name != "Ops" {
		t.Errorf("groups = %+v (the nameless role must be skipped)", res.Groups)
	}
}

func TestIncremental(t *testing.T) {
	srv := onelogintest.New(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	srv.SetNow(t0)
	g1 := srv.AddGroup(onelogintest.Group{Name: "G1"})
	g2 := srv.AddGroup(onelogintest.Group{Name: "G2"})
	mgr := srv.AddUser(onelogintest.User{Username: "mgr", Email: "mgr@example.com", Status: 1, State: 1})
	u1 := srv.AddUser(onelogintest.User{Username: "u1", Email: "u1@example.com", Status: 1, State: 1, GroupID: g1.ID})
	u2 := srv.AddUser(onelogintest.User{Username: "u2", Email: "u2@example.com", Status: 1, State: 1})
	r1 := srv.AddRole(onelogintest.Role{Name: "Learners", Users: []int64{u1.ID, u2.ID}})
	r2 := srv.AddRole(onelogintest.Role{Name: "Temp", Users: []int64{u2.ID}})
	srv.Advance(time.Hour)

	clock := t0.Add(time.Hour)
	c, _ := newConnector(t, testConfig(srv), connectors.Options{Now: func() time.Time { return clock }})
	full, err := c.FetchAll(context.Background())
	if err != nil {
		t.Fatalf("FetchAll: %v", err)
	}
	if len(full.Users) != 3 {
		t.Fatalf("full users = %d", len(full.Users))
	}

	srv.Advance(10 * time.Minute)
	srv.UpdateUser(u1.ID, func(u *onelogintest.User) { u.Title = "Lead"; u.GroupID = g2.ID })
	srv.UpdateUser(u2.ID, func(u *onelogintest.User) { u.Status = 2 })
	n := srv.AddUser(onelogintest.User{Username: "newbie", Email: "newbie@example.com", Status: 1, State: 1, ManagerUserID: mgr.ID})
	srv.SetRoleUsers(r1.ID, u1.ID, n.ID) // does not touch updated_at
	srv.DeleteRole(r2.ID)
	srv.DeleteUser(mgr.ID + 1000) // no such user: nothing changes
	srv.Advance(5 * time.Minute)

	delta, err := c.FetchChanges(context.Background(), full.Cursor)
	if err != nil {
		t.Fatalf("FetchChanges: %v", err)
	}
	if delta.Full {
		t.Fatal("FetchChanges returned a full result")
	}
	q := srv.Queries(onelogintest.UsersPath)
	if got, want := q[len(q)-1].Get("updated_since"), t0.Add(time.Hour-CursorOverlap).Format(time.RFC3339); got != want {
		t.Errorf("updated_since = %q, want %q", got, want)
	}
	users := byID(delta.Users)
	if len(users) != 3 {
		t.Errorf("delta users = %+v, want u1, u2, newbie", delta.Users)
	}
	if got := users[id(u1.ID)].Title; got != "Lead" {
		t.Errorf("u1 title = %q", got)
	}
	if got := users[id(u2.ID)].Status; got != connectors.StatusInactive {
		t.Errorf("u2 status = %s", got)
	}
	if got := users[id(n.ID)].Manager; got != "mgr" {
		t.Errorf("newbie's manager = %q, want mgr (looked up)", got)
	}
	if srv.Requests(onelogintest.UserPath(mgr.ID)) != 1 {
		t.Errorf("manager looked up %d times", srv.Requests(onelogintest.UserPath(mgr.ID)))
	}
	if got := delta.Members["role:"+id(r1.ID)]; !slices.Equal(got, []string{id(u1.ID), id(n.ID)}) {
		t.Errorf("role members in delta = %v", got)
	}
	if !slices.Equal(delta.DeletedGroups, []string{"role:" + id(r2.ID)}) {
		t.Errorf("deleted groups = %v", delta.DeletedGroups)
	}
	if !slices.Contains(delta.AddedMembers, connectors.Membership{GroupID: "group:" + id(g2.ID), UserID: id(u1.ID)}) ||
		!slices.Contains(delta.RemovedMembers, connectors.Membership{GroupID: "group:" + id(g1.ID), UserID: id(u1.ID)}) {
		t.Errorf("group move not in delta: added %v removed %v", delta.AddedMembers, delta.RemovedMembers)
	}
	if delta.Cursor == full.Cursor {
		t.Error("cursor did not advance")
	}

	// Nothing changed since: the next delta has no users, but the roles again.
	srv.Advance(10 * time.Minute)
	quiet, err := c.FetchChanges(context.Background(), delta.Cursor)
	if err != nil {
		t.Fatalf("FetchChanges: %v", err)
	}
	if len(quiet.Users) != 0 || len(quiet.DeletedGroups) != 0 {
		t.Errorf("quiet delta: users %v, deleted groups %v", quiet.Users, quiet.DeletedGroups)
	}
	if _, ok := quiet.Members["role:"+id(r1.ID)]; !ok {
		t.Error("quiet delta has no role members")
	}

	// A cursor that is not ours gets a full result.
	res, err := c.FetchChanges(context.Background(), "deltaLink=https://graph.microsoft.com/...")
	if err != nil {
		t.Fatalf("FetchChanges with a foreign cursor: %v", err)
	}
	if !res.Full || len(res.Users) != 4 {
		t.Errorf("foreign cursor: full=%v users=%d", res.Full, len(res.Users))
	}
}

func TestTokenReuseAndRenewal(t *testing.T) {
	srv := onelogintest.New(t)
	srv.AddUser(onelogintest.User{Username: "a", Email: "a@example.com", Status: 1, State: 1})
	clock := time.Now()
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	c, rec := newConnector(t, testConfig(srv), connectors.Options{Now: now})
	ctx := context.Background()
	for range 2 {
		if _, err := c.FetchAll(ctx); err != nil {
			t.Fatalf("FetchAll: %v", err)
		}
	}
	if n := srv.TokenRequests(); n != 1 {
		t.Errorf("token requests after two fetches = %d, want 1 (reuse)", n)
	}

	// OneLogin forgets the token: a 401, a new token, the same request again.
	srv.ExpireTokens()
	res, err := c.FetchAll(ctx)
	if err != nil {
		t.Fatalf("FetchAll after the token expired: %v", err)
	}
	if len(res.Users) != 1 || srv.TokenRequests() != 2 || rec.count("users 401") != 1 {
		t.Errorf("users %d, token requests %d, 401s %d; want 1, 2, 1", len(res.Users), srv.TokenRequests(), rec.count("users 401"))
	}

	// Within 5 minutes of expiry (10 h) the client renews before sending,
	// without a 401.
	mu.Lock()
	clock = clock.Add(9*time.Hour + 56*time.Minute)
	mu.Unlock()
	if _, err := c.FetchAll(ctx); err != nil {
		t.Fatalf("FetchAll near expiry: %v", err)
	}
	if srv.TokenRequests() != 3 || rec.count("users 401") != 1 {
		t.Errorf("token requests %d, 401s %d; want 3, 1", srv.TokenRequests(), rec.count("users 401"))
	}
}

func TestRetryAfter429(t *testing.T) {
	srv := onelogintest.New(t)
	for i := range 3 {
		srv.AddUser(onelogintest.User{Username: fmt.Sprint("u", i), Email: fmt.Sprint("u", i, "@example.com"), Status: 1, State: 1})
	}
	srv.Inject(fault.Fault{Endpoint: onelogintest.UsersPath, Nth: 2, Status: http.StatusTooManyRequests, Header: http.Header{
		"Retry-After": {"1"}, "X-Ratelimit-Limit": {"5000"}, "X-Ratelimit-Remaining": {"4000"}, "X-Ratelimit-Reset": {"1"},
	}})
	cfg := testConfig(srv)
	cfg.PageSize = 2
	c, rec := newConnector(t, cfg, connectors.Options{})
	start := time.Now()
	res, err := c.FetchAll(context.Background())
	if err != nil {
		t.Fatalf("FetchAll: %v", err)
	}
	if len(res.Users) != 3 {
		t.Errorf("users = %d", len(res.Users))
	}
	if rec.count("users 429") != 1 || srv.Requests(onelogintest.UsersPath) != 3 {
		t.Errorf("429s %d, users requests %d; want 1, 3", rec.count("users 429"), srv.Requests(onelogintest.UsersPath))
	}
	if w := rec.waits(); !slices.Contains(w, "users 1s") {
		t.Errorf("throttle waits = %v, want a 1s wait on users", w)
	}
	if time.Since(start) < time.Second {
		t.Error("Retry-After was not honoured")
	}
}

func TestRateBudget(t *testing.T) {
	t.Run("spent by others", func(t *testing.T) {
		srv := onelogintest.New(t)
		srv.AddUser(onelogintest.User{Username: "a", Email: "a@example.com", Status: 1, State: 1})
		srv.SetRateLimit(10, time.Second)
		srv.SpendRate(10) // the account's other integrations used it all
		c, rec := newConnector(t, testConfig(srv), connectors.Options{})
		res, err := c.FetchAll(context.Background())
		if err != nil {
			t.Fatalf("FetchAll: %v", err)
		}
		if len(res.Users) != 1 || rec.count("users 429") != 1 || rec.count("users 200") != 1 {
			t.Errorf("users %d, 429s %d, 200s %d", len(res.Users), rec.count("users 429"), rec.count("users 200"))
		}
		if len(rec.waits()) == 0 {
			t.Error("no throttled wait reported")
		}
	})
	t.Run("paced below the share", func(t *testing.T) {
		srv := onelogintest.New(t)
		for i := range 4 {
			srv.AddUser(onelogintest.User{Username: fmt.Sprint("u", i), Email: fmt.Sprint("u", i, "@example.com"), Status: 1, State: 1})
		}
		srv.SetRateLimit(4, time.Second)
		cfg := testConfig(srv)
		cfg.PageSize = 1
		cfg.RateLimitShare = 0.5 // two of every four requests are left to others
		c, rec := newConnector(t, cfg, connectors.Options{})
		res, err := c.FetchAll(context.Background())
		if err != nil {
			t.Fatalf("FetchAll: %v", err)
		}
		if len(res.Users) != 4 {
			t.Errorf("users = %d", len(res.Users))
		}
		for _, r := range rec.requests {
			if strings.HasSuffix(r, " 429") {
				t.Errorf("budget let a request run into the limit: %v", rec.requests)
				break
			}
		}
		if len(rec.waits()) == 0 {
			t.Error("no wait for the budget")
		}
	})
}

func TestServerErrors(t *testing.T) {
	var roleID int64
	setup := func(t *testing.T) (*onelogintest.Server, Config) {
		srv := onelogintest.New(t)
		for i := range 5 {
			srv.AddUser(onelogintest.User{Username: fmt.Sprint("u", i), Email: fmt.Sprint("u", i, "@example.com"), Status: 1, State: 1})
		}
		r := srv.AddRole(onelogintest.Role{Name: "R"})
		roleID = r.ID
		srv.SetRoleUsers(r.ID, 1001, 1002, 1003)
		cfg := testConfig(srv)
		cfg.PageSize = 2
		return srv, cfg
	}
	t.Run("transient 500 is retried", func(t *testing.T) {
		srv, cfg := setup(t)
		srv.Inject(fault.Fault{Endpoint: onelogintest.UsersPath, Nth: 2, Status: 502})
		c, _ := newConnector(t, cfg, connectors.Options{})
		res, err := c.FetchAll(context.Background())
		if err != nil || len(res.Users) != 5 {
			t.Fatalf("FetchAll: %v (%v)", err, res)
		}
	})
	t.Run("500 mid-listing fails the fetch", func(t *testing.T) {
		srv, cfg := setup(t)
		srv.Inject(fault.Fault{Endpoint: onelogintest.UsersPath, Nth: 2, Status: 500, Times: -1})
		c, _ := newConnector(t, cfg, connectors.Options{})
		res, err := c.FetchAll(context.Background())
		if err == nil || res != nil {
			t.Fatalf("FetchAll = %v, %v; want nil and an error", res, err)
		}
		if !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), `"ol-test"`) {
			t.Errorf("error = %v", err)
		}
		if errors.Is(err, connectors.ErrTerminal) {
			t.Error("a 5xx is not terminal")
		}
		if n := srv.Requests(onelogintest.UsersPath); n != 4 { // page 1 + 3 attempts of page 2
			t.Errorf("users requests = %d, want 4", n)
		}
	})
	t.Run("500 in role members fails the fetch", func(t *testing.T) {
		srv, cfg := setup(t)
		c, _ := newConnector(t, cfg, connectors.Options{})
		// Three members at two a page: the second page always fails.
		srv.Inject(fault.Fault{Endpoint: onelogintest.RoleUsersPath(roleID), Nth: 2, Status: 503, Times: -1})
		res, err := c.FetchAll(context.Background())
		if err == nil || res != nil {
			t.Fatalf("FetchAll = %v, %v; want nil and an error", res, err)
		}
		if !strings.Contains(err.Error(), "roles") || !strings.Contains(err.Error(), "503") {
			t.Errorf("error = %v", err)
		}
		if n := srv.Requests(onelogintest.RoleUsersPath(roleID)); n != 4 {
			t.Errorf("role user requests = %d, want page 1 + 3 attempts of page 2", n)
		}
	})
	t.Run("HTML page with 200", func(t *testing.T) {
		srv, cfg := setup(t)
		srv.Inject(fault.Fault{Endpoint: onelogintest.UsersPath, Nth: 2, Status: 200, Body: "<html>proxy login</html>",
			Header: http.Header{"Content-Type": {"text/html"}}})
		c, _ := newConnector(t, cfg, connectors.Options{})
		res, err := c.FetchAll(context.Background())
		if err == nil || res != nil || !strings.Contains(err.Error(), "not JSON (text/html)") {
			t.Fatalf("FetchAll = %v, %v; want nil and a JSON error", res, err)
		}
	})
	t.Run("slow answers time out", func(t *testing.T) {
		srv, cfg := setup(t)
		cfg.RequestTimeout = 100 * time.Millisecond
		srv.Inject(fault.Fault{Endpoint: onelogintest.RolesPath, Status: 200, Body: "[]", Delay: 2 * time.Second, Times: -1})
		c, _ := newConnector(t, cfg, connectors.Options{})
		start := time.Now()
		res, err := c.FetchAll(context.Background())
		if err == nil || res != nil {
			t.Fatalf("FetchAll = %v, %v; want nil and an error", res, err)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("took %s; the request timeout was not applied", d)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		srv, cfg := setup(t)
		srv.Inject(fault.Fault{Endpoint: onelogintest.UsersPath, Nth: 2, Status: 200, Body: "[]", Delay: 5 * time.Second})
		c, _ := newConnector(t, cfg, connectors.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		res, err := c.FetchAll(ctx)
		if res != nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("FetchAll = %v, %v; want nil and the context's error", res, err)
		}
	})
	t.Run("dropped connection", func(t *testing.T) {
		srv, cfg := setup(t)
		srv.Inject(fault.Fault{Endpoint: onelogintest.GroupsPath, Reset: true, Times: -1})
		c, _ := newConnector(t, cfg, connectors.Options{})
		res, err := c.FetchAll(context.Background())
		if err == nil || res != nil {
			t.Fatalf("FetchAll = %v, %v; want nil and an error", res, err)
		}
		// net/http itself may resend a GET once on a reused connection.
		if n := srv.Requests(onelogintest.GroupsPath); n < 3 {
			t.Errorf("groups requests = %d, want 3 attempts or more", n)
		}
	})
}

func TestBadCredentials(t *testing.T) {
	srv := onelogintest.New(t)
	cfg := testConfig(srv)
	const wrong = "wrong-secret-d5e4f3"
	cfg.ClientSecret = wrong
	c, _ := newConnector(t, cfg, connectors.Options{Name: "onelogin-eu"})
	res, err := c.FetchAll(context.Background())
	if err == nil || res != nil {
		t.Fatalf("FetchAll = %v, %v; want an error", res, err)
	}
	msg := err.Error()
	if !errors.Is(err, connectors.ErrTerminal) {
		t.Errorf("error is not terminal: %v", err)
	}
	for _, want := range []string{`"onelogin-eu"`, "Authentication Failure", "401"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %q", msg, want)
		}
	}
	if strings.Contains(msg, wrong) || strings.Contains(msg, srv.ClientSecret) {
		t.Errorf("error contains a secret: %q", msg)
	}
	if n := srv.TokenRequests(); n != 1 {
		t.Errorf("token requests = %d; a refused credential must not be retried", n)
	}
}

func TestSecretEchoedByServerIsRedacted(t *testing.T) {
	srv := onelogintest.New(t)
	srv.Inject(fault.Fault{Endpoint: onelogintest.TokenPath, Status: 400,
		Body: fmt.Sprintf(`{"status":{"error":true,"code":400,"type":"bad request","message":"bad client_secret:%s"}}`, srv.ClientSecret)})
	c, _ := newConnector(t, testConfig(srv), connectors.Options{})
	_, err := c.FetchAll(context.Background())
	if err == nil || !errors.Is(err, connectors.ErrTerminal) {
		t.Fatalf("err = %v, want terminal", err)
	}
	if strings.Contains(err.Error(), srv.ClientSecret) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error = %q", err)
	}
}

func TestUnauthorizedAfterRenewalIsTerminal(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := onelogintest.New(t)
			srv.AddUser(onelogintest.User{Username: "a", Email: "a@example.com", Status: 1, State: 1})
			srv.Inject(fault.Fault{Endpoint: onelogintest.RolesPath, Status: status, Times: -1})
			c, _ := newConnector(t, testConfig(srv), connectors.Options{})
			res, err := c.FetchAll(context.Background())
			if err == nil || res != nil || !errors.Is(err, connectors.ErrTerminal) {
				t.Fatalf("FetchAll = %v, %v; want nil and a terminal error", res, err)
			}
			wantTokens := 1
			if status == http.StatusUnauthorized {
				wantTokens = 2 // one renewal, then give up
			}
			if n := srv.TokenRequests(); n != wantTokens {
				t.Errorf("token requests = %d, want %d", n, wantTokens)
			}
			if strings.Contains(err.Error(), srv.ClientSecret) {
				t.Errorf("error contains the secret: %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	t.Run("defaults with the required keys are valid", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.APIURL, cfg.ClientID, cfg.ClientSecret = "https://acme.onelogin.com", "id", "s3cr3t"
		if errs := cfg.Validate(connectors.Options{BaseDir: dir}); len(errs) != 0 {
			t.Errorf("errors: %v", errs)
		}
		cfg.APIURL = "http://127.0.0.1:8080"
		if errs := cfg.Validate(connectors.Options{BaseDir: dir}); len(errs) != 0 {
			t.Errorf("loopback http: %v", errs)
		}
	})
	t.Run("every problem at once", func(t *testing.T) {
		const secret = "topsecret-value"
		cfg := Config{
			APIURL:         "http://acme.onelogin.com",
			ClientSecret:   secret,
			CAFile:         "missing-ca.pem",
			PageSize:       0,
			RequestTimeout: -time.Second,
			RateLimitShare: 1.5,
		}
		errs := cfg.Validate(connectors.Options{BaseDir: dir})
		paths := testkit.FieldPaths(t, errs, secret)
		want := []string{"api_url", "ca_file", "client_id", "page_size", "rate_limit_share", "request_timeout"}
		slices.Sort(paths)
		if !slices.Equal(paths, want) {
			t.Errorf("paths = %v, want %v", paths, want)
		}
	})
	t.Run("missing credentials and URL", func(t *testing.T) {
		cfg := DefaultConfig()
		var paths []string
		for _, err := range cfg.Validate(connectors.Options{}) {
			paths = append(paths, err.(*connectors.FieldError).Path)
		}
		if !slices.Equal(paths, []string{"api_url", "client_id", "client_secret"}) {
			t.Errorf("paths = %v", paths)
		}
	})
	t.Run("URL with credentials is not echoed", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.APIURL, cfg.ClientID, cfg.ClientSecret = "https://id:hunter2@acme.onelogin.com", "id", "x"
		errs := cfg.Validate(connectors.Options{})
		if len(errs) != 1 || strings.Contains(errs[0].Error(), "hunter2") {
			t.Errorf("errors = %v", errs)
		}
	})
	t.Run("New refuses an invalid config", func(t *testing.T) {
		if _, err := New(DefaultConfig(), connectors.Options{Name: "x"}); err == nil {
			t.Error("New accepted an empty config")
		}
	})
}

func TestType(t *testing.T) {
	srv := onelogintest.New(t)
	cfg := Type.NewConfig()
	oc, ok := cfg.(*Config)
	if !ok {
		t.Fatalf("NewConfig = %T", cfg)
	}
	if oc.PageSize != DefaultPageSize || oc.RequestTimeout != 30*time.Second || oc.RateLimitShare != 0.5 {
		t.Errorf("defaults = %+v", oc)
	}
	*oc = testConfig(srv)
	conn, err := Type.New(cfg, connectors.Options{Name: "ol", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("Type.New: %v", err)
	}
	if _, ok := conn.(connectors.Incremental); !ok {
		t.Error("connector is not Incremental")
	}
}

func TestUntrustedServerIsRefused(t *testing.T) {
	srv := onelogintest.New(t)
	cfg := testConfig(srv)
	cfg.CAFile = ""
	c, _ := newConnector(t, cfg, connectors.Options{})
	c.client.backoff.Attempts = 1
	if _, err := c.FetchAll(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("FetchAll without the CA = %v, want a certificate error", err)
	}
}
