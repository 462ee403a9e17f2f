package directory

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/reconcile"
)

// daveCommit adds a person (identity, membership, seat, mirror user) to
// the directory of plan1 and takes bob out of Engineering.
func daveCommit() *reconcile.Commit {
	p := aliceProfile
	p.UserName, p.Email = "dave", "dave@example.com"
	return &reconcile.Commit{Now: t0.Add(time.Minute), Plan: &reconcile.Plan{
		People: []reconcile.PersonChange{{Op: reconcile.OpCreate, Person: newKey("dave@example.com"), Profile: p,
			Link: []reconcile.IdentityRef{ident("hr", "u5")}}},
		Members: []reconcile.MemberChange{
			{Group: &reconcile.MemberGroup{Ref: gref("hr", "g1"), Name: "Engineering", Op: reconcile.OpAdd}, Person: new(newKey("dave@example.com"))},
			{Group: &reconcile.MemberGroup{Ref: gref("hr", "g1"), Name: "Engineering", Op: reconcile.OpRemove}, Person: new(known(2, "bob@example.com"))},
		},
		Licenses: []reconcile.LicenseChange{{Op: reconcile.OpGrant, Pool: "learning-basic", Person: new(newKey("dave@example.com"))}},
	}, Mirrors: []*reconcile.MirrorDelta{{Source: "hr", Cursor: "c2", FetchedAt: t0.Add(time.Minute),
		UpsertUsers: []*connectors.User{mirrorUser("u5", p, connectors.StatusActive)},
		Members:     map[string][]string{"g1": {"u1", "u2", "u5"}}, MembersAdded: 1}}}
}

func TestReadsSeeOneSnapshot(t *testing.T) { eachBackend(t, testReadsSeeOneSnapshot) }

// testReadsSeeOneSnapshot commits a change between two of a reader's
// queries (the store's read hook) and checks that the read in progress
// sees none of it, while the next read sees it.
func testReadsSeeOneSnapshot(t *testing.T) {
	readers := []struct {
		name string
		read func(ctx context.Context, s *Store) (any, error)
	}{
		{"LoadState", func(ctx context.Context, s *Store) (any, error) { return s.LoadState(ctx) }},
		{"LoadMirrors", func(ctx context.Context, s *Store) (any, error) { return s.LoadMirrors(ctx) }},
		{"Status", func(ctx context.Context, s *Store) (any, error) { return s.Status(ctx) }},
		{"Export", func(ctx context.Context, s *Store) (any, error) { return s.Export(ctx) }},
		// Counts is one statement over directory_counts: a snapshot by itself.
		{"LoadPeople", func(ctx context.Context, s *Store) (any, error) {
			st := reconcile.NewState()
			return st, s.LoadPeople(ctx, []int64{1, 2, 3, 4}, st)
		}},
		{"LoadScope", func(ctx context.Context, s *Store) (any, error) {
			st := reconcile.NewState()
			return st, s.LoadScope(ctx, []reconcile.GroupRef{gref("hr", "g1"), gref("hr", "g2")}, st)
		}},
		{"MirrorPart", func(ctx context.Context, s *Store) (any, error) {
			return s.MirrorPart(ctx, "hr", []string{"u1", "u5"}, []string{"g1"})
		}},
	}
	for _, r := range readers {
		t.Run(r.name, func(t *testing.T) {
			ctx := t.Context()
			s := openTest(t)
			commit(t, s, &reconcile.Commit{Plan: plan1(), Mirrors: mirrors1(), Now: t0})
			before, err := r.read(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			queries, committed := 0, false
			s.readHook = func(what string) {
				if queries++; queries == 2 {
					commit(t, s, daveCommit())
					committed = true
				}
			}
			during, err := r.read(ctx, s)
			s.readHook = nil
			if err != nil {
				t.Fatal(err)
			}
			if !committed {
				t.Fatalf("%s ran %d queries in its snapshot: the hook never committed between two", r.name, queries)
			}
			if diff := cmp.Diff(before, during); diff != "" {
				t.Errorf("%s saw a commit made while it read (-before +during):\n%s", r.name, diff)
			}
			after, err := r.read(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			if cmp.Equal(before, after) {
				t.Errorf("%s does not show the commit once it is done: the test proves nothing", r.name)
			}
		})
	}
}

func TestLoadStateStaged(t *testing.T) { eachBackend(t, testLoadStateStaged) }

// testLoadStateStaged reads the directory in its two parts with a commit in
// between (memberships and a seat change): the whole read is the state
// before the commit, as LoadState reads it.
func testLoadStateStaged(t *testing.T) {
	ctx := t.Context()
	s := openTest(t)
	commit(t, s, &reconcile.Commit{Plan: plan1(), Mirrors: mirrors1(), Now: t0})
	want, err := s.LoadState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Members) == 0 || len(want.Assignments) == 0 {
		t.Fatal("plan1 makes no memberships or seats: the test proves nothing")
	}
	st, finish, err := s.LoadStateStaged(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.People) != len(want.People) || len(st.Identities) != len(want.Identities) || len(st.Groups) != len(want.Groups) {
		t.Errorf("first part: %d people, %d identities, %d groups; want %d, %d, %d",
			len(st.People), len(st.Identities), len(st.Groups), len(want.People), len(want.Identities), len(want.Groups))
	}
	if len(st.Members)+len(st.Assignments) != 0 {
		t.Errorf("first part read %d groups' members and %d pools' seats: they belong to the second", len(st.Members), len(st.Assignments))
	}
	commit(t, s, daveCommit())
	if err := finish(true); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("the staged read saw the commit made between its parts (-LoadState before +staged):\n%s", diff)
	}

	// finish(false) ends the snapshot without the second part.
	st, finish, err = s.LoadStateStaged(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := finish(false); err != nil {
		t.Fatal(err)
	}
	if len(st.Members)+len(st.Assignments) != 0 {
		t.Errorf("finish(false) read the second part")
	}
	after, err := s.LoadState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Equal(want, after) {
		t.Error("LoadState does not show the commit: the test proves nothing")
	}
}
