package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/learnsync/learnsync/connectors/entra/entratest"
	"github.com/learnsync/learnsync/connectors/okta/oktatest"
	"github.com/learnsync/learnsync/connectors/onelogin/onelogintest"
)

// rulesConfig maps and scopes each of the three IdPs by their own
// attributes (Okta custom profile attributes, Entra extension attributes
// and employeeOrgData, OneLogin custom_attributes) and licenses by
// department and country.
func rulesConfig(t *testing.T, o *oktatest.Server, e *entratest.Server, ol *onelogintest.Server) string {
	return "directory: {dsn: learnsync.db}\nsources:\n" + oktaSource(t, o) + `    map:
      department: 'user.profile.?division.orValue(user.profile.?department.orValue(""))'
      cost_center: 'user.profile.countryCode + "-" + user.profile.division'
    scope: {when: 'user.profile.?userType.orValue("Employee") != "Contractor"'}
  - name: entra
    type: entra
    config:
` + e.ConfigYAML("      ") + `      extra_attributes: [onPremisesExtensionAttributes, employeeOrgData]
    map:
      department: 'user.employeeOrgData.division'
      cost_center: 'user.employeeOrgData.costCenter'
    scope: {when: 'user.onPremisesExtensionAttributes.?extensionAttribute1.orValue("") != "Contractor"'}
` + oneloginSource(ol) + `    map:
      cost_center: 'user.custom_attributes.country + "-1"'
    scope:
      when: 'user.custom_attributes.?worker.orValue("") != "contractor"'
licenses:
  - name: sales
    when: 'person.department == "Sales"'
  - name: eng-fr
    seats: 100
    when: '"okta/Engineering" in person.groups && person.cost_center.startsWith("FR-")'
  - name: eng-eu
    seats: 1
    when: 'person.department == "Engineering" && (person.cost_center.startsWith("FR-") || person.cost_center.startsWith("DE-"))'
`
}

func TestEndToEndRules(t *testing.T) {
	o := oktatest.New(t)
	add := func(login, division, country, userType string) string {
		p := map[string]any{"login": login, "email": login, "firstName": strings.Split(login, "@")[0], "lastName": "Okta",
			"division": division, "countryCode": country}
		if userType != "" {
			p["userType"] = userType
		}
		return o.AddUser(oktatest.User{Status: oktatest.StatusActive, Profile: p}).ID
	}
	add("ann@x.test", "Sales", "FR", "Employee")
	bob := add("bob@x.test", "Engineering", "FR", "")
	add("carl@x.test", "Engineering", "FR", "Contractor")
	add("deb@x.test", "Engineering", "DE", "Employee")
	eng := o.AddGroup(oktatest.Group{Name: "Engineering"})
	o.AddMember(eng.ID, bob)

	e := entratest.New(t)
	e.AddUser(entratest.User{UserPrincipalName: "eve@x.test", Mail: "eve@x.test", GivenName: "Eve", Extra: map[string]any{
		"onPremisesExtensionAttributes": map[string]any{"extensionAttribute1": "Contractor"},
		"employeeOrgData":               map[string]any{"division": "Engineering", "costCenter": "FR-9"}}})
	e.AddUser(entratest.User{UserPrincipalName: "fay@x.test", Mail: "fay@x.test", GivenName: "Fay", Extra: map[string]any{
		"employeeOrgData": map[string]any{"division": "Engineering", "costCenter": "DE-3"}}})
	// No employeeOrgData: the map rules fail on her, her record says why.
	e.AddUser(entratest.User{UserPrincipalName: "gia@x.test", Mail: "gia@x.test", GivenName: "Gia", Department: "Legal"})

	ol := onelogintest.New(t)
	ol.AddUser(onelogintest.User{Username: "gus", Email: "gus@x.test", Firstname: "Gus", Department: "Sales", Status: 1, State: 1,
		CustomAttributes: map[string]any{"country": "IT"}})
	ol.AddUser(onelogintest.User{Username: "hal", Email: "hal@x.test", Firstname: "Hal", Status: 1, State: 1,
		CustomAttributes: map[string]any{"country": "IT", "worker": "contractor"}})

	c := newCLI(t)
	c.env["OKTA_API_TOKEN"] = o.Token
	c.env["ONELOGIN_CLIENT_SECRET"] = ol.ClientSecret
	c.write("learnsync.yaml", rulesConfig(t, o, e, ol))
	c.mustRun(0, "validate")

	plan, _ := c.mustRun(0, "plan")
	for _, want := range []string{
		`+ license sales → ann@x.test: granted (when: person.department == "Sales")`,
		`+ license eng-fr → bob@x.test: granted (when: "okta/Engineering" in person.groups && person.cost_center.startsWith("FR-"))`,
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	c.runOnce(0)
	ex := c.export()
	var emails []string
	for _, u := range ex.Users {
		emails = append(emails, u.Email)
	}
	slices.Sort(emails)
	// Contractors (carl in Okta, eve in Entra, hal in OneLogin) are out of scope.
	wantList(t, "people", emails, "ann@x.test", "bob@x.test", "deb@x.test", "fay@x.test", "gia@x.test", "gus@x.test")
	want := map[string]struct{ dept, cc, licenses string }{
		"ann@x.test": {"Sales", "FR-Sales", "sales"},
		"bob@x.test": {"Engineering", "FR-Engineering", "eng-eu,eng-fr"},
		"deb@x.test": {"Engineering", "DE-Engineering", ""},
		"fay@x.test": {"Engineering", "DE-3", ""},
		"gia@x.test": {"Legal", "", ""},
		"gus@x.test": {"Sales", "IT-1", "sales"},
	}
	for email, w := range want {
		u := ex.Users[ex.user(email)]
		if got := strings.Join(u.Licenses, ","); u.Department != w.dept || got != w.licenses {
			t.Errorf("%s: department %q, licenses %q; want %q, %q", email, u.Department, got, w.dept, w.licenses)
		}
		// The export has no cost center: explain shows it, and its source.
		out, _ := c.mustRun(0, "explain", email)
		if !strings.Contains(out, fmt.Sprintf("cost_center      %q", w.cc)) {
			t.Errorf("explain %s: want cost_center %q:\n%s", email, w.cc, out)
		}
	}
	status, _ := c.mustRun(0, "status")
	if !strings.Contains(status, "map.department: no such key: employeeOrgData") {
		t.Errorf("status does not report the failed mapping:\n%s", status)
	}

	// explain: identities, attribute sources, pools with rules and places.
	out, _ := c.mustRun(0, "explain", "DEB@x.test")
	for _, w := range []string{"okta/", "in scope", `department       "Engineering"`, "okta (map: user.profile.?division",
		"eng-eu", "waiting: place 1 of 2", "eligible (when: person.department"} {
		if !strings.Contains(out, w) {
			t.Errorf("explain deb lacks %q:\n%s", w, out)
		}
	}
	out, _ = c.mustRun(0, "explain", "eve@x.test")
	if !strings.Contains(out, "out of scope (scope.when:") || !strings.Contains(out, "not in the directory") {
		t.Errorf("explain eve:\n%s", out)
	}
	c.mustRun(1, "explain", "nobody@x.test")
	c.mustRun(2, "explain")

	// Bob becomes a contractor: out of scope, deactivated, his eng-eu seat
	// goes to the first waiting (deb, seen before fay).
	o.SetProfile(bob, "userType", "Contractor")
	c.runOnce(0)
	ex = c.export()
	if b := ex.Users[ex.user("bob@x.test")]; b.Active || len(b.Licenses) != 0 {
		t.Errorf("bob = %+v, want deactivated without seats", b)
	}
	if d := ex.Users[ex.user("deb@x.test")]; !slices.Equal(d.Licenses, []string{"eng-eu"}) {
		t.Errorf("deb licenses = %v, want eng-eu", d.Licenses)
	}

	// A typo in a rule is refused before anything runs, with its place.
	c.write("learnsync.yaml", strings.Replace(rulesConfig(t, o, e, ol), `person.department == "Sales"`, `person.departmnt == "Sales"`, 1))
	vOut, vErr := c.mustRun(2, "validate")
	if !strings.Contains(vOut+vErr, "licenses[0].when: 1:7: undefined field 'departmnt'") {
		t.Errorf("validate:\n%s%s", vOut, vErr)
	}
}
