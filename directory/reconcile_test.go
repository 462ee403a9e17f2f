package directory

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/reconcile"
)

// converge drives the store through the reconcile rules the way the engine
// does: mirrors and state from the store, fetch results into the mirrors,
// Desire, Diff, Commit. It then checks that what was stored reads back as
// it was written and that a new plan on the stored directory is empty.
type converge struct {
	t     *testing.T
	s     *Store
	rules reconcile.Rules
}

func (c *converge) run(now time.Time, results map[string]*connectors.Result, frozen map[string]string) *reconcile.Plan {
	t := c.t
	t.Helper()
	mirrors := loadMirrors(t, c.s)
	state := loadState(t, c.s)
	var deltas []*reconcile.MirrorDelta
	for _, src := range c.rules.Sources {
		r := results[src.Name]
		if r == nil {
			continue
		}
		m := mirrors[src.Name]
		if m == nil {
			m = reconcile.NewMirror(src.Name)
			mirrors[src.Name] = m
		}
		deltas = append(deltas, m.Update(r, now))
	}
	desired := reconcile.Desire(c.rules, mirrors, reconcile.KnownIdentities(state.Identities), frozen, now)
	plan := reconcile.Diff(desired, state)
	cm := &reconcile.Commit{Plan: plan, Mirrors: deltas, Run: okRun(now), Now: now}
	cm.Run.Problems = desired.Problems
	commit(t, c.s, cm)

	// Mirror.Update leaves an emptied member set behind after single
	// removals; the store has no rows for it. Both mean "no members".
	for _, m := range mirrors {
		for gid, set := range m.Members {
			if len(set) == 0 {
				delete(m.Members, gid)
			}
		}
	}
	if diff := cmp.Diff(mirrors, loadMirrors(t, c.s)); diff != "" {
		t.Errorf("mirrors read back differ from the mirrors written (-memory +stored):\n%s", diff)
	}
	after := loadState(t, c.s)
	again := reconcile.Diff(reconcile.Desire(c.rules, loadMirrors(t, c.s), reconcile.KnownIdentities(after.Identities), frozen, now), after)
	if !again.Empty() {
		b, _ := json.MarshalIndent(again, "", "  ")
		t.Errorf("plan after applying is not empty:\n%s", b)
	}
	// A run right after writes nothing but its own record.
	before := export(t, c.s)
	idle := &reconcile.Commit{Plan: again, Run: okRun(now), Now: now}
	commit(t, c.s, idle)
	if evs := auditKeys(t, c.s, idle.Run.ID); len(evs) != 0 {
		t.Errorf("an idle run recorded changes: %v", evs)
	}
	if diff := cmp.Diff(before, export(t, c.s)); diff != "" {
		t.Errorf("an idle run changed the directory (-before +after):\n%s", diff)
	}
	return plan
}

func hrUser(id, email, user, title string, status connectors.Status) connectors.User {
	return connectors.User{ExternalID: id, Email: email, UserName: user, GivenName: user, Title: title, Status: status}
}

func byEmail(ex *Export) map[string]ExportUser {
	m := make(map[string]ExportUser, len(ex.Users))
	for _, u := range ex.Users {
		m[u.Email] = u
	}
	return m
}

func licenseOf(ex *Export, name string) ExportLicense {
	for _, l := range ex.Licenses {
		if l.Name == name {
			return l
		}
	}
	return ExportLicense{}
}

func summaryOf(p *reconcile.Plan) reconcile.Summary { return p.Summary() }

func TestReconcileThroughStoreConverges(t *testing.T) {
	eachBackend(t, testReconcileThroughStoreConverges)
}

func testReconcileThroughStoreConverges(t *testing.T) {
	s := openTest(t)
	c := &converge{t: t, s: s, rules: reconcile.Rules{
		MatchOn: "email",
		Sources: []reconcile.SourceRules{
			{Name: "hr", SyncGroups: []string{"*"}},
			{Name: "okta", ScopeGroups: []string{"Learning Users"}, SyncGroups: []string{"Learning*"}},
		},
		Licenses: []reconcile.LicenseRule{
			{Name: "learning-pro", Seats: 2, Groups: []string{"hr/Engineering"}},
			{Name: "learning-basic", AllActive: true},
		},
		DeleteAfter: 48 * time.Hour,
	}}
	active, inactive := connectors.StatusActive, connectors.StatusInactive
	hrFull := func(users []connectors.User, members map[string][]string) *connectors.Result {
		return &connectors.Result{Full: true, Cursor: "hr-1", Users: users,
			Groups:  []connectors.Group{{ExternalID: "g1", Name: "Engineering"}, {ExternalID: "g2", Name: "Sales", Description: "Sells"}},
			Members: members}
	}

	// 1. First import. Erin is inactive and was never here: not created.
	// Nobody without an email is created. Three people qualify for two pro
	// seats: alice and bob (by user name) get them, dan waits.
	users := []connectors.User{
		hrUser("u1", "alice@example.com", "alice", "Engineer", active),
		hrUser("u2", "bob@example.com", "bob", "Engineer", active),
		hrUser("u3", "carol@example.com", "carol", "Sales", active),
		hrUser("u4", "dan@example.com", "dan", "Engineer", active),
		hrUser("u5", "", "noemail", "", active),
		hrUser("u6", "erin@example.com", "erin", "", inactive),
	}
	members := map[string][]string{"g1": {"u1", "u2", "u4"}, "g2": {"u3"}}
	okta := &connectors.Result{Full: true, Cursor: "okta-1",
		Users: []connectors.User{
			hrUser("00u1", " ALICE@example.com ", "alice.okta", "Okta title loses", active),
			hrUser("00u2", "frank@example.com", "frank", "", active), // not in scope
		},
		Groups:  []connectors.Group{{ExternalID: "og1", Name: "Learning Users"}, {ExternalID: "og2", Name: "Everyone"}},
		Members: map[string][]string{"og1": {"00u1"}, "og2": {"00u1", "00u2"}},
	}
	p := c.run(t0, map[string]*connectors.Result{"hr": hrFull(users, members), "okta": okta}, nil)
	if got := summaryOf(p); got.Create != 4 || got.GroupsCreate != 3 || got.Grant != 6 || got.Waiting != 1 {
		t.Errorf("first import summary = %+v", got)
	}
	ex := export(t, s)
	u := byEmail(ex)
	if len(u) != 4 {
		t.Fatalf("people after import: %v", u)
	}
	alice, bob, carol, dan := u["alice@example.com"], u["bob@example.com"], u["carol@example.com"], u["dan@example.com"]
	if alice.Title != "Engineer" || len(alice.Identities) != 2 || !cmp.Equal(alice.Groups, []string{"hr/Engineering", "okta/Learning Users"}) {
		t.Errorf("alice = %+v", alice)
	}
	if !cmp.Equal(alice.Licenses, []string{"learning-basic", "learning-pro"}) || !cmp.Equal(bob.Licenses, []string{"learning-basic", "learning-pro"}) ||
		!cmp.Equal(dan.Licenses, []string{"learning-basic"}) {
		t.Errorf("licenses: alice %v, bob %v, dan %v", alice.Licenses, bob.Licenses, dan.Licenses)
	}
	if l := licenseOf(ex, "learning-pro"); l != (ExportLicense{Name: "learning-pro", Seats: 2, Assigned: 2, Waiting: 1}) {
		t.Errorf("learning-pro = %+v", l)
	}

	// 2. A delta: alice is promoted, bob leaves (inactive) and his seat goes
	// to dan in the same run, carol's email changes (same person), Sales is
	// renamed.
	t1 := t0.Add(time.Hour)
	p = c.run(t1, map[string]*connectors.Result{"hr": {Cursor: "hr-2",
		Users: []connectors.User{
			hrUser("u1", "alice@example.com", "alice", "Staff Engineer", active),
			hrUser("u2", "bob@example.com", "bob", "Engineer", inactive),
			hrUser("u3", "carol.c@example.com", "carol", "Sales", active),
		},
		Groups: []connectors.Group{{ExternalID: "g2", Name: "Sales EMEA", Description: "Sells"}},
	}}, nil)
	if got := summaryOf(p); got.Update != 2 || got.Deactivate != 1 || got.GroupsUpdate != 1 || got.Grant != 1 || got.Revoke != 2 {
		t.Errorf("delta summary = %+v", got)
	}
	ex = export(t, s)
	u = byEmail(ex)
	if b := u["bob@example.com"]; b.Active || b.ID != bob.ID || len(b.Groups) != 0 || len(b.Licenses) != 0 {
		t.Errorf("bob after leaving = %+v", b)
	}
	if d := u["dan@example.com"]; !cmp.Equal(d.Licenses, []string{"learning-basic", "learning-pro"}) {
		t.Errorf("dan did not get the freed seat: %+v", d)
	}
	if cc := u["carol.c@example.com"]; cc.ID != carol.ID || !cmp.Equal(cc.Groups, []string{"hr/Sales EMEA"}) {
		t.Errorf("carol after the email change = %+v (was id %s)", cc, carol.ID)
	}
	if l := licenseOf(ex, "learning-pro"); l.Assigned != 2 || l.Waiting != 0 {
		t.Errorf("learning-pro = %+v", l)
	}

	// 3. Bob comes back: same id, back in Engineering, waiting for a seat.
	t2 := t1.Add(time.Hour)
	c.run(t2, map[string]*connectors.Result{"hr": {Cursor: "hr-3",
		Users: []connectors.User{hrUser("u2", "bob@example.com", "bob", "Engineer", active)}}}, nil)
	u = byEmail(export(t, s))
	if b := u["bob@example.com"]; !b.Active || b.ID != bob.ID || !cmp.Equal(b.Licenses, []string{"learning-basic"}) || !cmp.Equal(b.Groups, []string{"hr/Engineering"}) {
		t.Errorf("bob after coming back = %+v (was id %s)", b, bob.ID)
	}

	// 4. Dan leaves the source altogether: deactivated, unlinked, his seat
	// goes to bob.
	t3 := t2.Add(time.Hour)
	users = []connectors.User{
		hrUser("u1", "alice@example.com", "alice", "Staff Engineer", active),
		hrUser("u2", "bob@example.com", "bob", "Engineer", active),
		hrUser("u3", "carol.c@example.com", "carol", "Sales", active),
		hrUser("u6", "erin@example.com", "erin", "", inactive),
	}
	members = map[string][]string{"g1": {"u1", "u2"}, "g2": {"u3"}}
	c.run(t3, map[string]*connectors.Result{"hr": hrFull(users, members)}, nil)
	u = byEmail(export(t, s))
	if d := u["dan@example.com"]; d.Active || d.ID != dan.ID || len(d.Identities) != 0 || len(d.Licenses) != 0 {
		t.Errorf("dan after leaving = %+v", d)
	}
	if b := u["bob@example.com"]; !cmp.Equal(b.Licenses, []string{"learning-basic", "learning-pro"}) {
		t.Errorf("bob did not get dan's seat: %+v", b)
	}

	// 5. Okta fails: it is frozen, and alice keeps everything although hr
	// no longer lists her.
	t4 := t3.Add(time.Hour)
	frozen := map[string]string{"okta": "fetch okta: 503"}
	c.run(t4, map[string]*connectors.Result{"hr": hrFull(users[1:], map[string][]string{"g1": {"u2"}, "g2": {"u3"}})}, frozen)
	// hr no longer describes her: her profile now comes from okta, her hr
	// identity is unlinked, but she keeps her hr group and her seats while
	// okta cannot say whether she is still there.
	for _, a := range export(t, s).Users {
		if a.ID == alice.ID && (!a.Active || a.Title != "Okta title loses" || !cmp.Equal(a.Licenses, []string{"learning-basic", "learning-pro"}) ||
			!cmp.Equal(a.Groups, []string{"hr/Engineering", "okta/Learning Users"}) || !cmp.Equal(a.Identities, []reconcile.IdentityRef{ident("okta", "00u1")})) {
			t.Errorf("alice lost something while okta was frozen: %+v", a)
		}
	}

	// 6. Two days later dan is deleted, with his history of seats.
	t5 := t3.Add(49 * time.Hour)
	p = c.run(t5, map[string]*connectors.Result{"hr": hrFull(users, members)}, nil)
	if got := summaryOf(p); got.Delete != 1 {
		t.Errorf("delete summary = %+v", got)
	}
	u = byEmail(export(t, s))
	if _, ok := u["dan@example.com"]; ok {
		t.Error("dan was not deleted after delete_after")
	}
	if n := count(t, s, `SELECT count(*) FROM assignments WHERE person_id = ?`, dan.ID); n != 0 {
		t.Errorf("dan's %d assignment rows survived his deletion", n)
	}
	if n := count(t, s, `SELECT count(*) FROM assignments WHERE revoked_at IS NOT NULL`); n == 0 {
		t.Error("no revoked assignment rows kept as history")
	}

	// 7. Single membership changes and deletions in a delta: carol leaves
	// Sales (now empty), bob joins it, Engineering is deleted at the source
	// and erin's account is deleted.
	t6 := t5.Add(time.Hour)
	p = c.run(t6, map[string]*connectors.Result{"hr": {Cursor: "hr-7",
		RemovedMembers: []connectors.Membership{{GroupID: "g2", UserID: "u3"}},
		AddedMembers:   []connectors.Membership{{GroupID: "g2", UserID: "u2"}, {GroupID: "g2", UserID: "u1"}},
		DeletedGroups:  []string{"g1"},
		DeletedUsers:   []string{"u6"},
	}}, nil)
	if got := summaryOf(p); got.GroupsDelete != 1 || got.MembersAdd != 2 || got.MembersDel != 1 {
		t.Errorf("membership delta summary = %+v", got)
	}
	c.run(t6.Add(time.Minute), map[string]*connectors.Result{"hr": {Cursor: "hr-8",
		RemovedMembers: []connectors.Membership{{GroupID: "g2", UserID: "u2"}, {GroupID: "g2", UserID: "u1"}},
	}}, nil)
	ex = export(t, s)
	if len(ex.Groups) != 2 || ex.Groups[0].Name != "Sales" || len(ex.Groups[0].Members) != 0 {
		t.Errorf("groups after the membership deltas = %+v", ex.Groups)
	}
	if got, err := s.IntegrityCheck(t.Context()); err != nil || got != "ok" {
		t.Errorf("IntegrityCheck = %q, %v", got, err)
	}
}

// A pool that shrinks below its holders takes seats back from the latest
// grants; those people then wait for a seat.
func TestReconcilePoolShrinkConverges(t *testing.T) { eachBackend(t, testReconcilePoolShrinkConverges) }

func testReconcilePoolShrinkConverges(t *testing.T) {
	s := openTest(t)
	rules := reconcile.Rules{
		MatchOn:  "email",
		Sources:  []reconcile.SourceRules{{Name: "hr", SyncGroups: []string{"*"}}},
		Licenses: []reconcile.LicenseRule{{Name: "learning-pro", Seats: 3, AllActive: true}},
	}
	c := &converge{t: t, s: s, rules: rules}
	active := connectors.StatusActive
	c.run(t0, map[string]*connectors.Result{"hr": {Full: true, Users: []connectors.User{
		hrUser("u1", "a@example.com", "a", "", active),
		hrUser("u2", "b@example.com", "b", "", active),
		hrUser("u3", "c@example.com", "c", "", active),
	}}}, nil)
	c.rules.Licenses[0].Seats = 1
	p := c.run(t1, nil, nil)
	if got := summaryOf(p); got.Revoke != 2 {
		t.Errorf("shrink summary = %+v", got)
	}
	if l := licenseOf(export(t, s), "learning-pro"); l != (ExportLicense{Name: "learning-pro", Seats: 1, Assigned: 1, Waiting: 2}) {
		t.Errorf("learning-pro after shrinking = %+v", l)
	}
}

// fakeSource serves whatever result or error the test sets.
type fakeSource struct {
	result *connectors.Result
	err    error
}

func (f *fakeSource) FetchAll(context.Context) (*connectors.Result, error) {
	if f.err != nil {
		return nil, f.err
	}
	r := *f.result
	return &r, nil
}

// The engine and the store together: applied, blocked, overridden, frozen.
func TestEngineWithStore(t *testing.T) { eachBackend(t, testEngineWithStore) }

func testEngineWithStore(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	now := t0
	hr := &fakeSource{result: &connectors.Result{Full: true, Users: []connectors.User{
		hrUser("u1", "a@example.com", "a", "", connectors.StatusActive),
		hrUser("u2", "b@example.com", "b", "", connectors.StatusActive),
		hrUser("u3", "c@example.com", "c", "", connectors.StatusActive),
	}}}
	okta := &fakeSource{result: &connectors.Result{Full: true, Users: []connectors.User{
		hrUser("o1", "c@example.com", "c", "", connectors.StatusActive),
	}}}
	e := &reconcile.Engine{
		Store: s,
		Sources: []reconcile.Source{
			{Rules: reconcile.SourceRules{Name: "hr", SyncGroups: []string{"*"}}, Connector: hr},
			{Rules: reconcile.SourceRules{Name: "okta", SyncGroups: []string{"*"}}, Connector: okta},
		},
		Rules:  reconcile.Rules{MatchOn: "email", Licenses: []reconcile.LicenseRule{{Name: "basic", AllActive: true}}},
		Safety: reconcile.Safety{MaxDeactivations: 1},
		Now:    func() time.Time { return now },
	}
	e.Rules.Sources = []reconcile.SourceRules{e.Sources[0].Rules, e.Sources[1].Rules}

	out, err := e.Run(ctx, reconcile.RunOptions{})
	if err != nil || !out.Applied || out.Run.Result != reconcile.ResultOK {
		t.Fatalf("first run: %+v, %v", out, err)
	}
	if n := len(export(t, s).Users); n != 3 {
		t.Fatalf("people after the first run = %d", n)
	}

	// hr loses everyone: a and b would be deactivated, more than allowed.
	now = t1
	hr.result = &connectors.Result{Full: true}
	before := loadState(t, s)
	beforeMirrors := loadMirrors(t, s)
	out, err = e.Run(ctx, reconcile.RunOptions{})
	if err != nil || out.Applied || out.Run.Result != reconcile.ResultBlocked || out.Blocked == "" {
		t.Fatalf("mass deactivation: %+v, %v", out, err)
	}
	if diff := cmp.Diff(before, loadState(t, s)); diff != "" {
		t.Errorf("a blocked run changed the directory (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(beforeMirrors, loadMirrors(t, s)); diff != "" {
		t.Errorf("a blocked run changed the mirrors (-before +after):\n%s", diff)
	}
	runs, err := s.Runs(ctx, 1)
	if err != nil || len(runs) != 1 || runs[0].Result != reconcile.ResultBlocked || runs[0].Plan == nil ||
		runs[0].Plan.Summary().Deactivate != 2 || runs[0].Error != out.Blocked {
		t.Fatalf("blocked run record = %+v, %v", runs, err)
	}

	// Once allowed, it applies; c stays through okta.
	out, err = e.Run(ctx, reconcile.RunOptions{AllowMassDeactivation: true})
	if err != nil || !out.Applied || out.Plan.Summary().Deactivate != 2 {
		t.Fatalf("allowed run: %+v, %v", out, err)
	}
	for _, u := range export(t, s).Users {
		if u.Active != (u.Email == "c@example.com") {
			t.Errorf("after the allowed run: %s active = %v", u.Email, u.Active)
		}
	}

	// okta fails: frozen, c loses nothing although hr is empty; partial.
	now = t1.Add(time.Hour)
	okta.err = errors.New("503 Service Unavailable")
	out, err = e.Run(ctx, reconcile.RunOptions{})
	if err != nil || !out.Applied || out.Run.Result != reconcile.ResultPartial || !out.Plan.Empty() {
		b, _ := json.Marshal(out.Plan)
		t.Fatalf("frozen run: result %s, applied %v, plan %s, %v", out.Run.Result, out.Applied, b, err)
	}
	// Back to normal, nothing to do.
	okta.err = nil
	out, err = e.Run(ctx, reconcile.RunOptions{})
	if err != nil || !out.Plan.Empty() || out.Run.Result != reconcile.ResultOK {
		t.Fatalf("idle run: %+v, %v", out, err)
	}
	if evs := auditKeys(t, s, out.Run.ID); len(evs) != 0 {
		t.Errorf("idle run recorded changes: %v", evs)
	}
	runs, err = s.Runs(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var results []reconcile.RunResult
	for _, r := range runs {
		results = append(results, r.Result)
	}
	want := []reconcile.RunResult{reconcile.ResultOK, reconcile.ResultPartial, reconcile.ResultOK, reconcile.ResultBlocked, reconcile.ResultOK}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("run results, newest first (-want +got):\n%s", diff)
	}
	if len(runs) > 1 && (runs[1].Sources[1].Result != "failed" || runs[1].Sources[1].Error == "") {
		t.Errorf("partial run sources = %+v", runs[1].Sources)
	}
}

// Whatever Mirror.Update makes of a fetch, the store reads back the same
// mirror: the next run must start from what this run saw.
func TestMirrorDeltaReadsBackAsUpdated(t *testing.T) {
	eachBackend(t, testMirrorDeltaReadsBackAsUpdated)
}

func testMirrorDeltaReadsBackAsUpdated(t *testing.T) {
	active := connectors.StatusActive
	base := &connectors.Result{Full: true, Cursor: "c0",
		Users: []connectors.User{
			{ExternalID: "u1", Email: "a@example.com", Status: active},
			{ExternalID: "u2", Email: "b@example.com", Status: active},
		},
		Groups:  []connectors.Group{{ExternalID: "g1", Name: "G1"}, {ExternalID: "g2", Name: "G2"}},
		Members: map[string][]string{"g1": {"u1", "u2"}, "g2": {"u2"}},
	}
	for _, tc := range []struct {
		name  string
		fetch *connectors.Result
		skip  string
	}{
		{name: "full, smaller", fetch: &connectors.Result{Full: true, Cursor: "c1",
			Users: []connectors.User{{ExternalID: "u1", Email: "a@example.com", Status: active}}, Groups: []connectors.Group{{ExternalID: "g1", Name: "G1 renamed"}},
			Members: map[string][]string{"g1": {"u1"}}}},
		{name: "full, empty", fetch: &connectors.Result{Full: true, Cursor: "c1"}},
		{name: "delta, member list replaced", fetch: &connectors.Result{Cursor: "c1", Members: map[string][]string{"g1": {"u2"}, "g2": nil}}},
		{name: "delta, user changed and deleted", fetch: &connectors.Result{Cursor: "c1",
			Users:        []connectors.User{{ExternalID: "u9", Email: "x@example.com", Status: active}, {ExternalID: "u1", Email: "new@example.com", Status: active}},
			DeletedUsers: []string{"u9", "u1"}}},
		{name: "delta, group changed and deleted", fetch: &connectors.Result{Cursor: "c1",
			Groups: []connectors.Group{{ExternalID: "g9", Name: "G9"}, {ExternalID: "g1", Name: "G1 renamed"}}, DeletedGroups: []string{"g9", "g1"}}},
		{name: "delta, removed then added", fetch: &connectors.Result{Cursor: "c1",
			RemovedMembers: []connectors.Membership{{GroupID: "g2", UserID: "u2"}}, AddedMembers: []connectors.Membership{{GroupID: "g2", UserID: "u2"}}}},
		{name: "delta, deleted user still listed", fetch: &connectors.Result{Cursor: "c1",
			DeletedUsers: []string{"u2"}, AddedMembers: []connectors.Membership{{GroupID: "g1", UserID: "u2"}}}},
		{name: "delta, listed then removed", fetch: &connectors.Result{Cursor: "c1",
			Members: map[string][]string{"g2": {"u1", "u2"}}, RemovedMembers: []connectors.Membership{{GroupID: "g2", UserID: "u1"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			s := openTest(t)
			m := reconcile.NewMirror("hr")
			commit(t, s, &reconcile.Commit{Mirrors: []*reconcile.MirrorDelta{m.Update(base, t0)}, Run: okRun(t0)})
			d := m.Update(tc.fetch, t1)
			commit(t, s, &reconcile.Commit{Mirrors: []*reconcile.MirrorDelta{d}, Run: okRun(t1)})
			for gid, set := range m.Members {
				if len(set) == 0 {
					delete(m.Members, gid) // no rows and no entry mean the same
				}
			}
			if diff := cmp.Diff(map[string]*reconcile.Mirror{"hr": m}, loadMirrors(t, s)); diff != "" {
				t.Errorf("(-memory +stored):\n%s", diff)
			}
		})
	}
}

// An account whose old email is taken over by another (inactive) account
// while its own person is due for deletion: the plan deletes that person and
// links the account to a new one. The store deletes before it links, so the
// account is free to move.
func TestReconcileIdentityOfDeletedPersonMoves(t *testing.T) {
	eachBackend(t, testReconcileIdentityOfDeletedPersonMoves)
}

func testReconcileIdentityOfDeletedPersonMoves(t *testing.T) {
	s := openTest(t)
	c := &converge{t: t, s: s, rules: reconcile.Rules{MatchOn: "email", DeleteAfter: time.Hour,
		Sources: []reconcile.SourceRules{{Name: "hr", SyncGroups: []string{"*"}}}}}
	active, inactive := connectors.StatusActive, connectors.StatusInactive
	c.run(t0, map[string]*connectors.Result{"hr": {Full: true, Users: []connectors.User{hrUser("u1", "a@example.com", "a", "", active)}}}, nil)
	c.run(t0.Add(time.Hour), map[string]*connectors.Result{"hr": {Full: true, Users: []connectors.User{hrUser("u1", "a@example.com", "a", "", inactive)}}}, nil)
	p := c.run(t0.Add(3*time.Hour), map[string]*connectors.Result{"hr": {Full: true, Users: []connectors.User{
		hrUser("u1", "b@example.com", "a", "", active),
		hrUser("u2", "a@example.com", "other", "", inactive),
	}}}, nil)
	if got := summaryOf(p); got.Delete != 1 || got.Create != 1 {
		t.Errorf("summary = %+v, want one delete and one create", got)
	}
	ex := export(t, s)
	if len(ex.Users) != 1 || ex.Users[0].Email != "b@example.com" || ex.Users[0].ID == "1" ||
		!cmp.Equal(ex.Users[0].Identities, []reconcile.IdentityRef{ident("hr", "u1")}) {
		t.Errorf("users = %+v", ex.Users)
	}
}
