package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/learnsync/learnsync/reconcile"
)

// fileUser is one user of a file source's JSON: the profile's keys with
// an id and a status.
type fileUser struct {
	ID string `json:"id"`
	reconcile.Profile
	Status string `json:"status"`
}

type fileGroup struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

type fileOrg struct {
	Users  []fileUser  `json:"users"`
	Groups []fileGroup `json:"groups"`
}

func person(id, name, title string) fileUser {
	return fileUser{ID: id, Status: "active", Profile: reconcile.Profile{UserName: name, Email: name + "@example.com",
		GivenName: strings.ToUpper(name[:1]) + name[1:], FamilyName: "Test", DisplayName: name + " Test", Title: title,
		Department: "Engineering"}}
}

const fileConfig = `
directory:
  dsn: learnsync.db
sources:
  - name: hr
    type: file
    config:
      path: org.json
licenses:
  - name: learning-pro
    seats: 2
    groups: ["hr/Engineering"]
  - name: learning-basic
    all_active: true
safety:
  max_deactivations: 2
  max_deactivation_percent: 60
`

// TestEndToEndFileSource drives learnsync through create, change, leave and
// come back on a file source, checking the export and the exit codes.
func TestEndToEndFileSource(t *testing.T) {
	c := newCLI(t)
	c.write("learnsync.yaml", fileConfig)
	org := fileOrg{
		Users: []fileUser{person("1", "alice", "Engineer"), person("2", "bob", "Engineer"), person("3", "carol", "Engineer"),
			person("4", "dan", "Sales Rep")},
		Groups: []fileGroup{{ID: "eng", Name: "Engineering", Members: []string{"1", "2", "3"}}, {ID: "sales", Name: "Sales", Members: []string{"4"}}},
	}
	c.writeJSON("org.json", org)

	c.mustRun(0, "validate")
	// 1. create
	out := c.runOnce(0)
	if !strings.Contains(out, "4 created") || !strings.Contains(out, "1 waiting") {
		t.Errorf("summary line = %q", out)
	}
	if fi, err := os.Stat(c.path("learnsync.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	// The export's JSON is a documented contract: pinned byte for byte.
	exported, _ := c.mustRun(0, "export")
	golden(t, "export.golden", exported)
	ex := c.export()
	if len(ex.Users) != 4 || len(ex.Groups) != 2 {
		t.Fatalf("export: %d users, %d groups", len(ex.Users), len(ex.Groups))
	}
	alice := ex.Users[ex.user("alice@example.com")]
	aliceID := alice.ID
	if !alice.Active || !slices.Equal(alice.Licenses, []string{"learning-basic", "learning-pro"}) ||
		!slices.Equal(alice.Groups, []string{"hr/Engineering"}) || len(alice.Identities) != 1 || alice.Identities[0].ExternalID != "1" {
		t.Errorf("alice = %+v", alice)
	}
	if s, a, w := ex.license("learning-pro"); s != 2 || a != 2 || w != 1 {
		t.Errorf("learning-pro = %d seats, %d assigned, %d waiting; want 2, 2, 1", s, a, w)
	}

	// 2. change: a title and a new engineer.
	org.Users[1].Title = "Staff Engineer"
	org.Users = append(org.Users, person("5", "erin", "Engineer"))
	org.Groups[0].Members = append(org.Groups[0].Members, "5")
	c.writeJSON("org.json", org)
	p := c.plan(0)
	if p.Summary["create"] != 1 || p.Summary["update"] != 1 {
		t.Errorf("plan summary = %v", p.Summary)
	}
	c.runOnce(0)
	ex = c.export()
	if ex.Users[ex.user("bob@example.com")].Title != "Staff Engineer" {
		t.Error("title change not applied")
	}
	if _, _, w := ex.license("learning-pro"); w != 2 {
		t.Errorf("learning-pro waiting = %d, want 2", w)
	}

	// 3. leave: alice is gone from the export; her seat goes to carol.
	org.Users = org.Users[1:]
	org.Groups[0].Members = []string{"2", "3", "5"}
	c.writeJSON("org.json", org)
	c.runOnce(0)
	ex = c.export()
	alice = ex.Users[ex.user("alice@example.com")]
	if alice.Active || len(alice.Licenses) != 0 || len(alice.Groups) != 0 || alice.Title != "Engineer" {
		t.Errorf("alice after leaving = %+v; want inactive, no licenses or groups, profile kept", alice)
	}
	carol := ex.Users[ex.user("carol@example.com")]
	if !slices.Contains(carol.Licenses, "learning-pro") {
		t.Errorf("carol did not get the freed seat: %+v", carol)
	}

	// 4. come back: same id.
	org.Users = append(org.Users, person("1", "alice", "Engineer"))
	c.writeJSON("org.json", org)
	c.runOnce(0)
	ex = c.export()
	alice = ex.Users[ex.user("alice@example.com")]
	if alice.ID != aliceID || !alice.Active {
		t.Errorf("alice came back as id %s active=%v, want id %s", alice.ID, alice.Active, aliceID)
	}

	// 5. a run with no change changes nothing.
	before := c.export()
	out = c.runOnce(0)
	if !strings.Contains(out, "0 created, 0 updated, 0 deactivated") {
		t.Errorf("idle run summary = %q", out)
	}
	if after := c.export(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("an idle run changed the export")
	}

	// 6. status shows the runs.
	st, _ := c.mustRun(0, "status")
	if !strings.Contains(st, "RESULT") || strings.Count(st, " once ") < 5 {
		t.Errorf("status = %s", st)
	}
}

func TestEndToEndBlockedAndOverride(t *testing.T) {
	c := newCLI(t)
	c.write("learnsync.yaml", fileConfig)
	var org fileOrg
	for i := range 6 {
		org.Users = append(org.Users, person(fmt.Sprint(i), fmt.Sprintf("user%d", i), "Engineer"))
	}
	c.writeJSON("org.json", org)
	c.runOnce(0)

	org.Users = org.Users[:2] // 4 of 6 leave: over both limits
	c.writeJSON("org.json", org)
	if p := c.plan(3); p.Blocked == "" || p.Summary["deactivate"] != 4 {
		t.Errorf("plan = %+v, want blocked with 4 deactivations", p)
	}
	out, _ := c.mustRun(3, "run", "--once")
	if !strings.Contains(out, "BLOCKED") || !strings.Contains(out, "max_deactivations") {
		t.Errorf("blocked summary = %q", out)
	}
	ex := c.export()
	for _, u := range ex.Users {
		if !u.Active {
			t.Fatalf("a blocked run deactivated %s", u.Email)
		}
	}
	st, _ := c.mustRun(0, "status")
	if !strings.Contains(st, "blocked") {
		t.Errorf("status does not show the blocked run:\n%s", st)
	}
	c.mustRun(0, "run", "--once", "--allow-mass-deactivation")
	ex = c.export()
	active := 0
	for _, u := range ex.Users {
		if u.Active {
			active++
		}
	}
	if active != 2 {
		t.Errorf("active after override = %d, want 2", active)
	}
	// The override is for one run only: it is not remembered.
	org.Users = org.Users[:0]
	c.writeJSON("org.json", org)
	c.mustRun(3, "run", "--once")
}

func TestEndToEndPartialRun(t *testing.T) {
	c := newCLI(t)
	c.write("learnsync.yaml", `
directory: {dsn: learnsync.db}
sources:
  - {name: hr, type: file, config: {path: hr.json}}
  - {name: contractors, type: file, config: {path: contractors.json}}
`)
	c.writeJSON("hr.json", fileOrg{Users: []fileUser{person("1", "alice", "Engineer")}})
	c.writeJSON("contractors.json", fileOrg{Users: []fileUser{person("c1", "bob", "Contractor")}})
	c.runOnce(0)

	// The contractors export is cut off mid-way; hr changes meanwhile.
	c.write("contractors.json", `{"users": [{"id": "c1", "user_name": "bob"`)
	c.writeJSON("hr.json", fileOrg{Users: []fileUser{person("1", "alice", "Principal Engineer")}})
	out, _ := c.mustRun(4, "run", "--once")
	if !strings.Contains(out, "partial") || !strings.Contains(out, "contractors frozen") {
		t.Errorf("summary = %q", out)
	}
	ex := c.export()
	if i := ex.user("bob@example.com"); i < 0 || !ex.Users[i].Active {
		t.Error("bob lost his access because his source failed")
	}
	if ex.Users[ex.user("alice@example.com")].Title != "Principal Engineer" {
		t.Error("the healthy source was not applied")
	}
}

func TestEndToEndBadInput(t *testing.T) {
	c := newCLI(t)
	c.write("bad.yaml", `
directory: {dsn: learnsync.db, colour: blue}
sources:
  - name: hr
    type: file
    config: {path: missing.json}
  - name: hr
    type: nosuch
    config: {}
licenses:
  - name: pro
    seats: -1
    groups: [x]
`)
	out, errs := c.mustRun(2, "validate", "--config", c.path("bad.yaml"))
	for _, want := range []string{
		"directory.colour: unknown key",
		"sources[0].config.path: file not found",
		`sources[1].name: "hr" is already the name of sources[0]`,
		`sources[1].type: unknown source type "nosuch"`,
		"licenses[0].seats: must be 0 (unlimited) or more",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s%s", want, out, errs)
		}
	}
	if _, err := os.Stat(c.path("learnsync.db")); err == nil {
		t.Error("a bad configuration created the database")
	}

	c.write("syntax.yaml", "sources: [\n")
	if _, errs := c.mustRun(2, "run", "--once", "--config", c.path("syntax.yaml")); !strings.Contains(errs, "not valid YAML") {
		t.Errorf("malformed YAML: %s", errs)
	}
	if _, errs := c.mustRun(2, "run", "--once", "--config", c.path("nope.yaml")); !strings.Contains(errs, "file not found") {
		t.Errorf("missing config: %s", errs)
	}

	// A directory file that is not SQLite is refused and left alone.
	c.write("learnsync.yaml", `
directory: {dsn: notes.txt}
sources: [{name: hr, type: file, config: {path: org.json}}]
`)
	c.writeJSON("org.json", fileOrg{Users: []fileUser{person("1", "alice", "Engineer")}})
	c.write("notes.txt", "these are my notes, not a database\n")
	if _, errs := c.mustRun(2, "run", "--once"); !strings.Contains(errs, "not a SQLite database") {
		t.Errorf("not-SQLite: %s", errs)
	}
	if b, _ := os.ReadFile(c.path("notes.txt")); string(b) != "these are my notes, not a database\n" {
		t.Error("learnsync wrote into a file that is not a database")
	}
	c.mustRun(2, "validate")

	// Bad CSV rows are skipped and reported; the rest applies.
	c.write("learnsync.yaml", `
directory: {dsn: learnsync.db}
sources: [{name: hr, type: file, config: {path: org.csv}}]
`)
	c.write("org.csv", "id,user_name,email,status,groups\n1,alice,alice@example.com,active,Eng\n2,bob,bob@example.com,sometimes,Eng\n3,carol\n4,dup,ALICE@example.com,active,\n")
	out = c.runOnce(0)
	if !strings.Contains(out, "1 created") || !strings.Contains(out, "3 problems") {
		t.Errorf("summary = %q", out)
	}
	st, _ := c.mustRun(0, "status")
	for _, want := range []string{"line 3", "line 4", "same email"} {
		if !strings.Contains(st, want) {
			t.Errorf("status does not report %q:\n%s", want, st)
		}
	}

	// Usage errors exit 2.
	c.mustRun(2, "run", "--once", "--bogus-flag")
	c.mustRun(2, "plan", "--output", "yaml")
	c.mustRun(2, "run", "--once", "--log-level", "loud")
}

func TestHelpOnEveryCommand(t *testing.T) {
	c := newCLI(t)
	for _, cmd := range []string{"run", "plan", "export", "validate", "status"} {
		out, _ := c.mustRun(0, cmd, "--help")
		if !strings.Contains(out, "Usage:") || !strings.Contains(out, "learnsync "+cmd) {
			t.Errorf("%s --help:\n%s", cmd, out)
		}
	}
	out, _ := c.mustRun(0, "--help")
	if !strings.Contains(out, "Exit codes") {
		t.Errorf("root help lacks exit codes:\n%s", out)
	}
}

func TestExampleConfigRunsAsIs(t *testing.T) {
	c := newCLI(t)
	// The bundled example and its data, copied as they are into a test
	// directory so that the database lands there.
	if err := os.Mkdir(c.path("examples"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ from, to string }{
		{"../../config.example.yaml", "learnsync.yaml"},
		{"../../examples/org.json", "examples/org.json"},
	} {
		b, err := os.ReadFile(f.from)
		if err != nil {
			t.Fatal(err)
		}
		c.write(f.to, string(b))
	}
	c.mustRun(0, "validate")
	out := c.runOnce(0)
	if !strings.Contains(out, "run 1 ok") || !strings.Contains(out, "10 created") {
		t.Errorf("example run: %s", out)
	}
	if _, err := os.Stat(c.path("learnsync.db")); err != nil {
		t.Errorf("database not next to the config: %v", err)
	}
}

// TestExampleConfigIdPBlocksAreValid: the commented Okta, Entra ID,
// OneLogin and SCIM push blocks of config.example.yaml, uncommented, are a valid
// configuration: the example documents no key that does not exist.
func TestExampleConfigIdPBlocksAreValid(t *testing.T) {
	b, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	blocks := 0
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "  # ")
		switch {
		case !ok:
			out = append(out, line)
		case strings.HasPrefix(rest, "- name: "):
			blocks++
			out = append(out, "  "+rest)
		case strings.HasPrefix(rest, "  ") && !strings.HasPrefix(strings.TrimSpace(rest), "#"):
			out = append(out, "  "+rest)
		}
	}
	if blocks != 4 {
		t.Fatalf("found %d commented source blocks, want okta, entra, onelogin and entra-push", blocks)
	}
	c := newCLI(t)
	c.env["OKTA_API_TOKEN"], c.env["ENTRA_CLIENT_SECRET"], c.env["ONELOGIN_CLIENT_SECRET"] = "t", "s", "o"
	c.env["ENTRA_SCIM_TOKEN"] = "a-scim-token-of-16+-chars"
	c.write("learnsync.yaml", strings.Join(out, "\n"))
	if err := os.Mkdir(c.path("examples"), 0o755); err != nil {
		t.Fatal(err)
	}
	c.write("examples/org.json", "{}")
	if out, _ := c.mustRun(0, "validate"); !strings.Contains(out, "valid (5 sources") {
		t.Errorf("validate: %s", out)
	}
}
