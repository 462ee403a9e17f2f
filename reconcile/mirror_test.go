package reconcile

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/learnsync/learnsync/connectors"
)

// A delta's single adds and removals land in the group's sorted list, each
// counted once per change, and the delta shares the list it writes.
func TestMirrorUpdateMemberEdits(t *testing.T) {
	var users []connectors.User
	for i := range 6 {
		users = append(users, user(fmt.Sprint(i), fmt.Sprintf("p%d@x.io", i)))
	}
	m := mirrorOf("okta", (&snapshot{users: users}).group("g", "G", "4", "1", "2"))
	if got := m.Members["g"]; !slices.Equal(got, []string{"1", "2", "4"}) {
		t.Fatalf("members after a full fetch = %v, want sorted [1 2 4]", got)
	}
	d := m.Update(&connectors.Result{
		// 1 removed; 3 removed while not a member (nothing), then added;
		// 2 removed and added back; 5 and 0 added; 4 added although a
		// member (nothing): two removals and four additions.
		AddedMembers: []connectors.Membership{{GroupID: "g", UserID: "5"}, {GroupID: "g", UserID: "3"},
			{GroupID: "g", UserID: "0"}, {GroupID: "g", UserID: "2"}, {GroupID: "g", UserID: "4"}},
		RemovedMembers: []connectors.Membership{{GroupID: "g", UserID: "1"}, {GroupID: "g", UserID: "3"}, {GroupID: "g", UserID: "2"}},
		Cursor:         "c2",
	}, t0)
	// Removals are applied before additions (Mirror.Update's order).
	want := []string{"0", "2", "3", "4", "5"}
	if got := m.Members["g"]; !slices.Equal(got, want) {
		t.Errorf("members = %v, want %v", got, want)
	}
	if diff := cmp.Diff(map[string][]string{"g": want}, d.Members); diff != "" {
		t.Errorf("delta members (-want +got):\n%s", diff)
	}
	if d.MembersAdded != 4 || d.MembersRemoved != 2 {
		t.Errorf("added %d removed %d, want 4 and 2", d.MembersAdded, d.MembersRemoved)
	}
	if h := GroupHash(m.Groups["g"], slices.Values(want)); d.GroupHashes["g"] != h {
		t.Errorf("group hash %d, want %d", d.GroupHashes["g"], h)
	}
	// Everyone leaves: the group keeps no entry, the delta an empty list.
	d = m.Update(&connectors.Result{Members: map[string][]string{"g": {}}, Cursor: "c3"}, t0)
	if _, ok := m.Members["g"]; ok || d.MembersRemoved != 5 || d.Members["g"] == nil || len(d.Members["g"]) != 0 {
		t.Errorf("emptied group: mirror %v, delta %v, removed %d", m.Members, d.Members, d.MembersRemoved)
	}
}

func TestMemberSetSharesASortedList(t *testing.T) {
	sorted := []string{"a", "b", "c"}
	if got := memberSet(sorted); &got[0] != &sorted[0] || len(got) != 3 {
		t.Errorf("memberSet(%q) copied a sorted list", sorted)
	}
	for _, in := range [][]string{{"b", "a", "c"}, {"a", "b", "b", "c"}} {
		orig := append([]string(nil), in...)
		got := memberSet(in)
		if !slices.Equal(got, []string{"a", "b", "c"}) {
			t.Errorf("memberSet(%q) = %q", orig, got)
		}
		if !slices.Equal(in, orig) {
			t.Errorf("memberSet changed its argument: %q, was %q", in, orig)
		}
	}
	if got := memberSet(nil); got != nil {
		t.Errorf("memberSet(nil) = %q", got)
	}
}
