package reconcile

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/learnsync/learnsync/connectors"
)

// mirrorOf builds a mirror from a snapshot.
func mirrorOf(source string, s *snapshot) *Mirror {
	m := NewMirror(source)
	m.Update(s.result(), t0)
	return m
}

// state is a directory state built by hand.
type stateBuilder struct{ s *State }

func newStateBuilder() *stateBuilder { return &stateBuilder{s: NewState()} }

func (b *stateBuilder) person(id int64, key string, active bool, firstSeen time.Time, idents ...IdentityRef) *stateBuilder {
	// The profile the source user of that key has (see user).
	u := user("", key)
	p := &Person{ID: id, Key: key, Active: active, FirstSeen: InstantOf(firstSeen), Profile: ProfileOf(&u)}
	if !active {
		p.DeactivatedAt = InstantOf(firstSeen.Add(time.Hour))
	}
	b.s.People[id] = p
	for _, r := range idents {
		b.s.Identities[r] = id
	}
	return b
}

func (b *stateBuilder) seat(pool string, seats int, granted time.Time, ids ...int64) *stateBuilder {
	if b.s.Pools[pool] == nil {
		b.s.Pools[pool] = &Pool{Name: pool, Seats: seats}
	}
	if b.s.Assignments[pool] == nil {
		b.s.Assignments[pool] = map[int64]Instant{}
	}
	for _, id := range ids {
		b.s.Assignments[pool][id] = InstantOf(granted)
	}
	return b
}

func ref(src, id string) IdentityRef { return IdentityRef{Source: src, ExternalID: id} }

func ops(p *Plan) []string {
	var out []string
	for _, c := range p.People {
		out = append(out, c.Op.String()+" "+c.Person.Key)
	}
	for _, c := range p.Licenses {
		out = append(out, c.Op.String()+" "+c.Pool+" "+c.Person.Key)
	}
	return out
}

func TestDiffRules(t *testing.T) {
	day := 24 * time.Hour
	engineers := func(users ...connectors.User) *snapshot {
		s := &snapshot{users: users}
		var ids []string
		for _, u := range users {
			ids = append(ids, u.ExternalID)
		}
		return s.group("g", "Engineering", ids...)
	}
	tests := []struct {
		name    string
		rules   Rules
		mirrors map[string]*snapshot
		frozen  map[string]string
		state   *State
		want    []string // people ops, then license ops, in plan order
		check   func(t *testing.T, p *Plan, d *Desired)
	}{
		{
			name:    "never active is never created",
			rules:   hrRules(),
			mirrors: map[string]*snapshot{"hr": {users: []connectors.User{user("1", "a@x.io", status(connectors.StatusInactive))}}},
			state:   NewState(),
			want:    nil,
		},
		{
			name:  "waiting people are served first seen, then user name",
			rules: Rules{MatchOn: "email", Sources: []SourceRules{{Name: "hr"}}, Licenses: []LicenseRule{{Name: "pro", Seats: 2, Groups: []string{"Engineering"}}}},
			mirrors: map[string]*snapshot{"hr": engineers(
				user("1", "zed@x.io"), user("2", "amy@x.io"), user("3", "bea@x.io"), user("4", "new@x.io"))},
			state: newStateBuilder().
				person(1, "zed@x.io", true, t0, ref("hr", "1")).
				person(2, "amy@x.io", true, t0.Add(day), ref("hr", "2")).
				person(3, "bea@x.io", true, t0.Add(day), ref("hr", "3")).s,
			want: []string{"create new@x.io", "grant pro amy@x.io", "grant pro zed@x.io"},
			check: func(t *testing.T, p *Plan, _ *Desired) {
				want := []Shortfall{{Pool: "pro", Seats: 2, Assigned: 2, Waiting: 2, Next: []string{"bea@x.io", "new@x.io"}}}
				if diff := cmp.Diff(want, p.Shortfalls); diff != "" {
					t.Errorf("shortfalls (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:  "holders keep their seats; a freed seat goes to the next in line in the same run",
			rules: Rules{MatchOn: "email", Sources: []SourceRules{{Name: "hr"}}, Licenses: []LicenseRule{{Name: "pro", Seats: 2, Groups: []string{"hr/Engineering"}}}},
			mirrors: map[string]*snapshot{"hr": engineers(
				user("1", "a@x.io"), user("2", "b@x.io", status(connectors.StatusInactive)), user("3", "c@x.io"), user("4", "d@x.io"))},
			state: newStateBuilder().
				person(1, "a@x.io", true, t0, ref("hr", "1")).
				person(2, "b@x.io", true, t0, ref("hr", "2")).
				person(3, "c@x.io", true, t0.Add(day), ref("hr", "3")).
				person(4, "d@x.io", true, t0.Add(2*day), ref("hr", "4")).
				seat("pro", 2, t0, 1, 2).s,
			want: []string{"deactivate b@x.io", "revoke pro b@x.io", "grant pro c@x.io"},
		},
		{
			name:    "a pool that shrinks takes back the newest seats",
			rules:   Rules{MatchOn: "email", Sources: []SourceRules{{Name: "hr"}}, Licenses: []LicenseRule{{Name: "pro", Seats: 1, Groups: []string{"Engineering"}}}},
			mirrors: map[string]*snapshot{"hr": engineers(user("1", "a@x.io"), user("2", "b@x.io"))},
			state: newStateBuilder().
				person(1, "a@x.io", true, t0, ref("hr", "1")).
				person(2, "b@x.io", true, t0, ref("hr", "2")).
				seat("pro", 2, t0, 1).seat("pro", 2, t0.Add(day), 2).s,
			want: []string{"revoke pro b@x.io"},
			check: func(t *testing.T, p *Plan, _ *Desired) {
				if len(p.Shortfalls) != 1 || p.Shortfalls[0].Next[0] != "b@x.io" {
					t.Errorf("shortfalls = %+v, want b waiting", p.Shortfalls)
				}
			},
		},
		{
			name:    "people who left are deleted after delete_after, not before",
			rules:   Rules{MatchOn: "email", Sources: []SourceRules{{Name: "hr"}}, DeleteAfter: 30 * day},
			mirrors: map[string]*snapshot{"hr": {users: []connectors.User{user("3", "c@x.io", status(connectors.StatusInactive))}}},
			state: newStateBuilder().
				person(1, "old@x.io", false, t0.Add(-90*day)).
				person(2, "recent@x.io", false, t0.Add(-2*day)).
				person(3, "c@x.io", false, t0.Add(-60*day), ref("hr", "3")).s,
			want: []string{"delete c@x.io", "delete old@x.io"},
		},
		{
			name:    "a new email on a known identity renames the person",
			rules:   hrRules(),
			mirrors: map[string]*snapshot{"hr": {users: []connectors.User{user("1", "alice.new@x.io")}}},
			state:   newStateBuilder().person(7, "alice@x.io", true, t0, ref("hr", "1")).s,
			want:    []string{"update alice.new@x.io", "grant basic alice.new@x.io"},
			check: func(t *testing.T, p *Plan, _ *Desired) {
				if c := p.People[0]; c.Person.ID != 7 || c.OldKey() != "alice@x.io" {
					t.Errorf("rename = %+v, want person 7 from alice@x.io", c)
				}
			},
		},
		{
			name:    "a frozen source's people lose nothing",
			rules:   Rules{MatchOn: "email", Sources: []SourceRules{{Name: "hr"}, {Name: "okta"}}, Licenses: []LicenseRule{{Name: "pro", Groups: []string{"Engineering"}}}},
			mirrors: map[string]*snapshot{"hr": {}},
			frozen:  map[string]string{"okta": "timeout"},
			state: newStateBuilder().
				person(1, "a@x.io", true, t0, ref("okta", "1")).
				person(2, "b@x.io", true, t0, ref("hr", "2")).
				seat("pro", 0, t0, 1, 2).s,
			want: []string{"deactivate b@x.io", "revoke pro b@x.io"},
		},
		{
			name:  "scope limits a source to members of its groups",
			rules: Rules{MatchOn: "email", Sources: []SourceRules{{Name: "hr", ScopeGroups: []string{"Learning Users"}, SyncGroups: []string{"*"}}}},
			mirrors: map[string]*snapshot{"hr": (&snapshot{users: []connectors.User{user("1", "in@x.io"), user("2", "out@x.io")}}).
				group("g1", "Learning Users", "1")},
			state: NewState(),
			want:  []string{"create in@x.io"},
		},
		{
			name:  "match on user name",
			rules: Rules{MatchOn: "user_name", Sources: []SourceRules{{Name: "hr"}, {Name: "okta"}}},
			mirrors: map[string]*snapshot{
				"hr":   {users: []connectors.User{user("1", "jdoe@x.io")}},
				"okta": {users: []connectors.User{user("o1", "other@y.io", func(u *connectors.User) { u.UserName = " JDOE " })}},
			},
			state: NewState(),
			want:  []string{"create jdoe"},
			check: func(t *testing.T, p *Plan, _ *Desired) {
				if got := p.People[0].Link; len(got) != 2 {
					t.Errorf("links = %v, want both identities", got)
				}
			},
		},
		{
			name:  "duplicate match keys in one source: the linked one wins, the other is reported",
			rules: hrRules(),
			mirrors: map[string]*snapshot{"hr": {users: []connectors.User{
				user("1", "dup@x.io", title("first")), user("2", "DUP@x.io", title("second")), user("3", "", title("no email"))}}},
			state: newStateBuilder().person(5, "dup@x.io", true, t0, ref("hr", "2")).s,
			want:  []string{"update dup@x.io", "grant basic dup@x.io"},
			check: func(t *testing.T, p *Plan, d *Desired) {
				if p.People[0].Profile.Title != "second" {
					t.Errorf("profile from %q, want the linked user's", p.People[0].Profile.Title)
				}
				var reasons []string
				for _, pr := range d.Problems {
					reasons = append(reasons, pr.String())
				}
				want := []string{
					`hr: user 1: same email "dup@x.io" as user 2 of this source: skipped`,
					"hr: user 3: no email to match on: skipped",
				}
				if diff := cmp.Diff(want, reasons); diff != "" {
					t.Errorf("problems (-want +got):\n%s", diff)
				}
			},
		},
		{
			name:    "a pool removed from the configuration is emptied",
			rules:   Rules{MatchOn: "email", Sources: []SourceRules{{Name: "hr"}}},
			mirrors: map[string]*snapshot{"hr": {users: []connectors.User{user("1", "a@x.io")}}},
			state:   newStateBuilder().person(1, "a@x.io", true, t0, ref("hr", "1")).seat("old", 5, t0, 1).s,
			want:    []string{"revoke old a@x.io"},
			check: func(t *testing.T, p *Plan, _ *Desired) {
				if len(p.Pools) != 1 || p.Pools[0].Op != OpDelete {
					t.Errorf("pools = %+v, want old deleted", p.Pools)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mirrors := map[string]*Mirror{}
			for src, s := range tt.mirrors {
				mirrors[src] = mirrorOf(src, s)
			}
			stateBefore := cloneState(tt.state)
			d := Desire(tt.rules, mirrors, KnownIdentities(tt.state.Identities), tt.frozen, t0)
			p := Diff(d, tt.state)
			if diff := cmp.Diff(tt.want, ops(p)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if tt.check != nil {
				tt.check(t, p, d)
			}
			if diff := cmp.Diff(stateBefore, tt.state); diff != "" {
				t.Errorf("Diff mutated its input:\n%s", diff)
			}
			// Applying the plan converges: a second diff is empty.
			st := cloneState(tt.state)
			next := int64(1000)
			if err := applyPlan(st, p, t0, &next); err != nil {
				t.Fatalf("apply: %v", err)
			}
			d2 := Desire(tt.rules, mirrors, KnownIdentities(st.Identities), tt.frozen, t0)
			if p2 := Diff(d2, st); !p2.Empty() {
				t.Errorf("re-plan not empty: %v", ops(p2))
			}
		})
	}
}

func TestPlanIsSortedAndStable(t *testing.T) {
	var users []connectors.User
	for _, e := range []string{"m@x.io", "b@x.io", "z@x.io", "a@x.io"} {
		users = append(users, user(e[:1], e))
	}
	s := (&snapshot{users: users}).group("g2", "Two", "m", "a").group("g1", "One", "z", "b")
	m := map[string]*Mirror{"hr": mirrorOf("hr", s)}
	first := Diff(Desire(hrRules(), m, nil, nil, t0), NewState())
	for range 20 {
		again := Diff(Desire(hrRules(), m, nil, nil, t0), NewState())
		if diff := cmp.Diff(first, again); diff != "" {
			t.Fatalf("plan not stable:\n%s", diff)
		}
	}
	keys := []string{}
	for _, c := range first.People {
		keys = append(keys, c.Person.Key)
	}
	if !slices.IsSorted(keys) {
		t.Errorf("people not sorted: %v", keys)
	}
}

func TestMirrorUpdateDelta(t *testing.T) {
	m := mirrorOf("okta", (&snapshot{users: []connectors.User{user("1", "a@x.io"), user("2", "b@x.io")}}).group("g", "G", "1", "2"))
	d := m.Update(&connectors.Result{
		Users:          []connectors.User{user("1", "a@x.io", title("Boss")), user("3", "c@x.io")},
		DeletedUsers:   []string{"2"},
		Groups:         []connectors.Group{{ExternalID: "h", Name: "H"}},
		AddedMembers:   []connectors.Membership{{GroupID: "h", UserID: "3"}, {GroupID: "missing", UserID: "3"}},
		RemovedMembers: []connectors.Membership{{GroupID: "g", UserID: "1"}},
		Cursor:         "next",
	}, t0)
	if m.Cursor != "next" || len(m.Users) != 2 || m.Users["1"].Title != "Boss" {
		t.Errorf("mirror = %+v", m)
	}
	if len(m.Members["g"]) != 0 || len(m.Members["h"]) != 1 {
		t.Errorf("members = %v", m.Members)
	}
	want := map[string][]string{"g": {}, "h": {"3"}}
	if diff := cmp.Diff(want, d.Members); diff != "" {
		t.Errorf("changed member lists (-want +got):\n%s", diff)
	}
	if d.MembersAdded != 1 || d.MembersRemoved != 2 {
		t.Errorf("members added %d, removed %d; want 1, 2", d.MembersAdded, d.MembersRemoved)
	}
	if got := d.Rows(); got != 2+1+1+1+2 {
		t.Errorf("rows = %d", got)
	}
	// A delta that lists a member and removes it again nets out.
	d = m.Update(&connectors.Result{Members: map[string][]string{"h": {"3", "1"}},
		RemovedMembers: []connectors.Membership{{GroupID: "h", UserID: "1"}}}, t0)
	if diff := cmp.Diff(map[string][]string{"h": {"3"}}, d.Members); diff != "" {
		t.Errorf("netted member lists (-want +got):\n%s", diff)
	}
	// The same full snapshot again changes no row.
	full := &connectors.Result{Full: true, Users: []connectors.User{*m.Users["1"], *m.Users["3"]},
		Groups: []connectors.Group{*m.Groups["g"], *m.Groups["h"]}, Members: map[string][]string{"h": {"3"}}}
	m.Update(full, t0)
	if d := m.Update(full, t0); d.Rows() != 0 {
		t.Errorf("an unchanged full fetch writes %d rows", d.Rows())
	}
}

func TestSetMembersWithDuplicatesInTheList(t *testing.T) {
	m := mirrorOf("hr", (&snapshot{users: []connectors.User{user("a", "a@x.io"), user("b", "b@x.io")}}).group("g", "G", "a", "b"))
	d := m.Update(&connectors.Result{Members: map[string][]string{"g": {"a", "a"}}}, t0)
	if slices.Contains(m.Members["g"], "b") || d.MembersRemoved != 1 {
		t.Errorf("members = %v, removed %d; want b removed", m.Members["g"], d.MembersRemoved)
	}
	d = m.Update(&connectors.Result{Members: map[string][]string{"g": {"a", "c", "c"}}}, t0)
	if len(m.Members["g"]) != 2 || d.MembersAdded != 1 || d.MembersRemoved != 0 {
		t.Errorf("members = %v, added %d removed %d", m.Members["g"], d.MembersAdded, d.MembersRemoved)
	}
}
