package directory

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/learnsync/learnsync/reconcile"
)

// keysOf returns the keys of a JSON object, sorted.
func keysOf(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %s", raw)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// The export's JSON is a contract: these names, lists never null.
var (
	exportKeys = sorted("users", "groups", "licenses")
	userKeys   = sorted("id", "user_name", "email", "given_name", "family_name", "display_name", "title", "department",
		"employee_number", "manager", "active", "groups", "licenses", "identities")
	identityKeys = sorted("source", "external_id")
	groupKeys    = sorted("id", "source", "external_id", "name", "members")
	licenseKeys  = sorted("name", "seats", "assigned", "waiting")
)

func marshalExport(t *testing.T, s *Store) []byte {
	t.Helper()
	b, err := json.Marshal(export(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExportEmptyDirectory(t *testing.T) { eachBackend(t, testExportEmptyDirectory) }

func testExportEmptyDirectory(t *testing.T) {
	s := openTest(t)
	if got, want := string(marshalExport(t, s)), `{"users":[],"groups":[],"licenses":[]}`; got != want {
		t.Errorf("export of an empty directory = %s, want %s", got, want)
	}
}

func TestExportJSONContract(t *testing.T) { eachBackend(t, testExportJSONContract) }

func testExportJSONContract(t *testing.T) {
	s := openTest(t)
	commit(t, s, &reconcile.Commit{Plan: plan1(), Mirrors: mirrors1(), Now: t0})
	// Bob is deactivated and loses his seats and groups; his identity is
	// unlinked: his lists become empty, and empty lists are [] in JSON.
	commit(t, s, &reconcile.Commit{Plan: &reconcile.Plan{
		People: []reconcile.PersonChange{{Op: reconcile.OpDeactivate, Person: known(2, "bob@example.com"), Profile: bobProfile,
			Edit: &reconcile.PersonEdit{Unlink: []reconcile.IdentityRef{ident("hr", "u2")}}}},
		Groups:  []reconcile.GroupChange{{Op: reconcile.OpCreate, Group: gref("hr", "g3"), Name: "Empty"}},
		Members: []reconcile.MemberChange{{Group: &reconcile.MemberGroup{Ref: gref("hr", "g1"), Name: "Engineering", Op: reconcile.OpRemove}, Person: new(known(2, "bob@example.com"))}},
		Licenses: []reconcile.LicenseChange{
			{Op: reconcile.OpRevoke, Pool: "learning-basic", Person: new(known(2, "bob@example.com")), Reason: "deactivated"},
			{Op: reconcile.OpRevoke, Pool: "learning-pro", Person: new(known(2, "bob@example.com")), Reason: "deactivated"},
		},
	}, Now: t1})

	b := marshalExport(t, s)
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(exportKeys, keysOf(t, b)); diff != "" {
		t.Errorf("export keys (-want +got):\n%s", diff)
	}
	var users, groups, licenses []json.RawMessage
	for name, dst := range map[string]*[]json.RawMessage{"users": &users, "groups": &groups, "licenses": &licenses} {
		if err := json.Unmarshal(top[name], dst); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if len(users) != 3 || len(groups) != 4 || len(licenses) != 3 {
		t.Fatalf("export has %d users, %d groups, %d licenses; want 3, 4, 3", len(users), len(groups), len(licenses))
	}
	for i, u := range users {
		if diff := cmp.Diff(userKeys, keysOf(t, u)); diff != "" {
			t.Errorf("users[%d] keys (-want +got):\n%s", i, diff)
		}
		var fields map[string]json.RawMessage
		json.Unmarshal(u, &fields)
		for _, list := range []string{"groups", "licenses", "identities"} {
			if string(fields[list]) == "null" {
				t.Errorf("users[%d].%s is null, want []", i, list)
			}
		}
		var ids []json.RawMessage
		json.Unmarshal(fields["identities"], &ids)
		for j, id := range ids {
			if diff := cmp.Diff(identityKeys, keysOf(t, id)); diff != "" {
				t.Errorf("users[%d].identities[%d] keys (-want +got):\n%s", i, j, diff)
			}
		}
		if string(fields["id"])[0] != '"' || string(fields["active"]) != "true" && string(fields["active"]) != "false" {
			t.Errorf("users[%d]: id %s must be a string, active %s a boolean", i, fields["id"], fields["active"])
		}
	}
	for i, g := range groups {
		if diff := cmp.Diff(groupKeys, keysOf(t, g)); diff != "" {
			t.Errorf("groups[%d] keys (-want +got):\n%s", i, diff)
		}
		var fields map[string]json.RawMessage
		json.Unmarshal(g, &fields)
		if string(fields["members"]) == "null" {
			t.Errorf("groups[%d].members is null, want []", i)
		}
	}
	for i, l := range licenses {
		if diff := cmp.Diff(licenseKeys, keysOf(t, l)); diff != "" {
			t.Errorf("licenses[%d] keys (-want +got):\n%s", i, diff)
		}
	}

	// The whole document, exactly: sorted users (by email), groups (by
	// source, then name), licenses (by name), and lists inside.
	want := `{"users":[` +
		`{"id":"1","user_name":"alice","email":"alice@example.com","given_name":"Alice","family_name":"Archer","display_name":"Alice Archer","title":"Engineer","department":"R\u0026D","employee_number":"1001","manager":"carol@example.com","active":true,"groups":["hr/Engineering","okta/Everyone"],"licenses":["learning-basic","learning-pro"],"identities":[{"source":"hr","external_id":"u1"},{"source":"okta","external_id":"00u1"}]},` +
		`{"id":"2","user_name":"bob","email":"bob@example.com","given_name":"Bob","family_name":"Baker","display_name":"Bob Baker","title":"Engineer","department":"R\u0026D","employee_number":"1002","manager":"alice@example.com","active":false,"groups":[],"licenses":[],"identities":[]},` +
		`{"id":"3","user_name":"carol","email":"carol@example.com","given_name":"Carol","family_name":"Cole","display_name":"Carol Cole","title":"Head of Sales","department":"Sales","employee_number":"1003","manager":"","active":true,"groups":["hr/Sales"],"licenses":["learning-basic"],"identities":[{"source":"hr","external_id":"u3"}]}` +
		`],"groups":[` +
		`{"id":"4","source":"hr","external_id":"g3","name":"Empty","members":[]},` +
		`{"id":"1","source":"hr","external_id":"g1","name":"Engineering","members":["alice@example.com"]},` +
		`{"id":"2","source":"hr","external_id":"g2","name":"Sales","members":["carol@example.com"]},` +
		`{"id":"3","source":"okta","external_id":"g9","name":"Everyone","members":["alice@example.com"]}` +
		`],"licenses":[` +
		`{"name":"learning-basic","seats":0,"assigned":2,"waiting":0},` +
		`{"name":"learning-pro","seats":2,"assigned":1,"waiting":1},` +
		`{"name":"legacy","seats":5,"assigned":0,"waiting":0}` +
		`]}`
	if string(b) != want {
		t.Errorf("export JSON\n got: %s\nwant: %s", b, want)
	}
}

// Sorting does not depend on the order things were created in, and users
// with the same email are ordered by numeric id.
func TestExportSorting(t *testing.T) { eachBackend(t, testExportSorting) }

func testExportSorting(t *testing.T) {
	s := openTest(t)
	var people []reconcile.PersonChange
	// Keys are unique; emails need not be (match_on: user_name).
	for _, p := range []struct{ key, email, user string }{
		{"zed", "zed@example.com", "zed"},
		{"amy", "amy@example.com", "amy"},
		{"amy2", "amy@example.com", "amy2"},
		{"mo", "", "mo"},
	} {
		people = append(people, reconcile.PersonChange{Op: reconcile.OpCreate, Person: newKey(p.key),
			Profile: reconcile.Profile{Email: p.email, UserName: p.user}})
	}
	// Ten more so that id 10 sorts after id 9 (numerically, not as text).
	for i := range 8 {
		people = append(people, reconcile.PersonChange{Op: reconcile.OpCreate, Person: newKey(string(rune('a'+i)) + "-filler"),
			Profile: reconcile.Profile{Email: "filler@example.com"}})
	}
	plan := &reconcile.Plan{
		People: people,
		Groups: []reconcile.GroupChange{
			{Op: reconcile.OpCreate, Group: gref("okta", "g1"), Name: "Alpha"},
			{Op: reconcile.OpCreate, Group: gref("hr", "g2"), Name: "Zulu"},
			{Op: reconcile.OpCreate, Group: gref("hr", "g1"), Name: "Alpha"},
			{Op: reconcile.OpCreate, Group: gref("hr", "g0"), Name: "Alpha"},
		},
		Members: []reconcile.MemberChange{
			{Group: &reconcile.MemberGroup{Ref: gref("hr", "g1"), Op: reconcile.OpAdd}, Person: new(newKey("zed"))},
			{Group: &reconcile.MemberGroup{Ref: gref("hr", "g1"), Op: reconcile.OpAdd}, Person: new(newKey("amy"))},
			{Group: &reconcile.MemberGroup{Ref: gref("hr", "g2"), Op: reconcile.OpAdd}, Person: new(newKey("amy"))},
			{Group: &reconcile.MemberGroup{Ref: gref("okta", "g1"), Op: reconcile.OpAdd}, Person: new(newKey("amy"))},
		},
		Licenses: []reconcile.LicenseChange{
			{Op: reconcile.OpGrant, Pool: "zeta", Person: new(newKey("amy"))},
			{Op: reconcile.OpGrant, Pool: "alpha", Person: new(newKey("amy"))},
		},
		Pools: []reconcile.PoolChange{{Op: reconcile.OpCreate, Pool: "zeta"}, {Op: reconcile.OpCreate, Pool: "alpha"}},
	}
	commit(t, s, &reconcile.Commit{Plan: plan, Now: t0})
	// A second identity for amy, of a source sorting before the first.
	commit(t, s, &reconcile.Commit{Plan: &reconcile.Plan{People: []reconcile.PersonChange{
		{Op: reconcile.OpUpdate, Person: known(2, "amy"), Profile: reconcile.Profile{Email: "amy@example.com", UserName: "amy"},
			Link: []reconcile.IdentityRef{ident("okta", "b"), ident("hr", "z"), ident("hr", "a")}},
	}}, Now: t0.Add(time.Minute)})

	ex := export(t, s)
	var order []string
	for _, u := range ex.Users {
		order = append(order, u.Email+"#"+u.ID)
	}
	wantOrder := []string{"#4", "amy@example.com#2", "amy@example.com#3",
		"filler@example.com#5", "filler@example.com#6", "filler@example.com#7", "filler@example.com#8",
		"filler@example.com#9", "filler@example.com#10", "filler@example.com#11", "filler@example.com#12",
		"zed@example.com#1"}
	if diff := cmp.Diff(wantOrder, order); diff != "" {
		t.Errorf("user order (-want +got):\n%s", diff)
	}
	amy := ex.Users[1]
	if diff := cmp.Diff([]string{"hr/Alpha", "hr/Zulu", "okta/Alpha"}, amy.Groups); diff != "" {
		t.Errorf("amy's groups (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"alpha", "zeta"}, amy.Licenses); diff != "" {
		t.Errorf("amy's licenses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]reconcile.IdentityRef{ident("hr", "a"), ident("hr", "z"), ident("okta", "b")}, amy.Identities); diff != "" {
		t.Errorf("amy's identities (-want +got):\n%s", diff)
	}
	var groups []string
	for _, g := range ex.Groups {
		groups = append(groups, g.Source+"/"+g.Name+"/"+g.ExternalID)
	}
	if diff := cmp.Diff([]string{"hr/Alpha/g0", "hr/Alpha/g1", "hr/Zulu/g2", "okta/Alpha/g1"}, groups); diff != "" {
		t.Errorf("group order (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"amy@example.com", "zed@example.com"}, ex.Groups[1].Members); diff != "" {
		t.Errorf("members of hr/Alpha/g1 (-want +got):\n%s", diff)
	}
	if ex.Licenses[0].Name != "alpha" || ex.Licenses[1].Name != "zeta" {
		t.Errorf("license order: %+v", ex.Licenses)
	}

	// The same directory exports byte for byte the same every time.
	first := marshalExport(t, s)
	for range 5 {
		if again := marshalExport(t, s); string(again) != string(first) {
			t.Fatalf("export is not stable:\n%s\n%s", first, again)
		}
	}
}
