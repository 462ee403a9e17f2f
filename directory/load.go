package directory

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/learnsync/learnsync/connectors"
	"github.com/learnsync/learnsync/reconcile"
)

// LoadState reads the whole directory. It uses plain queries and scans
// rather than gorm's reflection: a large directory has millions of rows.
func (s *Store) LoadState(ctx context.Context) (*reconcile.State, error) {
	ctx, end, serr := s.Snapshot(ctx)
	if serr != nil {
		return nil, serr
	}
	defer end()
	st := reconcile.NewState()
	if err := s.loadParts(ctx, st, s.loadPeople, s.loadIdentities, s.loadGroups, s.loadMemberships, s.loadPools, s.loadAssignments); err != nil {
		return nil, err
	}
	return st, nil
}

// LoadStateStaged reads the directory in two parts of one snapshot (see
// reconcile.StagedLoader): the people, identities, groups and pools now;
// the memberships and seats when finish(true) is called.
func (s *Store) LoadStateStaged(ctx context.Context) (_ *reconcile.State, finish func(read bool) error, err error) {
	ctx, end, err := s.Snapshot(ctx)
	if err != nil {
		return nil, nil, err
	}
	st := reconcile.NewState()
	if err := s.loadParts(ctx, st, s.loadPeople, s.loadIdentities, s.loadGroups, s.loadPools); err != nil {
		end()
		return nil, nil, err
	}
	return st, func(read bool) error {
		defer end()
		if !read {
			return nil
		}
		return s.loadParts(ctx, st, s.loadMemberships, s.loadAssignments)
	}, nil
}

// loadParts runs the loaders in turn.
func (s *Store) loadParts(ctx context.Context, st *reconcile.State, loads ...func(context.Context, *reconcile.State) error) error {
	for _, load := range loads {
		if err := load(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) loadPeople(ctx context.Context, st *reconcile.State) error {
	return s.loadPeopleWhere(ctx, st, "", nil)
}

// loadPeopleWhere reads the people a WHERE clause selects ("" for all).
func (s *Store) loadPeopleWhere(ctx context.Context, st *reconcile.State, where string, args []any) error {
	var (
		id        int64
		active    bool
		firstSeen time.Time
		deact     sql.NullTime
		packed    string
		shared    connectors.Shared
		// own are the values a person keeps copies of: the row's own and
		// those the shared tables could not take.
		own []*string
	)
	return eachRow(ctx, s.db, "load people", `SELECT id, active, created_at, deactivated_at, `+
		pack("match_key", "user_name", "email", "given_name", "family_name", "display_name", "title", "department",
			"employee_number", "manager", "cost_center")+` FROM people `+where, args,
		[]any{&id, &active, &firstSeen, &deact, &packed}, func() error {
			p := &reconcile.Person{ID: id, Active: active, FirstSeen: reconcile.InstantOf(firstSeen), DeactivatedAt: reconcile.InstantOf(deact.Time)}
			if err := unpack(packed, &p.Key, &p.UserName, &p.Email, &p.GivenName, &p.FamilyName, &p.DisplayName,
				&p.Title, &p.Department, &p.EmployeeNumber, &p.Manager, &p.CostCenter); err != nil {
				return fmt.Errorf("load person %d: %w", p.ID, err)
			}
			own = append(own[:0], &p.Key, &p.UserName, &p.Email, &p.EmployeeNumber)
			own = shared.FieldsLeft(own, &p.GivenName, &p.FamilyName, &p.DisplayName, &p.Title, &p.Department, &p.Manager, &p.CostCenter)
			compact(own...)
			st.People[p.ID] = p
			return nil
		})
}

func (s *Store) loadIdentities(ctx context.Context, st *reconcile.State) error {
	var ref reconcile.IdentityRef
	var id int64
	return eachRow(ctx, s.db, "load identities", `SELECT source, external_id, person_id FROM identities`, nil,
		[]any{&ref.Source, &ref.ExternalID, &id}, func() error { st.Identities[ref] = id; return nil })
}

func (s *Store) loadGroups(ctx context.Context, st *reconcile.State) error {
	var g reconcile.Group
	return eachRow(ctx, s.db, "load groups", `SELECT id, source, external_id, name, description FROM groups`, nil,
		[]any{&g.ID, &g.Ref.Source, &g.Ref.ExternalID, &g.Name, &g.Description},
		func() error { g := g; st.Groups[g.Ref] = &g; return nil })
}

// loadMemberships reads one row a group: SQLite walks the memberships, not
// the driver.
func (s *Store) loadMemberships(ctx context.Context, st *reconcile.State) error {
	var gid int64
	var n int
	var ids sql.RawBytes
	return eachRow(ctx, s.db, "load memberships", `SELECT group_id, count(*), group_concat(person_id) FROM memberships GROUP BY group_id`, nil,
		[]any{&gid, &n, &ids}, func() error {
			set := make([]int64, 0, n)
			for rest := ids; len(rest) > 0; {
				i := bytes.IndexByte(rest, ',')
				if i < 0 {
					i = len(rest)
				}
				pid, err := strconv.ParseInt(string(rest[:i]), 10, 64)
				if err != nil {
					return fmt.Errorf("load memberships of group %d: %w", gid, err)
				}
				set = append(set, pid)
				rest = rest[min(i+1, len(rest)):]
			}
			slices.Sort(set) // group_concat keeps no order
			st.Members[gid] = slices.Compact(set)
			return nil
		})
}

func (s *Store) loadPools(ctx context.Context, st *reconcile.State) error {
	var p reconcile.Pool
	return eachRow(ctx, s.db, "load pools", `SELECT name, seats, waiting FROM pools`, nil,
		[]any{&p.Name, &p.Seats, &p.Waiting}, func() error { p := p; st.Pools[p.Name] = &p; return nil })
}

func (s *Store) loadAssignments(ctx context.Context, st *reconcile.State) error {
	var pool string
	var pid int64
	var granted time.Time
	return eachRow(ctx, s.db, "load assignments", `SELECT pool, person_id, granted_at FROM assignments WHERE revoked_at IS NULL`, nil,
		[]any{&pool, &pid, &granted}, func() error {
			m := st.Assignments[pool]
			if m == nil {
				m = make(map[int64]reconcile.Instant)
				st.Assignments[pool] = m
			}
			m[pid] = reconcile.InstantOf(granted)
			return nil
		})
}

// LoadMirrors reads every source's mirror. Repeated ids are shared strings,
// which keeps a large mirror small in memory.
func (s *Store) LoadMirrors(ctx context.Context) (map[string]*reconcile.Mirror, error) {
	ctx, end, serr := s.Snapshot(ctx)
	if serr != nil {
		return nil, serr
	}
	defer end()
	out := make(map[string]*reconcile.Mirror)
	mirror := func(src string) *reconcile.Mirror {
		m := out[src]
		if m == nil {
			m = reconcile.NewMirror(src)
			out[src] = m
		}
		return m
	}
	var src, cursor string
	var full, fetched sql.NullTime
	err := eachRow(ctx, s.db, "load mirrors", `SELECT source, cursor, full_at, fetched_at FROM mirrors`, nil,
		[]any{&src, &cursor, &full, &fetched}, func() error {
			m := reconcile.NewMirror(src)
			m.Cursor, m.FullAt, m.FetchedAt = cursor, full.Time, fetched.Time
			out[src] = m
			return nil
		})
	if err != nil {
		return nil, err
	}
	if err := s.loadMirrorUsers(ctx, mirror, "", nil); err != nil {
		return nil, err
	}
	if err := s.loadMirrorGroups(ctx, mirror, "", nil); err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) loadMirrorUsers(ctx context.Context, mirror func(string) *reconcile.Mirror, where string, args []any) error {
	return loadMirrorUsersFrom(ctx, s.db, mirror, where, args)
}

// loadMirrorUsersFrom reads the mirror users a WHERE clause selects.
func loadMirrorUsersFrom(ctx context.Context, q querier, mirror func(string) *reconcile.Mirror, where string, args []any) error {
	var src string
	var m *reconcile.Mirror
	var srcB sql.RawBytes
	var packed string
	var shared connectors.Shared
	var own []*string
	var statuses connectors.Interner
	return eachRow(ctx, q, "load mirror users", `SELECT source, `+pack("external_id", "user_name", "email", "given_name", "family_name",
		"display_name", "title", "department", "employee_number", "manager", "cost_center", "status", "attrs")+` FROM mirror_users `+where, args,
		[]any{&srcB, &packed}, func() error {
			u := new(connectors.User)
			var status string
			if err := unpack(packed, &u.ExternalID, &u.UserName, &u.Email, &u.GivenName, &u.FamilyName, &u.DisplayName,
				&u.Title, &u.Department, &u.EmployeeNumber, &u.Manager, &u.CostCenter, &status, &u.Attrs); err != nil {
				return fmt.Errorf("load mirror users: %w", err)
			}
			u.Status = connectors.Status(statuses.Intern(status))
			own = append(own[:0], &u.ExternalID, &u.UserName, &u.Email, &u.EmployeeNumber, &u.Attrs)
			own = shared.FieldsLeft(own, &u.GivenName, &u.FamilyName, &u.DisplayName, &u.Title, &u.Department, &u.Manager, &u.CostCenter)
			compact(own...)
			if m == nil || string(srcB) != src {
				src = string(srcB)
				m = mirror(src)
			}
			m.Users[u.ExternalID] = u
			return nil
		})
}

func (s *Store) loadMirrorGroups(ctx context.Context, mirror func(string) *reconcile.Mirror, where string, args []any) error {
	return loadMirrorGroupsFrom(ctx, s.db, mirror, where, args)
}

// loadMirrorGroupsFrom reads the mirror groups a WHERE clause selects.
func loadMirrorGroupsFrom(ctx context.Context, q querier, mirror func(string) *reconcile.Mirror, where string, args []any) error {
	var src, members string
	var g connectors.Group
	return eachRow(ctx, q, "load mirror groups", `SELECT source, external_id, name, description, members FROM mirror_groups `+where, args,
		[]any{&src, &g.ExternalID, &g.Name, &g.Description, &members}, func() error {
			g := g
			m := mirror(src)
			m.Groups[g.ExternalID] = &g
			if members == "" {
				return nil
			}
			list := make([]string, 0, strings.Count(members, "\n")+1)
			decodeMembers(members, func(id string) {
				// Share the user's id string rather than keep the whole column.
				if u, ok := m.Users[id]; ok {
					list = append(list, u.ExternalID)
				} else {
					list = append(list, strings.Clone(id))
				}
			})
			slices.Sort(list) // written sorted; sorted again for rows that were not
			m.Members[g.ExternalID] = slices.Clip(slices.Compact(list))
			return nil
		})
}

// Cursors returns the stored cursor of every source.
func (s *Store) Cursors(ctx context.Context) (map[string]string, error) {
	out := make(map[string]string)
	var src, cursor string
	err := eachRow(ctx, s.db, "load cursors", `SELECT source, cursor FROM mirrors`, nil,
		[]any{&src, &cursor}, func() error { out[src] = cursor; return nil })
	if err != nil {
		return nil, err
	}
	return out, nil
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

// compact copies the strings into one allocation of their own and points
// them into it: unpacked values are parts of their row's packed string,
// which stays whole for as long as any part of it does. With the repeated
// attributes interned (connectors.Shared), what a person keeps of the row
// is then the few values that are their own.
func compact(dst ...*string) {
	n := 0
	for _, d := range dst {
		n += len(*d)
	}
	var b strings.Builder
	b.Grow(n)
	for _, d := range dst {
		b.WriteString(*d)
	}
	all := b.String()
	for _, d := range dst {
		n := len(*d)
		*d, all = all[:n], all[n:]
	}
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
