package entra_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/entra"
	"github.com/learnsync/learnsync/connectors/entra/entratest"
	"github.com/learnsync/learnsync/connectors/fault"
)

// FuzzUsersDeltaPage serves the fuzzed bytes as the one page of a users
// delta round (with the recorded groups page) to a real FetchAll: the
// fake only carries the bytes, the Graph SDK decodes them and the connector
// maps them. The fetch either fails as a whole or returns a result the
// reconciler can trust: users with an id, a user name, an email and a
// known status, no duplicates, members that are users; and, whenever the
// page is plain JSON, exactly the users an independent reading of it finds.
//
//	go test -run '^$' -fuzz FuzzUsersDeltaPage -fuzztime 20s ./connectors/entra/
func FuzzUsersDeltaPage(f *testing.F) {
	const delta = `"@odata.deltaLink": "{{graph}}/users/delta?$deltatoken=t1"`
	seeds := []string{
		`{` + delta + `, "value": []}`,
		`{` + delta + `}`,
		`{` + delta + `, "value": null}`,
		`{"value": [{"id": "u1", "userPrincipalName": "a@x"}]}`,
		`{` + delta + `, "value": [{"id": "u1", "userPrincipalName": "a@x"}, {"id": "u1", "@removed": {"reason": "changed"}}]}`,
		`{` + delta + `, "value": [{"id": "u1", "@removed": {}}, {"id": "u1", "userPrincipalName": " A@x ", "mail": null, "accountEnabled": false, "userType": "member"}]}`,
		`{` + delta + `, "value": [{"id": "", "userPrincipalName": "a@x"}, {"userPrincipalName": "b@x"}, null, {"id": "u3"}, {"id": "u4", "userPrincipalName": "g@x", "userType": "Guest"}]}`,
		`{` + delta + `, "value": [{"id": "u1", "userPrincipalName": "a\u0000@x", "displayName": "\ud800", "accountEnabled": "false"}]}`,
		`{"@odata.nextLink": "{{graph}}/users/delta?$skiptoken=nope", "value": []}`,
		`{` + delta + `, "value": {}}`,
		`[]`, `<html><title>Bad gateway</title></html>`, `1`, `"x"`,
		`null`, // once made kiota dereference nil
	}
	fuzzDeltaPage(f, "users/delta", seeds, func(t *testing.T, res *connectors.Result, page []byte) {
		got := map[string]connectors.User{}
		for _, u := range res.Users {
			if u.ExternalID == "" || u.UserName == "" || u.Email == "" {
				t.Errorf("user without id, user name or email: %+v", u)
			}
			if u.Status != connectors.StatusActive && u.Status != connectors.StatusInactive {
				t.Errorf("user %q: status %q", u.ExternalID, u.Status)
			}
			for _, v := range []string{u.ExternalID, u.UserName, u.Email, u.GivenName, u.FamilyName, u.DisplayName, u.Title, u.Department, u.EmployeeNumber} {
				if !utf8.ValidString(v) {
					t.Errorf("user %q: %q is not UTF-8", u.ExternalID, v)
				}
			}
			if _, dup := got[u.ExternalID]; dup {
				t.Errorf("user %q twice", u.ExternalID)
			}
			got[u.ExternalID] = u
		}
		var names []string
		for _, g := range res.Groups {
			names = append(names, g.Name)
		}
		if !slices.Equal(names, []string{"Retail", "Mark 8 Project Team"}) {
			t.Errorf("groups %q, want those of the recorded groups page", names)
		}
		for gid, ms := range res.Members {
			for _, m := range ms {
				if _, ok := got[m]; !ok {
					t.Errorf("group %q: member %q is not a user", gid, m)
				}
			}
		}

		want, ok := readUsersPage(page)
		if !ok {
			return
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("users differ from an independent reading of the page (-want +got):\n%s", d)
		}
	})
}

// FuzzGroupsDeltaPage is FuzzUsersDeltaPage for the groups delta page,
// served with the recorded users page: a group is kept with its name when
// its last occurrences say so, and its members are the users among the
// members@delta entries that were not removed.
//
//	go test -run '^$' -fuzz FuzzGroupsDeltaPage -fuzztime 20s ./connectors/entra/
func FuzzGroupsDeltaPage(f *testing.F) {
	const delta = `"@odata.deltaLink": "{{graph}}/groups/delta?$deltatoken=t1"`
	const adele, alex = "87d349ed-44d7-43e1-9a83-5f2406dee5bd", "2d7b4ba0-5a7d-4f2b-b7f2-0e9e0b0f6f8a"
	seeds := []string{
		`{` + delta + `, "value": []}`,
		`{` + delta + `, "value": [{"id": "g1", "displayName": "G", "members@delta": [{"id": "` + adele + `"}, {"id": "` + alex + `", "@removed": {"reason": "deleted"}}]}]}`,
		`{` + delta + `, "value": [{"id": "g1", "displayName": "G", "members@delta": {}}, {"id": "g1", "displayName": null, "description": "d"}]}`,
		`{` + delta + `, "value": [{"id": "g1", "members@delta": [{"id": "` + adele + `"}]}, {"id": "g1", "@removed": {"reason": "changed"}}, {"id": "g2"}]}`,
		`{` + delta + `, "value": [{"id": "g1", "displayName": "G", "members@delta": [{}, 5, {"id": ""}, {"id": "` + alex + `", "@odata.type": "#microsoft.graph.device"}]}]}`,
		`null`,
	}
	fuzzDeltaPage(f, "groups/delta", seeds, func(t *testing.T, res *connectors.Result, page []byte) {
		userIDs := map[string]bool{}
		for _, u := range res.Users {
			userIDs[u.ExternalID] = true
		}
		if len(userIDs) != 2 || !userIDs[adele] || !userIDs[alex] {
			t.Errorf("users %v, want the two members of the recorded users page", userIDs)
		}
		got := map[string]fuzzGroup{}
		for _, g := range res.Groups {
			if g.ExternalID == "" || g.Name == "" || !utf8.ValidString(g.Name) || !utf8.ValidString(g.Description) {
				t.Errorf("group without id or name, or not UTF-8: %+v", g)
			}
			if _, dup := got[g.ExternalID]; dup {
				t.Errorf("group %q twice", g.ExternalID)
			}
			got[g.ExternalID] = fuzzGroup{Name: g.Name, Description: g.Description}
		}
		for gid, ms := range res.Members {
			g, ok := got[gid]
			if !ok {
				t.Errorf("members of unknown group %q", gid)
				continue
			}
			if !slices.IsSorted(ms) || len(slices.Compact(slices.Clone(ms))) != len(ms) {
				t.Errorf("group %q: members %q are not sorted and unique", gid, ms)
			}
			for _, m := range ms {
				if !userIDs[m] {
					t.Errorf("group %q: member %q is not a user", gid, m)
				}
			}
			g.Members = ms
			got[gid] = g
		}

		want, ok := readGroupsPage(page, userIDs)
		if !ok {
			return
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("groups differ from an independent reading of the page (-want +got):\n%s", d)
		}
	})
}

// recordedPages reads the recorded users and groups delta pages.
func recordedPages(tb testing.TB) (users, groups []byte) {
	tb.Helper()
	users, err := os.ReadFile("testdata/users_delta_page.json")
	if err != nil {
		tb.Fatal(err)
	}
	groups, err = os.ReadFile("testdata/groups_delta_page.json")
	if err != nil {
		tb.Fatal(err)
	}
	return users, groups
}

// fuzzDeltaPage serves each input (the recorded page of endpoint and the
// seeds first) as the one page of endpoint's delta round, "users/delta" or
// "groups/delta", with the recorded page of the other, to a real FetchAll
// of a connector with the default settings. The fetch must fail as a
// whole or return a full result, which check judges against the page as
// served.
func fuzzDeltaPage(f *testing.F, endpoint string, seeds []string, check func(t *testing.T, res *connectors.Result, page []byte)) {
	users, groups := recordedPages(f)
	recorded := map[string][]byte{"users/delta": users, "groups/delta": groups}
	f.Add(recorded[endpoint])
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	srv := entratest.New(f)
	conn := newFuzzConnector(f, srv)
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) == 0 {
			return // the fake sends an error body instead of an empty one
		}
		srv.ClearFaults()
		for _, ep := range []string{"groups/delta", "users/delta"} {
			page := recorded[ep]
			if ep == endpoint {
				page = body
			}
			srv.Inject(fault.Fault{Endpoint: ep, Body: string(page)})
		}
		if res := fault.Whole(t, conn.FetchAll, 20*time.Second); res != nil {
			check(t, res, bytes.ReplaceAll(body, []byte("{{graph}}"), []byte(srv.GraphURL)))
		}
	})
}

// newFuzzConnector builds a connector for the fake with the default
// settings (members only, no scope, direct members).
func newFuzzConnector(f *testing.F, srv *entratest.Server) *entra.Connector {
	cfg := fakeConfig(srv, 5*time.Second)
	opts := connectors.Options{Name: "corp-entra", Logger: slog.New(slog.DiscardHandler)}
	if errs := cfg.Validate(opts); len(errs) > 0 {
		f.Fatalf("Validate: %v", errs)
	}
	conn, err := entra.New(cfg, opts)
	if err != nil {
		f.Fatal(err)
	}
	return conn
}

// fuzzGroup is a group as the groups fuzz target compares it.
type fuzzGroup struct {
	Name, Description string
	Members           []string
}

// readGroupsPage maps a groups delta page as the connector documents it,
// with encoding/json: a group's occurrences are merged (a later name or
// description replaces an earlier one, a later @removed removes it, a later
// plain occurrence brings it back), members@delta entries are merged by id
// (the last one wins, @removed removes, other types than users are left
// out), a group without a name is dropped, and members are the given users
// only. It reports false for a page it cannot judge.
func readGroupsPage(body []byte, users map[string]bool) (map[string]fuzzGroup, bool) {
	var page struct {
		Next  *string                      `json:"@odata.nextLink"`
		Value []map[string]json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(body, &page); err != nil || page.Next != nil {
		return nil, false
	}
	type merged struct {
		name, desc *string
		removed    bool
		members    map[string]bool
	}
	groups := map[string]*merged{}
	for _, rec := range page.Value {
		if rec == nil {
			continue
		}
		str := func(key string) (*string, bool) {
			raw, ok := rec[key]
			if !ok || string(raw) == "null" {
				return nil, true
			}
			var s string
			return &s, json.Unmarshal(raw, &s) == nil
		}
		id, ok1 := str("id")
		name, ok2 := str("displayName")
		desc, ok3 := str("description")
		if !ok1 || !ok2 || !ok3 {
			return nil, false
		}
		if id == nil || *id == "" {
			continue
		}
		g := groups[*id]
		if g == nil {
			g = &merged{members: map[string]bool{}}
			groups[*id] = g
		}
		if raw, removed := rec["@removed"]; removed {
			if string(raw) == "null" {
				return nil, false
			}
			g.removed = true
			continue
		}
		g.removed = false
		if name != nil {
			g.name = name
		}
		if desc != nil {
			g.desc = desc
		}
		raw, ok := rec["members@delta"]
		if !ok || string(raw) == "null" {
			continue
		}
		var list []map[string]json.RawMessage
		if json.Unmarshal(raw, &list) != nil {
			return nil, false // not a list of objects: the connector's own problem
		}
		for _, m := range list {
			var mid, typ string
			if raw, ok := m["id"]; ok && json.Unmarshal(raw, &mid) != nil {
				return nil, false
			}
			if raw, ok := m["@odata.type"]; ok && json.Unmarshal(raw, &typ) != nil {
				return nil, false
			}
			if mid == "" || typ != "" && typ != "#microsoft.graph.user" {
				continue
			}
			raw, removed := m["@removed"]
			if removed && string(raw) == "null" {
				return nil, false
			}
			g.members[mid] = !removed
		}
	}
	out := map[string]fuzzGroup{}
	for id, g := range groups {
		if g.removed || g.name == nil || *g.name == "" {
			continue
		}
		fg := fuzzGroup{Name: *g.name}
		if g.desc != nil {
			fg.Description = *g.desc
		}
		for m, present := range g.members {
			if present && users[m] {
				fg.Members = append(fg.Members, m)
			}
		}
		slices.Sort(fg.Members)
		out[id] = fg
	}
	return out, true
}

// readUsersPage maps a users delta page the way the connector documents it
// (the last record of an id wins; @removed drops it; members only, by
// userType; a user principal name is required; mail falls back to it;
// accountEnabled false makes the user inactive), reading the JSON with
// encoding/json instead of the Graph SDK. It reports false for a page it
// cannot judge: one that links to a next page, or whose records hold
// values of other types than Graph sends (a null @removed among them).
func readUsersPage(body []byte) (map[string]connectors.User, bool) {
	var page struct {
		Next  *string                      `json:"@odata.nextLink"`
		Value []map[string]json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(body, &page); err != nil || page.Next != nil {
		return nil, false
	}
	users := map[string]connectors.User{}
	for _, rec := range page.Value {
		if rec == nil {
			continue
		}
		str := func(key string) (string, bool) {
			raw, ok := rec[key]
			if !ok || string(raw) == "null" {
				return "", true
			}
			var s string
			return s, json.Unmarshal(raw, &s) == nil
		}
		var u connectors.User
		var userType string
		fields := []struct {
			key string
			dst *string
		}{{"id", &u.ExternalID}, {"userPrincipalName", &u.UserName}, {"mail", &u.Email}, {"givenName", &u.GivenName},
			{"surname", &u.FamilyName}, {"displayName", &u.DisplayName}, {"jobTitle", &u.Title}, {"department", &u.Department},
			{"employeeId", &u.EmployeeNumber}, {"userType", &userType}}
		for _, fl := range fields {
			v, ok := str(fl.key)
			if !ok {
				return nil, false
			}
			*fl.dst = v
		}
		u.Status = connectors.StatusActive
		if raw, ok := rec["accountEnabled"]; ok && string(raw) != "null" {
			var enabled bool
			if json.Unmarshal(raw, &enabled) != nil {
				return nil, false
			}
			if !enabled {
				u.Status = connectors.StatusInactive
			}
		}
		if u.ExternalID == "" {
			continue
		}
		delete(users, u.ExternalID)
		removed, ok := rec["@removed"]
		if ok && string(removed) == "null" {
			return nil, false // the SDK drops null additional data: neither reading is Graph's
		}
		if ok {
			continue
		}
		if userType != "" && !strings.EqualFold(userType, "Member") || u.UserName == "" {
			continue
		}
		if u.Email == "" {
			u.Email = u.UserName
		}
		users[u.ExternalID] = u
	}
	return users, true
}
