package entra_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/entra"
	"github.com/learnsync/learnsync/connectors/entra/entratest"
	"github.com/learnsync/learnsync/connectors/fault"
	"github.com/learnsync/learnsync/internal/testkit"
)

type harness struct {
	srv      *entratest.Server
	conn     *entra.Connector
	log      *testkit.LogBuffer
	mu       sync.Mutex
	throttle []time.Duration
	progress []connectors.Progress
	answers  map[string][]int
}

func (h *harness) answersOf(ep string) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int(nil), h.answers[ep]...)
}

// fakeConfig is the default config of a source that reads srv with
// client_secret auth and a request_timeout of timeout.
func fakeConfig(srv *entratest.Server, timeout time.Duration) *entra.Config {
	cfg := entra.DefaultConfig()
	cfg.TenantID = srv.TenantID
	cfg.ClientID = srv.ClientID
	cfg.ClientSecret = connectors.Secret(srv.ClientSecret)
	cfg.GraphURL = srv.GraphURL
	cfg.AuthorityHost = srv.AuthorityHost
	cfg.CAFile = srv.CAFile
	cfg.RequestTimeout = timeout
	return cfg
}

// pagedHarness is a harness of the seeded fake at two objects a page.
func pagedHarness(t *testing.T) (*entratest.Server, *harness) {
	t.Helper()
	srv := entratest.New(t)
	srv.SetPageSize(2)
	seed(srv)
	return srv, newHarness(t, srv, nil)
}

// chunkedHarness is a harness of the seeded fake at pageSize objects a
// page and two members a chunk of members@delta.
func chunkedHarness(t *testing.T, pageSize int) (*entratest.Server, *harness) {
	t.Helper()
	srv := entratest.New(t)
	srv.SetPageSize(pageSize)
	srv.SetMemberChunk(2)
	seed(srv)
	return srv, newHarness(t, srv, nil)
}

func newHarness(t *testing.T, srv *entratest.Server, mod func(*entra.Config)) *harness {
	t.Helper()
	return newHarnessIn(t, srv, "", mod)
}

// newHarnessIn builds a connector whose config file lives in baseDir.
func newHarnessIn(t *testing.T, srv *entratest.Server, baseDir string, mod func(*entra.Config)) *harness {
	t.Helper()
	h := &harness{srv: srv, log: &testkit.LogBuffer{}, answers: map[string][]int{}}
	cfg := fakeConfig(srv, 10*time.Second)
	if mod != nil {
		mod(cfg)
	}
	opts := connectors.Options{
		Name:    "corp-entra",
		BaseDir: baseDir,
		Logger:  slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Hooks: connectors.Hooks{
			Request: func(ep string, status int, _ time.Duration) {
				h.mu.Lock()
				defer h.mu.Unlock()
				h.answers[ep] = append(h.answers[ep], status)
			},
			Throttled: func(_ string, wait time.Duration) {
				h.mu.Lock()
				defer h.mu.Unlock()
				h.throttle = append(h.throttle, wait)
			},
			Progress: func(p connectors.Progress) {
				h.mu.Lock()
				defer h.mu.Unlock()
				h.progress = append(h.progress, p)
			},
		},
	}
	if errs := cfg.Validate(opts); len(errs) > 0 {
		t.Fatalf("Validate: %v", errs)
	}
	c, err := entra.New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.conn = c
	return h
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return c
}

var (
	alice = entratest.User{ID: entratest.UserID(1), UserPrincipalName: "alice@corp.example", Mail: "Alice@Corp.example",
		GivenName: "Alice", Surname: "Anders", DisplayName: "Alice Anders", JobTitle: "Engineer",
		Department: "R&D", EmployeeID: "E001"}
	bob   = entratest.User{ID: entratest.UserID(2), UserPrincipalName: "bob@corp.example", DisplayName: "Bob"}
	carol = entratest.User{ID: entratest.UserID(3), UserPrincipalName: "carol@corp.example", Mail: "carol@corp.example",
		Disabled: true}
	guest = entratest.User{ID: entratest.UserID(4), UserPrincipalName: "gina_ext.example#EXT#@corp.example",
		Mail: "gina@ext.example", UserType: "Guest"}
	dave = entratest.User{ID: entratest.UserID(5), UserPrincipalName: "dave@corp.example", Mail: "dave@corp.example"}
	eve  = entratest.User{ID: entratest.UserID(6), UserPrincipalName: "eve@corp.example", Mail: "eve@corp.example"}
	// noUPN is malformed: Graph never sends it, but a connector must cope.
	noUPN = entratest.User{ID: entratest.UserID(7), Mail: "x@corp.example"}
)

var (
	gEng   = entratest.GroupID(1)
	gSales = entratest.GroupID(2)
)

// seed fills the fake with users and two groups; engineering is big enough
// to be split over several occurrences and pages.
func seed(srv *entratest.Server) {
	for _, u := range []entratest.User{alice, bob, carol, guest, dave, eve, noUPN} {
		srv.AddUser(u)
	}
	srv.AddGroup(entratest.Group{ID: gEng, DisplayName: "Engineering", Description: "All engineers"})
	srv.AddGroup(entratest.Group{ID: gSales, DisplayName: "Sales"})
	srv.AddMember(gEng, alice.ID, bob.ID, carol.ID, guest.ID, dave.ID)
	srv.AddMember(gSales, eve.ID)
}

func TestFullFetchPagesAndMapping(t *testing.T) {
	srv, h := chunkedHarness(t, 2)

	res, err := h.conn.FetchAll(ctx(t))
	if err != nil {
		t.Fatalf("FetchAll: %v", err)
	}
	if !res.Full {
		t.Error("Full = false, want true")
	}
	wantUsers := []connectors.User{
		{ExternalID: alice.ID, UserName: "alice@corp.example", Email: "Alice@Corp.example", GivenName: "Alice",
			FamilyName: "Anders", DisplayName: "Alice Anders", Title: "Engineer", Department: "R&D",
			EmployeeNumber: "E001", Status: connectors.StatusActive},
		// No mail: the UPN is the email.
		{ExternalID: bob.ID, UserName: "bob@corp.example", Email: "bob@corp.example", DisplayName: "Bob", Status: connectors.StatusActive},
		{ExternalID: carol.ID, UserName: "carol@corp.example", Email: "carol@corp.example", Status: connectors.StatusInactive},
		{ExternalID: dave.ID, UserName: "dave@corp.example", Email: "dave@corp.example", Status: connectors.StatusActive},
		{ExternalID: eve.ID, UserName: "eve@corp.example", Email: "eve@corp.example", Status: connectors.StatusActive},
	}
	if d := cmp.Diff(wantUsers, res.Users); d != "" {
		t.Errorf("users (-want +got):\n%s", d)
	}
	wantGroups := []connectors.Group{
		{ExternalID: gEng, Name: "Engineering", Description: "All engineers"},
		{ExternalID: gSales, Name: "Sales"},
	}
	if d := cmp.Diff(wantGroups, res.Groups); d != "" {
		t.Errorf("groups (-want +got):\n%s", d)
	}
	// Five members in chunks of two: three occurrences merged; the guest is
	// out of scope (user_type: member).
	wantMembers := map[string][]string{
		gEng:   {alice.ID, bob.ID, carol.ID, dave.ID},
		gSales: {eve.ID},
	}
	if d := cmp.Diff(wantMembers, res.Members); d != "" {
		t.Errorf("members (-want +got):\n%s", d)
	}
	if len(res.Problems) != 1 || res.Problems[0].Object != "user "+noUPN.ID {
		t.Errorf("problems = %v, want one for the user without a UPN", res.Problems)
	}
	if n := srv.Requests("users/delta"); n != 4 { // 7 users, 2 a page
		t.Errorf("users/delta requests = %d, want 4", n)
	}
	if n := srv.Requests("groups/delta"); n < 2 {
		t.Errorf("groups/delta requests = %d, want several pages", n)
	}
	graph := srv.Requests("users/delta") + srv.Requests("groups/delta")
	if res.Requests < graph {
		t.Errorf("Requests = %d, want at least the %d Graph requests", res.Requests, graph)
	}
	// Query parameters go on the first request only; the select must
	// name accountEnabled, which Graph omits otherwise.
	q := srv.Queries("users/delta")
	if !strings.Contains(q[0], "accountEnabled") || !strings.Contains(q[0], "employeeId") {
		t.Errorf("first users/delta query %q does not select accountEnabled and employeeId", q[0])
	}
	if !strings.Contains(srv.Queries("groups/delta")[0], "members") {
		t.Errorf("groups/delta query %q does not select members", srv.Queries("groups/delta")[0])
	}
	if res.Cursor == "" {
		t.Error("empty cursor")
	}
	if got := h.answersOf("users/delta"); len(got) != 4 {
		t.Errorf("Request hook saw %v for users/delta, want 4 answers", got)
	}
	if len(h.progress) == 0 || h.progress[len(h.progress)-1].Users != 7 {
		t.Errorf("Progress hook saw %v, want a last report of 7 users read", h.progress)
	}
}

func TestIncrementalChanges(t *testing.T) {
	srv, h := chunkedHarness(t, 3)
	first, err := h.conn.FetchAll(ctx(t))
	if err != nil {
		t.Fatalf("FetchAll: %v", err)
	}

	srv.UpdateUser(alice.ID, func(u *entratest.User) { u.JobTitle = "Staff Engineer" })
	srv.DisableUser(bob.ID)
	srv.DeleteUser(dave.ID) // soft delete: @removed reason "changed"
	srv.PurgeUser(eve.ID)   // hard delete: reason "deleted"
	frank := entratest.User{ID: entratest.UserID(8), UserPrincipalName: "frank@corp.example", Mail: "frank@corp.example"}
	srv.AddUser(frank)
	gOps := entratest.GroupID(3)
	srv.AddGroup(entratest.Group{ID: gOps, DisplayName: "Ops"})
	srv.AddMember(gOps, alice.ID)
	srv.AddMember(gEng, frank.ID)
	srv.RemoveMember(gEng, carol.ID)
	srv.UpdateGroup(gEng, func(g *entratest.Group) { g.DisplayName = "Engineering & Research" })
	srv.DeleteGroup(gSales)

	res, err := h.conn.FetchChanges(ctx(t), first.Cursor)
	if err != nil {
		t.Fatalf("FetchChanges: %v", err)
	}
	if res.Full {
		t.Fatal("Full = true, want a delta")
	}
	want := &connectors.Result{
		Users: []connectors.User{
			{ExternalID: alice.ID, UserName: "alice@corp.example", Email: "Alice@Corp.example", GivenName: "Alice",
				FamilyName: "Anders", DisplayName: "Alice Anders", Title: "Staff Engineer", Department: "R&D",
				EmployeeNumber: "E001", Status: connectors.StatusActive},
			{ExternalID: bob.ID, UserName: "bob@corp.example", Email: "bob@corp.example", DisplayName: "Bob", Status: connectors.StatusInactive},
			{ExternalID: frank.ID, UserName: "frank@corp.example", Email: "frank@corp.example", Status: connectors.StatusActive},
		},
		DeletedUsers: []string{dave.ID, eve.ID},
		Groups: []connectors.Group{
			{ExternalID: gEng, Name: "Engineering & Research", Description: "All engineers"},
			{ExternalID: gOps, Name: "Ops"},
		},
		DeletedGroups: []string{gSales},
		AddedMembers: []connectors.Membership{
			{GroupID: gEng, UserID: frank.ID},
			{GroupID: gOps, UserID: alice.ID},
		},
		RemovedMembers: []connectors.Membership{
			{GroupID: gEng, UserID: carol.ID},
			{GroupID: gEng, UserID: dave.ID}, // deleted users leave their groups
		},
	}
	opts := []cmp.Option{
		cmpopts.IgnoreFields(connectors.Result{}, "Cursor", "Requests", "Problems"),
		cmpopts.EquateEmpty(),
		cmpopts.SortSlices(func(a, b connectors.Membership) bool { return a.GroupID+a.UserID < b.GroupID+b.UserID }),
	}
	if d := cmp.Diff(want, res, opts...); d != "" {
		t.Errorf("delta (-want +got):\n%s", d)
	}
	if res.Cursor == first.Cursor || res.Cursor == "" {
		t.Error("cursor did not advance")
	}
	// The stored deltaLinks are called verbatim: no $select again.
	q := srv.Queries("users/delta")
	if last := q[len(q)-1]; strings.Contains(last, "select") || !strings.Contains(last, "token") {
		t.Errorf("incremental users/delta query = %q, want the stored link's token only", last)
	}

	// Nothing changed since: an empty delta.
	again, err := h.conn.FetchChanges(ctx(t), res.Cursor)
	if err != nil {
		t.Fatalf("second FetchChanges: %v", err)
	}
	empty := &connectors.Result{}
	if d := cmp.Diff(empty, again, opts...); d != "" {
		t.Errorf("second delta not empty (-want +got):\n%s", d)
	}
}

func TestLargeGroupMembersDeltaAcrossPages(t *testing.T) {
	srv := entratest.New(t)
	srv.SetPageSize(2)
	srv.SetMemberChunk(3)
	var ids []string
	for i := 1; i <= 12; i++ {
		ids = append(ids, srv.AddUser(entratest.User{UserPrincipalName: "u" + string(rune('a'+i)) + "@corp.example"}))
	}
	big := srv.AddGroup(entratest.Group{DisplayName: "Big"})
	small := srv.AddGroup(entratest.Group{DisplayName: "Small"})
	srv.AddMember(big, ids[:8]...)
	srv.AddMember(small, ids[0])
	h := newHarness(t, srv, nil)
	full, err := h.conn.FetchAll(ctx(t))
	if err != nil {
		t.Fatalf("FetchAll: %v", err)
	}
	if d := cmp.Diff(ids[:8], full.Members[big]); d != "" {
		t.Errorf("big group members (-want +got):\n%s", d)
	}
	// A delta that adds four and removes three members of the big group:
	// members@delta comes in chunks of three, over several pages.
	srv.AddMember(big, ids[8:]...)
	srv.RemoveMember(big, ids[1], ids[3], ids[5])
	res, err := h.conn.FetchChanges(ctx(t), full.Cursor)
	if err != nil {
		t.Fatalf("FetchChanges: %v", err)
	}
	var added, removed []string
	for _, m := range res.AddedMembers {
		added = append(added, m.UserID)
	}
	for _, m := range res.RemovedMembers {
		removed = append(removed, m.UserID)
	}
	if d := cmp.Diff(ids[8:], added); d != "" {
		t.Errorf("added (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{ids[1], ids[3], ids[5]}, removed); d != "" {
		t.Errorf("removed (-want +got):\n%s", d)
	}
	if n := srv.Requests("groups/delta"); n < 4 {
		t.Errorf("groups/delta requests = %d; the test wants the members split over pages", n)
	}
}

func TestExpiredDeltaTokenStartsFullRound(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		code   string
	}{
		{"syncStateNotFound", 400, "syncStateNotFound"},
		{"resyncRequired 410", 410, "resyncRequired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := entratest.New(t)
			seed(srv)
			h := newHarness(t, srv, nil)
			first, err := h.conn.FetchAll(ctx(t))
			if err != nil {
				t.Fatalf("FetchAll: %v", err)
			}
			srv.ExpireDeltaTokensWith(tc.status, tc.code)
			srv.UpdateUser(bob.ID, func(u *entratest.User) { u.Department = "Support" })

			res, err := h.conn.FetchChanges(ctx(t), first.Cursor)
			if err != nil {
				t.Fatalf("FetchChanges: %v", err)
			}
			if !res.Full {
				t.Fatal("Full = false after an expired token, want a full round")
			}
			if len(res.Users) != 5 || len(res.Groups) != 2 {
				t.Errorf("full round has %d users and %d groups, want 5 and 2", len(res.Users), len(res.Groups))
			}
			for _, u := range res.Users {
				if u.ExternalID == bob.ID && u.Department != "Support" {
					t.Errorf("bob's department = %q, want the change", u.Department)
				}
			}
			if !strings.Contains(h.log.String(), "expired") {
				t.Errorf("the new round was not logged; log:\n%s", h.log.String())
			}
			// The new cursor works.
			if _, err := h.conn.FetchChanges(ctx(t), res.Cursor); err != nil {
				t.Errorf("FetchChanges with the new cursor: %v", err)
			}
		})
	}
}

func TestThrottledRequestIsRetried(t *testing.T) {
	srv, h := pagedHarness(t)
	srv.Inject(fault.Fault{Endpoint: "users/delta", Nth: 2, Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}})

	start := time.Now()
	res, err := h.conn.FetchAll(ctx(t))
	if err != nil {
		t.Fatalf("FetchAll after one 429: %v", err)
	}
	if time.Since(start) < time.Second {
		t.Errorf("fetch took %v; Retry-After: 1 was not honoured", time.Since(start))
	}
	if len(res.Users) != 5 {
		t.Errorf("users = %d, want 5", len(res.Users))
	}
	if len(h.throttle) != 1 || h.throttle[0] != time.Second {
		t.Errorf("Throttled hook saw %v, want one wait of 1s", h.throttle)
	}
	got := h.answersOf("users/delta")
	if d := cmp.Diff([]int{200, 429, 200, 200, 200}, got); d != "" {
		t.Errorf("users/delta answers (-want +got):\n%s", d)
	}
}

func TestServerErrorMidRoundFails(t *testing.T) {
	srv, h := pagedHarness(t)
	srv.Inject(fault.Fault{Endpoint: "users/delta", Nth: 3, Status: http.StatusInternalServerError, Code: "generalException"})

	res, err := h.conn.FetchAll(ctx(t))
	if err == nil || res != nil {
		t.Fatalf("FetchAll = %v, %v; want an error and no result", res, err)
	}
	if errors.Is(err, connectors.ErrTerminal) {
		t.Errorf("a 500 is not terminal: %v", err)
	}
	if !strings.Contains(err.Error(), "generalException") || !strings.Contains(err.Error(), "corp-entra") {
		t.Errorf("error %q should name the source and the Graph code", err)
	}

	// Also in an incremental round, on the groups side.
	srv.ClearFaults()
	first, err := h.conn.FetchAll(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	srv.AddMember(gSales, alice.ID)
	srv.Inject(fault.Fault{Endpoint: "groups/delta", Status: 503, Code: "serviceNotAvailable", Header: http.Header{"Retry-After": {"1"}}})
	srv.Inject(fault.Fault{Endpoint: "groups/delta", Status: http.StatusInternalServerError, Code: "generalException"}) // the retry of the 503 then gets a 500
	res, err = h.conn.FetchChanges(ctx(t), first.Cursor)
	if err == nil || res != nil {
		t.Fatalf("FetchChanges = %v, %v; want an error and no result", res, err)
	}
}

func TestBadSecretIsTerminal(t *testing.T) {
	srv := entratest.New(t)
	seed(srv)
	const wrong = "wrong-secret-do-not-print"
	h := newHarness(t, srv, func(c *entra.Config) { c.ClientSecret = wrong })

	res, err := h.conn.FetchAll(ctx(t))
	if err == nil || res != nil {
		t.Fatalf("FetchAll = %v, %v; want an error", res, err)
	}
	if !errors.Is(err, connectors.ErrTerminal) {
		t.Errorf("error is not terminal: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"AADSTS7000215", "corp-entra", "invalid_client"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, wrong) || strings.Contains(h.log.String(), wrong) {
		t.Errorf("the secret leaked: %q", msg)
	}
	if n := srv.Requests("users/delta"); n != 0 {
		t.Errorf("Graph saw %d requests without a token", n)
	}
}

func TestMissingPermissionIsTerminal(t *testing.T) {
	srv := entratest.New(t)
	seed(srv)
	srv.Inject(fault.Fault{Endpoint: "groups/delta", Times: -1, Status: 403,
		Code: "Authorization_RequestDenied", Message: "Insufficient privileges to complete the operation."})
	h := newHarness(t, srv, nil)
	_, err := h.conn.FetchAll(ctx(t))
	if !errors.Is(err, connectors.ErrTerminal) {
		t.Fatalf("err = %v, want terminal", err)
	}
	if !strings.Contains(err.Error(), "Authorization_RequestDenied") || !strings.Contains(err.Error(), "corp-entra") {
		t.Errorf("error %q should name the source and the Graph code", err)
	}
}

func TestServicePrincipalScope(t *testing.T) {
	srv := entratest.New(t)
	seed(srv)
	sp := entratest.ServicePrincipalID(1)
	srv.AddServicePrincipal(sp)
	srv.Assign(sp, alice.ID, gSales) // alice directly; Sales (eve) as a group
	h := newHarness(t, srv, func(c *entra.Config) { c.ServicePrincipalID = sp })

	full, err := h.conn.FetchAll(ctx(t))
	if err != nil {
		t.Fatalf("FetchAll: %v", err)
	}
	if got := userIDs(full.Users); !cmp.Equal(got, []string{alice.ID, eve.ID}) {
		t.Errorf("users = %v, want alice and eve", got)
	}
	if len(full.Groups) != 1 || full.Groups[0].ExternalID != gSales {
		t.Errorf("groups = %v, want Sales only", full.Groups)
	}
	if d := cmp.Diff(map[string][]string{gSales: {eve.ID}}, full.Members); d != "" {
		t.Errorf("members (-want +got):\n%s", d)
	}

	// A change to an in-scope user and one outside the scope.
	srv.UpdateUser(alice.ID, func(u *entratest.User) { u.Department = "Ops" })
	srv.UpdateUser(bob.ID, func(u *entratest.User) { u.Department = "Ops" })
	delta, err := h.conn.FetchChanges(ctx(t), full.Cursor)
	if err != nil {
		t.Fatalf("FetchChanges: %v", err)
	}
	if delta.Full || !cmp.Equal(userIDs(delta.Users), []string{alice.ID}) || len(delta.DeletedUsers) != 0 {
		t.Errorf("delta = full %v, users %v, deleted %v; want alice only", delta.Full, userIDs(delta.Users), delta.DeletedUsers)
	}
	if n := srv.Requests("servicePrincipals/appRoleAssignedTo"); n != 2 {
		t.Errorf("assignments read %d times, want once per fetch", n)
	}

	// New assignment: bob was never fetched, so a full round brings him in.
	srv.Assign(sp, bob.ID)
	next, err := h.conn.FetchChanges(ctx(t), delta.Cursor)
	if err != nil {
		t.Fatalf("FetchChanges: %v", err)
	}
	if !next.Full || !cmp.Equal(userIDs(next.Users), []string{alice.ID, bob.ID, eve.ID}) {
		t.Errorf("after a new assignment: full %v, users %v; want a full round with bob", next.Full, userIDs(next.Users))
	}

	// An unknown service principal is a configuration error.
	h2 := newHarness(t, srv, func(c *entra.Config) { c.ServicePrincipalID = entratest.ServicePrincipalID(9) })
	if _, err := h2.conn.FetchAll(ctx(t)); !errors.Is(err, connectors.ErrTerminal) {
		t.Errorf("unknown service principal: err = %v, want terminal", err)
	}
}

func TestTransitiveGroups(t *testing.T) {
	srv := entratest.New(t)
	seed(srv)
	gAll := srv.AddGroup(entratest.Group{DisplayName: "Everyone"})
	srv.AddMember(gAll, gEng, eve.ID) // Engineering is nested in Everyone
	h := newHarness(t, srv, func(c *entra.Config) { c.TransitiveGroups = true })

	full, err := h.conn.FetchAll(ctx(t))
	if err != nil {
		t.Fatalf("FetchAll: %v", err)
	}
	want := []string{alice.ID, bob.ID, carol.ID, dave.ID, eve.ID}
	if d := cmp.Diff(want, full.Members[gAll]); d != "" {
		t.Errorf("Everyone's transitive members (-want +got):\n%s", d)
	}

	// A member added to the nested group changes both lists.
	frank := srv.AddUser(entratest.User{UserPrincipalName: "frank@corp.example"})
	srv.AddMember(gEng, frank)
	res, err := h.conn.FetchChanges(ctx(t), full.Cursor)
	if err != nil {
		t.Fatalf("FetchChanges: %v", err)
	}
	if len(res.AddedMembers)+len(res.RemovedMembers) != 0 {
		t.Errorf("transitive mode returned single memberships: %v %v", res.AddedMembers, res.RemovedMembers)
	}
	wantEng := []string{alice.ID, bob.ID, carol.ID, dave.ID, frank}
	wantAll := append([]string{}, want...)
	wantAll = append(wantAll, frank)
	if d := cmp.Diff(map[string][]string{gEng: wantEng, gAll: wantAll}, res.Members); d != "" {
		t.Errorf("replaced member lists (-want +got):\n%s", d)
	}
}

func TestUserTypeInDeltas(t *testing.T) {
	srv := entratest.New(t)
	seed(srv)
	h := newHarness(t, srv, nil) // user_type: member
	full, err := h.conn.FetchAll(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	// The guest joins Sales (unchanged user: its type must be looked up);
	// alice becomes a guest.
	srv.AddMember(gSales, guest.ID, bob.ID)
	srv.UpdateUser(alice.ID, func(u *entratest.User) { u.UserType = "Guest" })
	res, err := h.conn.FetchChanges(ctx(t), full.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]connectors.Membership{{GroupID: gSales, UserID: bob.ID}}, res.AddedMembers); d != "" {
		t.Errorf("added (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{alice.ID}, res.DeletedUsers); d != "" {
		t.Errorf("deleted (-want +got):\n%s", d)
	}
	if srv.Requests("users") != 1 {
		t.Errorf("user type look-ups = %d, want 1", srv.Requests("users"))
	}

	// user_type: guest sees only the guest.
	hg := newHarness(t, srv, func(c *entra.Config) { c.UserType = entra.UserTypeGuest })
	g, err := hg.conn.FetchAll(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := userIDs(g.Users); !cmp.Equal(got, []string{alice.ID, guest.ID}) {
		t.Errorf("guests = %v", got)
	}
}

func TestCursorFromOtherSettingsStartsFullRound(t *testing.T) {
	srv := entratest.New(t)
	seed(srv)
	h := newHarness(t, srv, nil)
	first, err := h.conn.FetchAll(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	hAll := newHarness(t, srv, func(c *entra.Config) { c.UserType = entra.UserTypeAll })
	res, err := hAll.conn.FetchChanges(ctx(t), first.Cursor)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Full || len(res.Users) != 6 {
		t.Errorf("full %v with %d users; want a full round with the guest", res.Full, len(res.Users))
	}
	for _, bad := range []string{"", "not json", `{"users":"https://evil.example/v1.0/users/delta?$deltatoken=x","groups":"x"}`} {
		res, err := h.conn.FetchChanges(ctx(t), bad)
		if err != nil || !res.Full {
			t.Errorf("cursor %q: full %v, err %v; want a full round", bad, res != nil && res.Full, err)
		}
	}
}

func userIDs(us []connectors.User) []string {
	var ids []string
	for _, u := range us {
		ids = append(ids, u.ExternalID)
	}
	return ids
}
