package benchorg_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/connectors/file"
	"github.com/learnsync/learnsync/internal/benchorg"
)

func TestWrite(t *testing.T) {
	var a, b bytes.Buffer
	if err := (benchorg.Org{Users: 500, Groups: 20, MembersPerGroup: 30, Seed: 7}).Write(&a); err != nil {
		t.Fatal(err)
	}
	if err := (benchorg.Org{Users: 500, Groups: 20, MembersPerGroup: 30, Seed: 7}).Write(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the same seed gave different files")
	}
	for _, want := range []string{`"id":"e000123"`, `"user_name":"u000123"`, `"email":"user000123@example.com"`,
		`"id":"g0019","name":"Group 0019"`} {
		if !strings.Contains(a.String(), want) {
			t.Errorf("synthetic file lacks %s", want)
		}
	}

	res := fetch(t, a.Bytes())
	if len(res.Problems) > 0 {
		t.Errorf("problems: %v", res.Problems[:min(5, len(res.Problems))])
	}
	if len(res.Users) != 500 || len(res.Groups) != 20 {
		t.Errorf("%d users, %d groups; want 500, 20", len(res.Users), len(res.Groups))
	}
	inactive := 0
	for _, u := range res.Users {
		if u.Status == connectors.StatusInactive {
			inactive++
		}
	}
	if inactive == 0 || inactive > 30 {
		t.Errorf("%d of 500 inactive, want about 2%%", inactive)
	}
	for _, g := range res.Groups {
		if n := len(res.Members[g.ExternalID]); n != 30 {
			t.Errorf("group %s has %d members, want 30 distinct", g.ExternalID, n)
		}
	}

	// Changed alters titles only, of about that share of the users.
	var c bytes.Buffer
	if err := (benchorg.Org{Users: 500, Groups: 20, MembersPerGroup: 30, Seed: 7, Changed: 0.1}).Write(&c); err != nil {
		t.Fatal(err)
	}
	changed := fetch(t, c.Bytes())
	diff := 0
	for i, u := range changed.Users {
		o := res.Users[i]
		if u != o {
			diff++
			o.Title += " II"
			if u != o {
				t.Errorf("user %s changed more than its title: %+v", u.ExternalID, u)
			}
		}
	}
	if diff < 25 || diff > 75 {
		t.Errorf("Changed 0.1 changed %d of 500 users", diff)
	}
	for _, g := range res.Groups {
		if !equalStrings(res.Members[g.ExternalID], changed.Members[g.ExternalID]) {
			t.Errorf("members of %s changed", g.ExternalID)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWriteRefusesNegativeSizes(t *testing.T) {
	if err := (benchorg.Org{Users: -1}).Write(&bytes.Buffer{}); err == nil {
		t.Error("a negative size was accepted")
	}
}

// fetch reads an organisation with the file source.
func fetch(t *testing.T, org []byte) *connectors.Result {
	t.Helper()
	p := filepath.Join(t.TempDir(), "org.json")
	if err := os.WriteFile(p, org, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := file.New(&file.Config{Path: p}, connectors.Options{Name: "org"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.FetchAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}
