package connectors

import (
	"encoding/json"
	"maps"
	"slices"
)

// Selection names the raw attributes of a source's users that rules read:
// a tree of property names of the identity provider's own user object. A
// name whose Selection is nil (or All) keeps its whole value. The rules
// package builds it from the compiled expressions; a connector keeps what
// it names in User.Attrs, and nothing when it is nil.
type Selection struct {
	// All keeps the whole object.
	All bool
	// Fields are the properties kept, each with what of it is kept.
	Fields map[string]*Selection
}

// Add keeps the value at path (property names from the top), whole.
func (s *Selection) Add(path []string) {
	for _, name := range path {
		if s.All {
			return
		}
		if s.Fields == nil {
			s.Fields = map[string]*Selection{}
		}
		next := s.Fields[name]
		if next == nil {
			next = &Selection{}
			s.Fields[name] = next
		}
		s = next
	}
	s.All, s.Fields = true, nil
}

// Merge adds everything o keeps to s.
func (s *Selection) Merge(o *Selection) {
	if o == nil || s.All {
		return
	}
	if o.All {
		s.All, s.Fields = true, nil
		return
	}
	for _, name := range slices.Sorted(maps.Keys(o.Fields)) {
		if s.Fields == nil {
			s.Fields = map[string]*Selection{}
		}
		if s.Fields[name] == nil {
			s.Fields[name] = &Selection{}
		}
		s.Fields[name].Merge(o.Fields[name])
	}
}

// Empty reports whether s keeps nothing.
func (s *Selection) Empty() bool { return s == nil || (!s.All && len(s.Fields) == 0) }

// Prune returns the part of v that s keeps; ok is false when nothing of it
// is kept (a named property is missing, or v is not an object).
func (s *Selection) Prune(v any) (out any, ok bool) {
	if s == nil || s.All {
		return v, true
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		return nil, false
	}
	kept := make(map[string]any, len(s.Fields))
	for name, sub := range s.Fields {
		val, found := obj[name]
		if !found {
			continue
		}
		if pv, ok := sub.Prune(val); ok {
			kept[name] = pv
		}
	}
	return kept, true
}

// Keep returns the JSON text of the part of the raw user object that s
// keeps, with its properties sorted (the same object gives the same text),
// or "" when s is empty; raw is called only then. An object JSON cannot
// hold (it never comes from a decoded answer) keeps "{}".
func (s *Selection) Keep(raw func() map[string]any) string {
	if s.Empty() {
		return ""
	}
	v, _ := s.Prune(raw())
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}
