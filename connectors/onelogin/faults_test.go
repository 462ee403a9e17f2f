package onelogin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/onelogin/onelogintest"
)

// faultTimeout is the request_timeout of the fault tests with slow answers,
// which take five times as long. The other faults are answered at once, and
// their tests wait longer, so that a busy machine does not turn them into
// timeouts.
const faultTimeout = 200 * time.Millisecond

// timeoutFor is the request_timeout for a fault.
func timeoutFor(k faultKind) time.Duration {
	if k.fault.Delay > 0 {
		return faultTimeout
	}
	return 10 * time.Second
}

// faultKind is one way an answer goes wrong, and the words the fetch error
// must use for it (any one of them, case-insensitive).
type faultKind struct {
	name  string
	fault onelogintest.Fault
	want  []string
}

var faultKinds = []faultKind{
	{"5xx", onelogintest.Fault{Status: http.StatusServiceUnavailable}, []string{"503"}},
	{"reset", onelogintest.Fault{Drop: true}, []string{"closed the connection", "connection reset"}},
	{"truncated", onelogintest.Fault{Truncate: true}, []string{"truncated"}},
	{"empty-200", onelogintest.Fault{Empty: true}, []string{"empty"}},
	{"null-200", onelogintest.Fault{Status: http.StatusOK, Body: "null"}, []string{"null"}},
	{"html-200", onelogintest.Fault{HTML: true}, []string{"not JSON (text/html"}},
	{"html-502", onelogintest.Fault{HTML: true, Status: http.StatusBadGateway}, []string{"502"}},
	{"html-404", onelogintest.Fault{HTML: true, Status: http.StatusNotFound}, []string{"404"}},
	{"401", onelogintest.Fault{Status: http.StatusUnauthorized}, []string{"401"}},
	{"slow", onelogintest.Fault{Delay: 5 * faultTimeout}, []string{"timed out"}},
	{"slow-body", onelogintest.Fault{Stall: true, Delay: 5 * faultTimeout}, []string{"timed out"}},
}

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
	var cursor string
	if !full || reuse {
		first, err := c.FetchAll(context.Background())
		if err != nil {
			t.Fatalf("first fetch: %v", err)
		}
		cursor = first.Cursor
		if !full {
			a.touch()
		}
	}
	if !reuse {
		c, rec = a.connector(t, time.Minute)
	}
	c.client.http.Timeout, c.client.timeout = timeout, timeout
	rec.mu.Lock()
	rec.requests = nil
	rec.mu.Unlock()
	inject()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	var (
		res *connectors.Result
		err error
	)
	if full {
		res, err = c.FetchAll(ctx)
	} else {
		res, err = c.FetchChanges(ctx, cursor)
	}
	if ctx.Err() != nil || time.Since(start) > 10*time.Second {
		t.Errorf("the fetch took %v", time.Since(start))
	}
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

// positions are the first, middle and last of n requests.
func positions(n int) []int {
	p := []int{1, (n + 1) / 2, n}
	slices.Sort(p)
	return slices.Compact(p)
}

// TestFaults injects every kind of fault at every endpoint and page
// position, in a full and in an incremental fetch. Each fetch must fail as
// a whole (an error and no result), within a bound, with an error that names
// the source and what went wrong, and without the secret.
func TestFaults(t *testing.T) {
	var slow []func(*testing.T)
	for _, mode := range []string{"full", "incremental"} {
		full := mode == "full"
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
		for _, ep := range slices.Sorted(maps.Keys(pages)) {
			for _, nth := range positions(pages[ep]) {
				for _, k := range faultKinds {
					name := fmt.Sprintf("%s/%s/%d-of-%d/%s", mode, ep, nth, pages[ep], k.name)
					run := func(t *testing.T) {
						a := newFaultAccount(t)
						f := k.fault
						f.Times = -1
						reuse := k.fault.Delay > 0 && ep != "token"
						res, err, rec := a.fetch(t, full, reuse, timeoutFor(k), func() { a.srv.FailAt(faultPaths[ep], nth, f) })
						if n := pagesOf(rec)[ep]; n < nth {
							t.Fatalf("the fault was never reached: %d requests to %s (%v)", n, ep, err)
						}
						checkFaultError(t, "ol-faults", res, err, k.want, a.srv.ClientSecret)
					}
					if k.fault.Delay > 0 {
						slow = append(slow, func(t *testing.T) { t.Run(name, run) })
						continue
					}
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						run(t)
					})
				}
			}
		}
	}
	// Slow answers mostly wait: they run several at once, beyond -parallel
	// (but not so many that answers on time come late on a small machine).
	t.Run("waiting", func(t *testing.T) {
		t.Parallel()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, run := range slow {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				run(t)
			})
		}
		wg.Wait()
	})
}

// checkFaultError checks the contract of a failed fetch.
func checkFaultError(t *testing.T, source string, res *connectors.Result, err error, want []string, secrets ...string) {
	t.Helper()
	if err == nil || res != nil {
		t.Fatalf("fetch = %+v, %v; want an error and no result", res, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"`+source+`"`) {
		t.Errorf("error %q does not name the source %q", msg, source)
	}
	found := false
	for _, w := range want {
		found = found || strings.Contains(strings.ToLower(msg), strings.ToLower(w))
	}
	if !found {
		t.Errorf("error %q does not say %q", msg, strings.Join(want, `" or "`))
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error %q shows a secret", msg)
		}
	}
}

// A manager looked up in an incremental fetch whose answer was a proxy's
// HTML page, or cut short, used to be recorded as a malformed record and
// the manager left empty: every report of that manager lost their manager,
// with a nil error.
func TestFaultManagerLookupThatIsNotJSONFailsTheFetch(t *testing.T) {
	for _, f := range []onelogintest.Fault{{HTML: true}, {Truncate: true}, {Empty: true}} {
		a := newFaultAccount(t)
		f.Times = -1
		res, err, _ := a.fetch(t, false, false, time.Minute, func() { a.srv.FailAt(faultPaths["user"], 1, f) })
		checkFaultError(t, "ol-faults", res, err, []string{"not JSON (text/html", "truncated", "empty"}, a.srv.ClientSecret)
	}
}

// A JSON null instead of a page of users used to decode as an empty page,
// which ends a listing: a full fetch returned the users before it only, and
// everybody after them would have been deactivated.
func TestFaultNullPageIsNotTheLastPage(t *testing.T) {
	a := newFaultAccount(t)
	res, err, _ := a.fetch(t, true, false, time.Minute, func() {
		a.srv.FailAt(faultPaths["users"], 2, onelogintest.Fault{Status: http.StatusOK, Body: "null", Times: -1})
	})
	checkFaultError(t, "ol-faults", res, err, []string{"null"}, a.srv.ClientSecret)
}

// A proxy's 404 page for a role's members is not OneLogin saying the role
// was deleted meanwhile: it used to drop the role, and every membership in
// it, from the result. A proxy's 401 is not OneLogin refusing the token.
func TestFaultProxyPagesAreNotOneLoginsAnswers(t *testing.T) {
	a := newFaultAccount(t)
	res, err, _ := a.fetch(t, true, false, time.Minute, func() {
		a.srv.FailAt(faultPaths["role_users"], 1, onelogintest.Fault{HTML: true, Status: http.StatusNotFound, Times: -1})
	})
	checkFaultError(t, "ol-faults", res, err, []string{"404"}, a.srv.ClientSecret)

	a = newFaultAccount(t)
	res, err, _ = a.fetch(t, true, false, time.Minute, func() {
		a.srv.FailAt(faultPaths["roles"], 1, onelogintest.Fault{HTML: true, Status: http.StatusUnauthorized, Times: -1})
	})
	checkFaultError(t, "ol-faults", res, err, []string{"401"}, a.srv.ClientSecret)
	if errors.Is(err, connectors.ErrTerminal) || a.srv.TokenRequests() != 1 {
		t.Errorf("a proxy's 401 page was taken for OneLogin refusing the token (%d token requests): %v", a.srv.TokenRequests(), err)
	}
}
