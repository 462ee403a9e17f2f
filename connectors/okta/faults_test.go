package okta

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/okta/oktatest"
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
	fault oktatest.Fault
	want  []string
}

var faultKinds = []faultKind{
	{"5xx", oktatest.Fault{Status: http.StatusServiceUnavailable}, []string{"503"}},
	{"reset", oktatest.Fault{Reset: true}, []string{"closed the connection", "connection reset"}},
	{"truncated", oktatest.Fault{Truncate: true}, []string{"truncated"}},
	{"empty-200", oktatest.Fault{Empty: true}, []string{"empty"}},
	{"null-200", oktatest.Fault{Body: "null"}, []string{"null"}},
	{"html-200", oktatest.Fault{HTML: true}, []string{"not JSON (text/html"}},
	{"html-502", oktatest.Fault{HTML: true, Status: http.StatusBadGateway}, []string{"502"}},
	{"html-404", oktatest.Fault{HTML: true, Status: http.StatusNotFound}, []string{"404"}},
	{"401", oktatest.Fault{Status: http.StatusUnauthorized}, []string{"401"}},
	{"slow", oktatest.Fault{Delay: 5 * faultTimeout}, []string{"timed out"}},
	{"slow-body", oktatest.Fault{Stall: true, Delay: 5 * faultTimeout}, []string{"timed out"}},
}

// faultOrg is an org in which every listing the connector reads has three
// pages at page size 2 (five or six items), in a full fetch and, after
// touch, in an incremental one.
type faultOrg struct {
	srv    *oktatest.Server
	users  []string
	groups []string
	big    string // the group with three pages of members
	app    string
	key    []byte // the OAuth app's private key
}

func newFaultOrg(t *testing.T) *faultOrg {
	o := &faultOrg{srv: oktatest.New(t)}
	o.users = o.srv.AddPeople(6)
	for i := range 5 {
		g := o.srv.AddGroup(oktatest.Group{Name: fmt.Sprintf("Group %d", i)})
		o.groups = append(o.groups, g.ID)
		o.srv.AddMember(g.ID, o.users[i])
	}
	o.big = o.groups[0]
	o.srv.AddMember(o.big, o.users...)
	o.app = o.srv.AddApp("LMS")
	o.srv.AssignUser(o.app, o.users[:5]...)
	o.srv.AssignGroup(o.app, o.groups...)
	return o
}

// touch changes every user and group so that an incremental fetch reads
// them all again, and moves the clock past the cursor's overlap.
func (o *faultOrg) touch() {
	for _, id := range o.users {
		o.srv.SetProfile(id, "title", "Touched")
	}
	for _, id := range o.groups {
		o.srv.UpdateGroup(id, func(g *oktatest.Group) { g.Description = "touched" })
	}
	o.srv.Advance(CursorOverlap + time.Second)
}

// faultSetup is a variant of the source's configuration.
type faultSetup struct {
	app, oauth bool
}

// connector reads the org with setup s and a request_timeout of timeout.
func (o *faultOrg) connector(t *testing.T, s faultSetup, timeout time.Duration) *Connector {
	cfg := DefaultConfig()
	cfg.OrgURL = o.srv.URL()
	cfg.CAFile = o.srv.CACertFile(t)
	cfg.PageSize = 2
	cfg.RequestTimeout = timeout
	cfg.APIToken = connectors.Secret(o.srv.Token)
	if s.oauth {
		if o.key == nil {
			o.key = o.srv.EnableOAuth("0oafaults", "okta.users.read", "okta.groups.read", "okta.apps.read")
		}
		cfg.APIToken = ""
		cfg.ClientID = "0oafaults"
		cfg.PrivateKey = connectors.Secret(o.key)
	}
	if s.app {
		cfg.AppID = o.app
	}
	return newTestConnector(t, cfg, connectors.Hooks{})
}

// faultEndpoint is where a fault is injected and at which requests.
type faultEndpoint struct {
	name  string
	path  func(o *faultOrg) string
	setup faultSetup
	// pages are the positions tried: 1 = the first page, 2 the middle one,
	// 3 the last.
	pages []int
}

var faultEndpoints = []faultEndpoint{
	{"users", func(*faultOrg) string { return "/api/v1/users" }, faultSetup{}, []int{1, 2, 3}},
	{"groups", func(*faultOrg) string { return "/api/v1/groups" }, faultSetup{}, []int{1, 2, 3}},
	{"members", func(o *faultOrg) string { return "/api/v1/groups/" + o.big + "/users" }, faultSetup{}, []int{1, 2, 3}},
	{"app-users", func(o *faultOrg) string { return "/api/v1/apps/" + o.app + "/users" }, faultSetup{app: true}, []int{1, 2, 3}},
	{"app-groups", func(o *faultOrg) string { return "/api/v1/apps/" + o.app + "/groups" }, faultSetup{app: true}, []int{1, 2, 3}},
	{"token", func(*faultOrg) string { return "/oauth2/v1/token" }, faultSetup{oauth: true}, []int{1}},
}

var pageNames = map[int]string{1: "first", 2: "middle", 3: "last"}

// TestFaults injects every kind of fault at every endpoint and page
// position, in a full and in an incremental fetch. Each fetch must fail as
// a whole (an error and no result), within a bound, with an error that names
// the source and what went wrong, and without the credentials.
func TestFaults(t *testing.T) {
	// Every listing really has the pages the table names.
	o := newFaultOrg(t)
	for _, s := range []faultSetup{{}, {app: true}} {
		for _, full := range []bool{true, false} {
			o.srv.ResetRequests()
			c := o.connector(t, s, time.Minute)
			var err error
			if full {
				_, err = c.FetchAll(context.Background())
			} else {
				first, _ := o.connector(t, s, time.Minute).FetchAll(context.Background())
				o.touch()
				o.srv.ResetRequests()
				_, err = c.FetchChanges(context.Background(), first.Cursor)
			}
			if err != nil {
				t.Fatalf("clean fetch: %v", err)
			}
			for _, ep := range faultEndpoints {
				if ep.setup != s || ep.name == "token" {
					continue
				}
				if n := o.srv.Requests(ep.path(o)); n != 3 {
					t.Errorf("app=%v full=%v: %s read in %d requests, want 3 pages", s.app, full, ep.name, n)
				}
			}
		}
	}

	// Slow answers mostly wait: they run several at once, beyond -parallel
	// (but not so many that answers on time come late on a small machine).
	var slow []func(*testing.T)
	for _, mode := range []string{"full", "incremental"} {
		for _, ep := range faultEndpoints {
			for _, page := range ep.pages {
				for _, k := range faultKinds {
					name := fmt.Sprintf("%s/%s/%s/%s", mode, ep.name, pageNames[page], k.name)
					run := func(t *testing.T) { testFault(t, mode == "full", ep, page, k) }
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

func testFault(t *testing.T, full bool, ep faultEndpoint, page int, k faultKind) {
	o := newFaultOrg(t)
	// An incremental fetch continues from a first one. A slow answer is
	// tried on connections that a first fetch left open, so that on a busy
	// machine only the slow request times out; the token endpoint needs a
	// fresh connector (the token would be reused), as each `learnsync run
	// --once` builds.
	c := o.connector(t, ep.setup, time.Minute)
	var cursor string
	if !full || k.fault.Delay > 0 {
		first, err := c.FetchAll(context.Background())
		if err != nil {
			t.Fatalf("first fetch: %v", err)
		}
		cursor = first.Cursor
		if !full {
			o.touch()
		}
	}
	if ep.name == "token" {
		c = o.connector(t, ep.setup, time.Minute)
	}
	c.tr.timeout = timeoutFor(k)
	f := k.fault
	f.Path, f.Nth, f.Times = ep.path(o), page, -1
	before := o.srv.Requests(f.Path)
	o.srv.Inject(f)

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
	took := time.Since(start)
	if got := o.srv.Requests(f.Path) - before; got < page {
		t.Fatalf("the fault was never reached: %d requests to %s (%v)", got, f.Path, err)
	}
	checkFaultError(t, "okta-test", res, err, k.want, o.srv.Token, string(o.key))
	if ctx.Err() != nil || took > 10*time.Second {
		t.Errorf("the fetch took %v", took)
	}
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
	if strings.Contains(msg, "eyfake.") {
		t.Errorf("error %q shows an access token", msg)
	}
}

// An empty 200 answer (or a JSON null) in the middle of a listing used to
// pass for its last page: the SDK decodes it as no users and finds no next
// link, so a full fetch returned the first page only, and everybody after it
// would have been deactivated. Now the answer is retried, and fails the
// fetch if it stays empty.
func TestFaultEmptyPageIsNotTheLastPage(t *testing.T) {
	for _, f := range []oktatest.Fault{{Empty: true}, {Body: "null"}} {
		o := newFaultOrg(t)
		f.Path, f.Nth, f.Times = "/api/v1/users", 2, 1
		o.srv.Inject(f)
		res, err := o.connector(t, faultSetup{}, time.Minute).FetchAll(context.Background())
		if err != nil || len(res.Users) != 6 {
			t.Fatalf("after one empty page: %v, %v; want the page read again and 6 users", res, err)
		}

		f.Times = -1
		o.srv.Inject(f)
		res, err = o.connector(t, faultSetup{}, time.Minute).FetchAll(context.Background())
		checkFaultError(t, "okta-test", res, err, []string{"empty", "null"}, o.srv.Token)
	}
}

// A proxy's 404 page for a group's member list is not Okta saying that the
// group was deleted meanwhile: it used to drop the group, and its members'
// memberships, from a full result.
func TestFaultProxyNotFoundPageIsNotAGoneGroup(t *testing.T) {
	o := newFaultOrg(t)
	o.srv.Inject(oktatest.Fault{Path: "/api/v1/groups/" + o.big + "/users", HTML: true, Status: http.StatusNotFound, Times: -1})
	res, err := o.connector(t, faultSetup{}, time.Minute).FetchAll(context.Background())
	checkFaultError(t, "okta-test", res, err, []string{"404"}, o.srv.Token)
	if err != nil && !strings.Contains(err.Error(), "not JSON (text/html") {
		t.Errorf("error %q does not say the answer was an HTML page", err)
	}
}

// The SDK sends the OAuth client assertion, a signed credential valid for an
// hour, in the token request's URL, and http.Client quotes that URL in its
// errors: a token request that got no answer put the assertion into the
// fetch error, and from there into logs and the run record.
func TestFaultTokenRequestErrorsHideTheClientAssertion(t *testing.T) {
	for _, f := range []oktatest.Fault{{Reset: true}, {Delay: 5 * faultTimeout}, {HTML: true}, {Status: http.StatusUnauthorized}} {
		o := newFaultOrg(t)
		f.Path, f.Times = "/oauth2/v1/token", -1
		o.srv.Inject(f)
		res, err := o.connector(t, faultSetup{oauth: true}, faultTimeout).FetchAll(context.Background())
		checkFaultError(t, "okta-test", res, err, []string{"token"}, string(o.key))
		if err != nil && (strings.Contains(err.Error(), "client_assertion") || strings.Contains(err.Error(), "eyJ")) {
			t.Errorf("error shows the client assertion: %v", err)
		}
		if f.Status == http.StatusUnauthorized && !errors.Is(err, connectors.ErrTerminal) {
			t.Errorf("a refused token request is not terminal: %v", err)
		}
	}
}
