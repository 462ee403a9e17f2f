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
)

// faultTimeout is the request_timeout of the fault tests with slow answers
// (below the 1 s that Validate allows, to keep them short), which take five
// times as long. The other faults are answered at once, and their tests
// wait longer, so that a busy machine does not turn them into timeouts.
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
	fault entratest.Fault
	want  []string
}

var faultKinds = []faultKind{
	// Retried by kiota (and azcore for tokens); Retry-After: 0 keeps it fast.
	{"5xx", entratest.Fault{Status: http.StatusServiceUnavailable, Code: "serviceNotAvailable", RetryAfter: "0"}, []string{"503"}},
	{"500", entratest.Fault{Status: http.StatusInternalServerError, Code: "generalException"}, []string{"500"}},
	{"reset", entratest.Fault{Drop: true}, []string{"closed the connection", "connection reset"}},
	{"truncated", entratest.Fault{Truncate: true}, []string{"truncated"}},
	{"empty-200", entratest.Fault{Empty: true}, []string{"empty"}},
	{"null-200", entratest.Fault{Status: http.StatusOK, Body: "null"}, []string{"null"}},
	{"html-200", entratest.Fault{HTML: true}, []string{"not JSON (text/html"}},
	{"html-502", entratest.Fault{HTML: true, Status: http.StatusBadGateway}, []string{"502"}},
	{"401", entratest.Fault{Status: http.StatusUnauthorized, Code: "InvalidAuthenticationToken",
		Message: "Access token has expired or is not yet valid."}, []string{"401"}},
	{"slow", entratest.Fault{Delay: 5 * faultTimeout}, []string{"timed out"}},
	{"slow-body", entratest.Fault{Stall: true, Delay: 5 * faultTimeout}, []string{"timed out"}},
}

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
	cfg := entra.DefaultConfig()
	cfg.TenantID = ft.srv.TenantID
	cfg.ClientID = ft.srv.ClientID
	cfg.ClientSecret = connectors.Secret(ft.srv.ClientSecret)
	cfg.GraphURL = ft.srv.GraphURL
	cfg.AuthorityHost = ft.srv.AuthorityHost
	cfg.CAFile = ft.srv.CAFile
	cfg.RequestTimeout = timeout
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
	var cursor string
	c := ft.connector(t, s, time.Minute, counts)
	if !full || reuse {
		first, err := c.FetchAll(context.Background())
		if err != nil {
			t.Fatalf("first round: %v", err)
		}
		cursor = first.Cursor
		if !full {
			ft.touch(s)
		}
		clear(counts)
	}
	if reuse {
		entra.SetRequestTimeout(c, timeout)
	} else {
		c = ft.connector(t, s, timeout, counts)
	}
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
	if err == nil && !full && res.Full {
		t.Fatalf("the incremental round became a full one")
	}
	return res, err
}

// positions are the first, middle and last of n requests.
func positions(n int) []int {
	p := []int{1, (n + 1) / 2, n}
	slices.Sort(p)
	return slices.Compact(p)
}

// TestFaults injects every kind of fault at every endpoint (token endpoint
// included) and page position, in a full and in an incremental round. Each
// fetch must fail as a whole (an error and no result), within a bound, with
// an error that names the source and what went wrong, and without the
// secret.
func TestFaults(t *testing.T) {
	entra.FastTokenRetries(t)
	var slow []func(*testing.T)
	for _, mode := range []string{"full", "incremental"} {
		full := mode == "full"
		covered := map[string]bool{}
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
				for _, nth := range positions(counts[ep]) {
					for _, k := range faultKinds {
						name := fmt.Sprintf("%s/%s/%d-of-%d/%s", mode, ep, nth, counts[ep], k.name)
						run := func(t *testing.T) {
							ft := newFaultTenant(t, s)
							f := k.fault
							f.Endpoint, f.Nth, f.Times = ep, nth, -1
							reuse := k.fault.Delay > 0 && ep != "token" && ep != "openid-configuration"
							n := map[string]int{}
							res, err := ft.fetch(t, s, full, reuse, timeoutFor(k), n, func() { ft.srv.Inject(f) })
							if n[ep] < nth {
								t.Fatalf("the fault was never reached: %d requests to %s (%v)", n[ep], ep, err)
							}
							checkFaultError(t, "entra-faults", res, err, k.want, ft.srv.ClientSecret)
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
	if strings.Contains(strings.ToLower(msg), "bearer ") {
		t.Errorf("error %q may show an access token", msg)
	}
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
		for _, f := range []entratest.Fault{{Empty: true}, {Status: http.StatusOK, Body: "null"}} {
			t.Run(fmt.Sprintf("%s/%v", c.ep, f.Empty), func(t *testing.T) {
				ft := newFaultTenant(t, c.setup)
				f.Endpoint, f.Times = c.ep, -1
				res, err := ft.fetch(t, c.setup, c.full, false, time.Minute, nil, func() { ft.srv.Inject(f) })
				checkFaultError(t, "entra-faults", res, err, []string{"empty", "null"}, ft.srv.ClientSecret)
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
			ft.srv.Inject(entratest.Fault{Endpoint: "users/delta", Nth: 2, Times: -1, HTML: true, Status: status})
		})
		checkFaultError(t, "entra-faults", res, err, []string{fmt.Sprint(status)}, ft.srv.ClientSecret)
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
