package entra_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/entra"
	"github.com/learnsync/learnsync/connectors/entra/entratest"
	"github.com/learnsync/learnsync/connectors/fault"
)

var faultKinds = func() []fault.Kind {
	ks := append(fault.Kinds(), fault.Status500)
	for i := range ks {
		if ks[i].Name == "5xx" {
			// Retried by kiota (and azcore for tokens); Retry-After: 0
			// keeps it fast.
			ks[i].Fault.Header = http.Header{"Retry-After": {"0"}}
		}
	}
	return ks
}()

// faultSetup is a variant of the source's configuration: plain, or scoped
// to a service principal's assignments with transitive groups.
type faultSetup struct{ scoped bool }

const faultSP = "00000000-0000-0000-0003-000000000001"

// faultTenant is a tenant in which, at page size 2, every endpoint the
// connector reads answers in several pages, in a full and, after touch, in
// an incremental round.
type faultTenant struct {
	srv    *entratest.Server
	users  []string
	quiet  []string
	groups []string
}

// hidden are what no error may show: the secret and access tokens.
func (ft *faultTenant) hidden() []string { return []string{ft.srv.ClientSecret, "bearer "} }

func newFaultTenant(t *testing.T, s faultSetup) *faultTenant {
	ft := &faultTenant{srv: entratest.New(t)}
	ft.srv.SetPageSize(2)
	for i := range 6 {
		ft.users = append(ft.users, ft.srv.AddUser(entratest.User{UserPrincipalName: fmt.Sprintf("u%d@corp.example", i),
			Mail: fmt.Sprintf("u%d@corp.example", i), DisplayName: fmt.Sprint("User ", i)}))
	}
	for i := range 3 {
		ft.quiet = append(ft.quiet, ft.srv.AddUser(entratest.User{UserPrincipalName: fmt.Sprintf("q%d@corp.example", i)}))
	}
	for i := range 5 {
		g := ft.srv.AddGroup(entratest.Group{DisplayName: fmt.Sprint("Group ", i)})
		ft.groups = append(ft.groups, g)
		ft.srv.AddMember(g, ft.users[i])
	}
	ft.srv.AddMember(ft.groups[0], ft.users[1:4]...)
	// Group 1 holds group 2 (transitive members) and is held by groups 0,
	// 3 and an umbrella group (groups containing a changed group).
	ft.srv.AddMember(ft.groups[1], ft.groups[2], ft.users[5])
	umbrella := ft.srv.AddGroup(entratest.Group{DisplayName: "Umbrella"})
	for _, g := range []string{ft.groups[0], ft.groups[3], umbrella} {
		ft.srv.AddMember(g, ft.groups[1])
	}
	if s.scoped {
		ft.srv.AddServicePrincipal(faultSP)
		ft.srv.Assign(faultSP, ft.users[4], ft.users[5], ft.users[0], ft.groups[0], ft.groups[1])
	}
	return ft
}

// touch changes every user and group and some memberships, so that an
// incremental round reads them again (and, plain, looks up the quiet users'
// type; scoped, reads the groups containing a changed group). The app's
// assignments stay as they are, or the round would be a full one.
func (ft *faultTenant) touch(s faultSetup) {
	for _, id := range ft.users {
		ft.srv.UpdateUser(id, func(u *entratest.User) { u.JobTitle = "Touched" })
	}
	for _, id := range ft.groups {
		ft.srv.UpdateGroup(id, func(g *entratest.Group) { g.Description = "touched" })
	}
	if s.scoped {
		ft.srv.AddMember(ft.groups[1], ft.groups[4])
	} else {
		ft.srv.AddMember(ft.groups[0], ft.quiet...)
	}
	ft.srv.AddMember(ft.groups[2], ft.users[0])
}

// connector builds a connector with hooks that count the answers by
// endpoint.
func (ft *faultTenant) connector(t *testing.T, s faultSetup, timeout time.Duration, counts map[string]int) *entra.Connector {
	cfg := fakeConfig(ft.srv, timeout)
	if s.scoped {
		cfg.ServicePrincipalID = faultSP
		cfg.TransitiveGroups = true
	}
	var mu sync.Mutex
	c, err := entra.New(cfg, connectors.Options{Name: "entra-faults", Logger: slog.New(slog.DiscardHandler),
		Hooks: connectors.Hooks{Request: func(ep string, _ int, _ time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if counts != nil {
				counts[ep]++
			}
		}}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// fetch runs a full round, or a first full round and, after touch, an
// incremental one. The fetch under test runs on a new connector (each
// `learnsync run --once` builds one, and asks for a token), unless reuse
// asks for the first one, whose connections are open (in a full round, a
// first one is run for that): so that on a busy machine a short
// request_timeout hits only the slow request. inject is called just before
// the fetch under test, whose answers are counted in counts.
func (ft *faultTenant) fetch(t *testing.T, s faultSetup, full, reuse bool, timeout time.Duration, counts map[string]int, inject func()) (*connectors.Result, error) {
	t.Helper()
	if counts == nil {
		counts = map[string]int{}
	}
	c := ft.connector(t, s, time.Minute, counts)
	cursor := fault.First(t, c, full, reuse, func() { ft.touch(s) })
	clear(counts) // of the first round
	if reuse {
		entra.SetRequestTimeout(c, timeout)
	} else {
		c = ft.connector(t, s, timeout, counts)
	}
	inject()
	res, err := fault.Timed(t, fault.FetchOf(c, full, cursor))
	if err == nil && !full && res.Full {
		t.Fatalf("the incremental round became a full one")
	}
	return res, err
}

// TestFaults injects every kind of fault at every endpoint (token endpoint
// included) and page position, in a full and in an incremental round (see
// fault.Matrix).
func TestFaults(t *testing.T) {
	entra.FastTokenRetries(t)
	fault.Matrix{Source: "entra-faults", Kinds: faultKinds, Endpoints: faultEndpoints, Fetch: testFault}.Run(t)
}

// faultEndpoints runs a clean round of each setup and returns the
// endpoints it read, each with the setup that reads it first.
func faultEndpoints(t *testing.T, full bool) []fault.Endpoint {
	mode := map[bool]string{true: "full", false: "incremental"}[full]
	covered := map[string]bool{}
	var eps []fault.Endpoint
	for _, s := range []faultSetup{{}, {scoped: true}} {
		setup := "plain"
		if s.scoped {
			setup = "scoped"
		}
		counts := map[string]int{}
		ft := newFaultTenant(t, s)
		res, err := ft.fetch(t, s, full, false, time.Minute, counts, func() {})
		if err != nil || len(res.Problems) > 0 {
			t.Fatalf("clean %s %s round: %v, problems %v", setup, mode, err, res)
		}
		for _, ep := range slices.Sorted(maps.Keys(counts)) {
			if covered[ep] {
				continue // by the plain setup
			}
			covered[ep] = true
			if n := counts[ep]; n < 2 && ep != "token" && ep != "openid-configuration" {
				t.Errorf("clean %s %s round: %s in %d requests, want several pages", setup, mode, ep, n)
			}
			eps = append(eps, fault.Endpoint{Name: ep, Requests: counts[ep], Variant: setup})
		}
	}
	return eps
}

// testFault runs a case of TestFaults on a tenant of its own.
func testFault(t *testing.T, c fault.Case) fault.Outcome {
	s := faultSetup{scoped: c.Endpoint.Variant == "scoped"}
	ep := c.Endpoint.Name
	ft := newFaultTenant(t, s)
	f := c.Fault()
	f.Endpoint = ep
	reuse := c.Kind.Slow() && ep != "token" && ep != "openid-configuration"
	n := map[string]int{}
	res, err := ft.fetch(t, s, c.Full, reuse, c.Kind.Timeout(), n, func() { ft.srv.Inject(f) })
	return fault.Outcome{Result: res, Err: err, Reached: n[ep], Hidden: ft.hidden()}
}

// A page that decodes to nothing (an empty 200 answer, or JSON null) used to
// be dereferenced: in a member listing that runs on a worker goroutine, the
// nil pointer took the whole learnsync process down, every source with it.
func TestFaultEmptyOrNullPageDoesNotCrash(t *testing.T) {
	entra.FastTokenRetries(t)
	for _, c := range []struct {
		setup faultSetup
		full  bool
		ep    string
	}{
		{faultSetup{scoped: true}, true, "servicePrincipals/appRoleAssignedTo"},
		{faultSetup{scoped: true}, true, "groups/members"},
		{faultSetup{scoped: true}, true, "groups/transitiveMembers"},
		{faultSetup{scoped: true}, false, "groups/transitiveMemberOf"},
		{faultSetup{}, false, "users"},
		{faultSetup{}, true, "users/delta"},
	} {
		for _, f := range []fault.Fault{{Empty: true}, {Body: "null"}} {
			t.Run(fmt.Sprintf("%s/%v", c.ep, f.Empty), func(t *testing.T) {
				ft := newFaultTenant(t, c.setup)
				f.Endpoint, f.Times = c.ep, -1
				res, err := ft.fetch(t, c.setup, c.full, false, time.Minute, nil, func() { ft.srv.Inject(f) })
				fault.CheckFailed(t, "entra-faults", res, err, []string{"empty", "null"}, ft.hidden()...)
			})
		}
	}
}

// A proxy's error page used to come out as "content type text/html does not
// have a factory registered to be parsed", without its status; and a proxy's
// 403 page must not pass for Graph refusing the app's permissions.
func TestFaultProxyErrorPagesKeepTheirStatus(t *testing.T) {
	for _, status := range []int{http.StatusBadGateway, http.StatusForbidden} {
		ft := newFaultTenant(t, faultSetup{})
		res, err := ft.fetch(t, faultSetup{}, true, false, time.Minute, nil, func() {
			ft.srv.Inject(fault.Fault{Endpoint: "users/delta", Nth: 2, Times: -1, HTML: true, Status: status})
		})
		fault.CheckFailed(t, "entra-faults", res, err, []string{fmt.Sprint(status)}, ft.hidden()...)
		if err != nil && (!strings.Contains(err.Error(), "not JSON (text/html)") || errors.Is(err, connectors.ErrTerminal)) {
			t.Errorf("HTTP %d page: %v; want a retryable error saying the answer was an HTML page", status, err)
		}
	}
}

// Building a connector used to write a package variable of kiota that every
// Graph model constructor reads: a connector built while another one
// fetched (a reload in service mode, tests) was a data race. Run with -race.
func TestFaultNewWhileFetching(t *testing.T) {
	ft := newFaultTenant(t, faultSetup{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			c := ft.connector(t, faultSetup{}, time.Minute, nil)
			if i%2 == 0 {
				if _, err := c.FetchAll(context.Background()); err != nil {
					t.Errorf("FetchAll: %v", err)
				}
			}
		})
	}
	wg.Wait()
}
