package directory

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/reconcile"
)

// CommitMirrorsFirst writes what Commit writes, in one transaction; a plan
// that commits nothing, or fails, leaves the directory as it was.
func TestCommitMirrorsFirst(t *testing.T) { eachBackend(t, testCommitMirrorsFirst) }

func testCommitMirrorsFirst(t *testing.T) {
	ctx := t.Context()
	want := openTest(t)
	commit(t, want, &reconcile.Commit{Plan: plan1(), Mirrors: mirrors1(), Now: t0})

	got := openTest(t)
	mirrors := mirrors1()
	planned := false
	err := got.CommitMirrorsFirst(ctx, t0, mirrors, func() (*reconcile.Commit, error) {
		planned = true
		for _, d := range mirrors {
			if d.UpsertUsers != nil || d.Members != nil {
				t.Errorf("mirror of %s: rows kept after they were written", d.Source)
			}
		}
		run := okRun(t0)
		run.Summary = plan1().Summary()
		return &reconcile.Commit{Plan: plan1(), Run: run, Now: t0}, nil
	})
	if err != nil || !planned {
		t.Fatalf("CommitMirrorsFirst: %v (plan called: %v)", err, planned)
	}
	if diff := cmp.Diff(export(t, want), export(t, got)); diff != "" {
		t.Errorf("export differs from Commit's (-Commit +CommitMirrorsFirst):\n%s", diff)
	}
	if diff := cmp.Diff(loadMirrors(t, want), loadMirrors(t, got)); diff != "" {
		t.Errorf("mirrors differ from Commit's (-Commit +CommitMirrorsFirst):\n%s", diff)
	}
	wantRuns, _ := want.Runs(ctx, 5)
	gotRuns, _ := got.Runs(ctx, 5)
	if diff := cmp.Diff(wantRuns, gotRuns); diff != "" || len(gotRuns) != 1 {
		t.Errorf("runs differ from Commit's (-Commit +CommitMirrorsFirst):\n%s", diff)
	}

	// Nothing to commit, or a failed plan: nothing at all is written,
	// the mirrors included.
	for _, tc := range []struct {
		name    string
		plan    func() (*reconcile.Commit, error)
		wantErr bool
	}{
		{"nil commit", func() (*reconcile.Commit, error) { return nil, nil }, false},
		{"plan fails", func() (*reconcile.Commit, error) { return nil, errors.New("boom") }, true},
	} {
		s := openTest(t)
		before := export(t, s)
		err := s.CommitMirrorsFirst(ctx, t0, mirrors1(), tc.plan)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %v", tc.name, err, tc.wantErr)
		}
		if ms := loadMirrors(t, s); len(ms) != 0 {
			t.Errorf("%s: mirrors written: %v", tc.name, ms)
		}
		if diff := cmp.Diff(before, export(t, s)); diff != "" {
			t.Errorf("%s: the directory changed:\n%s", tc.name, diff)
		}
		if runs, _ := s.Runs(ctx, 5); len(runs) != 0 {
			t.Errorf("%s: runs recorded: %+v", tc.name, runs)
		}
	}
}

// countingStore counts the commits that wrote their mirrors first.
type countingStore struct {
	*Store
	mirrorsFirst int
}

func (c *countingStore) CommitMirrorsFirst(ctx context.Context, now time.Time, mirrors []*reconcile.MirrorDelta,
	plan func() (*reconcile.Commit, error)) error {
	c.mirrorsFirst++
	return c.Store.CommitMirrorsFirst(ctx, now, mirrors, plan)
}

// An engine that takes the paths of a large directory on a small one
// (LargeRun 1: the directory's memberships and seats read after Desire, a
// first import's mirrors written before its plan) ends every run as the
// engine that does not: same directory, same mirrors, same run records.
func TestLargeRunPathsMatch(t *testing.T) { eachBackend(t, testLargeRunPathsMatch) }

func testLargeRunPathsMatch(t *testing.T) {
	ctx := t.Context()
	now := t0
	users := []connectors.User{
		hrUser("u1", "a@example.com", "a", "Eng", connectors.StatusActive),
		hrUser("u2", "b@example.com", "b", "Eng", connectors.StatusActive),
		hrUser("u3", "c@example.com", "c", "Ops", connectors.StatusActive),
		hrUser("u4", "d@example.com", "d", "Ops", connectors.StatusInactive),
	}
	fetch := func(users []connectors.User, members []string) *connectors.Result {
		return &connectors.Result{Full: true, Users: users,
			Groups:  []connectors.Group{{ExternalID: "g1", Name: "Engineering"}, {ExternalID: "g2", Name: "Everyone"}},
			Members: map[string][]string{"g1": members, "g2": {"u1", "u2", "u3", "u4"}}}
	}
	steps := []struct {
		name string
		r    *connectors.Result
		opts reconcile.RunOptions
	}{
		{"first import", fetch(users, []string{"u1", "u2"}), reconcile.RunOptions{}},
		{"changes", fetch([]connectors.User{users[0], hrUser("u2", "b@example.com", "b", "Sales", connectors.StatusActive), users[2]},
			[]string{"u1", "u3"}), reconcile.RunOptions{}},
		{"full", fetch(users[:2], []string{"u2"}), reconcile.RunOptions{FullReconcile: true}},
		{"blocked", fetch(nil, nil), reconcile.RunOptions{}},
	}
	engine := func(s reconcile.Store, src *fakeSource, large int) *reconcile.Engine {
		e := &reconcile.Engine{Store: s, LargeRun: large, LockWait: -1, Now: func() time.Time { return now },
			Sources: []reconcile.Source{{Rules: reconcile.SourceRules{Name: "hr", SyncGroups: []string{"*"}}, Connector: src}},
			Rules: reconcile.Rules{MatchOn: "email", Licenses: []reconcile.LicenseRule{
				{Name: "basic", AllActive: true}, {Name: "pro", Seats: 1, Groups: []string{"Engineering"}}}},
			Safety: reconcile.Safety{MaxDeactivations: 1}}
		e.Rules.Sources = []reconcile.SourceRules{e.Sources[0].Rules}
		return e
	}
	plainSrc, largeSrc := &fakeSource{}, &fakeSource{}
	plainStore, largeStore := openTest(t), &countingStore{Store: openTest(t)}
	plain, large := engine(plainStore, plainSrc, 0), engine(largeStore, largeSrc, 1)
	for i, step := range steps {
		now = t0.Add(time.Duration(i) * time.Hour)
		plainSrc.result, largeSrc.result = step.r, step.r
		want, err := plain.Run(ctx, step.opts)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		got, err := large.Run(ctx, step.opts)
		if err != nil {
			t.Fatalf("%s, large-run paths: %v", step.name, err)
		}
		if diff := cmp.Diff(want.Plan, got.Plan); diff != "" {
			t.Errorf("%s: plans differ (-plain +large):\n%s", step.name, diff)
		}
		if want.Run.Result != got.Run.Result || want.Applied != got.Applied || want.Run.Summary != got.Run.Summary {
			t.Errorf("%s: run %s applied %v %+v, large-run paths %s %v %+v", step.name,
				want.Run.Result, want.Applied, want.Run.Summary, got.Run.Result, got.Applied, got.Run.Summary)
		}
		if diff := cmp.Diff(export(t, plainStore), export(t, largeStore.Store)); diff != "" {
			t.Errorf("%s: directories differ (-plain +large):\n%s", step.name, diff)
		}
		if diff := cmp.Diff(loadMirrors(t, plainStore), loadMirrors(t, largeStore.Store)); diff != "" {
			t.Errorf("%s: mirrors differ (-plain +large):\n%s", step.name, diff)
		}
		if step.name == "blocked" && got.Run.Result != reconcile.ResultBlocked {
			t.Errorf("blocked step: result %s: the test proves nothing", got.Run.Result)
		}
	}
	if largeStore.mirrorsFirst != 1 {
		t.Errorf("%d commits wrote their mirrors first, want 1 (the first import)", largeStore.mirrorsFirst)
	}
}
