package directory

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/reconcile"
	"github.com/learnsync/learnsync/scim"
	"github.com/learnsync/learnsync/scim/filter"
)

// readStore is a small directory built by the engine: three people, two
// groups, one pool.
func readStore(t testing.TB) *Store {
	t.Helper()
	s, _, _ := readDir(t)
	return s
}

// readDir is readStore with the engine that filled it and its source.
func readDir(t testing.TB) (*Store, *reconcile.Engine, *fakeSource) {
	t.Helper()
	s := openFresh(t)
	hr := &fakeSource{result: &connectors.Result{Full: true,
		Users: []connectors.User{
			hrUser("u1", "a@example.com", "a", "Engineer", connectors.StatusActive),
			hrUser("u2", "b@example.com", "b", "", connectors.StatusActive),
			hrUser("u3", "c@example.com", "c", "", connectors.StatusInactive),
		},
		Groups:  []connectors.Group{{ExternalID: "g1", Name: "Learners"}, {ExternalID: "g2", Name: "Staff"}},
		Members: map[string][]string{"g1": {"u1", "u2"}, "g2": {"u2"}},
	}}
	rules := reconcile.SourceRules{Name: "hr", SyncGroups: []string{"*"}}
	e := &reconcile.Engine{Store: s, Sources: []reconcile.Source{{Rules: rules, Connector: hr}}, LockWait: -1,
		Rules: reconcile.Rules{MatchOn: "email", Sources: []reconcile.SourceRules{rules},
			Licenses: []reconcile.LicenseRule{{Name: "pro", Groups: []string{"hr/Learners"}}}}}
	if out, err := e.Run(t.Context(), reconcile.RunOptions{}); err != nil || !out.Applied {
		t.Fatalf("run: %+v, %v", out, err)
	}
	return s, e, hr
}

// The lookups applications make are index searches, not scans.
func TestReadFilterUsesIndexes(t *testing.T) {
	s := readStore(t)
	for filt, index := range map[string]string{
		`userName eq "A"`:                             "people_user_name_nocase",
		`emails[type eq "work"].value eq "a@x"`:       "people_email_nocase",
		`emails eq "a@x"`:                             "people_email_nocase",
		`meta.lastModified gt "2024-01-01T00:00:00Z"`: "people_modified",
		`id eq 2`:                            "INTEGER PRIMARY KEY",
		`userName eq "a" and title co "x"`:   "people_user_name_nocase",
		`userName eq "a" or emails eq "b@x"`: "people_email_nocase",
	} {
		e, err := filter.Parse(filt)
		if err != nil {
			t.Fatal(err)
		}
		where, args, err := translate(&userSchema, e)
		if err != nil {
			t.Fatal(err)
		}
		plan := queryPlan(t, s, "SELECT p.id FROM people p WHERE "+where+" ORDER BY p.id LIMIT 10", args)
		if !strings.Contains(plan, index) || strings.Contains(plan, "SCAN p") {
			t.Errorf("%s: plan %q does not search %s", filt, plan, index)
		}
	}
	e, _ := filter.Parse(`meta.lastModified gt "2024-01-01T00:00:00Z"`)
	where, args, _ := translate(&groupSchema, e)
	if plan := queryPlan(t, s, "SELECT g.id FROM groups g WHERE "+where, args); !strings.Contains(plan, "groups_modified") {
		t.Errorf("groups by lastModified: %q", plan)
	}
}

func queryPlan(t *testing.T, s *Store, query string, args []any) string {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		out = append(out, detail)
	}
	return strings.Join(out, "; ")
}

// lastModified moves with a person's seats and groups, not only the
// profile: the commit that changes them stamps them.
func TestReadLastModifiedMoves(t *testing.T) { eachBackend(t, testReadLastModifiedMoves) }

func testReadLastModifiedMoves(t *testing.T) {
	s, e, hr := readDir(t)
	read := func() map[int64]time.Time {
		page, err := s.ReadUsers(t.Context(), scim.ReadQuery{Limit: 10})
		if err != nil || page.Total != 2 { // c was never active: not created
			t.Fatalf("read: %+v, %v", page, err)
		}
		out := map[int64]time.Time{}
		for _, u := range page.Users {
			if u.Modified.Before(u.Created) || u.Created.IsZero() {
				t.Errorf("%s: created %v, modified %v", u.UserName, u.Created, u.Modified)
			}
			out[u.ID] = u.Modified
		}
		return out
	}
	var a, b int64
	if err := s.db.QueryRow(`SELECT (SELECT id FROM people WHERE user_name = 'a'), (SELECT id FROM people WHERE user_name = 'b')`).Scan(&a, &b); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		what    string
		members map[string][]string
		moved   int64
	}{
		{"b leaves Staff", map[string][]string{"g1": {"u1", "u2"}}, b},
		{"a leaves Learners and loses the pro seat", map[string][]string{"g1": {"u2"}}, a},
	} {
		before := read()
		time.Sleep(3 * time.Millisecond)
		r := *hr.result
		r.Members = step.members
		hr.result = &r
		if out, err := e.Run(t.Context(), reconcile.RunOptions{}); err != nil || !out.Applied {
			t.Fatalf("%s: run: %+v, %v", step.what, out, err)
		}
		for id, at := range read() {
			if moved := at.After(before[id]); moved != (id == step.moved) {
				t.Errorf("%s: person %d's lastModified %v → %v", step.what, id, before[id], at)
			}
		}
	}
}

// FuzzReadFilter feeds filters to the translator and runs them on a real
// directory: a filter either reads, or is refused with a SCIM 400 —
// never a panic, never an SQL error.
func FuzzReadFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "a"`, `emails[type eq "work" and value co "@"]`, `groups.display sw "hr/"`,
		`not (entitlements pr) or meta.lastModified gt "2024-01-01T00:00:00Z"`, `id ge "1"`, `id co 1`,
		`title eq null`, `active ne true`, `members[value eq 1]`, `displayName ew "'; DROP TABLE people; --"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x"`, `meta.created le 2024-01-01T00:00:00Z`,
		`userName co "\\%_"`, `externalId eq x`,
	} {
		f.Add(s)
	}
	s := readStore(f)
	f.Fuzz(func(t *testing.T, in string) {
		e, err := filter.Parse(in)
		if err != nil {
			return
		}
		for _, read := range []func() (*scim.ReadPage, error){
			func() (*scim.ReadPage, error) { return s.ReadUsers(t.Context(), scim.ReadQuery{Filter: e, Limit: 5}) },
			func() (*scim.ReadPage, error) { return s.ReadGroups(t.Context(), scim.ReadQuery{Filter: e, Limit: 5}) },
		} {
			page, err := read()
			var se *scim.Error
			switch {
			case err == nil:
				if page.Total < len(page.Users)+len(page.Groups) {
					t.Fatalf("%s: total %d < page", in, page.Total)
				}
			case !errors.As(err, &se) || se.Status != http.StatusBadRequest || se.Type != "invalidFilter":
				t.Fatalf("%s: %v", in, err)
			}
		}
	})
}
