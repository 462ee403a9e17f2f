package directory

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/learnsync/learnsync/scim"
	"github.com/learnsync/learnsync/scim/filter"
)

// The SCIM read view's filters become SQL here: each attribute of the view
// is a column expression (or, for multi-valued attributes, a set read by an
// EXISTS subquery), every value is a bound parameter, and the expressions
// are the ones the indexes of migration step 6 are built on, so that the
// common lookups (userName, emails, meta.lastModified) are index searches.

// colKind is how a column compares.
type colKind int

const (
	kindText  colKind = iota // case-insensitive string (COLLATE NOCASE)
	kindExact                // case-exact string
	kindInt                  // integer (ids)
	kindBool                 // 0 or 1
	kindTime                 // a timestamp in the driver's text form
)

// column is an attribute the view can filter on.
type column struct {
	expr string
	kind colKind
}

// valueSet is a multi-valued attribute: the rows of from (correlated with
// the outer row; "" for a set of at most one value, guarded by guard) and
// the sub-attributes of one value. Def is the sub-attribute a comparison
// without one means.
type valueSet struct {
	from, guard string
	subs        map[string]column
	def         string
}

// lastModifiedPeople is meta.lastModified of a person: the later of its
// profile's last change and its groups' and seats' (see the triggers of
// migration step 6). The index people_modified is on this expression.
const lastModifiedPeople = "max(p.updated_at, coalesce(p.touched_at, p.updated_at))"

// lastModifiedGroups is meta.lastModified of a group, likewise.
const lastModifiedGroups = "max(g.updated_at, coalesce(g.touched_at, g.updated_at))"

// memberDisplay is how a person is shown as a group's member.
const memberDisplay = "coalesce(nullif(%[1]s.display_name, ''), nullif(%[1]s.user_name, ''), %[1]s.email)"

const enterprisePrefix = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:"

// viewSchema is what one resource type of the view can be filtered on.
type viewSchema struct {
	core string // the core schema URN, lower-cased
	cols map[string]column
	sets map[string]valueSet
}

var userSchema = viewSchema{
	core: "urn:ietf:params:scim:schemas:core:2.0:user",
	cols: map[string]column{
		"id":                                {"p.id", kindInt},
		"username":                          {"p.user_name", kindText},
		"name.givenname":                    {"p.given_name", kindText},
		"name.familyname":                   {"p.family_name", kindText},
		"displayname":                       {"p.display_name", kindText},
		"title":                             {"p.title", kindText},
		"active":                            {"p.active", kindBool},
		"meta.created":                      {"p.created_at", kindTime},
		"meta.lastmodified":                 {lastModifiedPeople, kindTime},
		"meta.resourcetype":                 {"'User'", kindText},
		enterprisePrefix + "employeenumber": {"p.employee_number", kindText},
		enterprisePrefix + "department":     {"p.department", kindText},
		enterprisePrefix + "costcenter":     {"p.cost_center", kindText},
		enterprisePrefix + "manager":        {"p.manager", kindText},
		enterprisePrefix + "manager.value":  {"p.manager", kindText},
	},
	sets: map[string]valueSet{
		// One email a person: inline, so that the index on it serves.
		"emails": {guard: "p.email <> ''", def: "value", subs: map[string]column{
			"value": {"p.email", kindText}, "type": {"'work'", kindText}, "primary": {"1", kindBool},
		}},
		"groups": {from: "memberships m JOIN groups mg ON mg.id = m.group_id WHERE m.person_id = p.id", def: "value",
			subs: map[string]column{"value": {"m.group_id", kindInt}, "display": {"mg.source || '/' || mg.name", kindText}}},
		"entitlements": {from: "assignments a WHERE a.person_id = p.id AND a.revoked_at IS NULL", def: "value",
			subs: map[string]column{"value": {"a.pool", kindText}, "display": {"a.pool", kindText}}},
	},
}

var groupSchema = viewSchema{
	core: "urn:ietf:params:scim:schemas:core:2.0:group",
	cols: map[string]column{
		"id":                {"g.id", kindInt},
		"displayname":       {"g.source || '/' || g.name", kindText},
		"externalid":        {"g.external_id", kindExact},
		"meta.created":      {"g.created_at", kindTime},
		"meta.lastmodified": {lastModifiedGroups, kindTime},
		"meta.resourcetype": {"'Group'", kindText},
	},
	sets: map[string]valueSet{
		"members": {from: "memberships gm JOIN people mp ON mp.id = gm.person_id WHERE gm.group_id = g.id", def: "value",
			subs: map[string]column{"value": {"gm.person_id", kindInt}, "display": {fmt.Sprintf(memberDisplay, "mp"), kindText}}},
	},
}

// sqlFilter is a filter being translated: the WHERE text and its
// parameters.
type sqlFilter struct {
	schema *viewSchema
	b      strings.Builder
	args   []any
	// pg writes PostgreSQL's forms: lower() = lower() for NOCASE, ILIKE,
	// times as times.
	pg bool
}

// translate turns e into a WHERE condition on the schema's table. An
// attribute the view cannot filter on is a 400 invalidFilter.
func translate(schema *viewSchema, e filter.Expr) (string, []any, error) {
	return translateFor(schema, e, false)
}

// translateFor is translate for SQLite or, with pg, PostgreSQL.
func translateFor(schema *viewSchema, e filter.Expr, pg bool) (string, []any, error) {
	f := &sqlFilter{schema: schema, pg: pg}
	if e == nil {
		return "1 = 1", nil, nil
	}
	if err := f.expr(e, nil); err != nil {
		return "", nil, err
	}
	return f.b.String(), f.args, nil
}

func invalidFilter(format string, args ...any) error {
	return &scim.Error{Status: http.StatusBadRequest, Type: "invalidFilter", Detail: fmt.Sprintf(format, args...)}
}

// expr writes e; inside a value filter, set is the multi-valued attribute
// whose sub-attributes the paths name.
func (f *sqlFilter) expr(e filter.Expr, set *valueSet) error {
	switch e := e.(type) {
	case filter.Logical:
		f.b.WriteString("(")
		if err := f.expr(e.Left, set); err != nil {
			return err
		}
		f.b.WriteString(map[filter.LogicalOp]string{filter.And: " AND ", filter.Or: " OR "}[e.Op])
		if err := f.expr(e.Right, set); err != nil {
			return err
		}
		f.b.WriteString(")")
		return nil
	case filter.Not:
		f.b.WriteString("NOT (")
		if err := f.expr(e.Filter, set); err != nil {
			return err
		}
		f.b.WriteString(")")
		return nil
	case filter.Present:
		return f.test(e.Path, set, func(c column) error { f.present(c); return nil })
	case filter.Compare:
		if e.Op == filter.Ne {
			// ne is the negation of eq, for multi-valued attributes too.
			e.Op = filter.Eq
			return f.expr(filter.Not{Filter: e}, set)
		}
		return f.test(e.Path, set, func(c column) error { return f.compare(c, e.Op, e.Value) })
	case filter.ValuePath:
		if set != nil {
			return invalidFilter("a value filter cannot be nested")
		}
		vs, ok := f.schema.sets[f.name(e.Path)]
		if !ok || e.Path.Sub != "" {
			return invalidFilter("%s is not a multi-valued attribute of this view", e.Path)
		}
		return f.exists(&vs, func() error { return f.expr(e.Filter, &vs) })
	}
	return invalidFilter("unsupported filter")
}

// name is the lower-cased attribute name without the core schema's URN.
func (f *sqlFilter) name(a filter.AttrPath) string {
	urn := strings.ToLower(a.URN)
	if urn == f.schema.core {
		urn = ""
	}
	n := strings.ToLower(a.Name)
	if urn != "" {
		n = urn + ":" + n
	}
	return n
}

// test resolves path to a column (inside set, or of the resource, or of a
// multi-valued attribute through EXISTS) and writes write's test on it.
func (f *sqlFilter) test(path filter.AttrPath, set *valueSet, write func(column) error) error {
	name, sub := f.name(path), strings.ToLower(path.Sub)
	if set != nil {
		if path.URN != "" || sub != "" {
			return invalidFilter("%s is not a sub-attribute here", path)
		}
		c, ok := set.subs[name]
		if !ok {
			return invalidFilter("unknown sub-attribute %s", path)
		}
		return write(c)
	}
	full := name
	if sub != "" {
		full += "." + sub
	}
	if c, ok := f.schema.cols[full]; ok {
		return write(c)
	}
	vs, ok := f.schema.sets[name]
	if !ok {
		return invalidFilter("unknown attribute %s", path)
	}
	if sub == "" {
		sub = vs.def
	}
	c, ok := vs.subs[sub]
	if !ok {
		return invalidFilter("unknown sub-attribute %s", path)
	}
	return f.exists(&vs, func() error { return write(c) })
}

// exists writes EXISTS over the set with cond on its values.
func (f *sqlFilter) exists(vs *valueSet, cond func() error) error {
	if vs.from == "" {
		f.b.WriteString("(" + vs.guard + " AND ")
	} else {
		f.b.WriteString("EXISTS (SELECT 1 FROM " + vs.from + " AND ")
	}
	if err := cond(); err != nil {
		return err
	}
	f.b.WriteString(")")
	return nil
}

// present is "pr": set and not empty.
func (f *sqlFilter) present(c column) {
	switch c.kind {
	case kindText, kindExact:
		f.b.WriteString("(" + c.expr + " <> '')")
	default:
		f.b.WriteString("(" + c.expr + " IS NOT NULL)")
	}
}

// compare writes c op v ("ne" is "not eq" by then, as in filter.Match).
func (f *sqlFilter) compare(c column, op filter.CompareOp, v filter.Value) error {
	if v.Kind == filter.KindNull {
		if op != filter.Eq {
			f.b.WriteString("(1 = 0)")
			return nil
		}
		f.b.WriteString("NOT ")
		f.present(c)
		return nil
	}
	switch c.kind {
	case kindBool:
		return f.compareBool(c, op, v)
	case kindInt:
		return f.compareInt(c, op, v)
	case kindTime:
		t, err := time.Parse(time.RFC3339Nano, v.Text)
		if err != nil {
			return invalidFilter("%s is not a date-time (RFC 3339)", v)
		}
		if op == filter.Co || op == filter.Sw || op == filter.Ew {
			return invalidFilter("%s cannot be used with a date-time", op)
		}
		// unlikely: an application polls for the few rows changed since,
		// so the index on the time serves better than the id order.
		if f.pg {
			f.ordered(c.expr, op, t.UTC(), "")
			return nil
		}
		f.b.WriteString("unlikely")
		f.ordered(c.expr, op, t.UTC().Format(sqliteTime), "")
		return nil
	}
	collate := " COLLATE NOCASE"
	if c.kind == kindExact {
		collate = ""
	}
	switch op {
	case filter.Co, filter.Sw, filter.Ew:
		f.like(c, op, v.Text)
	default:
		// An empty column is an absent attribute: it is greater or less
		// than nothing.
		if op != filter.Eq {
			f.b.WriteString("(" + c.expr + " <> '' AND ")
			defer f.b.WriteString(")")
		}
		f.ordered(c.expr, op, v.Text, collate)
	}
	return nil
}

// sqliteTime is how the driver writes a time.Time (in UTC: "+00:00"); in
// this form, text order is time order.
const sqliteTime = "2006-01-02 15:04:05.999999999-07:00"

var sqlOps = map[filter.CompareOp]string{filter.Eq: "=", filter.Gt: ">", filter.Ge: ">=", filter.Lt: "<", filter.Le: "<="}

// ordered writes expr op ? for eq, gt, ge, lt, le.
func (f *sqlFilter) ordered(expr string, op filter.CompareOp, arg any, collate string) {
	if f.pg && collate != "" {
		f.b.WriteString("(lower(" + expr + ") " + sqlOps[op] + " lower(CAST(? AS TEXT)))")
		f.args = append(f.args, arg)
		return
	}
	f.b.WriteString("(" + expr + " " + sqlOps[op] + " ?" + collate + ")")
	f.args = append(f.args, arg)
}

// like writes co, sw, ew. LIKE is case-insensitive (for ASCII, like
// NOCASE); case-exact columns use instr and substr instead. The value's
// wildcards are escaped: they match themselves.
func (f *sqlFilter) like(c column, op filter.CompareOp, s string) {
	if c.kind == kindExact {
		switch op {
		case filter.Co:
			f.b.WriteString("(" + c.expr + " <> '' AND instr(" + c.expr + ", ?) > 0)")
			f.args = append(f.args, s)
		case filter.Sw:
			f.b.WriteString("(" + c.expr + " <> '' AND substr(" + c.expr + ", 1, length(?)) = ?)")
			f.args = append(f.args, s, s)
		default:
			f.b.WriteString("(" + c.expr + " <> '' AND length(" + c.expr + ") >= length(?) AND substr(" + c.expr + ", length(" + c.expr + ") - length(?) + 1) = ?)")
			f.args = append(f.args, s, s, s)
		}
		return
	}
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
	switch op {
	case filter.Co:
		esc = "%" + esc + "%"
	case filter.Sw:
		esc += "%"
	default:
		esc = "%" + esc
	}
	like := " LIKE "
	if f.pg {
		like = " ILIKE "
	}
	f.b.WriteString("(" + c.expr + " <> '' AND " + c.expr + like + `? ESCAPE '\')`)
	f.args = append(f.args, esc)
}

func (f *sqlFilter) compareBool(c column, op filter.CompareOp, v filter.Value) error {
	if op != filter.Eq || v.Kind != filter.KindBool {
		return invalidFilter("a boolean compares only with eq or ne true or false")
	}
	b := 0
	if v.Text == "true" {
		b = 1
	}
	f.ordered(c.expr, op, b, "")
	return nil
}

func (f *sqlFilter) compareInt(c column, op filter.CompareOp, v filter.Value) error {
	n, err := strconv.ParseInt(v.Text, 10, 64)
	text := "CAST(" + c.expr + " AS TEXT)"
	switch {
	case op == filter.Co || op == filter.Sw || op == filter.Ew:
		f.like(column{expr: text, kind: kindExact}, op, v.Text)
	case err != nil && op == filter.Eq:
		f.b.WriteString("(1 = 0)") // no id is not a number
	case err != nil:
		f.ordered(text, op, v.Text, "")
	default:
		f.ordered(c.expr, op, n, "")
	}
	return nil
}
