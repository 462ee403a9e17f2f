package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/learnsync/learnsync/connectors"
)

// hashStore is a ScopedStore that holds stored hashes and records what
// MirrorPart is asked for; it has no stored mirror.
type hashStore struct {
	ScopedStore
	users, groups map[string]int64
	partUsers     [][]string
}

func (s *hashStore) MirrorHashes(context.Context, string) (map[string]int64, map[string]int64, error) {
	return s.users, s.groups, nil
}

func (s *hashStore) MirrorPart(_ context.Context, _ string, users, _ []string) (*Mirror, error) {
	s.partUsers = append(s.partUsers, users)
	return nil, nil
}

func deltaFixture() *connectors.Result {
	return &connectors.Result{Full: true, Cursor: "c1",
		Users:   []connectors.User{user("1", "a@x.io"), user("2", "b@x.io"), user("3", "c@x.io")},
		Groups:  []connectors.Group{{ExternalID: "g", Name: "G"}, {ExternalID: "h", Name: "H"}},
		Members: map[string][]string{"g": {"1", "2"}},
	}
}

func userIDs(us []connectors.User) []string {
	var ids []string
	for _, u := range us {
		ids = append(ids, u.ExternalID)
	}
	return ids
}

// A source the store holds nothing of is fresh: the delta is the whole
// result, sharing its lists rather than copying a million users.
func TestSnapshotDeltaOfAFreshSource(t *testing.T) {
	r := deltaFixture()
	d, fresh, err := snapshotDelta(context.Background(), &hashStore{}, "hr", r, nil)
	if err != nil || !fresh {
		t.Fatalf("snapshotDelta = fresh %v, err %v; want fresh", fresh, err)
	}
	if len(d.Users) != 3 || &d.Users[0] != &r.Users[0] {
		t.Errorf("delta users %v do not share the result's", userIDs(d.Users))
	}
	if len(d.Groups) != 2 || &d.Groups[0] != &r.Groups[0] {
		t.Errorf("delta groups %v do not share the result's", d.Groups)
	}
	want := map[string][]string{"g": {"1", "2"}, "h": {}}
	if diff := cmp.Diff(want, d.Members); diff != "" {
		t.Errorf("delta members (-want +got):\n%s", diff)
	}
	if _, ok := r.Members["h"]; ok {
		t.Error("snapshotDelta added a member list to the result")
	}
	if len(d.DeletedUsers)+len(d.DeletedGroups) != 0 {
		t.Errorf("deleted %v %v from a fresh source", d.DeletedUsers, d.DeletedGroups)
	}
}

// Against stored hashes, the delta holds a copy of exactly the rows that
// differ, and names the stored rows the result lacks.
func TestSnapshotDeltaOfAStoredSource(t *testing.T) {
	r := deltaFixture()
	g := r.Groups[0]
	ss := &hashStore{
		users:  map[string]int64{"1": UserHash(&r.Users[0]), "2": UserHash(&r.Users[0]), "9": 1},
		groups: map[string]int64{"g": GroupHash(&g, slices.Values(r.Members["g"])), "h": 7},
	}
	d, fresh, err := snapshotDelta(context.Background(), ss, "hr", r, nil)
	if err != nil || fresh {
		t.Fatalf("snapshotDelta = fresh %v, err %v; want a stored source", fresh, err)
	}
	if got := userIDs(d.Users); !slices.Equal(got, []string{"2", "3"}) {
		t.Errorf("delta users = %v, want [2 3]", got)
	}
	if cap(d.Users) != 2 || &d.Users[0] == &r.Users[1] {
		t.Errorf("delta users are not an exact copy: cap %d", cap(d.Users))
	}
	d.Users[0].Email = "changed@x.io"
	if r.Users[1].Email != "b@x.io" {
		t.Error("the delta's users share the result's")
	}
	if len(d.Groups) != 1 || d.Groups[0].ExternalID != "h" || d.Members["h"] == nil {
		t.Errorf("delta groups = %v, members %v; want h with an empty list", d.Groups, d.Members)
	}
	if !slices.Equal(d.DeletedUsers, []string{"9"}) || len(d.DeletedGroups) != 0 {
		t.Errorf("deleted users %v groups %v, want [9] and none", d.DeletedUsers, d.DeletedGroups)
	}
}

// A fresh source's mirror is built from the fetch without asking the store
// for rows it does not have.
func TestBuildMirrorOfAFreshSource(t *testing.T) {
	ss := &hashStore{}
	c := &cycle{now: t0}
	in := &inputs{mirrors: map[string]*Mirror{}, built: map[string]*MirrorDelta{}}
	f := fetched{name: "hr", mode: "full", result: deltaFixture()}
	if err := c.buildMirror(context.Background(), ss, f, in); err != nil {
		t.Fatal(err)
	}
	if len(ss.partUsers) != 1 || ss.partUsers[0] != nil {
		t.Errorf("MirrorPart asked for users %q, want none", ss.partUsers)
	}
	d := in.built["hr"]
	if d == nil || len(d.UpsertUsers) != 3 || len(d.UpsertGroups) != 2 || d.MembersAdded != 2 {
		t.Fatalf("built delta = %+v", d)
	}
	m := in.mirrors["hr"]
	if len(m.Users) != 3 || len(m.Groups) != 2 || !slices.Equal(m.Members["g"], []string{"1", "2"}) || m.Cursor != "c1" {
		t.Errorf("mirror = %+v", m)
	}
}

// A PersonChange reads in JSON as it did with its edit in line: the same
// keys in the same order, the edit's only when set.
func TestPersonChangeJSON(t *testing.T) {
	p := Profile{Email: "a@x.io"}
	changes := []PersonChange{
		{Op: OpCreate, Person: PersonRef{Key: "a@x.io"}, Profile: p, Link: []IdentityRef{{Source: "hr", ExternalID: "1"}}},
		{Op: OpUpdate, Person: PersonRef{ID: 2, Key: "a@x.io"}, Profile: p, Edit: &PersonEdit{OldKey: "old@x.io",
			Fields: []FieldChange{{Field: "email", Old: "old@x.io", New: "a@x.io"}}, Unlink: []IdentityRef{{Source: "okta", ExternalID: "00u"}}}},
	}
	b, err := json.Marshal(changes)
	if err != nil {
		t.Fatal(err)
	}
	profile := `"profile":{"user_name":"","email":"a@x.io","given_name":"","family_name":"","display_name":"","title":"","department":"","employee_number":"","manager":"","cost_center":""}`
	want := `[{"op":"create","person":{"key":"a@x.io"},` + profile + `,"link":[{"source":"hr","external_id":"1"}]},` +
		`{"op":"update","person":{"id":2,"key":"a@x.io"},"old_key":"old@x.io","fields":[{"field":"email","old":"old@x.io","new":"a@x.io"}],` +
		profile + `,"unlink":[{"source":"okta","external_id":"00u"}]}]`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
	var back []PersonChange
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(changes, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if back[0].Edit != nil || back[0].OldKey() != "" || back[0].Fields() != nil || back[0].Unlink() != nil {
		t.Errorf("a create read back with an edit: %+v", back[0].Edit)
	}
}

// A person's memberships and seats share one reference: a first import at
// 1M people plans five million memberships, which would otherwise hold a
// copy each.
func TestPlanSharesPersonRefs(t *testing.T) {
	s := (&snapshot{users: []connectors.User{user("1", "a@x.io"), user("2", "b@x.io")}}).group("g", "G", "1", "2").group("h", "H", "2")
	rules := Rules{MatchOn: "email", Sources: []SourceRules{{Name: "hr", SyncGroups: []string{"*"}}},
		Licenses: []LicenseRule{{Name: "basic", AllActive: true}, {Name: "pro", Seats: 5, Groups: []string{"G"}}}}
	state := newStateBuilder().person(9, "b@x.io", true, t0, ref("hr", "2")).s
	p := Diff(Desire(rules, map[string]*Mirror{"hr": mirrorOf("hr", s)}, KnownIdentities(state.Identities), nil, t0), state)
	refs := map[string]*PersonRef{}
	share := func(what string, r *PersonRef) {
		if r == nil {
			t.Fatalf("%s: no person", what)
		}
		if first, ok := refs[r.Key]; ok && first != r {
			t.Errorf("%s: %s has a reference of its own", what, r.Key)
		}
		refs[r.Key] = r
	}
	for _, c := range p.Members {
		share("membership "+c.Group.Name, c.Person)
	}
	for _, c := range p.Licenses {
		share("seat "+c.Pool, c.Person)
	}
	if a, b := refs["a@x.io"], refs["b@x.io"]; a == nil || a.ID != 0 || b == nil || b.ID != 9 {
		t.Errorf("references: a %+v, b %+v; want a new (ID 0) and b 9", a, b)
	}
	if len(p.Members) != 3 || len(p.Licenses) != 4 {
		t.Errorf("%d memberships and %d seats, want 3 and 4", len(p.Members), len(p.Licenses))
	}
}

// Diff indexes first identities by person id in a table when the ids are
// dense, in a map when they are not: both plan the same.
func TestDiffIdentitiesDenseAndSparse(t *testing.T) {
	s := &snapshot{users: []connectors.User{user("1", "alice.new@x.io"), user("2", "bob@x.io")}}
	plan := func(alice, bob int64) *Plan {
		state := newStateBuilder().
			person(alice, "alice@x.io", true, t0, ref("hr", "1"), ref("okta", "00u1")).
			person(bob, "bob@x.io", true, t0, ref("hr", "2"), ref("hr", "old-2")).s
		return Diff(Desire(hrRules(), map[string]*Mirror{"hr": mirrorOf("hr", s)}, KnownIdentities(state.Identities), nil, t0), state)
	}
	const far = 5_000_000_000
	dense, sparse := plan(7, 8), plan(far+7, far+8)
	for _, p := range []*Plan{dense, sparse} {
		for i := range p.People {
			p.People[i].Person.ID %= far
		}
		for _, c := range p.Licenses {
			c.Person.ID %= far
		}
	}
	if diff := cmp.Diff(dense, sparse); diff != "" {
		t.Errorf("sparse ids plan differently (-dense +sparse):\n%s", diff)
	}
	// Alice is renamed and loses her okta identity; bob loses old-2.
	var got []string
	for _, c := range dense.People {
		got = append(got, fmt.Sprintf("%s %s %d old=%q unlink=%v", c.Op, c.Person.Key, c.Person.ID, c.OldKey(), c.Unlink()))
	}
	want := []string{
		`update alice.new@x.io 7 old="alice@x.io" unlink=[{okta 00u1}]`,
		`update bob@x.io 8 old="" unlink=[{hr old-2}]`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("people:\n got %q\nwant %q", got, want)
	}
}

func TestIDFlags(t *testing.T) {
	for _, dense := range []bool{true, false} {
		df := &differ{maxID: 10, denseIDs: dense}
		f := df.newFlags()
		f.add(3)
		f.add(10)
		if !f.has(3) || !f.has(10) || f.has(4) || f.has(-1) || f.has(11) {
			t.Errorf("dense %v: has(3, 10, 4, -1, 11) wrong", dense)
		}
		f.add(1 << 40) // beyond the state's ids: still kept
		if !f.has(1<<40) || !f.has(3) || !f.has(10) || f.has(4) {
			t.Errorf("dense %v: after an id beyond the table: lost or invented ids", dense)
		}
		f.clear()
		if f.has(3) || f.has(1<<40) {
			t.Errorf("dense %v: clear kept ids", dense)
		}
	}
}
