package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors/okta"
	"github.com/learnsync/learnsync/connectors/okta/oktatest"
)

// secretGuard runs commands through a cli and fails the test if any of the
// secrets shows up in what a command prints, or in a file of the test's
// directory (the database, its journal).
type secretGuard struct {
	c       *cli
	secrets []string
}

func (g *secretGuard) check(what, text string) {
	g.c.t.Helper()
	for _, s := range g.secrets {
		if s != "" && strings.Contains(text, s) {
			g.c.t.Errorf("%s shows a secret:\n%s", what, text)
		}
	}
}

// mustRun is cli.mustRun with the secret check on stdout and stderr.
func (g *secretGuard) mustRun(want int, args ...string) (stdout, stderr string) {
	g.c.t.Helper()
	code, out, errs := g.c.run(args...)
	g.check("stdout of learnsync "+strings.Join(args, " "), out)
	g.check("stderr of learnsync "+strings.Join(args, " "), errs)
	if code != want {
		g.c.t.Fatalf("learnsync %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errs)
	}
	return out, errs
}

// runOnce is cli.runOnce with the secret check: a run at debug level, then,
// when it applied, a plan that must be empty.
func (g *secretGuard) runOnce(want int) string {
	g.c.t.Helper()
	out, _ := g.mustRun(want, "run", "--once", "--log-level", "debug")
	if want == 0 {
		pl, _ := g.mustRun(0, "plan", "--output", "json", "--log-level", "debug")
		var p planOut
		if err := json.Unmarshal([]byte(pl), &p); err != nil {
			g.c.t.Fatalf("plan JSON: %v\n%s", err, pl)
		}
		if len(p.Changes) != 0 {
			g.c.t.Fatalf("plan after an apply is not empty: %+v", p.Changes)
		}
	}
	return out
}

// checkFiles looks for the secrets in every file of the test's directory.
func (g *secretGuard) checkFiles() {
	g.c.t.Helper()
	entries, err := os.ReadDir(g.c.dir)
	if err != nil {
		g.c.t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(g.c.dir, e.Name()))
		if err != nil {
			g.c.t.Fatal(err)
		}
		for _, s := range g.secrets {
			if s != "" && strings.Contains(string(b), s) {
				g.c.t.Errorf("%s holds a secret", e.Name())
			}
		}
	}
}

// export is cli.export with the secret check.
func (g *secretGuard) export() exportDoc {
	g.c.t.Helper()
	out, _ := g.mustRun(0, "export")
	var doc exportDoc
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		g.c.t.Fatalf("export is not the documented JSON: %v\n%s", err, out)
	}
	return doc
}

// statusRuns is the part of `status --output json` these tests read.
type statusRuns struct {
	Runs []struct {
		ID      int64  `json:"id"`
		Result  string `json:"result"`
		Error   string `json:"error"`
		Sources []struct {
			Name     string `json:"name"`
			Mode     string `json:"mode"`
			Result   string `json:"result"`
			Error    string `json:"error"`
			Requests int    `json:"requests"`
		} `json:"sources"`
	} `json:"runs"`
}

// lastRun returns the newest run of `status --output json`.
func (g *secretGuard) lastRun() statusRuns {
	g.c.t.Helper()
	out, _ := g.mustRun(0, "status", "--output", "json", "--limit", "1")
	var st statusRuns
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		g.c.t.Fatalf("status JSON: %v\n%s", err, out)
	}
	if len(st.Runs) != 1 {
		g.c.t.Fatalf("status shows %d runs, want 1:\n%s", len(st.Runs), out)
	}
	return st
}

// sourceMode returns the fetch mode and result of source name in the newest run.
func (g *secretGuard) sourceMode(name string) (mode, result string) {
	g.c.t.Helper()
	for _, s := range g.lastRun().Runs[0].Sources {
		if s.Name == name {
			return s.Mode, s.Result
		}
	}
	g.c.t.Fatalf("the last run has no source %q", name)
	return "", ""
}

func (d exportDoc) group(source, name string) int {
	for i, g := range d.Groups {
		if g.Source == source && g.Name == name {
			return i
		}
	}
	return -1
}

func oktaConfig(srv *oktatest.Server, t *testing.T) string {
	return `
directory: {dsn: learnsync.db}
sources:
` + oktaSource(t, srv) + `    scope:
      groups: ["Learning Users"]
licenses:
  - name: learning-pro
    seats: 2
    groups: ["okta/Engineering"]
  - name: learning-basic
    all_active: true
safety:
  max_deactivation_percent: 70
`
}

// TestEndToEndOkta runs learnsync against the fake Okta: a full first run
// with licenses and scope.groups, then an incremental run after a profile, a
// status and a membership change and a new group, an idle run, and a run
// with a wrong token. The token never shows.
func TestEndToEndOkta(t *testing.T) {
	srv := oktatest.New(t)
	ada := srv.AddPerson("ada@example.com", "Ada", "Lovelace", oktatest.StatusActive)
	bob := srv.AddPerson("bob@example.com", "Bob", "Barker", oktatest.StatusActive)
	carol := srv.AddPerson("carol@example.com", "Carol", "Shaw", oktatest.StatusActive)
	dan := srv.AddPerson("dan@example.com", "Dan", "Outside", oktatest.StatusActive) // not in scope, yet
	srv.AddPerson("sam@example.com", "Sam", "Staged", oktatest.StatusStaged)
	for _, id := range []string{ada, bob, carol} {
		srv.SetProfile(id, "title", "Engineer")
		srv.SetProfile(id, "department", "R&D")
	}
	srv.SetProfile(ada, "employeeNumber", "E1")
	learners := srv.AddGroup(oktatest.Group{Name: "Learning Users"})
	eng := srv.AddGroup(oktatest.Group{Name: "Engineering"})
	srv.AddMember(learners.ID, ada, bob, carol)
	srv.AddMember(eng.ID, ada, bob, carol, dan)

	c := newCLI(t)
	c.env["OKTA_API_TOKEN"] = srv.Token
	g := &secretGuard{c: c, secrets: []string{srv.Token}}
	c.write("learnsync.yaml", oktaConfig(srv, t))
	g.mustRun(0, "validate")

	// 1. First run: full; only the members of Learning Users count.
	out := g.runOnce(0)
	if !strings.Contains(out, "3 created") || !strings.Contains(out, "1 waiting") {
		t.Errorf("first summary = %q", out)
	}
	if mode, res := g.sourceMode("okta"); mode != "full" || res != "ok" {
		t.Errorf("first run: okta %s %s, want full ok", mode, res)
	}
	ex := g.export()
	if len(ex.Users) != 3 || ex.user("dan@example.com") >= 0 || ex.user("sam@example.com") >= 0 {
		t.Fatalf("export users = %+v; want ada, bob and carol only", ex.Users)
	}
	a := ex.Users[ex.user("ada@example.com")]
	if !a.Active || a.UserName != "ada@example.com" || a.GivenName != "Ada" || a.FamilyName != "Lovelace" ||
		a.DisplayName != "Ada Lovelace" || a.Title != "Engineer" || a.Department != "R&D" || a.EmployeeNumber != "E1" {
		t.Errorf("ada = %+v", a)
	}
	if len(a.Identities) != 1 || a.Identities[0].Source != "okta" || a.Identities[0].ExternalID != ada {
		t.Errorf("ada's identities = %+v, want okta:%s", a.Identities, ada)
	}
	wantList(t, "ada's groups", a.Groups, "okta/Engineering", "okta/Learning Users")
	wantList(t, "ada's licenses", a.Licenses, "learning-basic", "learning-pro")
	// carol waits for learning-pro.
	wantList(t, "carol's licenses", ex.Users[ex.user("carol@example.com")].Licenses, "learning-basic")
	if len(ex.Groups) != 2 {
		t.Errorf("export groups = %+v", ex.Groups)
	}
	if i := ex.group("okta", "Engineering"); i < 0 || ex.Groups[i].ExternalID != eng.ID ||
		!slices.Equal(ex.Groups[i].Members, []string{"ada@example.com", "bob@example.com", "carol@example.com"}) {
		t.Errorf("okta/Engineering = %+v; want the in-scope members only", ex.Groups)
	}
	if s, as, w := ex.license("learning-pro"); s != 2 || as != 2 || w != 1 {
		t.Errorf("learning-pro = %d seats, %d assigned, %d waiting; want 2, 2, 1", s, as, w)
	}
	if s, as, w := ex.license("learning-basic"); s != 0 || as != 3 || w != 0 {
		t.Errorf("learning-basic = %d seats, %d assigned, %d waiting; want 0, 3, 0", s, as, w)
	}

	// 2. Changes in Okta: a title, a suspension, dan joins Learning Users,
	// a new group. The next cycle comes later than the cursor's overlap.
	srv.SetProfile(bob, "title", "Staff Engineer")
	srv.SetUserStatus(ada, oktatest.StatusSuspended)
	srv.AddMember(learners.ID, dan)
	ds := srv.AddGroup(oktatest.Group{Name: "Data Science"})
	srv.AddMember(ds.ID, bob, carol)
	srv.Advance(okta.CursorOverlap + time.Second)

	srv.ResetRequests()
	out = g.runOnce(0)
	if !strings.Contains(out, "1 created") || !strings.Contains(out, "1 updated") || !strings.Contains(out, "1 deactivated") {
		t.Errorf("second summary = %q", out)
	}
	if mode, res := g.sourceMode("okta"); mode != "incremental" || res != "ok" {
		t.Errorf("second run: okta %s %s, want incremental ok", mode, res)
	}
	for _, r := range srv.RequestLog() {
		if strings.Contains(r.Query.Get("search"), "1970-01-01") {
			t.Errorf("the second run read every user again: %s %v", r.Path, r.Query)
		}
	}
	ex = g.export()
	if len(ex.Users) != 4 {
		t.Fatalf("export users after the changes = %d, want 4", len(ex.Users))
	}
	if got := ex.Users[ex.user("bob@example.com")].Title; got != "Staff Engineer" {
		t.Errorf("bob's title = %q, want Staff Engineer", got)
	}
	a = ex.Users[ex.user("ada@example.com")]
	if a.Active || len(a.Licenses) != 0 || len(a.Groups) != 0 || a.Title != "Engineer" {
		t.Errorf("ada after her suspension = %+v; want inactive, no licenses or groups, profile kept", a)
	}
	if l := ex.Users[ex.user("carol@example.com")].Licenses; !slices.Contains(l, "learning-pro") {
		t.Errorf("carol did not get ada's seat: %v", l)
	}
	d := ex.user("dan@example.com")
	if d < 0 {
		t.Fatal("dan joined Learning Users but was not created")
	}
	if u := ex.Users[d]; !u.Active || !slices.Equal(u.Groups, []string{"okta/Engineering", "okta/Learning Users"}) ||
		!slices.Equal(u.Licenses, []string{"learning-basic"}) {
		t.Errorf("dan = %+v; want active, in both groups, waiting for learning-pro", u)
	}
	if i := ex.group("okta", "Data Science"); i < 0 || ex.Groups[i].ExternalID != ds.ID ||
		!slices.Equal(ex.Groups[i].Members, []string{"bob@example.com", "carol@example.com"}) {
		t.Errorf("the new group is not mirrored as okta/Data Science with bob and carol: %+v", ex.Groups)
	}
	if s, as, w := ex.license("learning-pro"); s != 2 || as != 2 || w != 1 {
		t.Errorf("learning-pro = %d seats, %d assigned, %d waiting; want 2, 2, 1 (bob, carol; dan waits)", s, as, w)
	}

	// 3. Nothing changed: an incremental run of at most 2 requests that
	// changes nothing.
	srv.Advance(okta.CursorOverlap + time.Second)
	before := g.export()
	srv.ResetRequests()
	out, _ = g.mustRun(0, "run", "--once")
	if n := srv.TotalRequests(); n > 2 {
		t.Errorf("an idle incremental run sent %d requests to Okta, want at most 2: %+v", n, srv.RequestLog())
	}
	if !strings.Contains(out, "0 created, 0 updated, 0 deactivated") {
		t.Errorf("idle summary = %q", out)
	}
	if mode, _ := g.sourceMode("okta"); mode != "incremental" {
		t.Errorf("idle run: okta mode %s, want incremental", mode)
	}
	if after := g.export(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("an idle run changed the export")
	}

	// 4. A wrong token: every source failed, exit 1, nobody deactivated.
	wrong := "00wrongTokenWRONGtokenWRONGtoken0000000000"
	g.secrets = append(g.secrets, wrong)
	c.env["OKTA_API_TOKEN"] = wrong
	out, errs := g.mustRun(1, "run", "--once")
	both := out + errs
	if !strings.Contains(out, "failed") || !strings.Contains(both, `okta source "okta"`) ||
		!strings.Contains(both, "Invalid token provided (HTTP 401, E0000011)") {
		t.Errorf("a refused token is not reported with the source and Okta's errorSummary:\nstdout: %s\nstderr: %s", out, errs)
	}
	if st := g.lastRun().Runs[0]; st.Result != "failed" || len(st.Sources) != 1 || st.Sources[0].Result != "failed" ||
		!strings.Contains(st.Sources[0].Error, "Invalid token provided") {
		t.Errorf("status of the refused run = %+v", st)
	}
	if after := g.export(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("a run whose only source failed changed the directory")
	}
	pl, _ := g.mustRun(1, "plan")
	if !strings.Contains(pl, "source okta: fetch failed") {
		t.Errorf("plan with a wrong token:\n%s", pl)
	}

	// 5. The right token again: the cursor was kept, the run is incremental.
	c.env["OKTA_API_TOKEN"] = srv.Token
	g.runOnce(0)
	if mode, _ := g.sourceMode("okta"); mode != "incremental" {
		t.Errorf("after the failed run: okta mode %s, want incremental", mode)
	}

	// 6. Carol leaves Learning Users and bob is deleted outright in Okta:
	// both are out of scope (a deletion moves the groups' membership
	// stamp), so both are deactivated; dan gets a seat.
	srv.RemoveMember(learners.ID, carol)
	srv.DeleteUser(bob)
	srv.Advance(okta.CursorOverlap + time.Second)
	out = g.runOnce(0)
	if !strings.Contains(out, "2 deactivated") {
		t.Errorf("summary after a removal and a deletion = %q", out)
	}
	ex = g.export()
	for _, email := range []string{"bob@example.com", "carol@example.com"} {
		if u := ex.Users[ex.user(email)]; u.Active || len(u.Licenses) != 0 {
			t.Errorf("%s left the scope but = %+v", email, u)
		}
	}
	if l := ex.Users[ex.user("dan@example.com")].Licenses; !slices.Contains(l, "learning-pro") {
		t.Errorf("dan did not get a freed seat: %v", l)
	}
	// A full fetch agrees with what the deltas built.
	out, _ = g.mustRun(0, "run", "--once", "--full")
	if !strings.Contains(out, "0 created, 0 updated, 0 deactivated, 0 reactivated") || !strings.Contains(out, "licenses +0 -0") {
		t.Errorf("a full run after the deltas changed something: %q", out)
	}
	if mode, _ := g.sourceMode("okta"); mode != "full" {
		t.Errorf("run --full: okta mode %s", mode)
	}
	if p := c.plan(0); len(p.Changes) != 0 {
		t.Errorf("plan after a full run is not empty: %+v", p.Changes)
	}
	g.mustRun(0, "status")
	g.checkFiles()
}
