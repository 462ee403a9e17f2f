package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors/entra/entratest"
	"github.com/learnsync/learnsync/connectors/fault"
	"github.com/learnsync/learnsync/connectors/okta/oktatest"
	"github.com/learnsync/learnsync/connectors/onelogin/onelogintest"
	"github.com/learnsync/learnsync/directory/dirtest"
)

// faultIdPs are the three fake identity providers of TestEndToEndFaults.
type faultIdPs struct {
	o  *oktatest.Server
	e  *entratest.Server
	ol *onelogintest.Server

	oktaUsers  []string
	entraUsers []string
	olUsers    []int64
}

func newFaultIdPs(t *testing.T) *faultIdPs {
	f := &faultIdPs{o: oktatest.New(t), e: entratest.New(t), ol: onelogintest.New(t)}
	og := f.o.AddGroup(oktatest.Group{Name: "Staff"})
	eg := f.e.AddGroup(entratest.Group{DisplayName: "Staff"})
	f.e.SetPageSize(2)
	f.ol.SetGroupPageSize(2)
	olg := f.ol.AddGroup(onelogintest.Group{Name: "Staff"})
	var olIDs []int64
	for i := range 5 {
		id := f.o.AddPerson(fmt.Sprintf("okta%d@corp.example", i), "Okta", fmt.Sprint("Person", i), oktatest.StatusActive)
		f.o.AddMember(og.ID, id)
		f.oktaUsers = append(f.oktaUsers, id)

		eid := f.e.AddUser(entratest.User{UserPrincipalName: fmt.Sprintf("entra%d@corp.example", i), GivenName: "Entra",
			Surname: fmt.Sprint("Person", i), JobTitle: "Engineer"})
		f.e.AddMember(eg, eid)
		f.entraUsers = append(f.entraUsers, eid)

		u := f.ol.AddUser(onelogintest.User{Username: fmt.Sprint("onelogin", i), Email: fmt.Sprintf("onelogin%d@corp.example", i),
			Firstname: "OneLogin", Lastname: fmt.Sprint("Person", i), Status: 1, State: 1, GroupID: olg.ID})
		olIDs = append(olIDs, u.ID)
		f.olUsers = append(f.olUsers, u.ID)
	}
	f.ol.AddRole(onelogintest.Role{Name: "Learners", Users: olIDs})
	f.ol.AddRole(onelogintest.Role{Name: "Mentors", Users: olIDs[:2]})
	return f
}

// injector is what the fakes share: the fault kit's dialect.
type injector interface {
	Inject(fault.Fault)
	ClearFaults()
}

// injectors are the fakes by source name.
func (f *faultIdPs) injectors() map[string]injector {
	return map[string]injector{"okta": f.o, "entra": f.e, "onelogin": f.ol}
}

// touch changes three people in every IdP, so that an incremental listing
// has two pages at page size 2, and a fetch that gets through would change
// the directory.
func (f *faultIdPs) touch(title string) {
	for i := 1; i <= 3; i++ {
		f.o.SetProfile(f.oktaUsers[i], "title", title)
		f.e.UpdateUser(f.entraUsers[i], func(u *entratest.User) { u.JobTitle = title })
		f.ol.UpdateUser(f.olUsers[i], func(u *onelogintest.User) { u.Title = title })
	}
}

func (f *faultIdPs) config(t *testing.T, slow bool) string {
	oktaTimeout, entraTimeout, olTimeout := "30s", "60s", "30s"
	if slow {
		oktaTimeout, entraTimeout, olTimeout = "300ms", "1s", "300ms"
	}
	entraBlock := strings.Replace(f.e.ConfigYAML("      "), "client_secret: "+f.e.ClientSecret, "client_secret: ${ENTRA_CLIENT_SECRET}", 1)
	return fmt.Sprintf(`
directory: {dsn: learnsync.db}
sources:
  - name: hr
    type: file
    config: {path: hr.json}
  - name: okta
    type: okta
    config: {org_url: %q, api_token: "${OKTA_API_TOKEN}", ca_file: %q, page_size: 2, request_timeout: %s}
  - name: entra
    type: entra
    config:
%s      request_timeout: %s
  - name: onelogin
    type: onelogin
    config: {api_url: %q, client_id: %q, client_secret: "${ONELOGIN_CLIENT_SECRET}", ca_file: %q, page_size: 2, request_timeout: %s}
licenses:
  - {name: learning-basic, all_active: true}
`, f.o.URL(), f.o.CACertFile(t), oktaTimeout, entraBlock, entraTimeout, f.ol.URL, f.ol.ClientID, f.ol.CAFile, olTimeout)
}

// failedSourceLog is a log line of --log-format json about a frozen source.
type failedSourceLog struct {
	Msg    string `json:"msg"`
	Level  string `json:"level"`
	Source string `json:"source"`
	Error  string `json:"error"`
}

// TestEndToEndFaults runs learnsync on a file source and the three IdPs,
// then, one kind of fault at a time and in all three IdPs at once, a run in
// which every IdP fetch fails: an HTML page from a proxy with status 200
// mid-listing, truncated JSON, a 401 in the middle of a fetch, answers
// slower than request_timeout. Each such run exits 4 (partial); nobody from
// the IdPs loses or gains anything, although each IdP changed meanwhile; the
// file source's change is applied; `status` and the JSON log name each
// source and the reason; no secret shows. Then the faults end and the IdPs'
// changes arrive.
func TestEndToEndFaults(t *testing.T) { dirtest.Each(t, testEndToEndFaults) }

func testEndToEndFaults(t *testing.T) {
	start := time.Now()
	f := newFaultIdPs(t)
	c := newCLI(t)
	c.env["OKTA_API_TOKEN"] = f.o.Token
	c.env["ENTRA_CLIENT_SECRET"] = f.e.ClientSecret
	c.env["ONELOGIN_CLIENT_SECRET"] = f.ol.ClientSecret
	g := &secretGuard{c: c, secrets: []string{f.o.Token, f.e.ClientSecret, f.ol.ClientSecret}}
	c.write("learnsync.yaml", f.config(t, false))
	hr := fileOrg{Users: []fileUser{person("1", "fiona", "Engineer"), person("2", "frank", "Engineer")}}
	c.writeJSON("hr.json", hr)
	g.mustRun(0, "validate")

	g.runOnce(0)
	ex := g.export()
	if len(ex.Users) != 17 {
		t.Fatalf("export has %d users, want 2 from hr and 5 from each IdP", len(ex.Users))
	}

	// Each IdP suspends somebody; until a fetch of that IdP succeeds, they
	// keep their access.
	f.o.SetUserStatus(f.oktaUsers[0], oktatest.StatusSuspended)
	f.e.DisableUser(f.entraUsers[0])
	f.ol.UpdateUser(f.olUsers[0], func(u *onelogintest.User) { u.Status = 2 })

	steps := []struct {
		name  string
		full  bool // run --once --full
		slow  bool // short request timeouts
		fault fault.Fault
		// at is where the fault starts, by source: its Endpoint and Nth.
		at map[string]fault.Fault
		// reason is what the errors must say, by source.
		reason map[string]string
	}{
		{
			name:  "HTML page with 200 mid-listing",
			full:  true,
			fault: fault.Fault{HTML: true},
			at: map[string]fault.Fault{"okta": {Endpoint: "/api/v1/users", Nth: 2}, "entra": {Endpoint: "users/delta", Nth: 2},
				"onelogin": {Endpoint: onelogintest.UsersPath, Nth: 2}},
			reason: map[string]string{"okta": "not JSON (text/html)", "entra": "not JSON (text/html)", "onelogin": "not JSON (text/html)"},
		},
		{
			name:  "truncated JSON",
			fault: fault.Fault{Truncate: true},
			at: map[string]fault.Fault{"okta": {Endpoint: "/api/v1/users", Nth: 2}, "entra": {Endpoint: "groups/delta", Nth: 1},
				"onelogin": {Endpoint: onelogintest.RolesPath, Nth: 1}},
			reason: map[string]string{"okta": "truncated", "entra": "truncated", "onelogin": "truncated"},
		},
		{
			name:  "401 in the middle of a fetch",
			fault: fault.Fault{Status: 401},
			at: map[string]fault.Fault{"okta": {Endpoint: "/api/v1/users", Nth: 2}, "entra": {Endpoint: "users/delta", Nth: 2},
				"onelogin": {Endpoint: onelogintest.RolesPath + "/{id}/users", Nth: 1}},
			reason: map[string]string{"okta": "HTTP 401", "entra": "HTTP 401", "onelogin": "401 Unauthorized"},
		},
		{
			name:  "answers slower than request_timeout",
			slow:  true,
			fault: fault.Fault{Delay: 3 * time.Second},
			at: map[string]fault.Fault{"okta": {Endpoint: "/api/v1/users", Nth: 1}, "entra": {Endpoint: "users/delta", Nth: 1},
				"onelogin": {Endpoint: onelogintest.GroupsPath, Nth: 1}},
			reason: map[string]string{"okta": "timed out", "entra": "timed out", "onelogin": "timed out"},
		},
	}
	for i, step := range steps {
		// The IdPs change, and so does the file source.
		f.touch(fmt.Sprint("Title ", i))
		hr.Users[1].Title = fmt.Sprint("Engineer ", i)
		c.writeJSON("hr.json", hr)
		c.write("learnsync.yaml", f.config(t, step.slow))
		before := g.export()
		for name, srv := range f.injectors() {
			ft := step.fault
			ft.Endpoint, ft.Nth, ft.Times = step.at[name].Endpoint, step.at[name].Nth, -1
			srv.Inject(ft)
		}

		stepStart := time.Now()
		args := []string{"run", "--once", "--log-format", "json"}
		if step.full {
			args = append(args, "--full")
		}
		out, errs := g.mustRun(4, args...)
		t.Logf("%s: run took %v", step.name, time.Since(stepStart).Round(time.Millisecond))
		if !strings.Contains(out, "partial") {
			t.Errorf("%s: summary %q does not say partial", step.name, out)
		}

		// Nobody from the IdPs lost or gained anything; hr's change is in.
		after := g.export()
		for _, u := range before.Users {
			if len(u.Identities) == 1 && u.Identities[0].Source == "hr" {
				continue
			}
			j := after.user(u.Email)
			if j < 0 || fmt.Sprint(after.Users[j]) != fmt.Sprint(u) {
				t.Errorf("%s: %s changed in a run whose IdP fetches failed:\nbefore %+v\nafter  %+v", step.name, u.Email, u, after.Users[max(j, 0)])
			}
		}
		if len(after.Users) != len(before.Users) || len(after.Groups) != len(before.Groups) {
			t.Errorf("%s: %d users and %d groups before, %d and %d after", step.name,
				len(before.Users), len(before.Groups), len(after.Users), len(after.Groups))
		}
		if got := after.Users[after.user("frank@example.com")].Title; got != hr.Users[1].Title {
			t.Errorf("%s: the file source's change was not applied: frank's title is %q", step.name, got)
		}

		// status names each failed source and the reason.
		if testing.Verbose() {
			for _, s := range g.lastRun().Runs[0].Sources {
				t.Logf("  %s %s: %s", s.Name, s.Result, s.Error)
			}
		}
		run := g.lastRun().Runs[0]
		if run.Result != "partial" {
			t.Errorf("%s: status says the run was %q, want partial", step.name, run.Result)
		}
		for _, s := range run.Sources {
			want, failing := step.reason[s.Name]
			switch {
			case !failing && s.Result != "ok":
				t.Errorf("%s: source %s %s: %s", step.name, s.Name, s.Result, s.Error)
			case failing && (s.Result != "failed" || !strings.Contains(s.Error, fmt.Sprintf("%q", s.Name)) || !strings.Contains(s.Error, want)):
				t.Errorf("%s: status of source %s = %s %q; want failed, naming the source and saying %q", step.name, s.Name, s.Result, s.Error, want)
			}
		}
		if len(run.Sources) != 4 {
			t.Errorf("%s: status shows %d sources, want 4", step.name, len(run.Sources))
		}

		// So does the log.
		logged := map[string]string{}
		for line := range strings.SplitSeq(errs, "\n") {
			var l failedSourceLog
			if json.Unmarshal([]byte(line), &l) == nil && l.Source != "" && strings.Contains(l.Msg, "fetch failed") {
				logged[l.Source] = l.Error
			}
		}
		for name, want := range step.reason {
			if e, ok := logged[name]; !ok || !strings.Contains(e, fmt.Sprintf("%q", name)) || !strings.Contains(e, want) {
				t.Errorf("%s: the log says of source %s %q; want it named with %q\nstderr:\n%s", step.name, name, e, want, errs)
			}
		}

		for _, srv := range f.injectors() {
			srv.ClearFaults()
		}
	}

	// The faults are over: every change the IdPs made meanwhile arrives.
	c.write("learnsync.yaml", f.config(t, false))
	g.runOnce(0)
	ex = g.export()
	for _, email := range []string{"okta0@corp.example", "entra0@corp.example", "onelogin0@corp.example"} {
		if i := ex.user(email); i < 0 || ex.Users[i].Active {
			t.Errorf("%s was suspended in the IdP but is still active after a good run", email)
		}
	}
	want := fmt.Sprint("Title ", len(steps)-1)
	for _, email := range []string{"okta1@corp.example", "entra1@corp.example", "onelogin1@corp.example"} {
		if i := ex.user(email); i < 0 || ex.Users[i].Title != want {
			t.Errorf("%s: title not updated to %q after a good run", email, want)
		}
	}
	g.checkFiles()
	t.Logf("whole test: %v", time.Since(start).Round(time.Millisecond))
}
