package filter

import (
	"cmp"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Matcher evaluates filters against decoded JSON resources.
//
// Attribute names and schema URNs are looked up case-insensitively. An
// attribute with a schema URN is looked up inside the resource's member of
// that name (an extension); core-schema URNs (urn:ietf:params:scim:schemas:core:)
// also fall back to the top level. A multi-valued attribute matches if any
// of its values matches; a complex value compared without a sub-attribute
// stands for its "value" sub-attribute (emails co "x" is emails.value co "x").
//
// Comparisons: strings compare case-insensitively unless CaseExact says
// otherwise, gt/ge/lt/le on strings are lexicographic; a date-time value
// compares by time with an attribute that parses as RFC 3339 (by string
// otherwise); numbers compare by value; booleans only with eq and ne; an
// unquoted number or boolean compared with a string attribute compares as
// its literal text. "ne" is the negation of "eq" (an absent attribute is ne
// anything); "eq null" holds when the attribute is absent or empty. "pr"
// holds when the attribute is set and not null, "", [] or {}.
type Matcher struct {
	// CaseExact reports whether string comparisons on the attribute are
	// case-sensitive. Paths inside a value filter are relative (type, not
	// emails.type). Nil means DefaultCaseExact.
	CaseExact func(AttrPath) bool
}

// DefaultCaseExact is the caseExact rule of RFC 7643's core schemas for the
// attributes where it is true: id, externalId and meta.version; everything
// else (userName, emails, displayName, …) compares case-insensitively.
func DefaultCaseExact(a AttrPath) bool {
	switch strings.ToLower(a.Name) {
	case "id", "externalid":
		return a.Sub == ""
	case "meta":
		return strings.EqualFold(a.Sub, "version")
	}
	return false
}

// Match reports whether resource matches e, with the default Matcher.
func Match(e Expr, resource map[string]any) bool {
	return Matcher{}.Match(e, resource)
}

// Match reports whether resource matches e.
func (m Matcher) Match(e Expr, resource map[string]any) bool {
	switch e := e.(type) {
	case Logical:
		if e.Op == And {
			return m.Match(e.Left, resource) && m.Match(e.Right, resource)
		}
		return m.Match(e.Left, resource) || m.Match(e.Right, resource)
	case Not:
		return !m.Match(e.Filter, resource)
	case Present:
		for _, v := range lookup(resource, e.Path) {
			if !empty(v) {
				return true
			}
		}
		return false
	case Compare:
		return m.compare(e, lookup(resource, e.Path))
	case ValuePath:
		for _, v := range lookup(resource, e.Path) {
			elem, ok := v.(map[string]any)
			if !ok {
				elem = map[string]any{"value": v}
			}
			if m.Match(e.Filter, elem) {
				return true
			}
		}
	}
	return false
}

func (m Matcher) compare(c Compare, values []any) bool {
	if c.Op == Ne {
		c.Op = Eq
		return !m.compare(c, values)
	}
	if c.Value.Kind == KindNull {
		for _, v := range values {
			if !empty(v) {
				return false
			}
		}
		return true
	}
	caseExact := m.CaseExact
	if caseExact == nil {
		caseExact = DefaultCaseExact
	}
	exact := caseExact(c.Path)
	for _, v := range values {
		if obj, ok := v.(map[string]any); ok {
			v, _ = Lookup(obj, "value")
		}
		if compareOne(v, c.Op, c.Value, exact) {
			return true
		}
	}
	return false
}

// compareOne compares one attribute value; op is never Ne.
func compareOne(attr any, op CompareOp, val Value, exact bool) bool {
	if s, ok := attr.(string); ok {
		return compareString(s, op, val, exact)
	}
	if b, ok := attr.(bool); ok {
		return op == Eq && val.Kind == KindBool && b == (val.Text == "true")
	}
	f, ok := number(attr)
	if !ok {
		return false
	}
	want, ok := val.Float()
	if !ok {
		return false
	}
	switch op {
	case Eq:
		return f == want
	case Co, Sw, Ew:
		return false
	}
	return ordered(op, cmp.Compare(f, want))
}

func compareString(s string, op CompareOp, val Value, exact bool) bool {
	if want, ok := val.Time(); ok && (op == Eq || op.ordering()) {
		if t, ok := parseTime(s); ok {
			if op == Eq {
				return t.Equal(want)
			}
			return ordered(op, t.Compare(want))
		}
	}
	want := val.Text
	if !exact {
		s, want = strings.ToLower(s), strings.ToLower(want)
	}
	switch op {
	case Eq:
		return s == want
	case Co:
		return strings.Contains(s, want)
	case Sw:
		return strings.HasPrefix(s, want)
	case Ew:
		return strings.HasSuffix(s, want)
	}
	return ordered(op, strings.Compare(s, want))
}

// ordered applies an ordering operator to a three-way comparison result.
func ordered(op CompareOp, c int) bool {
	switch op {
	case Gt:
		return c > 0
	case Ge:
		return c >= 0
	case Lt:
		return c < 0
	case Le:
		return c <= 0
	}
	return false
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case json.Number:
		f, err := strconv.ParseFloat(string(n), 64)
		return f, err == nil
	}
	return 0, false
}

// empty reports whether v counts as not present.
func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []any:
		for _, e := range v {
			if !empty(e) {
				return false
			}
		}
		return true
	case map[string]any:
		return len(v) == 0
	case time.Time:
		return v.IsZero()
	}
	return false
}

// lookup returns the values at a, with multi-valued attributes flattened.
func lookup(resource map[string]any, a AttrPath) []any {
	base := resource
	if a.URN != "" {
		ext, ok := Lookup(resource, a.URN)
		if obj, isObj := ext.(map[string]any); ok && isObj {
			base = obj
		} else if !strings.HasPrefix(strings.ToLower(a.URN), "urn:ietf:params:scim:schemas:core:") {
			return nil
		}
	}
	v, ok := Lookup(base, a.Name)
	if !ok {
		return nil
	}
	values := flatten(v)
	if a.Sub == "" {
		return values
	}
	var out []any
	for _, e := range values {
		if obj, ok := e.(map[string]any); ok {
			if s, ok := Lookup(obj, a.Sub); ok {
				out = append(out, flatten(s)...)
			}
		}
	}
	return out
}

func flatten(v any) []any {
	if list, ok := v.([]any); ok {
		return list
	}
	return []any{v}
}

// Lookup looks key up in obj, exactly first, then case-insensitively: SCIM
// attribute names are case-insensitive.
func Lookup(obj map[string]any, key string) (any, bool) {
	if v, ok := obj[key]; ok {
		return v, true
	}
	for k, v := range obj {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}
