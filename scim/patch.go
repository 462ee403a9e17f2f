package scim

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/learnsync/learnsync/scim/filter"
)

// patchOp is one operation of a PatchOp request (RFC 7644 §3.5.2).
type patchOp struct {
	Op    string
	Path  string
	Value any
}

// decodePatch reads a PatchOp body. Member names are case-insensitive
// ("Operations", "op"), operation names too (Entra sends "Replace").
func decodePatch(data []byte) ([]patchOp, error) {
	obj, err := decodeObject(data)
	if err != nil {
		return nil, badRequest("invalidSyntax", err.Error())
	}
	raw, _ := filter.Lookup(obj, "Operations")
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return nil, badRequest("invalidSyntax", "a PatchOp needs a non-empty Operations list")
	}
	ops := make([]patchOp, 0, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, badRequest("invalidSyntax", fmt.Sprintf("Operations[%d] is not an object", i))
		}
		op, _ := filter.Lookup(m, "op")
		name, _ := op.(string)
		name = strings.ToLower(name)
		if name != "add" && name != "replace" && name != "remove" {
			return nil, badRequest("invalidSyntax", fmt.Sprintf("Operations[%d].op must be add, replace or remove", i))
		}
		path, _ := filter.Lookup(m, "path")
		ps, _ := path.(string)
		value, _ := filter.Lookup(m, "value")
		ops = append(ops, patchOp{Op: name, Path: strings.TrimSpace(ps), Value: value})
	}
	return ops, nil
}

// keyFold returns the key of obj that is name, whatever its case, or the
// canonical spelling of name when obj has none.
func keyFold(obj map[string]any, name string) string {
	if _, ok := obj[name]; ok {
		return name
	}
	for k := range obj {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return canonicalName(name)
}

// applyPatch applies ops to attrs in place. The caller normalises and
// validates the result.
func applyPatch(attrs map[string]any, ops []patchOp) error {
	for i, op := range ops {
		var err error
		if op.Path == "" {
			err = patchNoPath(attrs, op)
		} else {
			err = patchPath(attrs, op.Op, op.Path, op.Value)
		}
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				e.Detail = fmt.Sprintf("Operations[%d]: %s", i, e.Detail)
			}
			return err
		}
	}
	return nil
}

// patchNoPath applies an add or replace without a path: every member of
// the value is an attribute (Okta's {"active": false}), a dotted path or a
// schema-prefixed one (Entra's "name.givenName" and
// "urn:…:enterprise:2.0:User:department"), or an extension as a whole.
// Read-only members (id, meta, as in Okta's group rename) are ignored.
func patchNoPath(attrs map[string]any, op patchOp) error {
	if op.Op == "remove" {
		return badRequest("noTarget", "remove needs a path")
	}
	value, ok := op.Value.(map[string]any)
	if !ok {
		return badRequest("invalidValue", "an operation without a path needs an object as its value")
	}
	for k, v := range value {
		switch strings.ToLower(k) {
		case "id", "meta", "schemas":
			continue
		}
		if err := patchPath(attrs, op.Op, k, v); err != nil {
			return err
		}
	}
	return nil
}

// isExtension reports whether urn names a schema extension (not a core
// schema, whose attributes are at the top level).
func isExtension(urn string) bool {
	return urn != "" && !strings.HasPrefix(strings.ToLower(urn), "urn:ietf:params:scim:schemas:core:")
}

// extensionKey returns the canonical name of the extension that path is,
// as a whole, or "".
func extensionKey(path string) string {
	switch c := canonicalName(path); c {
	case SchemaEnterprise:
		return c
	}
	if strings.EqualFold(path, schemaEnterprise1) {
		return SchemaEnterprise
	}
	return ""
}

// patchPath applies one operation at path.
func patchPath(attrs map[string]any, op, path string, value any) error {
	if ext := extensionKey(path); ext != "" {
		return patchAttr(attrs, op, ext, "", value)
	}
	p, err := filter.ParsePath(path)
	if err != nil {
		var fe *filter.Error
		if errors.As(err, &fe) {
			return badRequest(fe.Type, fe.Detail)
		}
		return badRequest("invalidPath", err.Error())
	}
	container := attrs
	if isExtension(p.Attr.URN) {
		key := keyFold(attrs, p.Attr.URN)
		ext, ok := attrs[key].(map[string]any)
		if !ok {
			if op == "remove" {
				return nil
			}
			ext = map[string]any{}
			attrs[key] = ext
		}
		container = ext
	}
	if p.Filter != nil {
		return patchFiltered(container, op, p, value)
	}
	return patchAttr(container, op, keyFold(container, p.Attr.Name), p.Attr.Sub, value)
}

// patchAttr applies an operation to container[name] (or its sub-attribute).
func patchAttr(container map[string]any, op, name, sub string, value any) error {
	cur, exists := container[name]
	if sub != "" {
		switch c := cur.(type) {
		case map[string]any:
			setOrRemove(c, op, keyFold(c, sub), value)
		case []any:
			for _, e := range c {
				if m, ok := e.(map[string]any); ok {
					setOrRemove(m, op, keyFold(m, sub), value)
				}
			}
		default:
			if op != "remove" {
				container[name] = map[string]any{canonicalName(sub): value}
			}
		}
		return nil
	}
	list, isList := cur.([]any)
	switch {
	case op == "remove" && value != nil && (isList || multiValued[name]):
		container[name] = removeValues(list, value)
	case op == "remove":
		delete(container, name)
	case op == "add" && (isList || multiValued[name]):
		container[name] = addValues(list, value)
	case exists && isMap(cur) && isMap(value):
		for k, v := range value.(map[string]any) {
			cur.(map[string]any)[keyFold(cur.(map[string]any), k)] = v
		}
	default:
		container[name] = value
	}
	return nil
}

func isMap(v any) bool { _, ok := v.(map[string]any); return ok }

func setOrRemove(m map[string]any, op, key string, value any) {
	if op == "remove" {
		delete(m, key)
	} else {
		m[key] = value
	}
}

// asList returns value as a list: a single value is a list of one.
func asList(value any) []any {
	if l, ok := value.([]any); ok {
		return l
	}
	if value == nil {
		return nil
	}
	return []any{value}
}

// valueOf returns the "value" sub-attribute of a multi-valued element, or
// the element itself when it is not an object.
func valueOf(e any) any {
	if m, ok := e.(map[string]any); ok {
		v, _ := filter.Lookup(m, "value")
		return v
	}
	return e
}

// addValues appends the values not in list already (same "value").
func addValues(list []any, value any) []any {
	for _, v := range asList(value) {
		dup := false
		for i, e := range list {
			if valueOf(e) != nil && reflect.DeepEqual(valueOf(e), valueOf(v)) {
				list[i], dup = v, true
				break
			}
		}
		if !dup {
			list = append(list, v)
		}
	}
	return list
}

// removeValues drops the elements of list whose "value" is one of value's:
// Entra removes members with {"op":"Remove","path":"members","value":[{"value":"id"}]}.
func removeValues(list []any, value any) []any {
	out := list[:0:0]
	for _, e := range list {
		keep := true
		for _, v := range asList(value) {
			if reflect.DeepEqual(valueOf(e), valueOf(v)) {
				keep = false
			}
		}
		if keep {
			out = append(out, e)
		}
	}
	return out
}

// patchFiltered applies an operation to the values of a multi-valued
// attribute that match the path's filter: members[value eq "x"],
// emails[type eq "work"].value. An add or replace that matches nothing
// adds a value built from the filter's equality tests, as Entra expects
// when it sets a user's first work email.
func patchFiltered(container map[string]any, op string, p filter.Path, value any) error {
	name := keyFold(container, p.Attr.Name)
	list, _ := container[name].([]any)
	var out []any
	matched := false
	for _, e := range list {
		m, isObj := e.(map[string]any)
		if !isObj {
			m = map[string]any{"value": e}
		}
		if !filter.Match(p.Filter, m) {
			out = append(out, e)
			continue
		}
		matched = true
		switch {
		case op == "remove" && p.Attr.Sub == "":
			continue
		case p.Attr.Sub != "":
			setOrRemove(m, op, keyFold(m, p.Attr.Sub), value)
		case isMap(value):
			for k, v := range value.(map[string]any) {
				m[keyFold(m, k)] = v
			}
		default:
			m = map[string]any{"value": value}
		}
		out = append(out, m)
	}
	if !matched && op != "remove" {
		elem := map[string]any{}
		if !equalities(p.Filter, elem) {
			return badRequest("noTarget", fmt.Sprintf("no value of %s matches the filter", p.Attr.Name))
		}
		if p.Attr.Sub != "" {
			elem[canonicalName(p.Attr.Sub)] = value
		} else if v, ok := value.(map[string]any); ok {
			for k, x := range v {
				elem[canonicalName(k)] = x
			}
		}
		out = append(out, elem)
	}
	if out == nil {
		out = []any{}
	}
	container[name] = out
	return nil
}

// equalities fills elem with the attributes that a filter of eq tests
// joined by and requires, and reports whether the filter is of that form.
func equalities(e filter.Expr, elem map[string]any) bool {
	switch e := e.(type) {
	case filter.Logical:
		return e.Op == filter.And && equalities(e.Left, elem) && equalities(e.Right, elem)
	case filter.Compare:
		if e.Op != filter.Eq || e.Path.Sub != "" || e.Path.URN != "" {
			return false
		}
		elem[canonicalName(e.Path.Name)] = e.Value.Any()
		return true
	}
	return false
}
