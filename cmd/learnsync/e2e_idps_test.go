package main

import (
	"github.com/learnsync/learnsync/directory/dirtest"

	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors/entra/entratest"
	"github.com/learnsync/learnsync/connectors/okta"
	"github.com/learnsync/learnsync/connectors/okta/oktatest"
	"github.com/learnsync/learnsync/connectors/onelogin"
	"github.com/learnsync/learnsync/connectors/onelogin/onelogintest"
)

// threeIdPConfig is a configuration with an okta, an entra and a onelogin
// source, in that order: okta's token and onelogin's secret come from
// $OKTA_API_TOKEN and $ONELOGIN_CLIENT_SECRET, entraBlock is the entra
// source's config block, and rest follows the sources.
func threeIdPConfig(t *testing.T, o *oktatest.Server, entraBlock string, ol *onelogintest.Server, rest string) string {
	return "directory: {dsn: learnsync.db}\nsources:\n" + oktaSource(t, o) +
		"  - name: entra\n    type: entra\n    config:\n" + entraBlock + "\n" + oneloginSource(ol) + rest
}

// oktaSource is the config entry of a source "okta" on o, its token from
// $OKTA_API_TOKEN.
func oktaSource(t *testing.T, o *oktatest.Server) string {
	return fmt.Sprintf(`  - name: okta
    type: okta
    config: {org_url: %q, api_token: "${OKTA_API_TOKEN}", ca_file: %q}
`, o.URL(), o.CACertFile(t))
}

// oneloginSource is the config entry of a source "onelogin" on ol, its
// secret from $ONELOGIN_CLIENT_SECRET.
func oneloginSource(ol *onelogintest.Server) string {
	return fmt.Sprintf(`  - name: onelogin
    type: onelogin
    config: {api_url: %q, client_id: %q, client_secret: "${ONELOGIN_CLIENT_SECRET}", ca_file: %q}
`, ol.URL, ol.ClientID, ol.CAFile)
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

// oktaStaff is a fake Okta with two active people, each given as login
// (also the email), first and last name, both in the group Staff.
func oktaStaff(t *testing.T, first, second [3]string) (o *oktatest.Server, firstID, secondID string) {
	o = oktatest.New(t)
	firstID = o.AddPerson(first[0], first[1], first[2], oktatest.StatusActive)
	secondID = o.AddPerson(second[0], second[1], second[2], oktatest.StatusActive)
	staff := o.AddGroup(oktatest.Group{Name: "Staff"})
	o.AddMember(staff.ID, firstID, secondID)
	return o, firstID, secondID
}

// TestEndToEndOktaAndEntra: people in both sources, with emails differing in
// case, are one person each with two identities; an Entra delta round follows.
func TestEndToEndOktaAndEntra(t *testing.T) { dirtest.Each(t, testEndToEndOktaAndEntra) }

func testEndToEndOktaAndEntra(t *testing.T) {
	o, _, _ := oktaStaff(t, [3]string{"ann.lee@corp.example", "Ann", "Lee"}, [3]string{"bo@corp.example", "Bo", "Okta"})

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
	c.write("learnsync.yaml", "directory: {dsn: learnsync.db}\nsources:\n"+oktaSource(t, o)+
		"  - name: entra\n    type: entra\n    config:\n"+entraBlock+`
licenses:
  - {name: learning-pro, seats: 5, groups: ["entra/Engineering"]}
safety: {max_deactivation_percent: 0}
`)
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
func TestEndToEndThreeIdPs(t *testing.T) { dirtest.Each(t, testEndToEndThreeIdPs) }

func testEndToEndThreeIdPs(t *testing.T) {
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

func oktaOneLoginConfig(t *testing.T, o *oktatest.Server, ol *onelogintest.Server) string {
	return "directory: {dsn: learnsync.db}\nsources:\n" + oktaSource(t, o) + oneloginSource(ol) + `licenses:
  - name: learning-pro
    seats: 2
    groups: ["onelogin/Learners"]
  - name: learning-basic
    all_active: true
`
}

// TestEndToEndOktaAndOneLogin runs learnsync on an Okta and a OneLogin
// source at once: the same person in both (emails differing in case) is one
// person with two identities, licensed by a rule on a OneLogin role. Then
// changes in OneLogin that updated_since does not see (role membership), a
// suspension in one source only, and a refused OneLogin secret.
func TestEndToEndOktaAndOneLogin(t *testing.T) { dirtest.Each(t, testEndToEndOktaAndOneLogin) }

func testEndToEndOktaAndOneLogin(t *testing.T) {
	o, graceOkta, henry := oktaStaff(t, [3]string{"grace.hopper@example.com", "Grace", "Hopper"}, [3]string{"henry@example.com", "Henry", "Okta"})

	ol := onelogintest.New(t)
	contractors := ol.AddGroup(onelogintest.Group{Name: "Contractors"})
	grace := ol.AddUser(onelogintest.User{Username: "ghopper", Email: "Grace.Hopper@Example.COM", Firstname: "Grace",
		Lastname: "Hopper", Title: "Rear Admiral", Department: "Navy", Status: 1, State: 1})
	ivan := ol.AddUser(onelogintest.User{Username: "ivan", Email: "ivan@example.com", Firstname: "Ivan", Lastname: "One",
		Status: 1, State: 1})
	judy := ol.AddUser(onelogintest.User{Username: "judy", Email: "judy@example.com", Firstname: "Judy", Lastname: "One",
		Status: 1, State: 1, GroupID: contractors.ID})
	learners := ol.AddRole(onelogintest.Role{Name: "Learners", Users: []int64{grace.ID, ivan.ID, judy.ID}})

	c := newCLI(t)
	c.env["OKTA_API_TOKEN"] = o.Token
	c.env["ONELOGIN_CLIENT_SECRET"] = ol.ClientSecret
	g := &secretGuard{c: c, secrets: []string{o.Token, ol.ClientSecret}}
	c.write("learnsync.yaml", oktaOneLoginConfig(t, o, ol))
	g.mustRun(0, "validate")

	// 1. First run: four people, grace once.
	out := g.runOnce(0)
	if !strings.Contains(out, "4 created") || !strings.Contains(out, "1 waiting") {
		t.Errorf("first summary = %q", out)
	}
	ex := g.export()
	if len(ex.Users) != 4 {
		t.Fatalf("export users = %+v; want grace, henry, ivan, judy", ex.Users)
	}
	gr := ex.Users[ex.user("grace.hopper@example.com")]
	// Okta comes first in the config, so its values win; OneLogin fills
	// what Okta left empty.
	if !gr.Active || gr.Email != "grace.hopper@example.com" || gr.UserName != "grace.hopper@example.com" ||
		gr.Title != "Rear Admiral" || gr.Department != "Navy" {
		t.Errorf("grace = %+v", gr)
	}
	ids := make([]string, 0, len(gr.Identities))
	for _, id := range gr.Identities {
		ids = append(ids, id.Source+":"+id.ExternalID)
	}
	slices.Sort(ids)
	if want := []string{"okta:" + graceOkta, fmt.Sprintf("onelogin:%d", grace.ID)}; !slices.Equal(ids, want) {
		t.Errorf("grace's identities = %v, want %v", ids, want)
	}
	wantList(t, "grace's groups", gr.Groups, "okta/Staff", "onelogin/Learners")
	wantList(t, "grace's licenses", gr.Licenses, "learning-basic", "learning-pro")
	// henry is in Okta only, without the role; judy waits for learning-pro.
	wantList(t, "henry's licenses", ex.Users[ex.user("henry@example.com")].Licenses, "learning-basic")
	wantList(t, "judy's licenses", ex.Users[ex.user("judy@example.com")].Licenses, "learning-basic")
	if i := ex.group("onelogin", "Learners"); i < 0 || ex.Groups[i].ExternalID != fmt.Sprintf("role:%d", learners.ID) ||
		!slices.Equal(ex.Groups[i].Members, []string{"grace.hopper@example.com", "ivan@example.com", "judy@example.com"}) {
		t.Errorf("onelogin/Learners is not the role with its three members: %+v", ex.Groups)
	}
	if i := ex.group("onelogin", "Contractors"); i < 0 || !slices.Equal(ex.Groups[i].Members, []string{"judy@example.com"}) {
		t.Errorf("the OneLogin group is not mirrored as onelogin/Contractors with judy: %+v", ex.Groups)
	}
	if s, a, w := ex.license("learning-pro"); s != 2 || a != 2 || w != 1 {
		t.Errorf("learning-pro = %d seats, %d assigned, %d waiting; want 2, 2, 1", s, a, w)
	}

	// 2. A title change in OneLogin, and ivan leaves the role: a role
	// change does not move updated_since, yet the incremental run sees it.
	ol.UpdateUser(grace.ID, func(u *onelogintest.User) { u.Title = "Commodore" })
	ol.SetRoleUsers(learners.ID, grace.ID, judy.ID)
	ol.Advance(onelogin.CursorOverlap + time.Second)
	o.Advance(okta.CursorOverlap + time.Second)
	g.runOnce(0)
	for _, name := range []string{"okta", "onelogin"} {
		if mode, res := g.sourceMode(name); mode != "incremental" || res != "ok" {
			t.Errorf("second run: %s %s %s, want incremental ok", name, mode, res)
		}
	}
	if qs := ol.Queries(onelogintest.UsersPath); len(qs) == 0 || qs[len(qs)-1].Get("updated_since") == "" {
		t.Errorf("the OneLogin users were not read with updated_since: %v", qs)
	}
	ex = g.export()
	if got := ex.Users[ex.user("grace.hopper@example.com")].Title; got != "Commodore" {
		t.Errorf("grace's title = %q, want Commodore", got)
	}
	if l := ex.Users[ex.user("ivan@example.com")].Licenses; slices.Contains(l, "learning-pro") {
		t.Errorf("ivan left the role but kept learning-pro: %v", l)
	}
	if l := ex.Users[ex.user("judy@example.com")].Licenses; !slices.Contains(l, "learning-pro") {
		t.Errorf("judy did not get ivan's seat: %v", l)
	}
	if s, a, w := ex.license("learning-pro"); s != 2 || a != 2 || w != 0 {
		t.Errorf("learning-pro = %d seats, %d assigned, %d waiting; want 2, 2, 0", s, a, w)
	}

	// 3. A OneLogin secret that is refused: OneLogin is frozen, Okta applies,
	// nobody loses anything that OneLogin grants.
	wrong := "wrong-secret-0123456789abcdef"
	g.secrets = append(g.secrets, wrong)
	c.env["ONELOGIN_CLIENT_SECRET"] = wrong
	o.SetProfile(henry, "title", "Okta Admin")
	o.Advance(okta.CursorOverlap + time.Second)
	out, _ = g.mustRun(4, "run", "--once")
	if !strings.Contains(out, "partial") || !strings.Contains(out, "source onelogin frozen") ||
		!strings.Contains(out, `source "onelogin"`) || !strings.Contains(out, "Authentication Failure") {
		t.Errorf("summary with a refused OneLogin secret = %q", out)
	}
	ex = g.export()
	if got := ex.Users[ex.user("henry@example.com")].Title; got != "Okta Admin" {
		t.Errorf("the Okta change was not applied while OneLogin was frozen: henry's title = %q", got)
	}
	for _, email := range []string{"grace.hopper@example.com", "judy@example.com"} {
		if u := ex.Users[ex.user(email)]; !u.Active || !slices.Contains(u.Licenses, "learning-pro") {
			t.Errorf("%s lost something while OneLogin was frozen: %+v", email, u)
		}
	}
	c.env["ONELOGIN_CLIENT_SECRET"] = ol.ClientSecret

	// 4. Grace is suspended in OneLogin only: she stays active through
	// Okta, keeps both identities, but no longer holds the role's license.
	ol.UpdateUser(grace.ID, func(u *onelogintest.User) { u.Status = 2 })
	ol.Advance(onelogin.CursorOverlap + time.Second)
	o.Advance(okta.CursorOverlap + time.Second)
	g.runOnce(0)
	ex = g.export()
	gr = ex.Users[ex.user("grace.hopper@example.com")]
	if !gr.Active || len(gr.Identities) != 2 || !slices.Equal(gr.Groups, []string{"okta/Staff"}) ||
		!slices.Equal(gr.Licenses, []string{"learning-basic"}) {
		t.Errorf("grace after a OneLogin suspension = %+v; want active, two identities, okta/Staff, learning-basic", gr)
	}
	if s, a, w := ex.license("learning-pro"); s != 2 || a != 1 || w != 0 {
		t.Errorf("learning-pro = %d seats, %d assigned, %d waiting; want 2, 1, 0", s, a, w)
	}
	g.mustRun(0, "status")
	g.checkFiles()
}
