package directory

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/learnsync/learnsync/scim"
)

// The read view of the directory (/scim/v2): people and groups as
// applications read them, filtered in SQL (scimfilter.go).

var _ scim.ReadStore = (*Store)(nil)

// readCount runs a COUNT(*) query.
func readCount(ctx context.Context, conn *sql.Conn, query string, args []any) (int, error) {
	var n int
	if err := conn.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	return n, nil
}

// readPage translates q's filter for schema, counts the matching rows of
// table and, unless q asks for none, lets rows read the page, all in one
// read transaction.
func (s *Store) readPage(ctx context.Context, schema *viewSchema, table string, q scim.ReadQuery,
	rows func(conn *sql.Conn, page *scim.ReadPage, where string, args []any) error) (*scim.ReadPage, error) {
	where, args, err := translateFor(schema, q.Filter, s.driver == DriverPostgres)
	if err != nil {
		return nil, err
	}
	page := &scim.ReadPage{}
	err = s.readConn(ctx, func(conn *sql.Conn) error {
		if page.Total, err = readCount(ctx, conn, "SELECT count(*) FROM "+table+" WHERE "+where, args); err != nil || q.Limit <= 0 {
			return err
		}
		return rows(conn, page, where, args)
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// idList is a page's ids as one JSON parameter, for IN (SELECT value FROM
// json_each(?)).
func idList(ids []int64) string {
	b, _ := json.Marshal(ids)
	return string(b)
}

// ReadUsers reads a page of people, in id order, with their groups and the
// pools they hold a seat of.
func (s *Store) ReadUsers(ctx context.Context, q scim.ReadQuery) (*scim.ReadPage, error) {
	return s.readPage(ctx, &userSchema, "people p", q, func(conn *sql.Conn, page *scim.ReadPage, where string, args []any) error {
		query := `SELECT p.id, p.user_name, p.email, p.given_name, p.family_name, p.display_name, p.title, p.department,
			p.employee_number, p.cost_center, p.manager, p.active, p.created_at, ` + lastModifiedPeople + `
			FROM people p WHERE ` + where + ` ORDER BY p.id LIMIT ? OFFSET ?`
		var u scim.DirUser
		var modified string
		dest := []any{&u.ID, &u.UserName, &u.Email, &u.GivenName, &u.FamilyName, &u.DisplayName, &u.Title, &u.Department,
			&u.EmployeeNumber, &u.CostCenter, &u.Manager, &u.Active, &u.Created, &modified}
		index := map[int64]int{}
		err := eachRow(ctx, conn, "read people", query, append(args, q.Limit, max(q.Offset, 0)), dest, func() error {
			u.Modified = parseTimeText(modified)
			index[u.ID] = len(page.Users)
			page.Users = append(page.Users, u)
			return nil
		})
		if err != nil || len(page.Users) == 0 {
			return err
		}
		return readUserValues(ctx, conn, page.Users, index)
	})
}

// readUserValues fills in the groups and entitlements of a page of people.
func readUserValues(ctx context.Context, conn *sql.Conn, users []scim.DirUser, index map[int64]int) error {
	ids := make([]int64, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	list := idList(ids)
	var pid, gid int64
	var src, name string
	err := eachRow(ctx, conn, "read groups of people", `SELECT m.person_id, g.id, g.source, g.name
		FROM memberships m JOIN groups g ON g.id = m.group_id
		WHERE m.person_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?)) ORDER BY m.person_id, g.source, g.name, g.id`,
		[]any{list}, []any{&pid, &gid, &src, &name}, func() error {
			u := &users[index[pid]]
			u.Groups = append(u.Groups, scim.DirRef{ID: gid, Display: src + "/" + name})
			return nil
		})
	if err != nil {
		return err
	}
	return eachRow(ctx, conn, "read seats of people", `SELECT person_id, pool FROM assignments
		WHERE revoked_at IS NULL AND person_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?)) ORDER BY person_id, pool`,
		[]any{list}, []any{&pid, &name}, func() error {
			u := &users[index[pid]]
			u.Entitlements = append(u.Entitlements, name)
			return nil
		})
}

// ReadGroups reads a page of groups, in id order, with their members
// (unless q.NoMembers).
func (s *Store) ReadGroups(ctx context.Context, q scim.ReadQuery) (*scim.ReadPage, error) {
	return s.readPage(ctx, &groupSchema, "groups g", q, func(conn *sql.Conn, page *scim.ReadPage, where string, args []any) error {
		var g scim.DirGroup
		var modified string
		index := map[int64]int{}
		err := eachRow(ctx, conn, "read groups", `SELECT g.id, g.source, g.name, g.external_id, g.created_at, `+lastModifiedGroups+`
			FROM groups g WHERE `+where+` ORDER BY g.id LIMIT ? OFFSET ?`, append(args, q.Limit, max(q.Offset, 0)),
			[]any{&g.ID, &g.Source, &g.Name, &g.ExternalID, &g.Created, &modified}, func() error {
				g.Modified = parseTimeText(modified)
				index[g.ID] = len(page.Groups)
				page.Groups = append(page.Groups, g)
				return nil
			})
		if err != nil || len(page.Groups) == 0 || q.NoMembers {
			return err
		}
		ids := make([]int64, len(page.Groups))
		for i, g := range page.Groups {
			ids[i] = g.ID
		}
		var gid, pid int64
		var display string
		return eachRow(ctx, conn, "read members", `SELECT gm.group_id, mp.id, `+fmt.Sprintf(memberDisplay, "mp")+`
			FROM memberships gm JOIN people mp ON mp.id = gm.person_id
			WHERE gm.group_id IN (SELECT CAST(value AS BIGINT) FROM json_each(?)) ORDER BY gm.group_id, gm.person_id`,
			[]any{idList(ids)}, []any{&gid, &pid, &display}, func() error {
				g := &page.Groups[index[gid]]
				g.Members = append(g.Members, scim.DirRef{ID: pid, Display: display})
				return nil
			})
	})
}

// parseTimeText reads a timestamp as the driver or SQLite's strftime wrote
// it.
func parseTimeText(s string) time.Time {
	for _, layout := range []string{sqliteTime, "2006-01-02 15:04:05.999999999Z07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
