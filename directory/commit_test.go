package directory

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/reconcile"
)

var t1 = t0.Add(time.Hour)

// at0 and at1 are t0 and t1 as the State's Instants.
var at0, at1 = reconcile.InstantOf(t0), reconcile.InstantOf(t1)

var (
	aliceProfile = reconcile.Profile{UserName: "alice", Email: "alice@example.com", GivenName: "Alice", FamilyName: "Archer",
		DisplayName: "Alice Archer", Title: "Engineer", Department: "R&D", EmployeeNumber: "1001", Manager: "carol@example.com", CostCenter: "CC-1"}
	bobProfile = reconcile.Profile{UserName: "bob", Email: "bob@example.com", GivenName: "Bob", FamilyName: "Baker",
		DisplayName: "Bob Baker", Title: "Engineer", Department: "R&D", EmployeeNumber: "1002", Manager: "alice@example.com"}
	carolProfile = reconcile.Profile{UserName: "carol", Email: "carol@example.com", GivenName: "Carol", FamilyName: "Cole",
		DisplayName: "Carol Cole", Title: "Head of Sales", Department: "Sales", EmployeeNumber: "1003"}
	daveProfile = reconcile.Profile{UserName: "dave", Email: "dave@example.com", GivenName: "Dave", DisplayName: "Dave"}
)

func ident(src, id string) reconcile.IdentityRef {
	return reconcile.IdentityRef{Source: src, ExternalID: id}
}

func gref(src, id string) reconcile.GroupRef {
	return reconcile.GroupRef{Source: src, ExternalID: id}
}

func newKey(key string) reconcile.PersonRef { return reconcile.PersonRef{Key: key} }

func known(id int64, key string) reconcile.PersonRef { return reconcile.PersonRef{ID: id, Key: key} }

func mirrorUser(id string, p reconcile.Profile, status connectors.Status) *connectors.User {
	return &connectors.User{ExternalID: id, UserName: p.UserName, Email: p.Email, GivenName: p.GivenName, FamilyName: p.FamilyName,
		DisplayName: p.DisplayName, Title: p.Title, Department: p.Department, EmployeeNumber: p.EmployeeNumber,
		Manager: p.Manager, CostCenter: p.CostCenter, Status: status}
}

// plan1 builds a directory from nothing: people 1 alice, 2 bob, 3 carol;
// groups 1 hr/g1 Engineering, 2 hr/g2 Sales, 3 okta/g9 Everyone.
func plan1() *reconcile.Plan {
	return &reconcile.Plan{
		People: []reconcile.PersonChange{
			{Op: reconcile.OpCreate, Person: newKey("alice@example.com"), Profile: aliceProfile, Link: []reconcile.IdentityRef{ident("hr", "u1"), ident("okta", "00u1")}},
			{Op: reconcile.OpCreate, Person: newKey("bob@example.com"), Profile: bobProfile, Link: []reconcile.IdentityRef{ident("hr", "u2")}},
			{Op: reconcile.OpCreate, Person: newKey("carol@example.com"), Profile: carolProfile, Link: []reconcile.IdentityRef{ident("hr", "u3")}},
		},
		Groups: []reconcile.GroupChange{
			{Op: reconcile.OpCreate, Group: gref("hr", "g1"), Name: "Engineering", Description: "Builds things"},
			{Op: reconcile.OpCreate, Group: gref("hr", "g2"), Name: "Sales"},
			{Op: reconcile.OpCreate, Group: gref("okta", "g9"), Name: "Everyone"},
		},
		Members: []reconcile.MemberChange{
			{Group: &reconcile.MemberGroup{Ref: gref("hr", "g1"), Name: "Engineering", Op: reconcile.OpAdd}, Person: new(newKey("alice@example.com"))},
			{Group: &reconcile.MemberGroup{Ref: gref("hr", "g1"), Name: "Engineering", Op: reconcile.OpAdd}, Person: new(newKey("bob@example.com"))},
			{Group: &reconcile.MemberGroup{Ref: gref("hr", "g2"), Name: "Sales", Op: reconcile.OpAdd}, Person: new(newKey("carol@example.com"))},
			{Group: &reconcile.MemberGroup{Ref: gref("okta", "g9"), Name: "Everyone", Op: reconcile.OpAdd}, Person: new(newKey("alice@example.com"))},
		},
		Licenses: []reconcile.LicenseChange{
			{Op: reconcile.OpGrant, Pool: "learning-basic", Person: new(newKey("alice@example.com"))},
			{Op: reconcile.OpGrant, Pool: "learning-basic", Person: new(newKey("bob@example.com"))},
			{Op: reconcile.OpGrant, Pool: "learning-basic", Person: new(newKey("carol@example.com"))},
			{Op: reconcile.OpGrant, Pool: "learning-pro", Person: new(newKey("alice@example.com"))},
			{Op: reconcile.OpGrant, Pool: "learning-pro", Person: new(newKey("bob@example.com"))},
		},
		Pools: []reconcile.PoolChange{
			{Op: reconcile.OpCreate, Pool: "learning-basic", Seats: 0, Assigned: 3},
			{Op: reconcile.OpCreate, Pool: "learning-pro", Seats: 2, Assigned: 2, Waiting: 1},
			{Op: reconcile.OpCreate, Pool: "legacy", Seats: 5},
		},
		Shortfalls: []reconcile.Shortfall{{Pool: "learning-pro", Seats: 2, Assigned: 2, Waiting: 1, Next: []string{"carol@example.com"}}},
	}
}

func mirrors1() []*reconcile.MirrorDelta {
	return []*reconcile.MirrorDelta{
		{
			Source: "hr", Cursor: "c1", Full: true, FetchedAt: t0,
			UpsertUsers: []*connectors.User{
				mirrorUser("u1", aliceProfile, connectors.StatusActive),
				mirrorUser("u2", bobProfile, connectors.StatusActive),
				mirrorUser("u3", carolProfile, connectors.StatusActive),
				{ExternalID: "u4", Email: "", Status: connectors.StatusSkip},
			},
			UpsertGroups: []*connectors.Group{
				{ExternalID: "g1", Name: "Engineering", Description: "Builds things"},
				{ExternalID: "g2", Name: "Sales"},
				{ExternalID: "g3", Name: "Empty"},
			},
			Members:      map[string][]string{"g1": {"u1", "u2"}, "g2": {"u3"}},
			MembersAdded: 3,
		},
		{
			Source: "okta", Cursor: "okta-cursor-1", Full: false, FetchedAt: t0,
			UpsertUsers:  []*connectors.User{mirrorUser("00u1", aliceProfile, connectors.StatusActive)},
			UpsertGroups: []*connectors.Group{{ExternalID: "g9", Name: "Everyone"}},
			Members:      map[string][]string{"g9": {"00u1"}},
			MembersAdded: 1,
		},
	}
}

func person(id int64, key string, p reconcile.Profile, active bool, firstSeen, deactivated time.Time) *reconcile.Person {
	return &reconcile.Person{ID: id, Key: key, Profile: p, Active: active, FirstSeen: reconcile.InstantOf(firstSeen), DeactivatedAt: reconcile.InstantOf(deactivated)}
}

func members(ids ...int64) []int64 {
	return slices.Sorted(slices.Values(ids))
}

func state1() *reconcile.State {
	return &reconcile.State{
		People: map[int64]*reconcile.Person{
			1: person(1, "alice@example.com", aliceProfile, true, t0, time.Time{}),
			2: person(2, "bob@example.com", bobProfile, true, t0, time.Time{}),
			3: person(3, "carol@example.com", carolProfile, true, t0, time.Time{}),
		},
		Identities: map[reconcile.IdentityRef]int64{ident("hr", "u1"): 1, ident("okta", "00u1"): 1, ident("hr", "u2"): 2, ident("hr", "u3"): 3},
		Groups: map[reconcile.GroupRef]*reconcile.Group{
			gref("hr", "g1"):   {ID: 1, Ref: gref("hr", "g1"), Name: "Engineering", Description: "Builds things"},
			gref("hr", "g2"):   {ID: 2, Ref: gref("hr", "g2"), Name: "Sales"},
			gref("okta", "g9"): {ID: 3, Ref: gref("okta", "g9"), Name: "Everyone"},
		},
		Members: map[int64][]int64{1: members(1, 2), 2: members(3), 3: members(1)},
		Pools: map[string]*reconcile.Pool{
			"learning-basic": {Name: "learning-basic"},
			"learning-pro":   {Name: "learning-pro", Seats: 2, Waiting: 1},
			"legacy":         {Name: "legacy", Seats: 5},
		},
		Assignments: map[string]map[int64]reconcile.Instant{
			"learning-basic": {1: at0, 2: at0, 3: at0},
			"learning-pro":   {1: at0, 2: at0},
		},
	}
}

func mirrorsAfter1() map[string]*reconcile.Mirror {
	return map[string]*reconcile.Mirror{
		"hr": {
			Source: "hr", Cursor: "c1", FullAt: t0, FetchedAt: t0,
			Users: map[string]*connectors.User{
				"u1": mirrorUser("u1", aliceProfile, connectors.StatusActive),
				"u2": mirrorUser("u2", bobProfile, connectors.StatusActive),
				"u3": mirrorUser("u3", carolProfile, connectors.StatusActive),
				"u4": {ExternalID: "u4", Status: connectors.StatusSkip},
			},
			Groups: map[string]*connectors.Group{
				"g1": {ExternalID: "g1", Name: "Engineering", Description: "Builds things"},
				"g2": {ExternalID: "g2", Name: "Sales"},
				"g3": {ExternalID: "g3", Name: "Empty"},
			},
			Members: map[string][]string{
				"g1": {"u1", "u2"},
				"g2": {"u3"},
			},
		},
		"okta": {
			Source: "okta", Cursor: "okta-cursor-1", FetchedAt: t0,
			Users:   map[string]*connectors.User{"00u1": mirrorUser("00u1", aliceProfile, connectors.StatusActive)},
			Groups:  map[string]*connectors.Group{"g9": {ExternalID: "g9", Name: "Everyone"}},
			Members: map[string][]string{"g9": {"00u1"}},
		},
	}
}

func okRun(start time.Time) *reconcile.Run {
	return &reconcile.Run{Trigger: reconcile.TriggerOnce, StartedAt: start, EndedAt: start.Add(time.Second), Result: reconcile.ResultOK}
}

func commit(t *testing.T, s *Store, c *reconcile.Commit) {
	t.Helper()
	if c.Run == nil {
		c.Run = okRun(c.Now)
	}
	if c.Plan != nil {
		c.Run.Summary = c.Plan.Summary()
	}
	if err := s.Commit(t.Context(), c); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if c.Run.ID == 0 {
		t.Fatal("Commit did not set the run id")
	}
}

func loadState(t *testing.T, s *Store) *reconcile.State {
	t.Helper()
	st, err := s.LoadState(t.Context())
	if err != nil {
		t.Fatalf("LoadState: %v", err)
	}
	return st
}

func loadMirrors(t *testing.T, s *Store) map[string]*reconcile.Mirror {
	t.Helper()
	ms, err := s.LoadMirrors(t.Context())
	if err != nil {
		t.Fatalf("LoadMirrors: %v", err)
	}
	return ms
}

func export(t *testing.T, s *Store) *Export {
	t.Helper()
	ex, err := s.Export(t.Context())
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	return ex
}

type eventKey struct{ Action, Object string }

func auditKeys(t *testing.T, s *Store, runID int64) []eventKey {
	t.Helper()
	evs, err := s.AuditEvents(t.Context(), runID, 0)
	if err != nil {
		t.Fatalf("AuditEvents: %v", err)
	}
	var out []eventKey
	for _, e := range evs {
		out = append(out, eventKey{e.Action, e.ObjectID})
	}
	return out
}

func count(t *testing.T, s *Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestCommitCreatesThenLoadsExactly(t *testing.T) {
	eachBackend(t, testCommitCreatesThenLoadsExactly)
}

func testCommitCreatesThenLoadsExactly(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	c := &reconcile.Commit{Plan: plan1(), Mirrors: mirrors1(), Now: t0}
	commit(t, s, c)

	if diff := cmp.Diff(state1(), loadState(t, s)); diff != "" {
		t.Errorf("LoadState after commit (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(mirrorsAfter1(), loadMirrors(t, s)); diff != "" {
		t.Errorf("LoadMirrors after commit (-want +got):\n%s", diff)
	}
	wantExport := &Export{
		Users: []ExportUser{
			{ID: "1", UserName: "alice", Email: "alice@example.com", GivenName: "Alice", FamilyName: "Archer", DisplayName: "Alice Archer",
				Title: "Engineer", Department: "R&D", EmployeeNumber: "1001", Manager: "carol@example.com", Active: true,
				Groups: []string{"hr/Engineering", "okta/Everyone"}, Licenses: []string{"learning-basic", "learning-pro"},
				Identities: []reconcile.IdentityRef{ident("hr", "u1"), ident("okta", "00u1")}},
			{ID: "2", UserName: "bob", Email: "bob@example.com", GivenName: "Bob", FamilyName: "Baker", DisplayName: "Bob Baker",
				Title: "Engineer", Department: "R&D", EmployeeNumber: "1002", Manager: "alice@example.com", Active: true,
				Groups: []string{"hr/Engineering"}, Licenses: []string{"learning-basic", "learning-pro"},
				Identities: []reconcile.IdentityRef{ident("hr", "u2")}},
			{ID: "3", UserName: "carol", Email: "carol@example.com", GivenName: "Carol", FamilyName: "Cole", DisplayName: "Carol Cole",
				Title: "Head of Sales", Department: "Sales", EmployeeNumber: "1003", Active: true,
				Groups: []string{"hr/Sales"}, Licenses: []string{"learning-basic"},
				Identities: []reconcile.IdentityRef{ident("hr", "u3")}},
		},
		Groups: []ExportGroup{
			{ID: "1", Source: "hr", ExternalID: "g1", Name: "Engineering", Members: []string{"alice@example.com", "bob@example.com"}},
			{ID: "2", Source: "hr", ExternalID: "g2", Name: "Sales", Members: []string{"carol@example.com"}},
			{ID: "3", Source: "okta", ExternalID: "g9", Name: "Everyone", Members: []string{"alice@example.com"}},
		},
		Licenses: []ExportLicense{
			{Name: "learning-basic", Seats: 0, Assigned: 3},
			{Name: "learning-pro", Seats: 2, Assigned: 2, Waiting: 1},
			{Name: "legacy", Seats: 5},
		},
	}
	if diff := cmp.Diff(wantExport, export(t, s)); diff != "" {
		t.Errorf("Export after commit (-want +got):\n%s", diff)
	}

	// One audit event per person, group and pool change, in the order they
	// were applied; membership and seat changes as one event per group and
	// pool (a create's event lists its identities).
	wantEvents := []eventKey{
		{"pool.create", "learning-basic"}, {"pool.create", "learning-pro"}, {"pool.create", "legacy"},
		{"person.create", "1"}, {"person.create", "2"}, {"person.create", "3"},
		{"group.create", "1"}, {"group.create", "2"}, {"group.create", "3"},
		{"group.members", "1"}, {"group.members", "2"}, {"group.members", "3"},
		{"pool.seats", "learning-basic"}, {"pool.seats", "learning-pro"},
	}
	if diff := cmp.Diff(wantEvents, auditKeys(t, s, c.Run.ID)); diff != "" {
		t.Errorf("audit events (-want +got):\n%s", diff)
	}
	evs, err := s.AuditEvents(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.RunID != c.Run.ID || !e.At.Equal(t0) {
			t.Errorf("event %+v: want run %d at %v", e, c.Run.ID, t0)
		}
		for _, js := range []string{e.Before, e.After} {
			if js != "" && !json.Valid([]byte(js)) {
				t.Errorf("event %s %s: invalid JSON %q", e.Action, e.ObjectID, js)
			}
		}
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(evs[3].After), &created); err != nil {
		t.Fatal(err)
	}
	if created["match_key"] != "alice@example.com" || created["email"] != "alice@example.com" || created["active"] != true {
		t.Errorf("person.create after = %s", evs[3].After)
	}
	if limited, err := s.AuditEvents(ctx, c.Run.ID, 5); err != nil || len(limited) != 5 || limited[0].Action != "pool.create" {
		t.Errorf("AuditEvents(limit 5) = %d events, %v", len(limited), err)
	}

	// The run record is there with the summary.
	runs, err := s.Runs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].ID != c.Run.ID || runs[0].Summary != plan1().Summary() || runs[0].Plan != nil {
		t.Errorf("Runs = %+v", runs)
	}
	if got, err := s.IntegrityCheck(ctx); err != nil || got != "ok" {
		t.Errorf("IntegrityCheck = %q, %v", got, err)
	}
}

// plan2 changes what plan1 built: alice's title changes and her okta
// account moves to a new person dave; bob is deactivated; carol is deleted;
// Engineering is renamed, Sales deleted; the legacy pool goes away.
func plan2() *reconcile.Plan {
	alice := aliceProfile
	alice.Title = "Staff Engineer"
	return &reconcile.Plan{
		People: []reconcile.PersonChange{
			{Op: reconcile.OpUpdate, Person: known(1, "alice@example.com"), Profile: alice,
				Edit: &reconcile.PersonEdit{Fields: []reconcile.FieldChange{{Field: "title", Old: "Engineer", New: "Staff Engineer"}},
					Unlink: []reconcile.IdentityRef{ident("okta", "00u1")}}},
			{Op: reconcile.OpDeactivate, Person: known(2, "bob@example.com"), Profile: bobProfile},
			{Op: reconcile.OpDelete, Person: known(3, "carol@example.com"), Profile: carolProfile},
			{Op: reconcile.OpCreate, Person: newKey("dave@example.com"), Profile: daveProfile, Link: []reconcile.IdentityRef{ident("okta", "00u1")}},
		},
		Groups: []reconcile.GroupChange{
			{Op: reconcile.OpUpdate, Group: gref("hr", "g1"), ID: 1, Name: "Platform Engineering", Description: "Builds things",
				Fields: []reconcile.FieldChange{{Field: "name", Old: "Engineering", New: "Platform Engineering"}}},
			{Op: reconcile.OpDelete, Group: gref("hr", "g2"), ID: 2, Name: "Sales"},
		},
		Members: []reconcile.MemberChange{
			{Group: &reconcile.MemberGroup{Ref: gref("hr", "g1"), Name: "Platform Engineering", Op: reconcile.OpRemove}, Person: new(known(2, "bob@example.com"))},
			{Group: &reconcile.MemberGroup{Ref: gref("okta", "g9"), Name: "Everyone", Op: reconcile.OpAdd}, Person: new(newKey("dave@example.com"))},
		},
		Licenses: []reconcile.LicenseChange{
			{Op: reconcile.OpRevoke, Pool: "learning-basic", Person: new(known(2, "bob@example.com")), Reason: "deactivated"},
			{Op: reconcile.OpRevoke, Pool: "learning-pro", Person: new(known(2, "bob@example.com")), Reason: "deactivated"},
			{Op: reconcile.OpGrant, Pool: "learning-pro", Person: new(newKey("dave@example.com"))},
		},
		Pools: []reconcile.PoolChange{
			{Op: reconcile.OpUpdate, Pool: "learning-pro", Seats: 2, Assigned: 2, Waiting: 0, OldSeats: 2, OldWaiting: 1},
			{Op: reconcile.OpDelete, Pool: "legacy", OldSeats: 5},
		},
	}
}

func mirrors2() []*reconcile.MirrorDelta {
	alice := aliceProfile
	alice.Title = "Staff Engineer"
	return []*reconcile.MirrorDelta{{
		Source: "hr", Cursor: "c2", Full: false, FetchedAt: t1,
		UpsertUsers:    []*connectors.User{mirrorUser("u1", alice, connectors.StatusActive), mirrorUser("u2", bobProfile, connectors.StatusInactive)},
		DeleteUsers:    []string{"u3"},
		UpsertGroups:   []*connectors.Group{{ExternalID: "g1", Name: "Platform Engineering", Description: "Builds things"}},
		DeleteGroups:   []string{"g2"},
		Members:        map[string][]string{"g1": {"u1"}},
		MembersRemoved: 2,
	}}
}

func TestCommitChangesCascadesAndKeepsHistory(t *testing.T) {
	eachBackend(t, testCommitChangesCascadesAndKeepsHistory)
}

func testCommitChangesCascadesAndKeepsHistory(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	c1 := &reconcile.Commit{Plan: plan1(), Mirrors: mirrors1(), Now: t0}
	commit(t, s, c1)
	c2 := &reconcile.Commit{Plan: plan2(), Mirrors: mirrors2(), Now: t1}
	commit(t, s, c2)
	if c2.Run.ID <= c1.Run.ID {
		t.Errorf("second run id %d not after first %d", c2.Run.ID, c1.Run.ID)
	}

	alice := aliceProfile
	alice.Title = "Staff Engineer"
	want := &reconcile.State{
		People: map[int64]*reconcile.Person{
			1: person(1, "alice@example.com", alice, true, t0, time.Time{}),
			2: person(2, "bob@example.com", bobProfile, false, t0, t1),
			// AUTOINCREMENT: carol's id is never reused.
			4: person(4, "dave@example.com", daveProfile, true, t1, time.Time{}),
		},
		Identities: map[reconcile.IdentityRef]int64{ident("hr", "u1"): 1, ident("hr", "u2"): 2, ident("okta", "00u1"): 4},
		Groups: map[reconcile.GroupRef]*reconcile.Group{
			gref("hr", "g1"):   {ID: 1, Ref: gref("hr", "g1"), Name: "Platform Engineering", Description: "Builds things"},
			gref("okta", "g9"): {ID: 3, Ref: gref("okta", "g9"), Name: "Everyone"},
		},
		Members: map[int64][]int64{1: members(1), 3: members(1, 4)},
		Pools: map[string]*reconcile.Pool{
			"learning-basic": {Name: "learning-basic"},
			"learning-pro":   {Name: "learning-pro", Seats: 2},
		},
		Assignments: map[string]map[int64]reconcile.Instant{
			"learning-basic": {1: at0},
			"learning-pro":   {1: at0, 4: at1},
		},
	}
	if diff := cmp.Diff(want, loadState(t, s)); diff != "" {
		t.Errorf("LoadState after second commit (-want +got):\n%s", diff)
	}

	// Carol is gone with everything that hung on her.
	for _, q := range []string{
		`SELECT count(*) FROM people WHERE id = 3`,
		`SELECT count(*) FROM identities WHERE person_id = 3`,
		`SELECT count(*) FROM memberships WHERE person_id = 3`,
		`SELECT count(*) FROM assignments WHERE person_id = 3`,
		`SELECT count(*) FROM memberships WHERE group_id = 2`,
		`SELECT count(*) FROM pools WHERE name = 'legacy'`,
	} {
		if n := count(t, s, q); n != 0 {
			t.Errorf("%s = %d, want 0", q, n)
		}
	}
	// Bob's seats are history, not gone; his profile is kept.
	type assignment struct {
		Pool    string
		Person  int64
		Granted time.Time
		Revoked *time.Time
		Reason  string
	}
	rows, err := s.db.QueryContext(ctx, `SELECT pool, person_id, granted_at, revoked_at, revoke_reason FROM assignments ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []assignment
	for rows.Next() {
		var a assignment
		var revoked sql.NullTime
		if err := rows.Scan(&a.Pool, &a.Person, &a.Granted, &revoked, &a.Reason); err != nil {
			t.Fatal(err)
		}
		if revoked.Valid {
			a.Revoked = &revoked.Time
		}
		got = append(got, a)
	}
	rows.Close()
	revokedAt := t1
	wantAssignments := []assignment{
		{"learning-basic", 1, t0, nil, ""},
		{"learning-basic", 2, t0, &revokedAt, "deactivated"},
		{"learning-pro", 1, t0, nil, ""},
		{"learning-pro", 2, t0, &revokedAt, "deactivated"},
		{"learning-pro", 4, t1, nil, ""},
	}
	if diff := cmp.Diff(wantAssignments, got); diff != "" {
		t.Errorf("assignments table (-want +got):\n%s", diff)
	}
	var deactivated sql.NullTime
	var bobTitle string
	if err := s.db.QueryRowContext(ctx, `SELECT deactivated_at, title FROM people WHERE id = 2`).Scan(&deactivated, &bobTitle); err != nil {
		t.Fatal(err)
	}
	if !deactivated.Valid || !deactivated.Time.Equal(t1) || bobTitle != "Engineer" {
		t.Errorf("bob: deactivated_at %v, title %q; want %v and the profile kept", deactivated, bobTitle, t1)
	}

	// The mirror took the delta; the full fetch time stays from the first
	// commit.
	wantMirrors := mirrorsAfter1()
	hr := wantMirrors["hr"]
	hr.Cursor, hr.FetchedAt = "c2", t1
	hr.Users["u1"] = mirrorUser("u1", alice, connectors.StatusActive)
	hr.Users["u2"] = mirrorUser("u2", bobProfile, connectors.StatusInactive)
	delete(hr.Users, "u3")
	hr.Groups["g1"] = &connectors.Group{ExternalID: "g1", Name: "Platform Engineering", Description: "Builds things"}
	delete(hr.Groups, "g2")
	hr.Members = map[string][]string{"g1": {"u1"}}
	if diff := cmp.Diff(wantMirrors, loadMirrors(t, s)); diff != "" {
		t.Errorf("LoadMirrors after second commit (-want +got):\n%s", diff)
	}

	wantEvents := []eventKey{
		{"pool.update", "learning-pro"},
		{"identity.unlink", "okta:00u1"},
		{"person.delete", "3"},
		{"person.update", "1"}, {"person.deactivate", "2"}, {"person.create", "4"},
		{"group.update", "1"}, {"group.delete", "2"},
		{"pool.delete", "legacy"},
		{"group.members", "1"}, {"group.members", "3"},
		{"pool.seats", "learning-basic"}, {"pool.seats", "learning-pro"},
	}
	if diff := cmp.Diff(wantEvents, auditKeys(t, s, c2.Run.ID)); diff != "" {
		t.Errorf("audit events of run 2 (-want +got):\n%s", diff)
	}
	if n := len(auditKeys(t, s, c1.Run.ID)); n != 14 {
		t.Errorf("run 1 has %d audit events after run 2, want 14", n)
	}
	evs, err := s.AuditEvents(ctx, c2.Run.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	byAction := map[string]AuditEvent{}
	for _, e := range evs {
		if !e.At.Equal(t1) {
			t.Errorf("event %s at %v, want %v", e.Action, e.At, t1)
		}
		byAction[e.Action] = e
	}
	if e := byAction["person.update"]; e.Before != `{"title":"Engineer"}` || e.After != `{"title":"Staff Engineer"}` {
		t.Errorf("person.update before/after = %s / %s", e.Before, e.After)
	}
	if e := byAction["person.deactivate"]; e.Before != `{"active":"true"}` || e.After != `{"active":"false"}` {
		t.Errorf("person.deactivate before/after = %s / %s", e.Before, e.After)
	}
	if e := byAction["person.delete"]; !strings.Contains(e.Before, `"match_key":"carol@example.com"`) || e.After != "" {
		t.Errorf("person.delete before/after = %s / %s", e.Before, e.After)
	}
	if e := byAction["pool.seats"]; e.ObjectID != "learning-pro" || e.After != `{"pool":"learning-pro","granted":["dave@example.com"],"revoked":[{"person":"bob@example.com","reason":"deactivated"}]}` {
		t.Errorf("pool.seats %s after = %s", e.ObjectID, e.After)
	}
	for _, e := range evs {
		if e.Action == "group.members" && e.ObjectID == "1" && e.After != `{"group":"hr/Platform Engineering","removed":["bob@example.com"]}` {
			t.Errorf("group.members of group 1 after = %s", e.After)
		}
	}
	if got, err := s.IntegrityCheck(ctx); err != nil || got != "ok" {
		t.Errorf("IntegrityCheck = %q, %v", got, err)
	}
	var fkProblems int
	fkCheck := `SELECT count(*) FROM pragma_foreign_key_check`
	if onPostgres(t) {
		// PostgreSQL checks foreign keys at every statement; look for
		// orphans all the same.
		fkCheck = `SELECT (SELECT count(*) FROM identities i WHERE NOT EXISTS (SELECT 1 FROM people p WHERE p.id = i.person_id)) +
			(SELECT count(*) FROM memberships m WHERE NOT EXISTS (SELECT 1 FROM groups g WHERE g.id = m.group_id)) +
			(SELECT count(*) FROM assignments a WHERE NOT EXISTS (SELECT 1 FROM people p WHERE p.id = a.person_id))`
	}
	if err := s.db.QueryRowContext(ctx, fkCheck).Scan(&fkProblems); err != nil || fkProblems != 0 {
		t.Errorf("foreign_key_check: %d problems, %v", fkProblems, err)
	}
}

// A person whose key changes keeps their id, and a reactivated person comes
// back with it too.
func TestCommitRenameAndReactivate(t *testing.T) { eachBackend(t, testCommitRenameAndReactivate) }

func testCommitRenameAndReactivate(t *testing.T) {
	s := openTest(t)
	commit(t, s, &reconcile.Commit{Plan: plan1(), Mirrors: mirrors1(), Now: t0})
	commit(t, s, &reconcile.Commit{Plan: &reconcile.Plan{People: []reconcile.PersonChange{
		{Op: reconcile.OpDeactivate, Person: known(2, "bob@example.com"), Profile: bobProfile},
	}}, Now: t1})

	renamed := aliceProfile
	renamed.Email = "alice.archer@example.com"
	t2 := t1.Add(time.Hour)
	bob := bobProfile
	bob.Department = "Platform"
	commit(t, s, &reconcile.Commit{Plan: &reconcile.Plan{People: []reconcile.PersonChange{
		{Op: reconcile.OpUpdate, Person: known(1, "alice.archer@example.com"), Profile: renamed,
			Edit: &reconcile.PersonEdit{OldKey: "alice@example.com",
				Fields: []reconcile.FieldChange{{Field: "email", Old: "alice@example.com", New: "alice.archer@example.com"}}}},
		{Op: reconcile.OpReactivate, Person: known(2, "bob@example.com"), Profile: bob,
			Edit: &reconcile.PersonEdit{Fields: []reconcile.FieldChange{{Field: "department", Old: "R&D", New: "Platform"}}}},
	}}, Now: t2})
	st := loadState(t, s)
	if diff := cmp.Diff(person(1, "alice.archer@example.com", renamed, true, t0, time.Time{}), st.People[1]); diff != "" {
		t.Errorf("renamed alice (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(person(2, "bob@example.com", bob, true, t0, time.Time{}), st.People[2]); diff != "" {
		t.Errorf("reactivated bob (-want +got):\n%s", diff)
	}
	if st.Identities[ident("hr", "u1")] != 1 || st.Identities[ident("hr", "u2")] != 2 {
		t.Errorf("identities moved: %v", st.Identities)
	}
}

// A commit that fails anywhere writes nothing: not the plan's first
// changes, not the mirrors, not the run.
func TestCommitFailureWritesNothing(t *testing.T) { eachBackend(t, testCommitFailureWritesNothing) }

func testCommitFailureWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		plan *reconcile.Plan
		want string
	}{
		{
			name: "unknown group",
			plan: &reconcile.Plan{
				People:  []reconcile.PersonChange{{Op: reconcile.OpCreate, Person: newKey("eve@example.com"), Profile: reconcile.Profile{Email: "eve@example.com"}}},
				Members: []reconcile.MemberChange{{Group: &reconcile.MemberGroup{Ref: gref("hr", "nope"), Name: "Nope", Op: reconcile.OpAdd}, Person: new(newKey("eve@example.com"))}},
			},
			want: "unknown group hr/nope",
		},
		{
			name: "identity linked twice",
			plan: &reconcile.Plan{
				Pools:  []reconcile.PoolChange{{Op: reconcile.OpCreate, Pool: "new-pool", Seats: 1}},
				People: []reconcile.PersonChange{{Op: reconcile.OpCreate, Person: newKey("eve@example.com"), Profile: reconcile.Profile{Email: "eve@example.com"}, Link: []reconcile.IdentityRef{ident("hr", "u1")}}},
			},
			want: "link identity hr/u1",
		},
		{
			name: "match key taken",
			plan: &reconcile.Plan{
				Groups: []reconcile.GroupChange{{Op: reconcile.OpDelete, Group: gref("hr", "g2"), ID: 2, Name: "Sales"}},
				People: []reconcile.PersonChange{{Op: reconcile.OpCreate, Person: newKey("bob@example.com"), Profile: bobProfile}},
			},
			want: "create person bob@example.com",
		},
		{
			name: "seat granted twice",
			plan: &reconcile.Plan{
				Licenses: []reconcile.LicenseChange{
					{Op: reconcile.OpRevoke, Pool: "learning-basic", Person: new(known(3, "carol@example.com")), Reason: "test"},
					{Op: reconcile.OpGrant, Pool: "learning-pro", Person: new(known(1, "alice@example.com"))},
				},
			},
			want: "write license learning-pro",
		},
		{
			name: "membership added twice",
			plan: &reconcile.Plan{
				Members: []reconcile.MemberChange{{Group: &reconcile.MemberGroup{Ref: gref("hr", "g1"), Name: "Engineering", Op: reconcile.OpAdd}, Person: new(known(1, "alice@example.com"))}},
			},
			want: "write membership",
		},
		{
			name: "unknown new person",
			plan: &reconcile.Plan{
				People:   []reconcile.PersonChange{{Op: reconcile.OpDelete, Person: known(3, "carol@example.com")}},
				Licenses: []reconcile.LicenseChange{{Op: reconcile.OpGrant, Pool: "learning-pro", Person: new(newKey("ghost@example.com"))}},
			},
			want: `unknown new person "ghost@example.com"`,
		},
		{
			name: "membership of a person who does not exist",
			plan: &reconcile.Plan{
				Members: []reconcile.MemberChange{{Group: &reconcile.MemberGroup{Ref: gref("hr", "g1"), Name: "Engineering", Op: reconcile.OpAdd}, Person: new(known(99, "ghost@example.com"))}},
			},
			want: "FOREIGN KEY",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s := openTest(t)
			first := &reconcile.Commit{Plan: plan1(), Mirrors: mirrors1(), Now: t0}
			commit(t, s, first)
			before := loadState(t, s)
			beforeMirrors := loadMirrors(t, s)
			beforeExport := export(t, s)
			beforeRuns, err := s.Runs(ctx, 100)
			if err != nil {
				t.Fatal(err)
			}
			beforeEvents := count(t, s, `SELECT count(*) FROM audit_events`)

			bad := &reconcile.Commit{Plan: tc.plan, Mirrors: mirrors2(), Run: okRun(t1), Now: t1}
			err = s.Commit(ctx, bad)
			if err == nil {
				t.Fatal("Commit succeeded")
			}
			msg, want := err.Error(), tc.want
			if onPostgres(t) {
				// PostgreSQL words its constraint errors in lower case.
				msg, want = strings.ToLower(msg), strings.ToLower(want)
			}
			if !strings.Contains(msg, want) {
				t.Errorf("Commit error = %q, want it to contain %q", err, tc.want)
			}
			if bad.Run.ID != 0 {
				t.Errorf("failed Commit set run id %d", bad.Run.ID)
			}
			if diff := cmp.Diff(before, loadState(t, s)); diff != "" {
				t.Errorf("state changed by a failed commit (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(beforeMirrors, loadMirrors(t, s)); diff != "" {
				t.Errorf("mirrors changed by a failed commit (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(beforeExport, export(t, s)); diff != "" {
				t.Errorf("export changed by a failed commit (-before +after):\n%s", diff)
			}
			afterRuns, err := s.Runs(ctx, 100)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(beforeRuns, afterRuns); diff != "" {
				t.Errorf("runs changed by a failed commit (-before +after):\n%s", diff)
			}
			if n := count(t, s, `SELECT count(*) FROM audit_events`); n != beforeEvents {
				t.Errorf("audit events: %d after a failed commit, %d before", n, beforeEvents)
			}
			if n := count(t, s, `SELECT count(*) FROM assignments`); n != 5 {
				t.Errorf("assignment rows after a failed commit = %d, want 5", n)
			}

			// The store is still usable, and the next run's id follows the
			// last committed one.
			next := &reconcile.Commit{Plan: &reconcile.Plan{}, Now: t1}
			commit(t, s, next)
			if onPostgres(t) && next.Run.ID <= first.Run.ID {
				// A sequence does not roll back: PostgreSQL leaves a gap.
				t.Errorf("run id after a failed commit = %d, want more than %d", next.Run.ID, first.Run.ID)
			} else if !onPostgres(t) && next.Run.ID != first.Run.ID+1 {
				t.Errorf("run id after a failed commit = %d, want %d", next.Run.ID, first.Run.ID+1)
			}
		})
	}
}

func TestCommitCancelled(t *testing.T) { eachBackend(t, testCommitCancelled) }

func testCommitCancelled(t *testing.T) {
	s := openTest(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Commit(ctx, &reconcile.Commit{Plan: plan1(), Mirrors: mirrors1(), Run: okRun(t0), Now: t0}); err == nil {
		t.Fatal("Commit with a cancelled context succeeded")
	}
	if st := loadState(t, s); len(st.People) != 0 {
		t.Errorf("cancelled commit wrote %d people", len(st.People))
	}
	if n := count(t, s, `SELECT count(*) FROM runs`); n != 0 {
		t.Errorf("cancelled commit wrote %d runs", n)
	}
}

// A commit with only mirrors (a run whose plan is empty) writes the mirrors
// and the run, and the store's clock is used when the commit has none.
func TestCommitMirrorsOnly(t *testing.T) { eachBackend(t, testCommitMirrorsOnly) }

func testCommitMirrorsOnly(t *testing.T) {
	s := openTest(t)
	c := &reconcile.Commit{Mirrors: mirrors1(), Run: okRun(t0)}
	commit(t, s, c)
	if diff := cmp.Diff(mirrorsAfter1(), loadMirrors(t, s)); diff != "" {
		t.Errorf("LoadMirrors (-want +got):\n%s", diff)
	}
	if evs := auditKeys(t, s, c.Run.ID); len(evs) != 0 {
		t.Errorf("a commit without a plan recorded audit events: %v", evs)
	}
	if diff := cmp.Diff(reconcile.NewState(), loadState(t, s), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("LoadState (-want +got):\n%s", diff)
	}

	// A full fetch that finds a source empty leaves an empty mirror, not
	// no mirror: the cursor and times are kept.
	commit(t, s, &reconcile.Commit{Mirrors: []*reconcile.MirrorDelta{{
		Source: "okta", Cursor: "okta-cursor-2", Full: true, FetchedAt: t1,
		DeleteUsers: []string{"00u1"}, DeleteGroups: []string{"g9"}, MembersRemoved: 1,
	}}, Run: okRun(t1)})
	okta := loadMirrors(t, s)["okta"]
	want := &reconcile.Mirror{Source: "okta", Cursor: "okta-cursor-2", FullAt: t1, FetchedAt: t1,
		Users: map[string]*connectors.User{}, Groups: map[string]*connectors.Group{}, Members: map[string][]string{}}
	if diff := cmp.Diff(want, okta); diff != "" {
		t.Errorf("emptied okta mirror (-want +got):\n%s", diff)
	}
}
