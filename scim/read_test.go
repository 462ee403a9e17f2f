package scim_test

import (
	"context"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/reconcile"
	"github.com/learnsync/learnsync/scim"
)

const readToken = "read-token-0123456789"

// orgSource serves a result the test may change between runs.
type orgSource struct{ result connectors.Result }

func (o *orgSource) FetchAll(context.Context) (*connectors.Result, error) {
	r := o.result
	return &r, nil
}

// readFixture is a directory built by the reconcile engine from one
// source, hr, served by the read view next to a push endpoint (source
// entra), as the public listener mounts them.
type readFixture struct {
	*fixture
	hr     *orgSource
	engine *reconcile.Engine
	read   *scim.ReadHandler
}

func hrOrg() connectors.Result {
	u := func(id, user, email, given, family, title string, st connectors.Status) connectors.User {
		return connectors.User{ExternalID: id, UserName: user, Email: email, GivenName: given, FamilyName: family,
			DisplayName: strings.TrimSpace(given + " " + family), Title: title, Status: st}
	}
	ada := u("u1", "ada", "ada@example.com", "Ada", "Lovelace", "Engineer", connectors.StatusActive)
	ada.Department, ada.EmployeeNumber, ada.CostCenter, ada.Manager = "Engineering", "0001", "CC-1", "grace"
	return connectors.Result{Full: true,
		Users: []connectors.User{
			ada,
			u("u2", "grace", "grace@example.com", "Grace", "Hopper", "Director", connectors.StatusActive),
			u("u3", "alan", "alan@example.com", "Alan", "Turing", "", connectors.StatusActive),
			u("u4", "x' OR '1'='1", "odd@example.com", "", "", "", connectors.StatusActive),
		},
		Groups:  []connectors.Group{{ExternalID: "g1", Name: "Learners"}, {ExternalID: "g2", Name: "Staff"}},
		Members: map[string][]string{"g1": {"u1", "u2"}, "g2": {"u2"}},
	}
}

func newReadFixture(t *testing.T) *readFixture {
	t.Helper()
	store, err := directory.Open(context.Background(), filepath.Join(t.TempDir(), "d.db"), directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &readFixture{fixture: &fixture{t: t, store: store, writes: map[string]int{}}, hr: &orgSource{result: hrOrg()}}
	rules := reconcile.SourceRules{Name: "hr", SyncGroups: []string{"*"}}
	f.engine = &reconcile.Engine{Store: store, Sources: []reconcile.Source{{Rules: rules, Connector: f.hr}},
		Rules: reconcile.Rules{MatchOn: "email", Sources: []reconcile.SourceRules{rules},
			Licenses: []reconcile.LicenseRule{{Name: "pro", Groups: []string{"hr/Learners"}}}}, LockWait: -1}
	f.run()
	push := scim.NewHandler(scim.Options{Store: store}, []scim.Source{{Name: "entra", Token: token}})
	f.read = scim.NewReadHandler(scim.ReadOptions{Store: store}, readToken)
	f.srv = httptest.NewServer(scim.Route(push, f.read))
	t.Cleanup(f.srv.Close)
	return f
}

// run reconciles the directory with hr as it is now.
func (f *readFixture) run() {
	f.t.Helper()
	out, err := f.engine.Run(context.Background(), reconcile.RunOptions{})
	if err != nil || !out.Applied {
		f.t.Fatalf("run: %+v, %v", out, err)
	}
}

// get reads the view with the read token.
func (f *readFixture) get(path string) answer {
	return f.doAt("/scim/v2", "GET", path, "", "Authorization: Bearer "+readToken)
}

// names lists the userNames (or displayNames) of a list answer, sorted.
func (a answer) names(t *testing.T) []string {
	t.Helper()
	var out []string
	res, _ := a.body["Resources"].([]any)
	for _, r := range res {
		m := r.(map[string]any)
		n, _ := m["userName"].(string)
		if n == "" {
			n, _ = m["displayName"].(string)
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (f *readFixture) list(filter string) answer {
	return f.get("/Users?filter=" + url.QueryEscape(filter))
}

func TestReadUser(t *testing.T) {
	f := newReadFixture(t)
	a := f.list(`userName eq "ADA"`).want(t, 200)
	if a.get("totalResults") != 1.0 {
		t.Fatalf("totalResults: %s", a.raw)
	}
	u := answer{body: a.get("Resources", "0").(map[string]any)}
	for path, want := range map[string]any{
		"userName": "ada", "displayName": "Ada Lovelace", "title": "Engineer", "active": true,
		"name/givenName": "Ada", "name/familyName": "Lovelace",
		"emails/0/value": "ada@example.com", "emails/0/type": "work", "emails/0/primary": true,
		"groups/0/display": "hr/Learners", "entitlements/0/value": "pro",
		scim.SchemaEnterprise + "/employeeNumber": "0001", scim.SchemaEnterprise + "/department": "Engineering",
		scim.SchemaEnterprise + "/costCenter": "CC-1", scim.SchemaEnterprise + "/manager/value": "grace",
		"meta/resourceType": "User",
	} {
		if got := u.get(strings.Split(path, "/")...); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	id := u.id()
	if loc := u.get("meta", "location"); loc != f.srv.URL+"/scim/v2/Users/"+id {
		t.Errorf("location = %v", loc)
	}
	for _, k := range []string{"created", "lastModified", "version"} {
		if s, _ := u.get("meta", k).(string); s == "" {
			t.Errorf("meta.%s missing", k)
		}
	}
	one := f.get("/Users/"+id).want(t, 200)
	if one.get("userName") != "ada" || one.header.Get("ETag") == "" {
		t.Errorf("GET by id: %s", one.raw)
	}
	grace := f.list(`userName eq "grace"`).get("Resources", "0", "groups")
	if n := len(grace.([]any)); n != 2 {
		t.Errorf("grace's groups = %v", grace)
	}
	f.get("/Users/999").want(t, 404)
	f.get("/Users/abc").want(t, 404)
}

func TestReadFilters(t *testing.T) {
	f := newReadFixture(t)
	// Alan leaves: deactivated, still listed.
	org := hrOrg()
	org.Users[2].Status = connectors.StatusInactive
	f.hr.result = org
	f.run()
	const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:"
	all := []string{"ada", "alan", "grace", "x' OR '1'='1"}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{`userName eq "Ada"`, []string{"ada"}},
		{`USERNAME EQ "ada"`, []string{"ada"}},
		{`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "ada"`, []string{"ada"}},
		{`userName ne "ada"`, []string{"alan", "grace", "x' OR '1'='1"}},
		{`userName co "A"`, []string{"ada", "alan", "grace"}},
		{`userName sw "GR"`, []string{"grace"}},
		{`userName ew "an"`, []string{"alan"}},
		{`title pr`, []string{"ada", "grace"}},
		{`not (title pr)`, []string{"alan", "x' OR '1'='1"}},
		{`title eq null`, []string{"alan", "x' OR '1'='1"}},
		{`userName gt "alan"`, []string{"grace", "x' OR '1'='1"}},
		{`userName ge "alan"`, []string{"alan", "grace", "x' OR '1'='1"}},
		{`userName lt "alan"`, []string{"ada"}},
		{`userName le "alan"`, []string{"ada", "alan"}},
		{`title gt "a"`, []string{"ada", "grace"}},
		{`active eq false`, []string{"alan"}},
		{`active ne false`, []string{"ada", "grace", "x' OR '1'='1"}},
		{`name.givenName eq "grace"`, []string{"grace"}},
		{`name.familyName sw "lo"`, []string{"ada"}},
		{`displayName co "hop"`, []string{"grace"}},
		{`emails eq "GRACE@example.com"`, []string{"grace"}},
		{`emails.value ew "@EXAMPLE.com"`, all},
		{`emails[type eq "work"].value eq "ada@example.com"`, []string{"ada"}},
		{`emails[type eq "home"]`, nil},
		{`emails[primary eq true and value sw "al"]`, []string{"alan"}},
		{`groups.display eq "hr/learners"`, []string{"ada", "grace"}},
		{`groups[display eq "hr/Staff"]`, []string{"grace"}},
		{`groups pr`, []string{"ada", "grace"}},
		{`not (groups pr)`, []string{"alan", "x' OR '1'='1"}},
		{`entitlements eq "pro"`, []string{"ada", "grace"}},
		{`entitlements.value ne "pro"`, []string{"alan", "x' OR '1'='1"}},
		{ent + `department eq "engineering"`, []string{"ada"}},
		{ent + `manager.value eq "grace"`, []string{"ada"}},
		{ent + `employeeNumber pr`, []string{"ada"}},
		{`(userName eq "ada" or userName eq "grace") and title eq "Director"`, []string{"grace"}},
		{`userName eq "ada" or userName eq "grace" and title eq "Director"`, []string{"ada", "grace"}},
		{`not (userName eq "ada" or active eq false)`, []string{"grace", "x' OR '1'='1"}},
		{`meta.created lt "2100-01-01T00:00:00Z"`, all},
		{`meta.lastModified gt "2100-01-01T00:00:00Z"`, nil},
		{`meta.resourceType eq "User"`, all},
		{`id gt 0`, all},
		// SQL in a value stays a value; LIKE's wildcards match themselves.
		{`userName eq "x' OR '1'='1"`, []string{"x' OR '1'='1"}},
		{`userName eq "' OR 1=1 --"`, nil},
		{`userName eq "ada\"; DROP TABLE people; --"`, nil},
		{`userName co "%"`, nil},
		{`userName sw "_"`, nil},
		{`userName co "' OR '"`, []string{"x' OR '1'='1"}},
	} {
		a := f.list(tc.filter)
		if a.status != 200 {
			t.Errorf("%s: %d %s", tc.filter, a.status, a.raw)
			continue
		}
		if got := a.names(t); !slices.Equal(got, tc.want) || a.get("totalResults") != float64(len(tc.want)) {
			t.Errorf("%s: %v (total %v), want %v", tc.filter, got, a.get("totalResults"), tc.want)
		}
	}
	if n := f.get("/Users").get("totalResults"); n != 4.0 {
		t.Errorf("people still there after the injections: %v", n)
	}
}

func TestReadFilterErrors(t *testing.T) {
	f := newReadFixture(t)
	for _, filter := range []string{
		`nickName eq "x"`, `externalId eq "u1"`, `name.middleName pr`, `groups.type eq "direct"`,
		`emails[foo eq "x"]`, `title[value eq "x"]`, `meta.lastModified gt "yesterday"`, `meta.created sw "2024"`,
		`active gt true`, `active eq "yes"`, `userName eq`, `urn:x:y:userName eq "ada"`,
	} {
		a := f.list(filter).want(t, 400)
		if a.get("scimType") != "invalidFilter" {
			t.Errorf("%s: %s", filter, a.raw)
		}
	}
	f.get("/Groups?filter="+url.QueryEscape(`userName eq "x"`)).want(t, 400)
}

func TestReadPaging(t *testing.T) {
	f := newReadFixture(t)
	ids := func(a answer) []string {
		var out []string
		for _, r := range a.get("Resources").([]any) {
			out = append(out, r.(map[string]any)["id"].(string))
		}
		return out
	}
	all := ids(f.get("/Users"))
	if len(all) != 4 || !slices.IsSortedFunc(all, func(a, b string) int { return len(a) - len(b) + strings.Compare(a, b) }) {
		t.Fatalf("all ids = %v", all)
	}
	for _, tc := range []struct {
		q     string
		start int
		want  []string
	}{
		{"count=2", 1, all[:2]},
		{"startIndex=3&count=2", 3, all[2:]},
		{"startIndex=4&count=10", 4, all[3:]},
		{"startIndex=5", 5, nil},
		{"startIndex=0&count=1", 1, all[:1]},
		{"startIndex=-3&count=1", 1, all[:1]},
		{"count=0", 1, nil},
		{"count=-1", 1, nil},
		{"count=100000", 1, all},
	} {
		a := f.get("/Users?"+tc.q).want(t, 200)
		if got := ids(a); !slices.Equal(got, tc.want) || a.get("totalResults") != 4.0 ||
			a.get("startIndex") != float64(tc.start) || a.get("itemsPerPage") != float64(len(tc.want)) {
			t.Errorf("%s: %v %s", tc.q, got, a.raw)
		}
	}
	a := f.get("/Users?count=1&startIndex=2&filter="+url.QueryEscape(`groups pr`)).want(t, 200)
	if a.get("totalResults") != 2.0 || a.names(t)[0] != "grace" {
		t.Errorf("filtered page: %s", a.raw)
	}
	f.get("/Users?count=x").want(t, 400)
}

func TestReadAttributes(t *testing.T) {
	f := newReadFixture(t)
	u := f.get("/Users?attributes=userName,emails.value&filter="+url.QueryEscape(`userName eq "ada"`)).
		want(t, 200).get("Resources", "0").(map[string]any)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range u {
			yield(k)
		}
	})
	if !slices.Equal(keys, []string{"emails", "id", "meta", "schemas", "userName"}) {
		t.Errorf("attributes=userName,emails.value: %v", u)
	}
	if e := u["emails"].([]any)[0].(map[string]any); len(e) != 1 || e["value"] != "ada@example.com" {
		t.Errorf("emails.value: %v", e)
	}
	u = f.get("/Users?excludedAttributes=groups,entitlements,name.givenName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User&filter="+
		url.QueryEscape(`userName eq "ada"`)).want(t, 200).get("Resources", "0").(map[string]any)
	if _, ok := u["groups"]; ok || u["entitlements"] != nil || u[scim.SchemaEnterprise] != nil || u["userName"] != "ada" {
		t.Errorf("excludedAttributes: %v", u)
	}
	if n := u["name"].(map[string]any); n["givenName"] != nil || n["familyName"] != "Lovelace" {
		t.Errorf("excluded name.givenName: %v", n)
	}
}

func TestReadGroups(t *testing.T) {
	f := newReadFixture(t)
	a := f.get("/Groups?filter="+url.QueryEscape(`displayName eq "HR/Learners"`)).want(t, 200)
	g := answer{body: a.get("Resources", "0").(map[string]any)}
	if a.get("totalResults") != 1.0 || g.get("displayName") != "hr/Learners" || g.get("externalId") != "g1" ||
		g.get("meta", "resourceType") != "Group" {
		t.Fatalf("group: %s", a.raw)
	}
	var members []string
	for _, m := range g.get("members").([]any) {
		members = append(members, m.(map[string]any)["display"].(string))
	}
	if !slices.Equal(members, []string{"Ada Lovelace", "Grace Hopper"}) {
		t.Errorf("members = %v", members)
	}
	ada := f.list(`userName eq "ada"`).get("Resources", "0", "id").(string)
	for filter, want := range map[string][]string{
		`members eq "` + ada + `"`:                    {"hr/Learners"},
		`members.display eq "grace hopper"`:           {"hr/Learners", "hr/Staff"},
		`members[display sw "ada"]`:                   {"hr/Learners"},
		`not (members.value eq ` + ada + `)`:          {"hr/Staff"},
		`externalId eq "g2"`:                          {"hr/Staff"},
		`externalId eq "G2"`:                          nil, // caseExact
		`externalId sw "g"`:                           {"hr/Learners", "hr/Staff"},
		`displayName ew "staff"`:                      {"hr/Staff"},
		`meta.lastModified ge "2000-01-01T00:00:00Z"`: {"hr/Learners", "hr/Staff"},
	} {
		got := f.get("/Groups?filter="+url.QueryEscape(filter)).want(t, 200).names(t)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", filter, got, want)
		}
	}
	a = f.get("/Groups?excludedAttributes=members").want(t, 200)
	if a.get("Resources", "0", "members") != nil || a.get("Resources", "0", "displayName") == nil {
		t.Errorf("excludedAttributes=members: %s", a.raw)
	}
	id := g.id()
	if f.get("/Groups/"+id).want(t, 200).get("displayName") != "hr/Learners" {
		t.Error("GET group by id")
	}
}

// An application polls with meta.lastModified gt the newest it has seen:
// it gets the people whose profile, groups or seats changed.
func TestReadPollLastModified(t *testing.T) {
	f := newReadFixture(t)
	newest := func(a answer) string {
		var max string
		for _, r := range a.get("Resources").([]any) {
			lm := r.(map[string]any)["meta"].(map[string]any)["lastModified"].(string)
			if t1, t2 := parseRFC3339(t, lm), parseRFC3339(t, max); max == "" || t1.After(t2) {
				max = lm
			}
		}
		return max
	}
	since := newest(f.get("/Users").want(t, 200))
	if got := f.list(`meta.lastModified gt "` + since + `"`).names(t); got != nil {
		t.Fatalf("nothing changed yet, got %v", got)
	}
	time.Sleep(5 * time.Millisecond)
	org := hrOrg()
	org.Users[0].Title = "Principal Engineer"      // ada: profile
	org.Members["g1"] = []string{"u1", "u2", "u3"} // alan: joins Learners, gets a seat
	org.Members["g2"] = nil                        // grace: leaves Staff
	f.hr.result = org
	f.run()
	changed := f.list(`meta.lastModified gt "`+since+`"`).want(t, 200)
	if got := changed.names(t); !slices.Equal(got, []string{"ada", "alan", "grace"}) {
		t.Errorf("changed since %s: %v", since, got)
	}
	groups := f.get("/Groups?filter=" + url.QueryEscape(`meta.lastModified gt "`+since+`"`)).names(t)
	if !slices.Equal(groups, []string{"hr/Learners", "hr/Staff"}) {
		t.Errorf("groups changed: %v", groups)
	}
	again := newest(changed)
	if got := f.list(`meta.lastModified gt "` + again + `" or meta.lastModified lt "2000-01-01T00:00:00Z"`).names(t); got != nil {
		t.Errorf("after the second poll: %v", got)
	}
}

func parseRFC3339(t *testing.T, s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestReadTokensAndMethods(t *testing.T) {
	f := newReadFixture(t)
	// The push token does not open the read view, nor the read token a push source.
	f.doAt("/scim/v2", "GET", "/Users", "", "Authorization: Bearer "+token).want(t, 401)
	f.doAt("/scim/v2", "GET", "/Users", "").want(t, 401)
	f.doAt("/scim/entra/v2", "GET", "/Users", "", "Authorization: Bearer "+readToken).want(t, 401)
	f.doAt("/scim/entra/v2", "POST", "/Users", `{"userName":"x"}`, "Authorization: Bearer "+readToken).want(t, 401)
	f.doAt("/scim/entra/v2", "GET", "/Users", "", "Authorization: Bearer "+token).want(t, 200)
	f.doAt("/SCIM/V2/", "GET", "/users/", "", "Authorization: Bearer "+readToken).want(t, 200)
	for _, m := range [][2]string{{"POST", "/Users"}, {"PUT", "/Users/1"}, {"PATCH", "/Users/1"}, {"DELETE", "/Users/1"},
		{"POST", "/Groups"}, {"PATCH", "/Groups/1"}, {"DELETE", "/Groups/1"}, {"POST", "/Users/.search"}, {"POST", "/Schemas"}} {
		a := f.doAt("/scim/v2", m[0], m[1], `{}`, "Authorization: Bearer "+readToken).want(t, 405)
		if a.get("status") != "405" {
			t.Errorf("%s %s: %s", m[0], m[1], a.raw)
		}
	}
	if n := f.get("/Users").get("totalResults"); n != 4.0 {
		t.Errorf("writes changed the directory: %v", n)
	}
	f.get("/Nope").want(t, 404)
	f.get("/Users/1/x").want(t, 404)
	// Without a token the view is off.
	f.read.SetToken("")
	f.get("/Users").want(t, 404)
	f.read.SetToken(readToken)
	f.get("/Users").want(t, 200)
}

func TestReadDiscovery(t *testing.T) {
	f := newReadFixture(t)
	for _, p := range []string{"/ServiceProviderConfig", "/serviceConfiguration"} {
		a := f.get(p).want(t, 200)
		if a.get("patch", "supported") != false || a.get("filter", "supported") != true ||
			a.get("meta", "location") != f.srv.URL+"/scim/v2/ServiceProviderConfig" {
			t.Errorf("%s: %s", p, a.raw)
		}
	}
	if f.get("/ResourceTypes").want(t, 200).get("totalResults") != 2.0 {
		t.Error("ResourceTypes")
	}
	f.get("/ResourceTypes/User").want(t, 200)
	f.get("/Schemas/"+scim.SchemaEnterprise).want(t, 200)
}
