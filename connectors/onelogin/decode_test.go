package onelogin

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/learnsync/learnsync/connectors"
)

// recordedPage reads the items of testdata/users_page.json.
func recordedPage(tb testing.TB) []json.RawMessage {
	tb.Helper()
	body, err := os.ReadFile("testdata/users_page.json")
	if err != nil {
		tb.Fatal(err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		tb.Fatal(err)
	}
	return items
}

// TestDecodeRecordedPage maps a page in the shape of OneLogin's documented
// answer (nulls, ids as numbers, manager_user_id as a string).
func TestDecodeRecordedPage(t *testing.T) {
	items := recordedPage(t)
	f := &pull{}
	var got []userRec
	for i, raw := range items {
		if rec, ok := f.mapUser(raw, 1, i); ok {
			got = append(got, rec)
		}
	}
	if len(f.problems) != 0 {
		t.Errorf("problems: %v", f.problems)
	}
	want := []userRec{
		{user: connectors.User{ExternalID: "56781966", UserName: "mike.tester@example.com", Email: "mike.tester@example.com",
			GivenName: "Mike", FamilyName: "Tester", DisplayName: "Mike Tester", Title: "QA Engineer", Department: "Quality",
			Status: connectors.StatusActive}, manager: "56781967"},
		{user: connectors.User{ExternalID: "56781967", UserName: "lead", Email: "lead@example.com",
			GivenName: "Lea", FamilyName: "Dee", DisplayName: "Lea Dee", Status: connectors.StatusInactive}, groupID: "431"},
		{user: connectors.User{ExternalID: "56781968", UserName: "pending", Email: "pending@example.com",
			DisplayName: "pending", Status: connectors.StatusSkip}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d users, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("user %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// FuzzMapUser checks that no answer element makes the mapping panic, and
// that a kept user always has an id and a valid status.
func FuzzMapUser(f *testing.F) {
	items := recordedPage(f)
	for _, it := range items {
		f.Add([]byte(it))
	}
	f.Add([]byte(`{"id": 1e99, "status": 1}`))
	f.Add([]byte(`{"id": "x", "status": -1, "state": null}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fe := &pull{}
		rec, ok := fe.mapUser(raw, 1, 0)
		if !ok {
			if len(fe.problems) == 0 {
				t.Errorf("dropped %q without a problem", raw)
			}
			return
		}
		if rec.user.ExternalID == "" || !rec.user.Status.Valid() {
			t.Errorf("kept %+v from %q", rec.user, raw)
		}
	})
}
