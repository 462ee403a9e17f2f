package connectors

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
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

	names []string // Fields' names sorted, once read
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
			s.names = slices.Sorted(maps.Keys(s.Fields))
		}
		s = next
	}
	s.All, s.Fields, s.names = true, nil, nil
}

// Merge adds everything o keeps to s.
func (s *Selection) Merge(o *Selection) {
	if o == nil || s.All {
		return
	}
	if o.All {
		s.All, s.Fields, s.names = true, nil, nil
		return
	}
	for _, name := range slices.Sorted(maps.Keys(o.Fields)) {
		if s.Fields == nil {
			s.Fields = map[string]*Selection{}
		}
		if s.Fields[name] == nil {
			s.Fields[name] = &Selection{}
			s.names = slices.Sorted(maps.Keys(s.Fields))
		}
		s.Fields[name].Merge(o.Fields[name])
	}
}

// Empty reports whether s keeps nothing.
func (s *Selection) Empty() bool { return s == nil || (!s.All && len(s.Fields) == 0) }

// Keep returns the JSON text of the part of the raw user object that s
// keeps, with its properties sorted (the same object gives the same text),
// or "" when s is empty; raw is called only then.
func (s *Selection) Keep(raw func() map[string]any) string {
	if s.Empty() {
		return ""
	}
	var m map[string]any
	whole := func() map[string]any {
		if m == nil {
			m = raw()
		}
		return m
	}
	return s.KeepLookup(func(name string) (any, bool) {
		v, ok := whole()[name]
		return v, ok
	}, whole)
}

// KeepLookup is Keep for a user object given by a lookup of its top-level
// properties, so that a connector need not build the object as a map;
// whole builds it when all of it is kept.
func (s *Selection) KeepLookup(get func(name string) (any, bool), whole func() map[string]any) string {
	if s.Empty() {
		return ""
	}
	if s.All {
		return string(appendJSON(nil, whole()))
	}
	b := make([]byte, 0, 64)
	b = s.appendFields(b, get)
	return string(b)
}

// appendFields writes the object of the kept fields that get finds.
func (s *Selection) appendFields(b []byte, get func(string) (any, bool)) []byte {
	b = append(b, '{')
	first := true
	for _, name := range s.sortedNames() {
		v, ok := get(name)
		if !ok {
			continue
		}
		sub := s.Fields[name]
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, name)
		b = append(b, ':')
		if sub.All || len(sub.Fields) == 0 {
			b = appendJSON(b, v)
			continue
		}
		obj, isObj := v.(map[string]any)
		if !isObj {
			b = append(b, "{}"...)
			continue
		}
		b = sub.appendFields(b, func(n string) (any, bool) { x, ok := obj[n]; return x, ok })
	}
	return append(b, '}')
}

// sortedNames are the kept property names, sorted (kept by Add and Merge:
// connectors read a selection from several goroutines).
func (s *Selection) sortedNames() []string {
	if len(s.names) != len(s.Fields) {
		return slices.Sorted(maps.Keys(s.Fields)) // built by hand
	}
	return s.names
}

// appendJSON writes v: strings directly, everything else through
// encoding/json (a value JSON cannot hold writes null).
func appendJSON(b []byte, v any) []byte {
	if str, ok := v.(string); ok {
		return appendString(b, str)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, out...)
}

// appendString writes s as a JSON string as encoding/json does (without
// its HTML escaping): quotes, backslashes and control characters escaped,
// invalid UTF-8 replaced.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, fmt.Sprintf("\\u%04x", c)...)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\\ufffd"...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, fmt.Sprintf("\\u%04x", r)...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
