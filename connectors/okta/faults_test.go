package okta

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/fault"
	"github.com/learnsync/learnsync/connectors/okta/oktatest"
)

var faultKinds = append(fault.Kinds(), fault.HTML404)

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

// hidden are what no error may show: the credentials and access tokens.
func (o *faultOrg) hidden() []string { return []string{o.srv.Token, string(o.key), "eyfake."} }

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
	// pages is how many pages a clean fetch reads.
	pages int
}

var faultEndpoints = []faultEndpoint{
	{"users", func(*faultOrg) string { return "/api/v1/users" }, faultSetup{}, 3},
	{"groups", func(*faultOrg) string { return "/api/v1/groups" }, faultSetup{}, 3},
	{"members", func(o *faultOrg) string { return "/api/v1/groups/" + o.big + "/users" }, faultSetup{}, 3},
	{"app-users", func(o *faultOrg) string { return "/api/v1/apps/" + o.app + "/users" }, faultSetup{app: true}, 3},
	{"app-groups", func(o *faultOrg) string { return "/api/v1/apps/" + o.app + "/groups" }, faultSetup{app: true}, 3},
	{"token", func(*faultOrg) string { return "/oauth2/v1/token" }, faultSetup{oauth: true}, 1},
}

// TestFaults injects every kind of fault at every endpoint and page
// position, in a full and in an incremental fetch (see fault.Matrix).
func TestFaults(t *testing.T) {
	fault.Matrix{Source: "okta-test", Kinds: faultKinds, Endpoints: faultEndpointsOf, Fetch: testFault}.Run(t)
}

// faultEndpointsOf checks that every listing really has the pages the
// table names, in a full or an incremental fetch, and returns the table.
func faultEndpointsOf(t *testing.T, full bool) []fault.Endpoint {
	o := newFaultOrg(t)
	for _, s := range []faultSetup{{}, {app: true}} {
		o.srv.ResetRequests()
		c := o.connector(t, s, time.Minute)
		var cursor string
		if !full {
			first, _ := o.connector(t, s, time.Minute).FetchAll(context.Background())
			o.touch()
			o.srv.ResetRequests()
			cursor = first.Cursor
		}
		if _, err := fault.FetchOf(c, full, cursor)(context.Background()); err != nil {
			t.Fatalf("clean fetch: %v", err)
		}
		for _, ep := range faultEndpoints {
			if ep.setup != s || ep.name == "token" {
				continue
			}
			if n := o.srv.Requests(ep.path(o)); n != ep.pages {
				t.Errorf("app=%v full=%v: %s read in %d requests, want %d pages", s.app, full, ep.name, n, ep.pages)
			}
		}
	}
	var eps []fault.Endpoint
	for _, ep := range faultEndpoints {
		eps = append(eps, fault.Endpoint{Name: ep.name, Requests: ep.pages})
	}
	return eps
}

// testFault runs a case of TestFaults on an org of its own.
func testFault(t *testing.T, fc fault.Case) fault.Outcome {
	i := slices.IndexFunc(faultEndpoints, func(ep faultEndpoint) bool { return ep.name == fc.Endpoint.Name })
	ep := faultEndpoints[i]
	o := newFaultOrg(t)
	// An incremental fetch continues from a first one. A slow answer is
	// tried on connections that a first fetch left open, so that on a busy
	// machine only the slow request times out; the token endpoint needs a
	// fresh connector (the token would be reused), as each `learnsync run
	// --once` builds.
	c := o.connector(t, ep.setup, time.Minute)
	cursor := fault.First(t, c, fc.Full, fc.Kind.Slow(), o.touch)
	if ep.name == "token" {
		c = o.connector(t, ep.setup, time.Minute)
	}
	c.tr.timeout = fc.Kind.Timeout()
	f := fc.Fault()
	f.Endpoint = ep.path(o)
	before := o.srv.Requests(f.Endpoint)
	o.srv.Inject(f)
	res, err := fault.Timed(t, fault.FetchOf(c, fc.Full, cursor))
	return fault.Outcome{Result: res, Err: err, Reached: o.srv.Requests(f.Endpoint) - before, Hidden: o.hidden()}
}

// An empty 200 answer (or a JSON null) in the middle of a listing used to
// pass for its last page: the SDK decodes it as no users and finds no next
// link, so a full fetch returned the first page only, and everybody after it
// would have been deactivated. Now the answer is retried, and fails the
// fetch if it stays empty.
func TestFaultEmptyPageIsNotTheLastPage(t *testing.T) {
	for _, f := range []fault.Fault{{Empty: true}, {Body: "null"}} {
		o := newFaultOrg(t)
		f.Endpoint, f.Nth, f.Times = "/api/v1/users", 2, 1
		o.srv.Inject(f)
		res, err := o.connector(t, faultSetup{}, time.Minute).FetchAll(context.Background())
		if err != nil || len(res.Users) != 6 {
			t.Fatalf("after one empty page: %v, %v; want the page read again and 6 users", res, err)
		}

		f.Times = -1
		o.srv.Inject(f)
		res, err = o.connector(t, faultSetup{}, time.Minute).FetchAll(context.Background())
		fault.CheckFailed(t, "okta-test", res, err, []string{"empty", "null"}, o.hidden()...)
	}
}

// A proxy's 404 page for a group's member list is not Okta saying that the
// group was deleted meanwhile: it used to drop the group, and its members'
// memberships, from a full result.
func TestFaultProxyNotFoundPageIsNotAGoneGroup(t *testing.T) {
	o := newFaultOrg(t)
	o.srv.Inject(fault.Fault{Endpoint: "/api/v1/groups/" + o.big + "/users", HTML: true, Status: http.StatusNotFound, Times: -1})
	res, err := o.connector(t, faultSetup{}, time.Minute).FetchAll(context.Background())
	fault.CheckFailed(t, "okta-test", res, err, []string{"404"}, o.hidden()...)
	if err != nil && !strings.Contains(err.Error(), "not JSON (text/html") {
		t.Errorf("error %q does not say the answer was an HTML page", err)
	}
}

// The SDK sends the OAuth client assertion, a signed credential valid for an
// hour, in the token request's URL, and http.Client quotes that URL in its
// errors: a token request that got no answer put the assertion into the
// fetch error, and from there into logs and the run record.
func TestFaultTokenRequestErrorsHideTheClientAssertion(t *testing.T) {
	for _, f := range []fault.Fault{{Reset: true}, {Delay: 5 * fault.ShortTimeout}, {HTML: true}, {Status: http.StatusUnauthorized}} {
		o := newFaultOrg(t)
		f.Endpoint, f.Times = "/oauth2/v1/token", -1
		o.srv.Inject(f)
		res, err := o.connector(t, faultSetup{oauth: true}, fault.ShortTimeout).FetchAll(context.Background())
		fault.CheckFailed(t, "okta-test", res, err, []string{"token"}, o.hidden()...)
		if err != nil && (strings.Contains(err.Error(), "client_assertion") || strings.Contains(err.Error(), "eyJ")) {
			t.Errorf("error shows the client assertion: %v", err)
		}
		if f.Status == http.StatusUnauthorized && !errors.Is(err, connectors.ErrTerminal) {
			t.Errorf("a refused token request is not terminal: %v", err)
		}
	}
}
