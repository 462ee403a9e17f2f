package onelogin

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/fault"
	"github.com/learnsync/learnsync/connectors/onelogin/onelogintest"
)

var faultKinds = append(fault.Kinds(), fault.HTML404)

// faultPaths maps the connector's endpoint names (Hooks.Request) to the
// fake's paths.
var faultPaths = map[string]string{
	"token":      onelogintest.TokenPath,
	"users":      onelogintest.UsersPath,
	"user":       onelogintest.UsersPath + "/{id}",
	"roles":      onelogintest.RolesPath,
	"role_users": onelogintest.RolesPath + "/{id}/users",
	"groups":     onelogintest.GroupsPath,
}

var faultT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// faultAccount is an account in which, at page size 2, every listing has
// several pages, in a full fetch and, after touch, in an incremental one,
// which also looks up three managers who did not change.
type faultAccount struct {
	srv   *onelogintest.Server
	staff []int64
}

// hidden are what no error may show: the secret.
func (a *faultAccount) hidden() []string { return []string{a.srv.ClientSecret} }

func newFaultAccount(t *testing.T) *faultAccount {
	a := &faultAccount{srv: onelogintest.New(t)}
	a.srv.SetNow(faultT0)
	a.srv.SetGroupPageSize(2)
	old := faultT0.Add(-time.Hour)
	var groups []int64
	for i := range 5 {
		groups = append(groups, a.srv.AddGroup(onelogintest.Group{Name: fmt.Sprint("Group ", i)}).ID)
	}
	var bosses []int64
	for i := range 3 {
		bosses = append(bosses, a.srv.AddUser(onelogintest.User{Username: fmt.Sprint("boss", i), Email: fmt.Sprint("boss", i, "@example.com"),
			Status: 1, State: 1, GroupID: groups[i], UpdatedAt: old}).ID)
	}
	for i := range 6 {
		a.staff = append(a.staff, a.srv.AddUser(onelogintest.User{Username: fmt.Sprint("staff", i), Email: fmt.Sprint("staff", i, "@example.com"),
			Status: 1, State: 1, GroupID: groups[i%5], ManagerUserID: bosses[i%3], UpdatedAt: old}).ID)
	}
	a.srv.AddRole(onelogintest.Role{Name: "Learners", Users: a.staff[:5]})
	for i := range 4 {
		a.srv.AddRole(onelogintest.Role{Name: fmt.Sprint("Role ", i), Users: []int64{bosses[i%3]}})
	}
	return a
}

// touch changes the staff, so that an incremental fetch reads them again.
func (a *faultAccount) touch() {
	a.srv.Advance(10 * time.Minute)
	for _, id := range a.staff {
		a.srv.UpdateUser(id, func(u *onelogintest.User) { u.Title = "Touched" })
	}
}

func (a *faultAccount) connector(t *testing.T, timeout time.Duration) (*Connector, *recorder) {
	cfg := testConfig(a.srv)
	cfg.PageSize = 2
	cfg.RequestTimeout = timeout
	return newConnector(t, cfg, connectors.Options{Name: "ol-faults"})
}

// fetch runs a full fetch, or a first full fetch and, after touch, an
// incremental one. The fetch under test runs on a new connector (each
// `learnsync run --once` builds one, and asks for a token), unless reuse
// asks for the first one, whose connections are open (in a full fetch, a
// first one is run for that): so that on a busy machine a short
// request_timeout hits only the slow request. inject is called just before
// the fetch under test.
func (a *faultAccount) fetch(t *testing.T, full, reuse bool, timeout time.Duration, inject func()) (*connectors.Result, error, *recorder) {
	t.Helper()
	c, rec := a.connector(t, time.Minute)
	cursor := fault.First(t, c, full, reuse, a.touch)
	if !reuse {
		c, rec = a.connector(t, time.Minute)
	}
	c.client.http.Timeout, c.client.timeout = timeout, timeout
	rec.mu.Lock()
	rec.requests = nil
	rec.mu.Unlock()
	inject()
	res, err := fault.Timed(t, fault.FetchOf(c, full, cursor))
	return res, err, rec
}

// pagesOf counts the requests of a clean fetch by endpoint.
func pagesOf(rec *recorder) map[string]int {
	n := map[string]int{}
	for _, r := range rec.requests {
		ep, _, _ := strings.Cut(r, " ")
		n[ep]++
	}
	return n
}

// TestFaults injects every kind of fault at every endpoint and page
// position, in a full and in an incremental fetch (see fault.Matrix).
func TestFaults(t *testing.T) {
	fault.Matrix{Source: "ol-faults", Kinds: faultKinds, Endpoints: faultEndpoints, Fetch: testFault}.Run(t)
}

// faultEndpoints runs a clean fetch and returns the endpoints it read.
func faultEndpoints(t *testing.T, full bool) []fault.Endpoint {
	mode := map[bool]string{true: "full", false: "incremental"}[full]
	a := newFaultAccount(t)
	res, err, rec := a.fetch(t, full, false, time.Minute, func() {})
	if err != nil || len(res.Problems) > 0 {
		t.Fatalf("clean %s fetch: %v, problems %v", mode, err, res.Problems)
	}
	pages := pagesOf(rec)
	want := map[string]bool{"token": true, "users": true, "roles": true, "role_users": true, "groups": true, "user": !full}
	for ep, n := range pages {
		if !want[ep] {
			t.Fatalf("clean %s fetch: unexpected endpoint %s", mode, ep)
		}
		if ep != "token" && n < 3 {
			t.Fatalf("clean %s fetch: %s in %d requests, want 3 pages or more", mode, ep, n)
		}
	}
	var eps []fault.Endpoint
	for _, ep := range slices.Sorted(maps.Keys(pages)) {
		eps = append(eps, fault.Endpoint{Name: ep, Requests: pages[ep]})
	}
	return eps
}

// testFault runs a case of TestFaults on an account of its own.
func testFault(t *testing.T, c fault.Case) fault.Outcome {
	ep := c.Endpoint.Name
	a := newFaultAccount(t)
	f := c.Fault()
	f.Endpoint = faultPaths[ep]
	reuse := c.Kind.Slow() && ep != "token"
	res, err, rec := a.fetch(t, c.Full, reuse, c.Kind.Timeout(), func() { a.srv.Inject(f) })
	return fault.Outcome{Result: res, Err: err, Reached: pagesOf(rec)[ep], Hidden: a.hidden()}
}

// A manager looked up in an incremental fetch whose answer was a proxy's
// HTML page, or cut short, used to be recorded as a malformed record and
// the manager left empty: every report of that manager lost their manager,
// with a nil error.
func TestFaultManagerLookupThatIsNotJSONFailsTheFetch(t *testing.T) {
	for _, f := range []fault.Fault{{HTML: true}, {Truncate: true}, {Empty: true}} {
		a := newFaultAccount(t)
		f.Endpoint, f.Times = faultPaths["user"], -1
		res, err, _ := a.fetch(t, false, false, time.Minute, func() { a.srv.Inject(f) })
		fault.CheckFailed(t, "ol-faults", res, err, []string{"not JSON (text/html", "truncated", "empty"}, a.hidden()...)
	}
}

// A JSON null instead of a page of users used to decode as an empty page,
// which ends a listing: a full fetch returned the users before it only, and
// everybody after them would have been deactivated.
func TestFaultNullPageIsNotTheLastPage(t *testing.T) {
	a := newFaultAccount(t)
	res, err, _ := a.fetch(t, true, false, time.Minute, func() {
		a.srv.Inject(fault.Fault{Endpoint: faultPaths["users"], Nth: 2, Body: "null", Times: -1})
	})
	fault.CheckFailed(t, "ol-faults", res, err, []string{"null"}, a.hidden()...)
}

// A proxy's 404 page for a role's members is not OneLogin saying the role
// was deleted meanwhile: it used to drop the role, and every membership in
// it, from the result. A proxy's 401 is not OneLogin refusing the token.
func TestFaultProxyPagesAreNotOneLoginsAnswers(t *testing.T) {
	a := newFaultAccount(t)
	res, err, _ := a.fetch(t, true, false, time.Minute, func() {
		a.srv.Inject(fault.Fault{Endpoint: faultPaths["role_users"], HTML: true, Status: http.StatusNotFound, Times: -1})
	})
	fault.CheckFailed(t, "ol-faults", res, err, []string{"404"}, a.hidden()...)

	a = newFaultAccount(t)
	res, err, _ = a.fetch(t, true, false, time.Minute, func() {
		a.srv.Inject(fault.Fault{Endpoint: faultPaths["roles"], HTML: true, Status: http.StatusUnauthorized, Times: -1})
	})
	fault.CheckFailed(t, "ol-faults", res, err, []string{"401"}, a.hidden()...)
	if errors.Is(err, connectors.ErrTerminal) || a.srv.TokenRequests() != 1 {
		t.Errorf("a proxy's 401 page was taken for OneLogin refusing the token (%d token requests): %v", a.srv.TokenRequests(), err)
	}
}
