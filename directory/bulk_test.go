package directory

import (
	"fmt"
	"slices"
	"testing"

	"github.com/learnsync/learnsync/reconcile"
)

// schemaObjects lists the directory's indexes and constraints with their
// definitions.
func schemaObjects(t *testing.T, s *Store) []string {
	t.Helper()
	q := `SELECT name || ': ' || sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name`
	if onPostgres(t) {
		q = `SELECT indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = current_schema()
			UNION ALL SELECT conname || ': ' || pg_get_constraintdef(oid) FROM pg_constraint
			WHERE connamespace = CAST(current_schema() AS regnamespace) ORDER BY 1`
	}
	return queryStrings(t, s, q)
}

func TestBulkLoadKeepsSchema(t *testing.T) { eachBackend(t, testBulkLoadKeepsSchema) }

// testBulkLoadKeepsSchema commits a first import large enough for a bulk
// load (indexes, and on PostgreSQL foreign keys, dropped and built again;
// rows written with COPY) and checks that every row is there and the
// schema is exactly as before, its foreign keys still enforced.
func testBulkLoadKeepsSchema(t *testing.T) {
	s := openTest(t)
	before := schemaObjects(t, s)
	const n = bulkRows/3 + 1
	g := gref("hr", "g1")
	plan := &reconcile.Plan{Groups: []reconcile.GroupChange{{Op: reconcile.OpCreate, Group: g, Name: "Everyone"}}}
	for i := range n {
		key := fmt.Sprintf("p%05d@example.com", i)
		p := aliceProfile
		p.Email, p.UserName = key, key
		plan.People = append(plan.People, reconcile.PersonChange{Op: reconcile.OpCreate, Person: newKey(key), Profile: p,
			Link: []reconcile.IdentityRef{ident("hr", fmt.Sprintf("u%05d", i))}})
		plan.Members = append(plan.Members, reconcile.MemberChange{Group: &reconcile.MemberGroup{Ref: g, Name: "Everyone", Op: reconcile.OpAdd}, Person: new(newKey(key))})
		plan.Licenses = append(plan.Licenses, reconcile.LicenseChange{Op: reconcile.OpGrant, Pool: "basic", Person: new(newKey(key))})
	}
	plan.Pools = []reconcile.PoolChange{{Op: reconcile.OpCreate, Pool: "basic", Assigned: n}}
	commit(t, s, &reconcile.Commit{Now: t0, Plan: plan})

	st := loadState(t, s)
	if len(st.People) != n || len(st.Identities) != n {
		t.Errorf("loaded %d people, %d identities; want %d each", len(st.People), len(st.Identities), n)
	}
	if len(st.Members) != 1 {
		t.Errorf("%d groups with members, want 1", len(st.Members))
	}
	for id, m := range st.Members {
		if len(m) != n {
			t.Errorf("group %d has %d members, want %d", id, len(m), n)
		}
	}
	if got := count(t, s, `SELECT count(*) FROM assignments WHERE revoked_at IS NULL`); got != n {
		t.Errorf("%d seats, want %d", got, n)
	}
	if after := schemaObjects(t, s); !slices.Equal(before, after) {
		t.Errorf("schema after a bulk load differs:\nbefore %q\nafter  %q", before, after)
	}
	if _, err := s.DB().ExecContext(t.Context(), `INSERT INTO memberships (group_id, person_id) VALUES (1, 999999)`); err == nil {
		t.Error("a membership of a person that does not exist was accepted: the foreign key is gone")
	}
}
