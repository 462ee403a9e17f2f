package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors/okta"
	"github.com/learnsync/learnsync/connectors/okta/oktatest"
	"github.com/learnsync/learnsync/connectors/onelogin"
	"github.com/learnsync/learnsync/connectors/onelogin/onelogintest"
)

func oktaOneLoginConfig(t *testing.T, o *oktatest.Server, ol *onelogintest.Server) string {
	return fmt.Sprintf(`
directory: {dsn: learnsync.db}
sources:
  - name: okta
    type: okta
    config:
      org_url: %s
      api_token: ${OKTA_API_TOKEN}
      ca_file: %s
  - name: onelogin
    type: onelogin
    config:
      api_url: %s
      client_id: %s
      client_secret: ${ONELOGIN_CLIENT_SECRET}
      ca_file: %s
licenses:
  - name: learning-pro
    seats: 2
    groups: ["onelogin/Learners"]
  - name: learning-basic
    all_active: true
`, o.URL(), o.CACertFile(t), ol.URL, ol.ClientID, ol.CAFile)
}

// TestEndToEndOktaAndOneLogin runs learnsync on an Okta and a OneLogin
// source at once: the same person in both (emails differing in case) is one
// person with two identities, licensed by a rule on a OneLogin role. Then
// changes in OneLogin that updated_since does not see (role membership), a
// suspension in one source only, and a refused OneLogin secret.
func TestEndToEndOktaAndOneLogin(t *testing.T) {
	o := oktatest.New(t)
	graceOkta := o.AddPerson("grace.hopper@example.com", "Grace", "Hopper", oktatest.StatusActive)
	henry := o.AddPerson("henry@example.com", "Henry", "Okta", oktatest.StatusActive)
	staff := o.AddGroup(oktatest.Group{Name: "Staff"})
	o.AddMember(staff.ID, graceOkta, henry)

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
