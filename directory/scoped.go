package directory

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/learnsync/learnsync/reconcile"
)

// The reads of an incremental run: parts of the directory and the mirrors,
// each by an indexed query. Lists of keys go in as one JSON array
// (json_each), so a query is one statement whatever their number.

var _ reconcile.ScopedStore = (*Store)(nil)

// jsonList encodes a list as a JSON array for json_each.
func jsonList[T any](xs []T) string {
	if len(xs) == 0 {
		return "[]" // not null: PostgreSQL cannot list a scalar
	}
	b, err := json.Marshal(xs)
	if err != nil {
		return "[]"
	}
	return string(b)
}

// Marks returns the recorded marks of the last reconciles, or nil.
func (s *Store) Marks(ctx context.Context) (*reconcile.Marks, error) {
	var m *reconcile.Marks
	var full sql.NullTime
	var hash string
	var converged bool
	err := eachRow(ctx, s.db, "read reconcile marks", `SELECT full_at, rules_hash, converged FROM reconcile_marks WHERE id = 1`, nil,
		[]any{&full, &hash, &converged}, func() error {
			m = &reconcile.Marks{FullAt: full.Time, RulesHash: hash, Converged: converged}
			return nil
		})
	return m, err
}

// writeMarks stores the marks. The first time, mirror rows written before
// the rows kept their hashes and match keys get them.
func (w *writer) writeMarks(m *reconcile.Marks) error {
	var n int
	if err := w.QueryRowContext(w.ctx, `SELECT count(*) FROM reconcile_marks`).Scan(&n); err != nil {
		return fmt.Errorf("read reconcile marks: %w", err)
	}
	if n == 0 {
		if err := w.backfillMirror(); err != nil {
			return fmt.Errorf("fill in mirror hashes: %w", err)
		}
	}
	_, err := w.exec(`INSERT INTO reconcile_marks (id, full_at, rules_hash, converged) VALUES (1, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET full_at = excluded.full_at, rules_hash = excluded.rules_hash, converged = excluded.converged`,
		nullTime(m.FullAt), m.RulesHash, m.Converged)
	if err != nil {
		return fmt.Errorf("write reconcile marks: %w", err)
	}
	return nil
}

// backfillMirror computes the hashes and match keys of mirror rows that
// have none (written before schema 3).
func (w *writer) backfillMirror() error {
	mirrors := map[string]*reconcile.Mirror{}
	mirror := func(src string) *reconcile.Mirror {
		if mirrors[src] == nil {
			mirrors[src] = reconcile.NewMirror(src)
		}
		return mirrors[src]
	}
	if err := loadMirrorUsersFrom(w.ctx, w.Tx, mirror, `WHERE hash = 0`, nil); err != nil {
		return err
	}
	for src, m := range mirrors {
		for _, u := range m.Users {
			if err := w.upsertMirrorUser(src, u); err != nil {
				return err
			}
		}
	}
	mirrors = map[string]*reconcile.Mirror{}
	if err := loadMirrorGroupsFrom(w.ctx, w.Tx, mirror, `WHERE hash = 0`, nil); err != nil {
		return err
	}
	for src, m := range mirrors {
		for id, g := range m.Groups {
			h := reconcile.GroupHash(g, slices.Values(m.Members[id]))
			if _, err := w.exec(`UPDATE mirror_groups SET hash = ? WHERE source = ? AND external_id = ?`, h, src, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeleteDue returns the inactive people deactivated before t.
func (s *Store) DeleteDue(ctx context.Context, before time.Time) ([]int64, error) {
	var ids []int64
	var id int64
	err := eachRow(ctx, s.db, "find people to delete", `SELECT id FROM people WHERE active = 0 AND deactivated_at < ?`,
		[]any{before.UTC()}, []any{&id}, func() error { ids = append(ids, id); return nil })
	return ids, err
}

// MirrorHashes returns the stored hashes of a source's users and groups.
func (s *Store) MirrorHashes(ctx context.Context, source string) (map[string]int64, map[string]int64, error) {
	ctx, end, serr := s.Snapshot(ctx)
	if serr != nil {
		return nil, nil, serr
	}
	defer end()
	users, groups := map[string]int64{}, map[string]int64{}
	for _, t := range []struct {
		table string
		dst   map[string]int64
	}{{"mirror_users", users}, {"mirror_groups", groups}} {
		var id string
		var h int64
		if err := eachRow(ctx, s.db, "read mirror hashes", `SELECT external_id, hash FROM `+t.table+` WHERE source = ?`,
			[]any{source}, []any{&id, &h}, func() error { t.dst[id] = h; return nil }); err != nil {
			return nil, nil, err
		}
	}
	return users, groups, nil
}

// MirrorPart reads the mirror row of a source and the given users and
// groups of it; nil when the source has no mirror.
func (s *Store) MirrorPart(ctx context.Context, source string, users, groups []string) (*reconcile.Mirror, error) {
	ctx, end, serr := s.Snapshot(ctx)
	if serr != nil {
		return nil, serr
	}
	defer end()
	var m *reconcile.Mirror
	var cursor string
	var full, fetched sql.NullTime
	err := eachRow(ctx, s.db, "load mirror", `SELECT cursor, full_at, fetched_at FROM mirrors WHERE source = ?`, []any{source},
		[]any{&cursor, &full, &fetched}, func() error {
			m = reconcile.NewMirror(source)
			m.Cursor, m.FullAt, m.FetchedAt = cursor, full.Time, fetched.Time
			return nil
		})
	if err != nil || m == nil {
		return nil, err
	}
	mirror := func(string) *reconcile.Mirror { return m }
	in := `WHERE source = ? AND external_id IN (SELECT value FROM json_each(?))`
	if len(users) > 0 {
		if err := s.loadMirrorUsers(ctx, mirror, in, []any{source, jsonList(users)}); err != nil {
			return nil, err
		}
	}
	if len(groups) > 0 {
		if err := s.loadMirrorGroups(ctx, mirror, in, []any{source, jsonList(groups)}); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// MirrorGroupsWith returns the groups of a source with one of the users as
// a member. The member lists are not indexed: this reads them all, once,
// without building them.
func (s *Store) MirrorGroupsWith(ctx context.Context, source string, users []string) ([]string, error) {
	want := make(map[string]bool, len(users))
	for _, u := range users {
		want[encodeMembers([]string{u})] = true
	}
	var out []string
	var gid string
	var members sql.RawBytes
	err := eachRow(ctx, s.db, "find mirror groups", `SELECT external_id, members FROM mirror_groups WHERE source = ?`, []any{source},
		[]any{&gid, &members}, func() error {
			for rest := members; len(rest) > 0; {
				line := rest
				if i := bytes.IndexByte(rest, '\n'); i >= 0 {
					line, rest = rest[:i], rest[i+1:]
				} else {
					rest = nil
				}
				if want[string(line)] {
					out = append(out, gid)
					return nil
				}
			}
			return nil
		})
	return out, err
}

// MirrorGroupsNamed returns, per source, the groups with one of the names.
func (s *Store) MirrorGroupsNamed(ctx context.Context, names []string) (map[string][]string, error) {
	out := map[string][]string{}
	var src, id string
	err := eachRow(ctx, s.db, "find mirror groups", `SELECT source, external_id FROM mirror_groups WHERE name IN (SELECT value FROM json_each(?))`,
		[]any{jsonList(names)}, []any{&src, &id}, func() error { out[src] = append(out[src], id); return nil })
	return out, err
}

// MirrorUsersByKey returns, per source, the users with one of the match keys.
func (s *Store) MirrorUsersByKey(ctx context.Context, matchOn string, keys []string) (map[string][]string, error) {
	col := "email_key"
	if matchOn == "user_name" {
		col = "name_key"
	}
	out := map[string][]string{}
	var src, id string
	err := eachRow(ctx, s.db, "find mirror users", `SELECT source, external_id FROM mirror_users WHERE `+col+` IN (SELECT value FROM json_each(?))`,
		[]any{jsonList(keys)}, []any{&src, &id}, func() error { out[src] = append(out[src], id); return nil })
	return out, err
}

// PeopleFor returns the people with one of the keys or linked to one of the
// identities.
func (s *Store) PeopleFor(ctx context.Context, keys []string, refs []reconcile.IdentityRef) ([]int64, error) {
	var ids []int64
	var id int64
	pairs := make([][2]string, len(refs))
	for i, r := range refs {
		pairs[i] = [2]string{r.Source, r.ExternalID}
	}
	err := eachRow(ctx, s.db, "find people", `SELECT id FROM people WHERE match_key IN (SELECT value FROM json_each(?))
		UNION SELECT person_id FROM identities WHERE (source, external_id) IN
		(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))`,
		[]any{jsonList(keys), jsonList(pairs)}, []any{&id}, func() error { ids = append(ids, id); return nil })
	return ids, err
}

// LoadPeople reads people by id, with all their identities and seats.
func (s *Store) LoadPeople(ctx context.Context, ids []int64, st *reconcile.State) error {
	ctx, end, serr := s.Snapshot(ctx)
	if serr != nil {
		return serr
	}
	defer end()
	list := jsonList(ids)
	if err := s.loadPeopleWhere(ctx, st, `WHERE id IN (SELECT CAST(value AS BIGINT) FROM json_each(?))`, []any{list}); err != nil {
		return err
	}
	var ref reconcile.IdentityRef
	var id int64
	if err := eachRow(ctx, s.db, "load identities", `SELECT source, external_id, person_id FROM identities
		WHERE person_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?))`, []any{list},
		[]any{&ref.Source, &ref.ExternalID, &id}, func() error { st.Identities[ref] = id; return nil }); err != nil {
		return err
	}
	var pool string
	var granted time.Time
	return eachRow(ctx, s.db, "load assignments", `SELECT pool, person_id, granted_at FROM assignments
		WHERE revoked_at IS NULL AND person_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?))`, []any{list},
		[]any{&pool, &id, &granted}, func() error {
			if st.Assignments[pool] == nil {
				st.Assignments[pool] = map[int64]reconcile.Instant{}
			}
			st.Assignments[pool][id] = reconcile.InstantOf(granted)
			return nil
		})
}

// LoadScope reads the given groups with their members, and every pool.
func (s *Store) LoadScope(ctx context.Context, groups []reconcile.GroupRef, st *reconcile.State) error {
	ctx, end, serr := s.Snapshot(ctx)
	if serr != nil {
		return serr
	}
	defer end()
	if err := s.loadPools(ctx, st); err != nil {
		return err
	}
	pairs := make([][2]string, len(groups))
	for i, g := range groups {
		pairs[i] = [2]string{g.Source, g.ExternalID}
	}
	var g reconcile.Group
	err := eachRow(ctx, s.db, "load groups", `SELECT id, source, external_id, name, description FROM groups WHERE (source, external_id) IN
		(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))`, []any{jsonList(pairs)},
		[]any{&g.ID, &g.Ref.Source, &g.Ref.ExternalID, &g.Name, &g.Description},
		func() error { g := g; st.Groups[g.Ref] = &g; return nil })
	if err != nil {
		return err
	}
	ids := make([]int64, 0, len(st.Groups))
	for _, g := range st.Groups {
		ids = append(ids, g.ID)
		st.Members[g.ID] = []int64{}
	}
	var gid, pid int64
	err = eachRow(ctx, s.db, "load memberships", `SELECT group_id, person_id FROM memberships WHERE group_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?))`,
		[]any{jsonList(ids)}, []any{&gid, &pid}, func() error { st.Members[gid] = append(st.Members[gid], pid); return nil })
	if err != nil {
		return err
	}
	for _, ids := range st.Members {
		slices.Sort(ids) // State keeps members sorted
	}
	return nil
}

// PoolHolders returns the people holding a seat of pool.
func (s *Store) PoolHolders(ctx context.Context, pool string) ([]int64, error) {
	var ids []int64
	var id int64
	err := eachRow(ctx, s.db, "load seats", `SELECT person_id FROM assignments WHERE pool = ? AND revoked_at IS NULL`, []any{pool},
		[]any{&id}, func() error { ids = append(ids, id); return nil })
	return ids, err
}

// MirrorChanges returns the pending change-log entries of the sources.
func (s *Store) MirrorChanges(ctx context.Context, sources []string) (map[string]*reconcile.MirrorChanges, error) {
	out := map[string]*reconcile.MirrorChanges{}
	if len(sources) == 0 {
		return out, nil
	}
	seen := map[[3]string]bool{}
	var seq int64
	var src, kind, id string
	err := eachRow(ctx, s.db, "read mirror changes", `SELECT seq, source, kind, id FROM mirror_changes
		WHERE source IN (SELECT value FROM json_each(?)) ORDER BY seq`, []any{jsonList(sources)},
		[]any{&seq, &src, &kind, &id}, func() error {
			c := out[src]
			if c == nil {
				c = &reconcile.MirrorChanges{}
				out[src] = c
			}
			c.Seq = seq
			if k := [3]string{src, kind, id}; !seen[k] {
				seen[k] = true
				if kind == changeGroup {
					c.Groups = append(c.Groups, id)
				} else {
					c.Users = append(c.Users, id)
				}
			}
			return nil
		})
	for _, c := range out {
		slices.Sort(c.Users)
		slices.Sort(c.Groups)
	}
	return out, err
}

// Kinds of change-log entries.
const (
	changeUser  = "user"
	changeGroup = "group"
)

// consumeChanges deletes the change-log entries a run reconciled.
func (w *writer) consumeChanges(upTo map[string]int64) error {
	for src, seq := range upTo {
		if _, err := w.exec(`DELETE FROM mirror_changes WHERE source = ? AND seq <= ?`, src, seq); err != nil {
			return fmt.Errorf("consume mirror changes: %w", err)
		}
	}
	return nil
}
