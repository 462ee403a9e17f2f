package filter

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Expr is a parsed filter: one of [Logical], [Not], [Compare], [Present] or
// [ValuePath]. String prints it in canonical filter syntax, which Parse reads
// back to an equal Expr. (The canonical form can be a little longer or, after
// Entra's form is folded, one level deeper than the input, so for an input
// at [MaxLength] or [MaxDepth] the reparse can hit those bounds.)
type Expr interface {
	String() string
	isExpr()
}

// LogicalOp is "and" or "or".
type LogicalOp string

// The logical operators, in canonical (lower-case) spelling.
const (
	And LogicalOp = "and"
	Or  LogicalOp = "or"
)

// CompareOp is a comparison operator in canonical (lower-case) spelling.
type CompareOp string

// The comparison operators of RFC 7644 §3.4.2.2 ("pr" is [Present]).
const (
	Eq CompareOp = "eq" // equal
	Ne CompareOp = "ne" // not equal
	Co CompareOp = "co" // contains
	Sw CompareOp = "sw" // starts with
	Ew CompareOp = "ew" // ends with
	Gt CompareOp = "gt" // greater than
	Ge CompareOp = "ge" // greater than or equal to
	Lt CompareOp = "lt" // less than
	Le CompareOp = "le" // less than or equal to
)

var compareOps = map[string]CompareOp{
	"eq": Eq, "ne": Ne, "co": Co, "sw": Sw, "ew": Ew,
	"gt": Gt, "ge": Ge, "lt": Lt, "le": Le,
}

// ordering reports whether op compares by order (gt, ge, lt, le).
func (op CompareOp) ordering() bool {
	return op == Gt || op == Ge || op == Lt || op == Le
}

// Logical is a binary "and" or "or". Chains are left-associative:
// a and b and c is Logical{And, Logical{And, a, b}, c}.
type Logical struct {
	Op          LogicalOp
	Left, Right Expr
}

// Not negates its filter: not (X).
type Not struct {
	Filter Expr
}

// Compare is an attribute compared with a value: userName eq "bjensen".
type Compare struct {
	Path  AttrPath
	Op    CompareOp
	Value Value
}

// Present is the "pr" test: the attribute is set and not empty.
type Present struct {
	Path AttrPath
}

// ValuePath selects the values of a multi-valued attribute that match Filter:
// emails[type eq "work" and primary eq true]. The paths inside Filter are
// relative to one value (type means emails.type). Path never has a Sub.
type ValuePath struct {
	Path   AttrPath
	Filter Expr
}

func (Logical) isExpr()   {}
func (Not) isExpr()       {}
func (Compare) isExpr()   {}
func (Present) isExpr()   {}
func (ValuePath) isExpr() {}

// precedence orders the operators for printing: or < and < everything else.
func precedence(e Expr) int {
	if l, ok := e.(Logical); ok {
		if l.Op == Or {
			return 1
		}
		return 2
	}
	return 3
}

// String prints the expression, adding parentheses only where the
// left-associative reading would differ.
func (l Logical) String() string {
	p := precedence(l)
	left, right := l.Left.String(), l.Right.String()
	if precedence(l.Left) < p {
		left = "(" + left + ")"
	}
	if precedence(l.Right) <= p {
		right = "(" + right + ")"
	}
	return left + " " + string(l.Op) + " " + right
}

// String prints not (filter).
func (n Not) String() string { return "not (" + n.Filter.String() + ")" }

// String prints path op value, with the value in canonical form.
func (c Compare) String() string {
	return c.Path.String() + " " + string(c.Op) + " " + c.Value.String()
}

// String prints path pr.
func (p Present) String() string { return p.Path.String() + " pr" }

// String prints path[filter].
func (v ValuePath) String() string { return v.Path.String() + "[" + v.Filter.String() + "]" }

// AttrPath is an attribute reference as written: an optional schema URN, an
// attribute name and an optional sub-attribute, e.g.
// urn:ietf:params:scim:schemas:core:2.0:User:name.givenName.
type AttrPath struct {
	// URN is the schema URN prefix without the trailing colon, or "".
	URN string
	// Name is the attribute name as written.
	Name string
	// Sub is the sub-attribute name as written, or "".
	Sub string
}

// String prints the path as written.
func (a AttrPath) String() string {
	s := a.Name
	if a.URN != "" {
		s = a.URN + ":" + s
	}
	if a.Sub != "" {
		s += "." + a.Sub
	}
	return s
}

// Canonical is the lower-cased path, the form to use for lookups: SCIM
// attribute names and schema URNs are case-insensitive.
func (a AttrPath) Canonical() string { return strings.ToLower(a.String()) }

// Path is a PATCH path or an attribute-list entry: an attribute, optionally
// narrowed by a value filter, optionally followed by a sub-attribute
// (emails[type eq "work"].value has Attr {Name: emails, Sub: value}).
type Path struct {
	Attr AttrPath
	// Filter is the value filter between brackets, or nil.
	Filter Expr
}

// String prints the path in canonical syntax.
func (p Path) String() string {
	if p.Filter == nil {
		return p.Attr.String()
	}
	base := p.Attr
	base.Sub = ""
	s := base.String() + "[" + p.Filter.String() + "]"
	if p.Attr.Sub != "" {
		s += "." + p.Attr.Sub
	}
	return s
}

// ValueKind says what sort of literal a [Value] is.
type ValueKind int

// The value kinds. A date-time is a string (quoted or not) that parses as
// RFC 3339; it is kept as written and compared by time where the attribute
// holds a date-time too.
const (
	KindString ValueKind = iota
	KindDateTime
	KindNumber
	KindBool
	KindNull
)

// String names the kind.
func (k ValueKind) String() string {
	switch k {
	case KindString:
		return "string"
	case KindDateTime:
		return "dateTime"
	case KindNumber:
		return "number"
	case KindBool:
		return "boolean"
	case KindNull:
		return "null"
	}
	return "ValueKind(" + strconv.Itoa(int(k)) + ")"
}

// Value is a comparison value. Text is the decoded string for strings and
// date-times, the literal for numbers, and "true", "false" or "null".
// Kind is what the literal looks like, not what the attribute is: a
// translator that knows the schema (userName is a string, meta.lastModified a
// dateTime) should let the schema decide and use Text.
type Value struct {
	Kind ValueKind
	Text string
}

// String prints the value as a JSON literal.
func (v Value) String() string {
	switch v.Kind {
	case KindString, KindDateTime:
		return quote(v.Text)
	}
	return v.Text
}

// Any returns the value as encoding/json would decode it: string, float64,
// bool or nil.
func (v Value) Any() any {
	switch v.Kind {
	case KindNumber:
		f, _ := v.Float()
		return f
	case KindBool:
		return v.Text == "true"
	case KindNull:
		return nil
	}
	return v.Text
}

// Float returns a number value as float64; ok is false for other kinds.
func (v Value) Float() (f float64, ok bool) {
	if v.Kind != KindNumber {
		return 0, false
	}
	f, err := strconv.ParseFloat(v.Text, 64)
	return f, err == nil
}

// Time returns a date-time value; ok is false for other kinds.
func (v Value) Time() (t time.Time, ok bool) {
	if v.Kind != KindDateTime {
		return time.Time{}, false
	}
	return parseTime(v.Text)
}

func parseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// quote writes s as a JSON string without HTML escaping.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&0xf])
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
