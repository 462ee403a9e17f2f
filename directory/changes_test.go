package directory_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/learnsync/learnsync/directory"
	"github.com/learnsync/learnsync/directory/dirtest"
	"github.com/learnsync/learnsync/reconcile"
	"github.com/learnsync/learnsync/scim"
)

// TestMirrorChanges: every SCIM write logs the mirror rows it changed (a
// group's lost and gained members among the users), and a commit deletes
// the entries up to the seq it read, never a later one.
func TestMirrorChanges(t *testing.T) { dirtest.Each(t, testMirrorChanges) }

func testMirrorChanges(t *testing.T) {
	ctx := context.Background()
	store, err := directory.OpenDriver(ctx, dirtest.Backend(t), dirtest.Target(t, dirtest.Backend(t)), directory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	push := func(writes ...func(scim.Tx) error) {
		t.Helper()
		err := store.UpdateSCIM(ctx, "s", func(tx scim.Tx) error {
			for _, w := range writes {
				if err := w(tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	user := func(id string) func(scim.Tx) error {
		return putResource(scim.TypeUser, id, map[string]any{"userName": id})
	}
	group := func(members ...string) func(scim.Tx) error {
		list := []any{}
		for _, m := range members {
			list = append(list, map[string]any{"value": m})
		}
		return putResource(scim.TypeGroup, "g", map[string]any{"displayName": "G", "members": list})
	}
	push(user("u1"), user("u2"), user("u3"), group("u1", "u2"))
	got, err := store.MirrorChanges(ctx, []string{"s", "other"})
	if err != nil {
		t.Fatal(err)
	}
	first := got["s"]
	if first == nil || len(got) != 1 {
		t.Fatalf("changes %+v", got)
	}
	if diff := cmp.Diff(&reconcile.MirrorChanges{Seq: first.Seq, Users: []string{"u1", "u2", "u3"}, Groups: []string{"g"}}, first); diff != "" {
		t.Errorf("first push (-want +got):\n%s", diff)
	}
	// Only the group changes: u1 leaves, u3 joins; u2 stays out of the log.
	if err := store.Commit(ctx, &reconcile.Commit{Run: &reconcile.Run{Result: reconcile.ResultOK}, Changes: map[string]int64{"s": first.Seq}}); err != nil {
		t.Fatal(err)
	}
	push(group("u2", "u3"))
	got, err = store.MirrorChanges(ctx, []string{"s"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&reconcile.MirrorChanges{Seq: got["s"].Seq, Users: []string{"u1", "u3"}, Groups: []string{"g"}}, got["s"]); diff != "" {
		t.Errorf("after the commit (-want +got):\n%s", diff)
	}
	// A commit consumes up to its seq only: a later push stays pending.
	read := got["s"].Seq
	push(user("u4"))
	if err := store.Commit(ctx, &reconcile.Commit{Run: &reconcile.Run{Result: reconcile.ResultOK}, Changes: map[string]int64{"s": read}}); err != nil {
		t.Fatal(err)
	}
	got, err = store.MirrorChanges(ctx, []string{"s"})
	if err != nil {
		t.Fatal(err)
	}
	if c := got["s"]; c == nil || !cmp.Equal(c.Users, []string{"u4"}) || len(c.Groups) != 0 {
		t.Errorf("pending after a push during the run: %+v", c)
	}
}
