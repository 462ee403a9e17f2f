package directory

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/reconcile"
)

// LoadState reads the whole directory. It uses plain queries and scans
// rather than gorm's reflection: a large directory has millions of rows.
func (s *Store) LoadState(ctx context.Context) (*reconcile.State, error) {
	st := reconcile.NewState()
	rows, err := s.db.QueryContext(ctx, `SELECT id, active, created_at, deactivated_at, `+
		pack("match_key", "user_name", "email", "given_name", "family_name", "display_name", "title", "department",
			"employee_number", "manager", "cost_center")+` FROM people`)
	if err != nil {
		return nil, fmt.Errorf("load people: %w", err)
	}
	for rows.Next() {
		p := new(reconcile.Person)
		var deact sql.NullTime
		var packed string
		if err := rows.Scan(&p.ID, &p.Active, &p.FirstSeen, &deact, &packed); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load people: %w", err)
		}
		if err := unpack(packed, &p.Key, &p.UserName, &p.Email, &p.GivenName, &p.FamilyName, &p.DisplayName,
			&p.Title, &p.Department, &p.EmployeeNumber, &p.Manager, &p.CostCenter); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load person %d: %w", p.ID, err)
		}
		if deact.Valid {
			p.DeactivatedAt = deact.Time
		}
		st.People[p.ID] = p
	}
	if err := closeRows(rows, "people"); err != nil {
		return nil, err
	}

	rows, err = s.db.QueryContext(ctx, `SELECT source, external_id, person_id FROM identities`)
	if err != nil {
		return nil, fmt.Errorf("load identities: %w", err)
	}
	for rows.Next() {
		var ref reconcile.IdentityRef
		var id int64
		if err := rows.Scan(&ref.Source, &ref.ExternalID, &id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load identities: %w", err)
		}
		st.Identities[ref] = id
	}
	if err := closeRows(rows, "identities"); err != nil {
		return nil, err
	}

	rows, err = s.db.QueryContext(ctx, `SELECT id, source, external_id, name, description FROM groups`)
	if err != nil {
		return nil, fmt.Errorf("load groups: %w", err)
	}
	for rows.Next() {
		g := new(reconcile.Group)
		if err := rows.Scan(&g.ID, &g.Ref.Source, &g.Ref.ExternalID, &g.Name, &g.Description); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load groups: %w", err)
		}
		st.Groups[g.Ref] = g
	}
	if err := closeRows(rows, "groups"); err != nil {
		return nil, err
	}

	// One row a group: SQLite walks the memberships, not the driver.
	rows, err = s.db.QueryContext(ctx, `SELECT group_id, count(*), group_concat(person_id) FROM memberships GROUP BY group_id`)
	if err != nil {
		return nil, fmt.Errorf("load memberships: %w", err)
	}
	for rows.Next() {
		var gid int64
		var n int
		var ids sql.RawBytes
		if err := rows.Scan(&gid, &n, &ids); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load memberships: %w", err)
		}
		set := make(map[int64]struct{}, n)
		for len(ids) > 0 {
			i := bytes.IndexByte(ids, ',')
			if i < 0 {
				i = len(ids)
			}
			pid, err := strconv.ParseInt(string(ids[:i]), 10, 64)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("load memberships of group %d: %w", gid, err)
			}
			set[pid] = struct{}{}
			ids = ids[min(i+1, len(ids)):]
		}
		st.Members[gid] = set
	}
	if err := closeRows(rows, "memberships"); err != nil {
		return nil, err
	}

	rows, err = s.db.QueryContext(ctx, `SELECT name, seats, waiting FROM pools`)
	if err != nil {
		return nil, fmt.Errorf("load pools: %w", err)
	}
	for rows.Next() {
		p := new(reconcile.Pool)
		if err := rows.Scan(&p.Name, &p.Seats, &p.Waiting); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load pools: %w", err)
		}
		st.Pools[p.Name] = p
	}
	if err := closeRows(rows, "pools"); err != nil {
		return nil, err
	}

	rows, err = s.db.QueryContext(ctx, `SELECT pool, person_id, granted_at FROM assignments WHERE revoked_at IS NULL`)
	if err != nil {
		return nil, fmt.Errorf("load assignments: %w", err)
	}
	for rows.Next() {
		var pool string
		var pid int64
		var granted time.Time
		if err := rows.Scan(&pool, &pid, &granted); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load assignments: %w", err)
		}
		m := st.Assignments[pool]
		if m == nil {
			m = make(map[int64]time.Time)
			st.Assignments[pool] = m
		}
		m[pid] = granted
	}
	if err := closeRows(rows, "assignments"); err != nil {
		return nil, err
	}
	return st, nil
}

func closeRows(rows *sql.Rows, what string) error {
	if err := rows.Err(); err != nil {
		rows.Close()
		return fmt.Errorf("load %s: %w", what, err)
	}
	return rows.Close()
}

// LoadMirrors reads every source's mirror. Repeated ids are shared strings,
// which keeps a large mirror small in memory.
func (s *Store) LoadMirrors(ctx context.Context) (map[string]*reconcile.Mirror, error) {
	out := make(map[string]*reconcile.Mirror)
	rows, err := s.db.QueryContext(ctx, `SELECT source, cursor, full_at, fetched_at FROM mirrors`)
	if err != nil {
		return nil, fmt.Errorf("load mirrors: %w", err)
	}
	for rows.Next() {
		var src, cursor string
		var full, fetched sql.NullTime
		if err := rows.Scan(&src, &cursor, &full, &fetched); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load mirrors: %w", err)
		}
		m := reconcile.NewMirror(src)
		m.Cursor = cursor
		m.FullAt = full.Time
		m.FetchedAt = fetched.Time
		out[src] = m
	}
	if err := closeRows(rows, "mirrors"); err != nil {
		return nil, err
	}
	mirror := func(src string) *reconcile.Mirror {
		m := out[src]
		if m == nil {
			m = reconcile.NewMirror(src)
			out[src] = m
		}
		return m
	}

	rows, err = s.db.QueryContext(ctx, `SELECT source, `+pack("external_id", "user_name", "email", "given_name", "family_name",
		"display_name", "title", "department", "employee_number", "manager", "cost_center", "status")+` FROM mirror_users`)
	if err != nil {
		return nil, fmt.Errorf("load mirror users: %w", err)
	}
	var src string
	var m *reconcile.Mirror
	for rows.Next() {
		u := new(connectors.User)
		var status, packed string
		var srcB sql.RawBytes
		if err := rows.Scan(&srcB, &packed); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load mirror users: %w", err)
		}
		if err := unpack(packed, &u.ExternalID, &u.UserName, &u.Email, &u.GivenName, &u.FamilyName, &u.DisplayName,
			&u.Title, &u.Department, &u.EmployeeNumber, &u.Manager, &u.CostCenter, &status); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load mirror users: %w", err)
		}
		u.Status = connectors.Status(status)
		if m == nil || string(srcB) != src {
			src = string(srcB)
			m = mirror(src)
		}
		m.Users[u.ExternalID] = u
	}
	if err := closeRows(rows, "mirror users"); err != nil {
		return nil, err
	}

	rows, err = s.db.QueryContext(ctx, `SELECT source, external_id, name, description, members FROM mirror_groups`)
	if err != nil {
		return nil, fmt.Errorf("load mirror groups: %w", err)
	}
	var members string
	for rows.Next() {
		g := new(connectors.Group)
		if err := rows.Scan(&src, &g.ExternalID, &g.Name, &g.Description, &members); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load mirror groups: %w", err)
		}
		m = mirror(src)
		m.Groups[g.ExternalID] = g
		if members == "" {
			continue
		}
		set := make(map[string]struct{}, strings.Count(members, "\n")+1)
		decodeMembers(members, func(id string) {
			// Share the user's id string rather than keep the whole column.
			if u, ok := m.Users[id]; ok {
				set[u.ExternalID] = struct{}{}
			} else {
				set[strings.Clone(id)] = struct{}{}
			}
		})
		m.Members[g.ExternalID] = set
	}
	if err := closeRows(rows, "mirror groups"); err != nil {
		return nil, err
	}
	return out, nil
}

// Cursors returns the stored cursor of every source.
func (s *Store) Cursors(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT source, cursor FROM mirrors`)
	if err != nil {
		return nil, fmt.Errorf("load cursors: %w", err)
	}
	out := make(map[string]string)
	for rows.Next() {
		var src, cursor string
		if err := rows.Scan(&src, &cursor); err != nil {
			rows.Close()
			return nil, fmt.Errorf("load cursors: %w", err)
		}
		out[src] = cursor
	}
	return out, closeRows(rows, "cursors")
}

// pack returns an SQL expression that packs text columns into one value,
// each as <byte length>:<bytes>. Reading one column instead of a dozen per
// row saves most of the driver's per-column cost on large tables.
func pack(cols ...string) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString(" || ")
		}
		fmt.Fprintf(&b, "octet_length(%s) || ':' || %s", c, c)
	}
	return b.String()
}

// unpack splits a value made by pack into dst.
func unpack(s string, dst ...*string) error {
	for _, d := range dst {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return fmt.Errorf("packed columns: missing length")
		}
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || i+1+n > len(s) {
			return fmt.Errorf("packed columns: bad length %q", s[:i])
		}
		*d = s[i+1 : i+1+n]
		s = s[i+1+n:]
	}
	if s != "" {
		return fmt.Errorf("packed columns: %d bytes left over", len(s))
	}
	return nil
}
