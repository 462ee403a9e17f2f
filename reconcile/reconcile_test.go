package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/learnsync/learnsync/connectors"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// user builds an active connector user from an email.
func user(id, email string, mods ...func(*connectors.User)) connectors.User {
	name, _, _ := strings.Cut(strings.TrimSpace(strings.ToLower(email)), "@")
	if name == "" {
		name = "nobody" + id
	}
	u := connectors.User{ExternalID: id, UserName: name, Email: email, GivenName: strings.ToUpper(name[:1]) + name[1:],
		FamilyName: "Doe", DisplayName: name + " Doe", Title: "Engineer", Department: "R&D", Status: connectors.StatusActive}
	for _, m := range mods {
		m(&u)
	}
	return u
}

func status(s connectors.Status) func(*connectors.User) {
	return func(u *connectors.User) { u.Status = s }
}

func title(t string) func(*connectors.User) { return func(u *connectors.User) { u.Title = t } }

// snapshot is an org as a source serves it.
type snapshot struct {
	users   []connectors.User
	groups  []connectors.Group
	members map[string][]string
}

func (s *snapshot) group(id, name string, members ...string) *snapshot {
	s.groups = append(s.groups, connectors.Group{ExternalID: id, Name: name})
	if s.members == nil {
		s.members = map[string][]string{}
	}
	s.members[id] = members
	return s
}

func (s *snapshot) result() *connectors.Result {
	return &connectors.Result{Full: true, Users: slices.Clone(s.users), Groups: slices.Clone(s.groups), Members: s.members, Cursor: "c"}
}

// world runs the engine against an in-memory store and fake sources, and
// checks after every apply that a new plan is empty.
type world struct {
	t       *testing.T
	store   *memStore
	sources map[string]*fakeConnector
	engine  *Engine
	now     time.Time
}

func newWorld(t *testing.T, rules Rules, names ...string) *world {
	w := &world{t: t, store: newMemStore(), sources: map[string]*fakeConnector{}, now: t0}
	w.engine = &Engine{Store: w.store, Rules: rules, Now: func() time.Time { return w.now }}
	for _, n := range names {
		fc := &fakeConnector{result: &connectors.Result{Full: true}}
		w.sources[n] = fc
		var sr SourceRules
		for _, r := range rules.Sources {
			if r.Name == n {
				sr = r
			}
		}
		w.engine.Sources = append(w.engine.Sources, Source{Rules: sr, Connector: fc})
	}
	return w
}

func (w *world) serve(source string, s *snapshot) {
	w.sources[source].result = s.result()
	w.sources[source].err = nil
}

func (w *world) run(opts RunOptions) *Outcome {
	w.t.Helper()
	w.now = w.now.Add(time.Hour)
	out, err := w.engine.Run(context.Background(), opts)
	if err != nil {
		w.t.Fatalf("run: %v", err)
	}
	if out.Applied {
		again, err := w.engine.Run(context.Background(), RunOptions{DryRun: true})
		if err != nil {
			w.t.Fatalf("re-plan: %v", err)
		}
		if !again.Plan.Empty() {
			b, _ := json.MarshalIndent(again.Plan, "", "  ")
			w.t.Fatalf("re-plan after apply is not empty:\n%s", b)
		}
	}
	return out
}

func (w *world) person(key string) *Person {
	for _, p := range w.store.state.People {
		if p.Key == key {
			return p
		}
	}
	return nil
}

func (w *world) holders(pool string) []string {
	var out []string
	for id := range w.store.state.Assignments[pool] {
		out = append(out, w.store.state.People[id].Key)
	}
	slices.Sort(out)
	return out
}

func (w *world) members(source, gid string) []string {
	g := w.store.state.Groups[GroupRef{source, gid}]
	if g == nil {
		return nil
	}
	var out []string
	for _, id := range w.store.state.Members[g.ID] {
		out = append(out, w.store.state.People[id].Key)
	}
	slices.Sort(out)
	return out
}

func hrRules() Rules {
	return Rules{
		MatchOn: "email",
		Sources: []SourceRules{{Name: "hr", SyncGroups: []string{"*"}}},
		Licenses: []LicenseRule{
			{Name: "pro", Seats: 2, Groups: []string{"hr/Engineering"}},
			{Name: "basic", AllActive: true},
		},
	}
}

// golden compares v, as indented JSON, with testdata/name.golden.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("plan differs from %s (-want +got):\n%s", path, diff)
	}
}

// TestLifecycleGolden drives one source through create, change, leave and
// come back, comparing every plan with a golden file.
func TestLifecycleGolden(t *testing.T) {
	w := newWorld(t, hrRules(), "hr")
	org := &snapshot{users: []connectors.User{
		user("1", "alice@example.com"), user("2", "bob@example.com"), user("3", "carol@example.com"),
		user("4", "dan@example.com"), user("5", "erin@example.com", status(connectors.StatusInactive)),
	}}
	org.group("g1", "Engineering", "1", "2", "3", "5").group("g2", "Sales", "4")
	w.serve("hr", org)

	// 1. First import: erin was never active and is not created; the pro
	// pool has 2 seats for 3 engineers.
	out := w.run(RunOptions{})
	golden(t, "lifecycle-1-create", out.Plan)
	if w.person("erin@example.com") != nil {
		t.Error("a person inactive everywhere was created")
	}
	if got, want := w.holders("pro"), []string{"alice@example.com", "bob@example.com"}; !slices.Equal(got, want) {
		t.Errorf("pro holders = %v, want %v (first seen, then user name)", got, want)
	}
	if len(out.Plan.Shortfalls) != 1 || out.Plan.Shortfalls[0].Waiting != 1 || out.Plan.Shortfalls[0].Next[0] != "carol@example.com" {
		t.Errorf("shortfall = %+v, want carol waiting", out.Plan.Shortfalls)
	}
	aliceID := w.person("alice@example.com").ID

	// 2. A change: bob's title, a group renamed, dan moves to Engineering.
	org.users[1].Title = "Staff Engineer"
	org.groups[1].Name = "Sales EMEA"
	org.members["g1"] = append(org.members["g1"], "4")
	w.serve("hr", org)
	out = w.run(RunOptions{})
	golden(t, "lifecycle-2-change", out.Plan)

	// 3. alice leaves: deactivated, her seat goes to carol in the same run.
	org.users[0].Status = connectors.StatusInactive
	w.serve("hr", org)
	out = w.run(RunOptions{})
	golden(t, "lifecycle-3-leave", out.Plan)
	if a := w.person("alice@example.com"); a.Active || a.DeactivatedAt.IsZero() {
		t.Errorf("alice = %+v, want deactivated", a)
	}
	if got, want := w.holders("pro"), []string{"bob@example.com", "carol@example.com"}; !slices.Equal(got, want) {
		t.Errorf("pro holders after alice left = %v, want %v", got, want)
	}
	if got := w.members("hr", "g1"); slices.Contains(got, "alice@example.com") {
		t.Errorf("deactivated alice still in Engineering: %v", got)
	}
	if a := w.person("alice@example.com"); a.Title != "Engineer" {
		t.Errorf("profile not kept on deactivation: %+v", a)
	}

	// 4. alice comes back: same id, and she waits for a seat behind dan?
	// No: dan was seen before her return but alice was seen first of all.
	org.users[0].Status = connectors.StatusActive
	w.serve("hr", org)
	out = w.run(RunOptions{})
	golden(t, "lifecycle-4-return", out.Plan)
	if a := w.person("alice@example.com"); a.ID != aliceID || !a.Active {
		t.Errorf("alice came back as %+v, want id %d active", a, aliceID)
	}

	// 5. bob disappears from the export: deactivated, seat to the next.
	org.users = slices.Delete(org.users, 1, 2)
	w.serve("hr", org)
	out = w.run(RunOptions{})
	golden(t, "lifecycle-5-gone", out.Plan)
	if b := w.person("bob@example.com"); b == nil || b.Active {
		t.Errorf("bob = %+v, want kept and deactivated", b)
	}
}

func TestMultiSourceGolden(t *testing.T) {
	rules := Rules{
		MatchOn: "email",
		Sources: []SourceRules{
			{Name: "hr", SyncGroups: []string{"*"}},
			{Name: "okta", SyncGroups: []string{"Learn*"}},
		},
		Licenses: []LicenseRule{{Name: "pro", Groups: []string{"Learners"}}},
	}
	w := newWorld(t, rules, "hr", "okta")
	hr := &snapshot{users: []connectors.User{
		user("h1", "Alice@Example.com", title("HR title")),
		user("h2", "bob@example.com", status(connectors.StatusInactive)),
	}}
	okta := &snapshot{users: []connectors.User{
		user("o1", " alice@example.com ", title("Okta title"), func(u *connectors.User) { u.CostCenter = "CC-1" }),
		user("o2", "BOB@example.com"),
		user("o3", "carol@example.com", status(connectors.StatusSkip)),
	}}
	okta.group("og1", "Learners", "o1", "o2", "o3").group("og2", "Admins", "o1")
	w.serve("hr", hr)
	w.serve("okta", okta)
	out := w.run(RunOptions{})
	golden(t, "multi-source", out.Plan)

	a := w.person("alice@example.com")
	if a == nil || a.Title != "HR title" || a.CostCenter != "CC-1" {
		t.Errorf("alice = %+v: want the earlier source's title and the later source's cost center", a)
	}
	b := w.person("bob@example.com")
	if b == nil || !b.Active {
		t.Errorf("bob = %+v: active in okta, so active", b)
	}
	if len(w.store.state.People) != 2 {
		t.Errorf("people = %d, want 2 (carol is STAGED-like skip)", len(w.store.state.People))
	}
	if _, ok := w.store.state.Groups[GroupRef{"okta", "og2"}]; ok {
		t.Error("Admins mirrored although sync_groups is Learn*")
	}
	if got := w.holders("pro"); !slices.Equal(got, []string{"alice@example.com", "bob@example.com"}) {
		t.Errorf("pro holders = %v", got)
	}
}

func TestFrozenSourceLosesNobody(t *testing.T) {
	rules := Rules{
		MatchOn:  "email",
		Sources:  []SourceRules{{Name: "hr", SyncGroups: []string{"*"}}, {Name: "okta", SyncGroups: []string{"*"}}},
		Licenses: []LicenseRule{{Name: "pro", Groups: []string{"okta/Learners"}}},
	}
	w := newWorld(t, rules, "hr", "okta")
	hr := &snapshot{users: []connectors.User{user("h1", "alice@example.com"), user("h2", "bob@example.com")}}
	okta := &snapshot{users: []connectors.User{user("o1", "bob@example.com"), user("o2", "carol@example.com")}}
	okta.group("og1", "Learners", "o1", "o2")
	w.serve("hr", hr)
	w.serve("okta", okta)
	if out := w.run(RunOptions{}); out.Run.Result != ResultOK {
		t.Fatalf("first run = %s", out.Run.Result)
	}
	mirrorBefore := cloneMirror(w.store.mirrors["okta"])

	// okta fails; meanwhile bob left HR. bob is still in okta's last known
	// state, carol only in okta: neither may lose anything.
	w.sources["okta"].err = errors.New("503 Service Unavailable")
	hr.users = hr.users[:1]
	w.serve("hr", hr)
	out := w.run(RunOptions{})
	golden(t, "frozen", out.Plan)
	if out.Run.Result != ResultPartial || !out.Applied {
		t.Fatalf("result = %s applied=%v, want partial and applied", out.Run.Result, out.Applied)
	}
	for _, key := range []string{"bob@example.com", "carol@example.com"} {
		if p := w.person(key); p == nil || !p.Active {
			t.Errorf("%s = %+v, want still active while okta is frozen", key, p)
		}
	}
	if got := w.holders("pro"); !slices.Equal(got, []string{"bob@example.com", "carol@example.com"}) {
		t.Errorf("pro holders = %v, want unchanged", got)
	}
	if diff := cmp.Diff(mirrorBefore, w.store.mirrors["okta"]); diff != "" {
		t.Errorf("frozen source's mirror changed:\n%s", diff)
	}
	var sr SourceRun
	for _, s := range out.Run.Sources {
		if s.Name == "okta" {
			sr = s
		}
	}
	if sr.Result != "failed" || !strings.Contains(sr.Error, "503") {
		t.Errorf("okta source run = %+v", sr)
	}

	// Even a protected person is frozen only while the source is: once
	// okta answers again without carol, she is deactivated.
	okta.users = okta.users[:1]
	okta.members["og1"] = []string{"o1"}
	w.serve("okta", okta)
	w.run(RunOptions{})
	if p := w.person("carol@example.com"); p.Active {
		t.Error("carol still active after okta recovered without her")
	}
}

func TestAllSourcesFailed(t *testing.T) {
	w := newWorld(t, hrRules(), "hr")
	w.serve("hr", &snapshot{users: []connectors.User{user("1", "a@example.com")}})
	w.run(RunOptions{})
	w.sources["hr"].err = errors.New("connection refused")
	commits := w.store.commits
	out := w.run(RunOptions{})
	if out.Run.Result != ResultFailed || out.Applied || w.store.commits != commits {
		t.Fatalf("result=%s applied=%v commits=%d->%d; want failed, nothing applied", out.Run.Result, out.Applied, commits, w.store.commits)
	}
	if last := w.store.runs[len(w.store.runs)-1]; last.Result != ResultFailed {
		t.Errorf("recorded run = %s", last.Result)
	}
}

func TestSafetyBlocksMassDeactivation(t *testing.T) {
	var users []connectors.User
	for i := range 10 {
		users = append(users, user(string(rune('a'+i)), string(rune('a'+i))+"@example.com"))
	}
	tests := []struct {
		name    string
		safety  Safety
		leave   int
		blocked bool
	}{
		{"under both limits", Safety{MaxDeactivations: 3, MaxDeactivationPercent: 50}, 3, false},
		{"over the count", Safety{MaxDeactivations: 2}, 3, true},
		{"over the share", Safety{MaxDeactivationPercent: 20}, 3, true},
		{"exactly the share", Safety{MaxDeactivationPercent: 30}, 3, false},
		{"limits off", Safety{}, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, hrRules(), "hr")
			w.engine.Safety = tt.safety
			w.serve("hr", &snapshot{users: slices.Clone(users)})
			w.run(RunOptions{})
			w.serve("hr", &snapshot{users: slices.Clone(users[tt.leave:])})
			commits := w.store.commits
			out := w.run(RunOptions{})
			if got := out.Run.Result == ResultBlocked; got != tt.blocked {
				t.Fatalf("blocked = %v (%s), want %v", got, out.Blocked, tt.blocked)
			}
			if !tt.blocked {
				return
			}
			if w.store.commits != commits || out.Applied {
				t.Fatal("a blocked plan was applied")
			}
			last := w.store.runs[len(w.store.runs)-1]
			if last.Result != ResultBlocked || last.Plan == nil || last.Error == "" {
				t.Errorf("blocked run recorded as %+v", last)
			}
			// Blocked again on the next run: nothing changed.
			if out := w.run(RunOptions{}); out.Run.Result != ResultBlocked {
				t.Errorf("second run = %s, want still blocked", out.Run.Result)
			}
			out = w.run(RunOptions{AllowMassDeactivation: true})
			if out.Run.Result != ResultOK || !out.Applied {
				t.Fatalf("with the override: %s applied=%v", out.Run.Result, out.Applied)
			}
			active := 0
			for _, p := range w.store.state.People {
				if p.Active {
					active++
				}
			}
			if active != len(users)-tt.leave {
				t.Errorf("active = %d, want %d", active, len(users)-tt.leave)
			}
		})
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	w := newWorld(t, hrRules(), "hr")
	w.serve("hr", &snapshot{users: []connectors.User{user("1", "a@example.com")}})
	out := w.run(RunOptions{DryRun: true})
	if out.Applied || w.store.commits != 0 || len(w.store.runs) != 0 || len(w.store.mirrors) != 0 {
		t.Fatalf("dry run wrote: commits=%d runs=%d mirrors=%d", w.store.commits, len(w.store.runs), len(w.store.mirrors))
	}
	if s := out.Plan.Summary(); s.Create != 1 {
		t.Errorf("plan = %+v, want one create", s)
	}
}

func TestIdempotentRunWritesNoChanges(t *testing.T) {
	w := newWorld(t, hrRules(), "hr")
	org := &snapshot{users: []connectors.User{user("1", "a@example.com"), user("2", "b@example.com")}}
	org.group("g", "Engineering", "1", "2")
	w.serve("hr", org)
	w.run(RunOptions{})
	before := cloneState(w.store.state)
	out := w.run(RunOptions{})
	if !out.Plan.Empty() {
		t.Fatalf("second plan not empty: %+v", out.Plan.Summary())
	}
	if d := out.Run.Sources[0].Rows; d != 0 {
		t.Errorf("second run rewrote %d mirror rows", d)
	}
	if diff := cmp.Diff(before, w.store.state); diff != "" {
		t.Errorf("state changed:\n%s", diff)
	}
}

func TestConnectorPanicFreezesSource(t *testing.T) {
	w := newWorld(t, hrRules(), "hr")
	w.engine.Sources[0].Connector = panicky{}
	out := w.run(RunOptions{})
	if out.Run.Result != ResultFailed || !strings.Contains(out.Run.Sources[0].Error, "panicked") {
		t.Fatalf("run = %s %+v", out.Run.Result, out.Run.Sources)
	}
}

type panicky struct{}

func (panicky) FetchAll(context.Context) (*connectors.Result, error) { panic("boom") }
