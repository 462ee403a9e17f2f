package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors/entra/entratest"
	"github.com/learnsync/learnsync/connectors/okta"
	"github.com/learnsync/learnsync/connectors/okta/oktatest"
	"github.com/learnsync/learnsync/connectors/onelogin/onelogintest"
)

// threeIdPConfig is a configuration with an okta, an entra and a onelogin
// source, in that order: okta's token and onelogin's secret come from
// $OKTA_API_TOKEN and $ONELOGIN_CLIENT_SECRET, entraBlock is the entra
// source's config block, and rest follows the sources.
func threeIdPConfig(t *testing.T, o *oktatest.Server, entraBlock string, ol *onelogintest.Server, rest string) string {
	return fmt.Sprintf(`
directory: {dsn: learnsync.db}
sources:
  - name: okta
    type: okta
    config: {org_url: %q, api_token: "${OKTA_API_TOKEN}", ca_file: %q}
  - name: entra
    type: entra
    config:
%s
  - name: onelogin
    type: onelogin
    config: {api_url: %q, client_id: %q, client_secret: "${ONELOGIN_CLIENT_SECRET}", ca_file: %q}
`, o.URL(), o.CACertFile(t), entraBlock, ol.URL, ol.ClientID, ol.CAFile) + rest
}

func identitiesOf(d exportDoc, email string) []string {
	i := d.user(email)
	if i < 0 {
		return nil
	}
	var out []string
	for _, id := range d.Users[i].Identities {
		out = append(out, id.Source)
	}
	return out
}

// TestEndToEndOktaAndEntra: people in both sources, with emails differing in
// case, are one person each with two identities; an Entra delta round follows.
func TestEndToEndOktaAndEntra(t *testing.T) {
	o := oktatest.New(t)
	annOkta := o.AddPerson("ann.lee@corp.example", "Ann", "Lee", oktatest.StatusActive)
	bo := o.AddPerson("bo@corp.example", "Bo", "Okta", oktatest.StatusActive)
	og := o.AddGroup(oktatest.Group{Name: "Staff"})
	o.AddMember(og.ID, annOkta, bo)

	e := entratest.New(t)
	ann := e.AddUser(entratest.User{UserPrincipalName: "ann@corp.example", Mail: "Ann.Lee@CORP.example", GivenName: "Ann",
		Surname: "Lee", JobTitle: "Analyst", Department: "Finance"})
	e.AddUser(entratest.User{UserPrincipalName: "BO@corp.example", GivenName: "Bo", Surname: "Entra"})
	cy := e.AddUser(entratest.User{UserPrincipalName: "cy@corp.example", Mail: "cy@corp.example", GivenName: "Cy", Surname: "Entra"})
	eg := e.AddGroup(entratest.Group{DisplayName: "Engineering"})
	e.AddMember(eg, ann, cy)

	c := newCLI(t)
	c.env["OKTA_API_TOKEN"] = o.Token
	c.env["ENTRA_CLIENT_SECRET"] = e.ClientSecret
	g := &secretGuard{c: c, secrets: []string{o.Token, e.ClientSecret}}
	entraBlock := strings.Replace(e.ConfigYAML("      "), "client_secret: "+e.ClientSecret, "client_secret: ${ENTRA_CLIENT_SECRET}", 1)
	if !strings.Contains(entraBlock, "${ENTRA_CLIENT_SECRET}") {
		t.Fatalf("could not template the secret in:\n%s", entraBlock)
	}
	c.write("learnsync.yaml", fmt.Sprintf(`
directory: {dsn: learnsync.db}
sources:
  - name: okta
    type: okta
    config:
      org_url: %s
      api_token: ${OKTA_API_TOKEN}
      ca_file: %s
  - name: entra
    type: entra
    config:
%s
licenses:
  - {name: learning-pro, seats: 5, groups: ["entra/Engineering"]}
safety: {max_deactivation_percent: 0}
`, o.URL(), o.CACertFile(t), entraBlock))
	g.mustRun(0, "validate")
	g.runOnce(0)
	ex := g.export()
	if len(ex.Users) != 3 {
		t.Fatalf("users = %d, want ann, bo, cy once each: %+v", len(ex.Users), ex.Users)
	}
	for email, want := range map[string][]string{
		"ann.lee@corp.example": {"entra", "okta"},
		"bo@corp.example":      {"entra", "okta"},
		"cy@corp.example":      {"entra"},
	} {
		if got := identitiesOf(ex, email); !slices.Equal(got, want) {
			t.Errorf("%s identities = %v, want %v", email, got, want)
		}
	}
	a := ex.Users[ex.user("ann.lee@corp.example")]
	if a.Email != "ann.lee@corp.example" || a.Title != "Analyst" || !slices.Contains(a.Licenses, "learning-pro") {
		t.Errorf("ann = %+v: want Okta's email (earlier source), Entra's title, a seat via entra/Engineering", a)
	}

	// An Entra delta: cy disabled, ann leaves Engineering; Okta unchanged.
	e.DisableUser(cy)
	e.RemoveMember(eg, ann)
	o.Advance(okta.CursorOverlap + time.Second)
	g.runOnce(0)
	if mode, _ := g.sourceMode("entra"); mode != "incremental" {
		t.Errorf("entra fetch mode = %q, want incremental", mode)
	}
	ex = g.export()
	if u := ex.Users[ex.user("cy@corp.example")]; u.Active {
		t.Error("cy disabled in Entra is still active")
	}
	if u := ex.Users[ex.user("ann.lee@corp.example")]; !u.Active || slices.Contains(u.Licenses, "learning-pro") {
		t.Errorf("ann = %+v: want active (Okta) without the Engineering seat", u)
	}
	g.checkFiles()
}

// TestEndToEndThreeIdPs: the same person in Okta, Entra ID and OneLogin,
// emails differing in case, is one person with three identities, licensed by
// a rule on a OneLogin role.
func TestEndToEndThreeIdPs(t *testing.T) {
	o := oktatest.New(t)
	o.AddPerson("Dana.Scully@fbi.example", "Dana", "Scully", oktatest.StatusActive)

	e := entratest.New(t)
	e.AddUser(entratest.User{UserPrincipalName: "dscully@fbi.example", Mail: "DANA.SCULLY@fbi.example", GivenName: "Dana",
		Surname: "Scully", JobTitle: "Special Agent"})

	ol := onelogintest.New(t)
	dana := ol.AddUser(onelogintest.User{Username: "dscully", Email: "dana.scully@FBI.example", Firstname: "Dana",
		Lastname: "Scully", Department: "X-Files", Status: 1, State: 1})
	fox := ol.AddUser(onelogintest.User{Username: "fmulder", Email: "fox.mulder@fbi.example", Firstname: "Fox",
		Lastname: "Mulder", Status: 1, State: 1})
	ol.AddRole(onelogintest.Role{Name: "Agents", Users: []int64{dana.ID}})

	c := newCLI(t)
	c.env["OKTA_API_TOKEN"] = o.Token
	c.env["ONELOGIN_CLIENT_SECRET"] = ol.ClientSecret
	g := &secretGuard{c: c, secrets: []string{o.Token, ol.ClientSecret, e.ClientSecret}}
	c.write("learnsync.yaml", threeIdPConfig(t, o, e.ConfigYAML("      "), ol, `licenses:
  - {name: agents-only, seats: 10, groups: ["onelogin/Agents"]}
`))
	g.runOnce(0)
	ex := g.export()
	if len(ex.Users) != 2 {
		t.Fatalf("users = %+v, want dana and fox", ex.Users)
	}
	d := ex.Users[ex.user("dana.scully@fbi.example")]
	if got := identitiesOf(ex, "dana.scully@fbi.example"); !slices.Equal(got, []string{"entra", "okta", "onelogin"}) {
		t.Errorf("dana identities = %v, want all three", got)
	}
	if d.Title != "Special Agent" || d.Department != "X-Files" || !slices.Equal(d.Licenses, []string{"agents-only"}) {
		t.Errorf("dana = %+v: want Entra's title, OneLogin's department and the agents-only seat", d)
	}
	if f := ex.Users[ex.user("fox.mulder@fbi.example")]; len(f.Licenses) != 0 {
		t.Errorf("fox got %v without the role", f.Licenses)
	}
	if _, a, _ := ex.license("agents-only"); a != 1 {
		t.Errorf("agents-only assigned = %d, want 1", a)
	}
	_ = fox
}
