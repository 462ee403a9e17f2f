package directory_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/reconcile"
)

// hideWhole hides ReadsWhole: a full run over it reads the stored mirror
// back, as for an IdP.
type hideWhole struct{ s *oracleSource }

func (h hideWhole) FetchAll(ctx context.Context) (*connectors.Result, error) {
	return h.s.FetchAll(ctx)
}

// A full run over sources that all read whole builds the mirrors from the
// fetches instead of reading them back: its plan is the plan of a full run
// that reads them back, and what it writes leaves the stored mirrors equal
// to the sources, step after step, on real SQLite.
func TestFullRunOverSnapshots(t *testing.T) {
	ctx := context.Background()
	store, err := directory.Open(ctx, filepath.Join(t.TempDir(), "snap.db"), directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	o := &oracleOrg{rnd: rand.New(rand.NewPCG(3, 7)), emails: 40}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rules := reconcile.Rules{MatchOn: "email", DeleteAfter: 48 * time.Hour, Licenses: []reconcile.LicenseRule{
		{Name: "pro", Seats: 6, Groups: []string{"G1", "b/G2"}}, {Name: "basic", AllActive: true}}}
	snap := &reconcile.Engine{Store: store, Now: func() time.Time { return now }, LockWait: -1, Rules: rules}
	loaded := &reconcile.Engine{Store: store, Now: func() time.Time { return now }, LockWait: -1, Rules: rules}
	for _, name := range []string{"a", "b"} {
		s := &oracleSource{whole: true, versions: []oracleVersion{{users: map[string]connectors.User{}, groups: map[string]connectors.Group{}, members: map[string][]string{}}}}
		o.sources = append(o.sources, s)
		sr := reconcile.SourceRules{Name: name, SyncGroups: []string{"G0", "G1", "G2"}}
		snap.Rules.Sources = append(snap.Rules.Sources, sr)
		loaded.Rules.Sources = append(loaded.Rules.Sources, sr)
		snap.Sources = append(snap.Sources, reconcile.Source{Rules: sr, Connector: s})
		loaded.Sources = append(loaded.Sources, reconcile.Source{Rules: sr, Connector: hideWhole{s}})
	}
	full := reconcile.RunOptions{FullReconcile: true, Fetch: map[string]reconcile.FetchMode{"a": reconcile.FetchFull, "b": reconcile.FetchFull}}
	dry := full
	dry.DryRun = true
	for step := range 60 {
		o.step()
		now = now.Add(time.Duration(o.rnd.IntN(20)) * time.Hour)
		want, err := loaded.Run(ctx, dry)
		if err != nil {
			t.Fatalf("step %d: full plan reading the mirrors: %v", step, err)
		}
		got, err := snap.Run(ctx, dry)
		if err != nil {
			t.Fatalf("step %d: full plan from the snapshots: %v", step, err)
		}
		if diff := cmp.Diff(want.Plan, got.Plan, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("step %d: plans differ (-read back +from the snapshots):\n%s", step, diff)
		}
		out, err := snap.Run(ctx, full)
		if err != nil || !out.Applied {
			t.Fatalf("step %d: apply: %v (applied %v)", step, err, out != nil && out.Applied)
		}
		mirrors, err := store.LoadMirrors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i, name := range []string{"a", "b"} {
			v, m := o.sources[i].cur(), mirrors[name]
			if m == nil || len(m.Users) != len(v.users) || len(m.Groups) != len(v.groups) {
				t.Fatalf("step %d: mirror of %s holds %v, the source %d users and %d groups", step, name, m, len(v.users), len(v.groups))
			}
			for id, u := range v.users {
				if *m.Users[id] != u {
					t.Fatalf("step %d: mirror of %s: user %s = %+v, want %+v", step, name, id, *m.Users[id], u)
				}
			}
		}
		directory.CheckCounts(t, store, "after the apply")
	}
}
