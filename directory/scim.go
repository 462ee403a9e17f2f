package directory

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/reconcile"
	"github.com/learnsync/learnsync/scim"
)

// The resources of scim sources: what the identity providers pushed, kept
// apart from the directory (the reconciled people). Every write changes the
// source's mirror in the same transaction, through the one mirror writer
// (applyMirror), so that a push is durable, with its mirror, before it is
// answered.

var _ scim.Store = (*Store)(nil)

// UpdateSCIM runs fn in one write transaction over the resources of
// source, then writes the mirror rows of every user and group fn touched.
func (s *Store) UpdateSCIM(ctx context.Context, source string, fn func(scim.Tx) error) error {
	return s.update(ctx, s.Now().UTC(), func(t *tx) error {
		st := &scimTx{tx: t, source: source, users: map[string]bool{}, groups: map[string]bool{}, keep: s.keepAttrs(source)}
		if err := fn(st); err != nil {
			return err
		}
		return st.writeMirror()
	})
}

// scimTx is a scim.Tx: it records what it touched for the mirror.
type scimTx struct {
	*tx
	source        string
	users, groups map[string]bool
	// keep are the raw attributes the rules read (attrs.go).
	keep *connectors.Selection
}

const scimColumns = `id, version, created_at, modified_at, body`

// scanResource reads one row of scimColumns.
func scanResource(typ string, scan func(...any) error) (*scim.Resource, error) {
	r := &scim.Resource{Type: typ}
	var body string
	if err := scan(&r.ID, &r.Version, &r.Created, &r.Modified, &body); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(body), &r.Attrs); err != nil {
		return nil, fmt.Errorf("scim resource %s: %w", r.ID, err)
	}
	return r, nil
}

func (t *scimTx) Get(typ, id string) (*scim.Resource, error) {
	row := t.QueryRowContext(t.ctx, `SELECT `+scimColumns+` FROM scim_resources WHERE source = ? AND type = ? AND id = ?`,
		t.source, typ, id)
	r, err := scanResource(typ, row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, scim.ErrNotFound
	}
	return r, err
}

func (t *scimTx) touch(typ, id string) {
	if typ == scim.TypeUser {
		t.users[id] = true
	} else {
		t.groups[id] = true
	}
}

// nameKey is the lower-cased userName or displayName.
func nameKey(r *scim.Resource) string {
	if r.Type == scim.TypeUser {
		return strings.ToLower(r.UserName())
	}
	return strings.ToLower(r.DisplayName())
}

func (t *scimTx) Put(r *scim.Resource) error {
	body, err := json.Marshal(r.Attrs)
	if err != nil {
		return fmt.Errorf("encode scim resource: %w", err)
	}
	version, created, modified := r.Version+1, r.Created, t.now
	if r.Version == 0 {
		created = t.now
	}
	var res sql.Result
	err = t.savepoint(func() error { // on PostgreSQL a taken userName must not abort the transaction
		if r.Version == 0 {
			_, err := t.exec(`INSERT INTO scim_resources (source, type, id, name_key, version, created_at, modified_at, body)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, t.source, r.Type, r.ID, nameKey(r), version, created, modified, string(body))
			return err
		}
		var err error
		res, err = t.exec(`UPDATE scim_resources SET name_key = ?, version = ?, modified_at = ?, body = ?
			WHERE source = ? AND type = ? AND id = ?`, nameKey(r), version, modified, string(body), t.source, r.Type, r.ID)
		return err
	})
	if err == nil && res != nil {
		if n, _ := res.RowsAffected(); n == 0 {
			return scim.ErrNotFound
		}
	}
	if err == nil {
		r.Version, r.Created, r.Modified = version, created, modified
	}
	if err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("%w: %q", scim.ErrUniqueness, r.UserName())
		}
		return fmt.Errorf("write scim resource: %w", err)
	}
	if err := t.writeKeys(r); err != nil {
		return err
	}
	t.touch(r.Type, r.ID)
	return nil
}

// writeKeys replaces the lookup keys and, for a group, the member rows of r.
func (t *scimTx) writeKeys(r *scim.Resource) error {
	if _, err := t.exec(`DELETE FROM scim_keys WHERE source = ? AND type = ? AND id = ?`, t.source, r.Type, r.ID); err != nil {
		return fmt.Errorf("write scim keys: %w", err)
	}
	keys := map[[2]string]bool{}
	if x := r.ExternalID(); x != "" {
		keys[[2]string{scim.LookupExternalID, x}] = true
	}
	if r.Type == scim.TypeUser {
		for _, e := range r.WorkEmails() {
			keys[[2]string{scim.LookupWorkEmail, strings.ToLower(e)}] = true
		}
	}
	for k := range keys {
		if _, err := t.exec(`INSERT INTO scim_keys (source, type, attr, key, id) VALUES (?, ?, ?, ?, ?)`,
			t.source, r.Type, k[0], k[1], r.ID); err != nil {
			return fmt.Errorf("write scim keys: %w", err)
		}
	}
	if r.Type != scim.TypeGroup {
		return nil
	}
	if _, err := t.exec(`DELETE FROM scim_members WHERE source = ? AND group_id = ?`, t.source, r.ID); err != nil {
		return fmt.Errorf("write scim members: %w", err)
	}
	for _, m := range r.Members() {
		if _, err := t.exec(`INSERT INTO scim_members (source, group_id, member) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, t.source, r.ID, m); err != nil {
			return fmt.Errorf("write scim members: %w", err)
		}
	}
	return nil
}

func (t *scimTx) Delete(typ, id string) error {
	res, err := t.exec(`DELETE FROM scim_resources WHERE source = ? AND type = ? AND id = ?`, t.source, typ, id)
	if err != nil {
		return fmt.Errorf("delete scim resource: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return scim.ErrNotFound
	}
	if _, err := t.exec(`DELETE FROM scim_keys WHERE source = ? AND type = ? AND id = ?`, t.source, typ, id); err != nil {
		return fmt.Errorf("delete scim keys: %w", err)
	}
	q := `DELETE FROM scim_members WHERE source = ? AND group_id = ?`
	if typ == scim.TypeUser {
		groups, err := t.GroupsWith(id)
		if err != nil {
			return err
		}
		for _, g := range groups {
			t.groups[g] = true
		}
		q = `DELETE FROM scim_members WHERE source = ? AND member = ?`
	}
	if _, err := t.exec(q, t.source, id); err != nil {
		return fmt.Errorf("delete scim members: %w", err)
	}
	t.touch(typ, id)
	return nil
}

func (t *scimTx) GroupsWith(id string) ([]string, error) {
	var out []string
	var g string
	err := eachRow(t.ctx, t.Tx, "read scim members", `SELECT group_id FROM scim_members WHERE source = ? AND member = ? ORDER BY group_id`,
		[]any{t.source, id}, []any{&g}, func() error { out = append(out, g); return nil })
	return out, err
}

// writeMirror writes the mirror rows of the touched users and groups: a
// group's members are those of its members that are users of the source.
func (t *scimTx) writeMirror() error {
	if len(t.users) == 0 && len(t.groups) == 0 {
		return nil
	}
	d := &reconcile.MirrorDelta{Source: t.source, FetchedAt: t.now, Members: map[string][]string{}}
	for _, id := range slices.Sorted(maps.Keys(t.users)) {
		r, err := t.Get(scim.TypeUser, id)
		switch {
		case errors.Is(err, scim.ErrNotFound):
			d.DeleteUsers = append(d.DeleteUsers, id)
		case err != nil:
			return err
		default:
			d.UpsertUsers = append(d.UpsertUsers, r.MirrorUser(t.keep))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(t.groups)) {
		r, err := t.Get(scim.TypeGroup, id)
		switch {
		case errors.Is(err, scim.ErrNotFound):
			d.DeleteGroups = append(d.DeleteGroups, id)
			continue
		case err != nil:
			return err
		}
		d.UpsertGroups = append(d.UpsertGroups, r.MirrorGroup())
		list := []string{}
		var m string
		err = eachRow(t.ctx, t.Tx, "read scim members", `SELECT m.member FROM scim_members m
			JOIN scim_resources u ON u.source = m.source AND u.type = 'User' AND u.id = m.member
			WHERE m.source = ? AND m.group_id = ? ORDER BY m.member`,
			[]any{t.source, id}, []any{&m}, func() error { list = append(list, m); return nil })
		if err != nil {
			return err
		}
		d.Members[id] = list
	}
	before, err := t.mirrorMembers(slices.Sorted(maps.Keys(t.groups)))
	if err != nil {
		return err
	}
	w := &writer{tx: t.tx}
	if err := w.applyMirror(d); err != nil {
		return fmt.Errorf("write mirror of %s: %w", t.source, err)
	}
	return t.logChanges(d, before)
}

// mirrorMembers reads the stored mirror member lists of groups.
func (t *scimTx) mirrorMembers(groups []string) (map[string][]string, error) {
	out := map[string][]string{}
	var gid, members string
	err := eachRow(t.ctx, t.Tx, "read mirror members", `SELECT external_id, members FROM mirror_groups
		WHERE source = ? AND external_id IN (SELECT value FROM json_each(?))`, []any{t.source, jsonList(groups)},
		[]any{&gid, &members}, func() error {
			list := []string{}
			decodeMembers(members, func(id string) { list = append(list, id) })
			out[gid] = list
			return nil
		})
	return out, err
}

// logChanges records in the change log, in the push's transaction, what it
// changed in the mirror: the users and groups it wrote or deleted, and the
// members a group gained or lost (the mirror no longer holds the old
// lists). The next applied run reconciles them and deletes the entries.
func (t *scimTx) logChanges(d *reconcile.MirrorDelta, before map[string][]string) error {
	users := maps.Clone(t.users)
	for gid := range t.groups {
		after, ok := d.Members[gid]
		if !ok && !slices.Contains(d.DeleteGroups, gid) {
			continue // the list did not change
		}
		// The symmetric difference: an id in one list only counts once.
		n := map[string]int{}
		for _, id := range before[gid] {
			n[id]++
		}
		for _, id := range after {
			n[id]--
		}
		for id, k := range n {
			if k != 0 {
				users[id] = true
			}
		}
	}
	for _, e := range []struct {
		kind string
		ids  map[string]bool
	}{{changeUser, users}, {changeGroup, t.groups}} {
		for _, id := range slices.Sorted(maps.Keys(e.ids)) {
			if _, err := t.exec(`INSERT INTO mirror_changes (source, kind, id) VALUES (?, ?, ?)`, t.source, e.kind, id); err != nil {
				return fmt.Errorf("log mirror changes: %w", err)
			}
		}
	}
	return nil
}

// GetSCIM reads one resource of source.
func (s *Store) GetSCIM(ctx context.Context, source, typ, id string) (*scim.Resource, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+scimColumns+` FROM scim_resources WHERE source = ? AND type = ? AND id = ?`,
		source, typ, id)
	r, err := scanResource(typ, row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, scim.ErrNotFound
	}
	return r, err
}

// ListSCIM reads the resources of a type in the order they were created:
// an indexed lookup when q has one, one page of them when q has a limit.
func (s *Store) ListSCIM(ctx context.Context, source, typ string, q scim.Query) (*scim.Page, error) {
	where, args := `source = ? AND type = ?`, []any{source, typ}
	if l := q.Lookup; l != nil {
		switch l.Attr {
		case scim.LookupID:
			where += ` AND id = ?`
			args = append(args, l.Key)
		case scim.LookupUserName, scim.LookupDisplayName:
			where += ` AND name_key = ?`
			args = append(args, l.Key)
		case scim.LookupExternalID, scim.LookupWorkEmail:
			where += ` AND id IN (SELECT id FROM scim_keys WHERE source = ? AND type = ? AND attr = ? AND key = ?)`
			args = append(args, source, typ, l.Attr, l.Key)
		default:
			return nil, fmt.Errorf("list scim resources: no index on %q", l.Attr)
		}
	}
	p := &scim.Page{Resources: []*scim.Resource{}}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM scim_resources WHERE `+where, args...).Scan(&p.Total); err != nil {
		return nil, fmt.Errorf("count scim resources: %w", err)
	}
	var limit any = q.Limit
	if q.Limit < 0 {
		limit = -1 // SQLite: no limit
		if s.driver == DriverPostgres {
			limit = nil // LIMIT NULL
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+scimColumns+` FROM scim_resources WHERE `+where+` ORDER BY rowid LIMIT ? OFFSET ?`,
		append(args, limit, max(q.Offset, 0))...)
	if err != nil {
		return nil, fmt.Errorf("list scim resources: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanResource(typ, rows.Scan)
		if err != nil {
			return nil, fmt.Errorf("list scim resources: %w", err)
		}
		p.Resources = append(p.Resources, r)
	}
	return p, rows.Err()
}

// isUniqueViolation says whether err is a unique constraint's refusal, on
// either backend.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}
