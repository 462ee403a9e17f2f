package reconcile

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/rules"
)

func userRule(t *testing.T, expr string, kind rules.Kind) *rules.Rule {
	t.Helper()
	r, iss := rules.CompileUser(expr, kind)
	if iss != nil {
		t.Fatalf("%s: %v", expr, iss)
	}
	return r
}

func personRule(t *testing.T, expr string) *rules.Rule {
	t.Helper()
	r, iss := rules.CompilePerson(expr)
	if iss != nil {
		t.Fatalf("%s: %v", expr, iss)
	}
	return r
}

// ruleMirror is a source "okta" with users given as id → attrs JSON; each
// user's email is <id>@x.test and department "dept".
func ruleMirror(users map[string]string, groups map[string][]string) *Mirror {
	m := NewMirror("okta")
	for id, attrs := range users {
		m.Users[id] = &connectors.User{ExternalID: id, UserName: id, Email: id + "@x.test", Department: "dept",
			Status: connectors.StatusActive, Attrs: attrs}
	}
	for name, members := range groups {
		m.Groups[name] = &connectors.Group{ExternalID: name, Name: name}
		m.Members[name] = slices.Sorted(slices.Values(members))
	}
	return m
}

func TestDesireUserRules(t *testing.T) {
	users := map[string]string{
		"ann": `{"profile":{"division":"Sales","countryCode":"FR","userType":"Employee"}}`,
		"bob": `{"profile":{"countryCode":"DE","userType":"Contractor"}}`,
		"cat": `{"profile":{"countryCode":"DE"}}`, // no userType: the scope rule fails
		"dan": `{"profile":{"userType":"Employee"}}`,
	}
	src := SourceRules{Name: "okta",
		When: userRule(t, `user.profile.userType != "Contractor"`, rules.Bool),
		Map: map[string]*rules.Rule{
			"department":  userRule(t, `has(user.profile.division) ? user.profile.division : "none"`, rules.String),
			"cost_center": userRule(t, `user.profile.countryCode + "-x"`, rules.String),
		}}
	linked := func(r IdentityRef) bool { return r.ExternalID == "cat" }
	d := Desire(Rules{Sources: []SourceRules{src}, MatchOn: "email"}, map[string]*Mirror{"okta": ruleMirror(users, nil)}, linked, nil, t0)
	got := map[string][2]string{}
	for k, p := range d.People {
		got[k] = [2]string{p.Department, p.CostCenter}
	}
	want := map[string][2]string{
		"ann@x.test": {"Sales", "FR-x"},
		// cat's scope rule fails: linked already, so kept in scope.
		"cat@x.test": {"none", "DE-x"},
		// dan has no countryCode: the mapping keeps the connector's value.
		"dan@x.test": {"none", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("people (-want +got):\n%s", diff)
	}
	var reasons []string
	for _, p := range d.Problems {
		reasons = append(reasons, p.Object+": "+p.Reason)
	}
	wantReasons := []string{
		"user cat: scope.when: no such key: userType: kept in scope",
		"user dan: map.cost_center: no such key: countryCode: connector's value kept",
	}
	if diff := cmp.Diff(wantReasons, reasons); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	// Not linked, a user whose scope rule fails is skipped, not created.
	d = Desire(Rules{Sources: []SourceRules{src}, MatchOn: "email"}, map[string]*Mirror{"okta": ruleMirror(users, nil)}, nil, nil, t0)
	if _, ok := d.People["cat@x.test"]; ok {
		t.Error("an unlinked user whose scope rule fails is in scope")
	}
}

func TestDesireLicenseRules(t *testing.T) {
	users := map[string]string{"ann": "", "bob": "", "cat": ""}
	m := ruleMirror(users, map[string][]string{"Engineering": {"ann", "bob"}})
	m.Users["ann"].CostCenter = "FR-1"
	m.Users["bob"].CostCenter = "DE-1"
	m.Users["cat"].CostCenter = "FR-2"
	r := Rules{MatchOn: "email", Sources: []SourceRules{{Name: "okta"}}, Licenses: []LicenseRule{
		{Name: "eng-eu", When: personRule(t, `"okta/Engineering" in person.groups && person.cost_center.startsWith("FR-")`)},
		{Name: "fr", When: personRule(t, `person.cost_center.startsWith("FR-")`)},
		{Name: "eng-fr", Groups: []string{"Engineering"}, When: personRule(t, `person.cost_center.startsWith("FR-")`)},
		{Name: "okta", When: personRule(t, `"okta" in person.sources`)},
	}}
	d := Desire(r, map[string]*Mirror{"okta": m}, nil, nil, t0)
	got := map[string][]string{}
	for _, p := range d.Pools {
		for k := range p.Eligible {
			got[p.Name] = append(got[p.Name], k)
		}
		slices.Sort(got[p.Name])
	}
	want := map[string][]string{
		"eng-eu": {"ann@x.test"},
		"fr":     {"ann@x.test", "cat@x.test"},
		"eng-fr": {"ann@x.test"},
		"okta":   {"ann@x.test", "bob@x.test", "cat@x.test"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("eligible (-want +got):\n%s", diff)
	}
	if d.Pools[1].Rule != `when: person.cost_center.startsWith("FR-")` || d.Pools[2].Rule != `groups: Engineering and when: person.cost_center.startsWith("FR-")` {
		t.Errorf("rules = %q, %q", d.Pools[1].Rule, d.Pools[2].Rule)
	}
}

// A license rule that fails on a person keeps the seat they hold and
// grants none; grants and revocations name the rule.
func TestLicenseRuleErrorsAndReasons(t *testing.T) {
	users := map[string]string{"ann": "", "bob": "", "cat": "", "dan": ""}
	m := ruleMirror(users, nil)
	m.Users["ann"].Title = "x"   // fails: holds the seat, keeps it
	m.Users["bob"].Title = "x"   // fails: no seat, gets none
	m.Users["cat"].Title = "yes" // qualifies: granted
	m.Users["dan"].Title = "0"   // holds a seat and no longer qualifies: revoked
	r := Rules{MatchOn: "email", Sources: []SourceRules{{Name: "okta"}}, Licenses: []LicenseRule{
		{Name: "pro", When: personRule(t, `person.title == "yes" || int(person.title) > 0`)},
	}}
	d := Desire(r, map[string]*Mirror{"okta": m}, nil, nil, t0)
	st := newStateBuilder().
		person(1, "ann@x.test", true, t0, ref("okta", "ann")).
		person(2, "bob@x.test", true, t0, ref("okta", "bob")).
		person(3, "cat@x.test", true, t0, ref("okta", "cat")).
		person(4, "dan@x.test", true, t0, ref("okta", "dan")).
		seat("pro", 0, t0, 1, 4).s
	p := Diff(d, st)
	var got []string
	for _, c := range p.Licenses {
		got = append(got, c.Op.String()+" "+c.Person.Key+" ("+c.Reason+")")
	}
	rule := `when: person.title == "yes" || int(person.title) > 0`
	want := []string{"revoke dan@x.test (no longer qualifies (" + rule + "))", "grant cat@x.test (" + rule + ")"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("licenses (-want +got):\n%s", diff)
	}
	n := 0
	for _, pr := range d.Problems {
		if strings.Contains(pr.Reason, "licenses pro when:") && strings.HasSuffix(pr.Reason, "seat kept as it is") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("problems = %v, want 2 about the failed rule", d.Problems)
	}
}

// The raw attributes are part of the mirror row's content: a change of one
// is a changed row (snapshots, incremental scope).
func TestUserHashSeesAttrs(t *testing.T) {
	a := connectors.User{ExternalID: "1", Email: "a@x.test", Status: connectors.StatusActive}
	b := a
	b.Attrs = `{"profile":{"division":"Sales"}}`
	c := b
	c.Attrs = `{"profile":{"division":"Eng"}}`
	if UserHash(&a) == UserHash(&b) || UserHash(&b) == UserHash(&c) {
		t.Error("UserHash does not change with the raw attributes")
	}
}

// A change of the rules (an expression's text) changes the rules' digest:
// the next run is a full reconcile.
func TestRulesHashSeesExpressions(t *testing.T) {
	base := Rules{MatchOn: "email", Sources: []SourceRules{{Name: "okta"}}, Licenses: []LicenseRule{{Name: "pro", AllActive: true}}}
	with := base
	with.Licenses = []LicenseRule{{Name: "pro", AllActive: true, When: personRule(t, `person.title == "a"`)}}
	other := base
	other.Licenses = []LicenseRule{{Name: "pro", AllActive: true, When: personRule(t, `person.title == "b"`)}}
	mapped := base
	mapped.Sources = []SourceRules{{Name: "okta", Map: map[string]*rules.Rule{"title": userRule(t, `user.t`, rules.String)}}}
	hashes := map[string]bool{}
	for _, r := range []Rules{base, with, other, mapped} {
		hashes[RulesHash(r)] = true
	}
	if len(hashes) != 4 {
		t.Errorf("%d distinct hashes of 4 rule sets", len(hashes))
	}
	// Rules without expressions hash as before they existed.
	if RulesHash(base) != RulesHash(Rules{MatchOn: "email", Sources: []SourceRules{{Name: "okta"}}, Licenses: []LicenseRule{{Name: "pro", AllActive: true}}}) {
		t.Error("unstable hash")
	}
}
