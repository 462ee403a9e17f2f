package okta

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/okta/okta-sdk-golang/v2/okta"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/fault"
)

// oktaUsersPage is a users page in the shape of Okta's documented answer
// (GET /api/v1/users): nulls, nested credentials and links, a custom
// attribute that is a number, and every status that maps differently.
const oktaUsersPage = `[
  {
    "id": "00ub0oNGTSWTBKOLGLNR",
    "status": "ACTIVE",
    "created": "2013-06-24T16:39:18.000Z",
    "activated": "2013-06-24T16:39:19.000Z",
    "statusChanged": "2013-06-24T16:39:19.000Z",
    "lastLogin": "2013-06-24T17:39:19.000Z",
    "lastUpdated": "2013-07-02T21:36:25.344Z",
    "passwordChanged": "2013-07-02T21:36:25.344Z",
    "type": {"id": "otyfnjfba4ye7pgjB0g4"},
    "profile": {
      "firstName": "Isaac",
      "lastName": "Brock",
      "email": "isaac.brock@example.com",
      "login": "isaac.brock@example.com",
      "mobilePhone": "555-415-1337",
      "title": " Director ",
      "department": "Engineering",
      "employeeNumber": 1042,
      "manager": null,
      "costCenter": true
    },
    "credentials": {
      "password": {},
      "recovery_question": {"question": "Who's a major player in the cowboy scene?"},
      "provider": {"type": "OKTA", "name": "OKTA"}
    },
    "_links": {"self": {"href": "https://example.okta.com/api/v1/users/00ub0oNGTSWTBKOLGLNR"}}
  },
  {
    "id": "00u1ero7vZFVEIYLWPBN",
    "status": "SUSPENDED",
    "created": "2013-06-24T16:39:18.000Z",
    "activated": null,
    "lastLogin": null,
    "profile": {"firstName": "Eric", "lastName": "Judy", "email": "eric.judy@example.com", "login": "eric.judy@example.com", "displayName": "EJ"},
    "credentials": {"provider": {"type": "ACTIVE_DIRECTORY", "name": "example.com"}},
    "_links": {"self": {"href": "https://example.okta.com/api/v1/users/00u1ero7vZFVEIYLWPBN"}}
  },
  {
    "id": "00u1staged00000000000",
    "status": "STAGED",
    "profile": {"login": "new.hire@example.com", "email": "new.hire@example.com"}
  },
  {
    "id": "00u1deprov0000000000",
    "status": "DEPROVISIONED",
    "transitioningToStatus": "ACTIVE",
    "profile": {"login": "gone@example.com", "email": "gone@example.com", "firstName": "Gone"}
  },
  {
    "id": "00u1locked0000000000",
    "status": "LOCKED_OUT",
    "profile": {"login": "locked@example.com", "email": "locked@example.com"}
  },
  {
    "id": "00u1weird00000000000",
    "status": "FROZEN",
    "profile": {"login": "weird@example.com"}
  },
  {
    "status": "ACTIVE",
    "profile": {"login": "noid@example.com"}
  }
]`

// oktaGroupsPage is a groups page (GET /api/v1/groups) with one group of
// each kind the connector reads or leaves out.
const oktaGroupsPage = `[
  {
    "id": "00g1emaKYZTWRYYRRTSK",
    "created": "2015-02-06T10:11:28.000Z",
    "lastUpdated": "2015-10-05T19:16:43.000Z",
    "lastMembershipUpdated": "2015-11-28T19:15:32.000Z",
    "objectClass": ["okta:user_group"],
    "type": "OKTA_GROUP",
    "profile": {"name": "West Coast Users", "description": "All Users West of The Rockies"},
    "_links": {"users": {"href": "https://example.okta.com/api/v1/groups/00g1emaKYZTWRYYRRTSK/users"}}
  },
  {
    "id": "00garwpuyxHaWOkdV0g4",
    "objectClass": ["okta:windows_security_principal"],
    "type": "APP_GROUP",
    "profile": {"name": "Engineering Users", "description": null, "windowsDomainQualifiedName": "EXAMPLE\\Engineering Users"}
  },
  {
    "id": "00g1everyone00000000",
    "type": "BUILT_IN",
    "profile": {"name": "Everyone", "description": "All users in your organization"}
  }
]`

// decodePage decodes a body the way the SDK decodes a users page.
func decodePage(body []byte) ([]*okta.User, error) {
	var page []*okta.User
	err := json.NewDecoder(bytes.NewReader(body)).Decode(&page)
	return page, err
}

// FuzzMapUser decodes a users page as the SDK does and maps each element.
// A user is either mapped faithfully (its id, the status Okta's status maps
// to, trimmed profile attributes, a display name whenever it has a name) or
// dropped with exactly one problem naming it; never both, never neither.
//
//	go test -run '^$' -fuzz FuzzMapUser -fuzztime 20s ./connectors/okta/
func FuzzMapUser(f *testing.F) {
	f.Add([]byte(oktaUsersPage))
	page, err := decodePage([]byte(oktaUsersPage))
	if err != nil || len(page) != 7 {
		f.Fatalf("the recorded page does not decode: %v", err)
	}
	for _, u := range page {
		one, _ := json.Marshal([]*okta.User{u})
		f.Add(one)
	}
	for _, s := range []string{
		`[]`, `[null]`, `[{}]`, `[{"id": "", "status": "ACTIVE"}]`,
		`[{"id": "00u1", "status": "ACTIVE", "profile": null}]`,
		`[{"id": "00u1", "status": "PROVISIONED", "profile": {"firstName": "  ", "lastName": "\u00e9", "login": 1e21, "email": -0.5}}]`,
		`[{"id": "00u1", "status": "RECOVERY", "profile": {"displayName": ["x"], "title": {"a": 1}, "login": "a\u0000b"}}]`,
		`[{"id": "00u1", "status": "active"}, {"id": "00u1", "status": "PASSWORD_EXPIRED"}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		page, err := decodePage(body)
		if err != nil {
			return // the SDK fails the request: the fetch fails as a whole
		}
		r := &run{c: &Connector{}}
		for i, u := range page {
			before := len(r.problems)
			cu, ok := r.mapUser(u)
			added := len(r.problems) - before
			if !ok {
				if added != 1 {
					t.Fatalf("element %d dropped with %d problems: %+v", i, added, u)
				}
				p := r.problems[before]
				if !strings.HasPrefix(p.Object, "user ") || p.Reason == "" {
					t.Errorf("element %d: problem %q does not name the user", i, p)
				}
				if u != nil && u.Id != "" && !strings.Contains(p.Object, u.Id) {
					t.Errorf("element %d: problem %q does not name id %q", i, p, u.Id)
				}
				continue
			}
			if added != 0 {
				t.Errorf("element %d kept and reported: %v", i, r.problems[before:])
			}
			if cu.ExternalID == "" || cu.ExternalID != u.Id {
				t.Errorf("element %d: id %q, Okta's %q", i, cu.ExternalID, u.Id)
			}
			if want, known := statuses[u.Status]; !known || cu.Status != want || !cu.Status.Valid() {
				t.Errorf("element %d: status %q mapped to %q", i, u.Status, cu.Status)
			}
			for name, v := range map[string]string{"login": cu.UserName, "email": cu.Email, "firstName": cu.GivenName,
				"lastName": cu.FamilyName, "displayName": cu.DisplayName, "title": cu.Title, "department": cu.Department,
				"employeeNumber": cu.EmployeeNumber, "manager": cu.Manager, "costCenter": cu.CostCenter} {
				if !utf8.ValidString(v) || strings.TrimSpace(v) != v {
					t.Errorf("element %d: %s %q is not trimmed UTF-8", i, name, v)
				}
			}
			if cu.DisplayName == "" && (cu.GivenName != "" || cu.FamilyName != "") {
				t.Errorf("element %d: no display name for %q %q", i, cu.GivenName, cu.FamilyName)
			}
		}
	})
}

// FuzzFetchAll serves the fuzzed bytes as the users search answer (also
// used as every group's member list) and as the groups answer to a real
// FetchAll through the SDK, over the connector's own transport. The fetch
// either fails as a whole or returns a result the reconciler can trust, and
// exactly what an independent reading of the pages finds: the last copy of
// each user id, without STAGED users or unknown statuses; the groups of the
// configured types, named by their profile (or their id), sorted; members
// that are users.
//
//	go test -run '^$' -fuzz FuzzFetchAll -fuzztime 20s ./connectors/okta/
func FuzzFetchAll(f *testing.F) {
	f.Add([]byte(oktaUsersPage), []byte(oktaGroupsPage))
	// JSON null decodes into an empty page: it once made a full fetch of
	// zero users, or of zero groups.
	for _, s := range []string{`[]`, `[{"id": "00u1", "status": "ACTIVE", "profile": {"login": "a"}}]`, `{}`, `[`, `<html>`, ` `, `null`, "\tnull\n"} {
		f.Add([]byte(s), []byte(oktaGroupsPage))
		f.Add([]byte(oktaUsersPage), []byte(s))
	}
	f.Add([]byte(oktaUsersPage), []byte(`[{"id": "g1", "type": "OKTA_GROUP"}, {"id": "g1", "type": "OKTA_GROUP", "profile": {"name": "Later"}}, {"id": "g2", "type": "APP_GROUP", "profile": null}, {"type": "OKTA_GROUP"}, null]`))

	var users, groups atomic.Pointer[[]byte] // what the fake answers; set by each run
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, b []byte) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Date", time.Now().UTC().Format(http.TimeFormat))
		_, _ = w.Write(b)
	}
	mux.HandleFunc("GET /api/v1/users", func(w http.ResponseWriter, _ *http.Request) { answer(w, *users.Load()) })
	mux.HandleFunc("GET /api/v1/groups", func(w http.ResponseWriter, _ *http.Request) { answer(w, *groups.Load()) })
	mux.HandleFunc("GET /api/v1/groups/{id}/users", func(w http.ResponseWriter, _ *http.Request) { answer(w, *users.Load()) })
	srv := httptest.NewServer(mux)
	f.Cleanup(srv.Close)

	cfg := DefaultConfig()
	cfg.OrgURL = srv.URL
	cfg.APIToken = "fuzz-token"
	c, err := New(cfg, connectors.Options{Name: "okta", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	c.tr.retry = connectors.Backoff{Attempts: 1}

	f.Fuzz(func(t *testing.T, usersPage, groupsPage []byte) {
		users.Store(&usersPage)
		groups.Store(&groupsPage)
		res := fault.Whole(t, c.FetchAll, 10*time.Second)
		if res == nil {
			return
		}
		for name, b := range map[string][]byte{"users": usersPage, "groups": groupsPage} {
			if trimmed := bytes.TrimSpace(b); len(trimmed) == 0 || trimmed[0] != '[' {
				t.Fatalf("a %s answer that is not a JSON array (%q) was read as a page", name, b)
			}
		}

		page, err := decodePage(usersPage)
		if err != nil {
			t.Fatalf("FetchAll accepted a users page the SDK's decoder refuses: %v", err)
		}
		want := map[string]connectors.Status{}
		for _, u := range page {
			if u == nil || u.Id == "" {
				continue
			}
			delete(want, u.Id)
			if st, ok := statuses[u.Status]; ok && st != connectors.StatusSkip {
				want[u.Id] = st
			}
		}
		got := map[string]connectors.Status{}
		for _, u := range res.Users {
			if _, dup := got[u.ExternalID]; dup {
				t.Errorf("user %q twice", u.ExternalID)
			}
			got[u.ExternalID] = u.Status
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("users (id: status) differ from the page (-want +got):\n%s", d)
		}

		var gpage []*okta.Group
		if err := json.NewDecoder(bytes.NewReader(groupsPage)).Decode(&gpage); err != nil {
			t.Fatalf("FetchAll accepted a groups page the SDK's decoder refuses: %v", err)
		}
		wantGroups := map[string]connectors.Group{}
		for _, g := range gpage {
			if g == nil || g.Id == "" || g.Type != GroupTypeOkta && g.Type != GroupTypeApp {
				continue
			}
			cg := connectors.Group{ExternalID: g.Id, Name: g.Id}
			if g.Profile != nil {
				if g.Profile.Name != "" {
					cg.Name = g.Profile.Name
				}
				cg.Description = g.Profile.Description
			}
			wantGroups[g.Id] = cg
		}
		gotGroups := map[string]connectors.Group{}
		for i, g := range res.Groups {
			if i > 0 && res.Groups[i-1].ExternalID >= g.ExternalID {
				t.Errorf("groups not sorted by unique id: %q after %q", g.ExternalID, res.Groups[i-1].ExternalID)
			}
			gotGroups[g.ExternalID] = g
		}
		if d := cmp.Diff(wantGroups, gotGroups); d != "" {
			t.Errorf("groups differ from the page (-want +got):\n%s", d)
		}
		for gid, ms := range res.Members {
			if _, ok := gotGroups[gid]; !ok {
				t.Errorf("members of unknown group %q", gid)
			}
			for _, m := range ms {
				if _, ok := got[m]; !ok {
					t.Errorf("group %q: member %q is not a user", gid, m)
				}
			}
		}
	})
}
