package rules

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// errSyntax is a malformed attributes text; the caller falls back to
// encoding/json, which says what is wrong.
var errSyntax = errors.New("syntax")

// attrParser decodes the JSON that Selection.Keep writes (objects, lists,
// strings, numbers, booleans, null) without reflection: a run parses the
// attributes of every mirrored user. Strings without escapes are
// substrings of the input; whole numbers are int64, others float64.
type attrParser struct {
	s string
	i int
}

func (p *attrParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *attrParser) value(depth int) (any, error) {
	if depth > 100 {
		return nil, errSyntax
	}
	p.space()
	if p.i >= len(p.s) {
		return nil, errSyntax
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.list(depth)
	case c == '"':
		return p.str()
	case strings.HasPrefix(p.s[p.i:], "true"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(p.s[p.i:], "false"):
		p.i += 5
		return false, nil
	case strings.HasPrefix(p.s[p.i:], "null"):
		p.i += 4
		return nil, nil
	default:
		return p.number()
	}
}

func (p *attrParser) object(depth int) (any, error) {
	p.i++ // {
	m := map[string]any{}
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return m, nil
	}
	for {
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return nil, errSyntax
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, errSyntax
		}
		p.i++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[k] = v
		p.space()
		if p.i >= len(p.s) {
			return nil, errSyntax
		}
		if p.s[p.i] == '}' {
			p.i++
			return m, nil
		}
		if p.s[p.i] != ',' {
			return nil, errSyntax
		}
		p.i++
	}
}

func (p *attrParser) list(depth int) (any, error) {
	p.i++ // [
	l := []any{}
	p.space()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return l, nil
	}
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		l = append(l, v)
		p.space()
		if p.i >= len(p.s) {
			return nil, errSyntax
		}
		if p.s[p.i] == ']' {
			p.i++
			return l, nil
		}
		if p.s[p.i] != ',' {
			return nil, errSyntax
		}
		p.i++
	}
}

// str reads a string; one with escapes or non-ASCII bytes is decoded by
// encoding/json (which checks UTF-8 as it does).
func (p *attrParser) str() (string, error) {
	start := p.i
	p.i++
	plain := true
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			if plain {
				return p.s[start+1 : p.i-1], nil
			}
			var out string
			if err := json.Unmarshal([]byte(p.s[start:p.i]), &out); err != nil {
				return "", errSyntax
			}
			return out, nil
		case c == '\\':
			plain = false
			p.i += 2
			continue
		case c < 0x20:
			return "", errSyntax
		case c >= 0x80:
			plain = false
		}
		p.i++
	}
	return "", errSyntax
}

func (p *attrParser) number() (any, error) {
	start := p.i
	for p.i < len(p.s) && strings.IndexByte("+-0123456789.eE", p.s[p.i]) >= 0 {
		p.i++
	}
	tok := p.s[start:p.i]
	if !validNumber(tok) {
		return nil, errSyntax
	}
	if n, err := strconv.ParseInt(tok, 10, 64); err == nil && n > -1<<53 && n < 1<<53 {
		return n, nil
	}
	f, err := strconv.ParseFloat(tok, 64)
	if err != nil {
		return nil, errSyntax
	}
	return wholeNumbers(f), nil
}

// parseFast decodes s, or fails with errSyntax.
func parseFast(s string) (map[string]any, error) {
	p := &attrParser{s: s}
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return nil, errSyntax
	}
	v, err := p.object(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.s) {
		return nil, errSyntax
	}
	return v.(map[string]any), nil
}

// validNumber checks JSON's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(s string) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}
