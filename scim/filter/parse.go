package filter

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Parse parses a filter (the filter= query parameter, already URL-decoded).
// Errors are *Error with Type InvalidFilter.
func Parse(s string) (Expr, error) {
	p, err := newParser(InvalidFilter, s)
	if err != nil {
		return nil, err
	}
	e, err := p.or("")
	if err != nil {
		return nil, err
	}
	if err := p.end("filter"); err != nil {
		return nil, err
	}
	return e, nil
}

// ParsePath parses a PATCH operation's path (RFC 7644 §3.5.2): an attribute
// path, optionally with a value filter and a sub-attribute after it.
// Errors are *Error with Type InvalidPath.
func ParsePath(s string) (Path, error) {
	p, err := newParser(InvalidPath, s)
	if err != nil {
		return Path{}, err
	}
	p.skipSpace()
	path, err := p.path()
	if err != nil {
		return Path{}, err
	}
	if err := p.end("path"); err != nil {
		return Path{}, err
	}
	return path, nil
}

// ParseAttributes parses an attributes= or excludedAttributes= list: attribute
// paths separated by commas; empty entries are skipped. A value filter in an
// entry, as in attributes=emails[type eq "work"], is checked and then dropped:
// it names the attribute (emails), so the returned paths have no Filter.
// Errors are *Error with Type InvalidFilter.
func ParseAttributes(s string) ([]Path, error) {
	if err := checkInput(InvalidFilter, s); err != nil {
		return nil, err
	}
	var out []Path
	start := 0
	for _, end := range splitList(s) {
		p := &parser{typ: InvalidFilter, src: s[:end], pos: start}
		start = end + 1
		p.skipSpace()
		if p.eof() {
			continue
		}
		path, err := p.path()
		if err != nil {
			return nil, err
		}
		if err := p.end("attribute"); err != nil {
			return nil, err
		}
		path.Filter = nil
		out = append(out, path)
	}
	return out, nil
}

// splitList returns the offsets of the commas that separate list entries
// (outside quotes and brackets), followed by len(s).
func splitList(s string) []int {
	var cuts []int
	depth, inQuote := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case inQuote:
		case c == '[':
			depth++
		case c == ']':
			depth--
		case c == ',' && depth <= 0:
			cuts = append(cuts, i)
		}
	}
	return append(cuts, len(s))
}

func checkInput(typ, s string) error {
	if len(s) > MaxLength {
		return errorAt(typ, s, 0, "input is %d bytes, longer than the %d allowed", len(s), MaxLength)
	}
	if !utf8.ValidString(s) {
		for i, r := range s {
			if r == utf8.RuneError {
				return errorAt(typ, s, i, "invalid UTF-8")
			}
		}
	}
	return nil
}

// parser is a recursive-descent parser over src. Every recursion passes
// through nested, which bounds the depth.
type parser struct {
	typ     string // scimType of the errors
	src     string
	pos     int
	depth   int
	inValue bool // inside a value filter's brackets
}

func newParser(typ, s string) (*parser, error) {
	if err := checkInput(typ, s); err != nil {
		return nil, err
	}
	return &parser{typ: typ, src: s}, nil
}

func (p *parser) errorf(pos int, format string, args ...any) error {
	return errorAt(p.typ, p.src, pos, format, args...)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDelim(c byte) bool {
	return isSpace(c) || c == '(' || c == ')' || c == '[' || c == ']' || c == '"'
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.src[p.pos]
}

func (p *parser) skipSpace() {
	for !p.eof() && isSpace(p.src[p.pos]) {
		p.pos++
	}
}

// word consumes a run of non-delimiter bytes.
func (p *parser) word() string {
	start := p.pos
	for !p.eof() && !isDelim(p.src[p.pos]) {
		p.pos++
	}
	return p.src[start:p.pos]
}

// found describes what is at the current position, for error messages.
func (p *parser) found() string {
	if p.eof() {
		return "end of input"
	}
	if c := p.src[p.pos]; c == '"' {
		return "a string"
	} else if isDelim(c) {
		return fmt.Sprintf("%q", string(c))
	}
	save := p.pos
	w := p.word()
	p.pos = save
	return fmt.Sprintf("%q", w)
}

// keyword consumes the next word if it is kw (in any case).
func (p *parser) keyword(kw string) bool {
	save := p.pos
	p.skipSpace()
	if strings.EqualFold(p.word(), kw) {
		return true
	}
	p.pos = save
	return false
}

// operatorFollows reports whether the next word is a comparison operator or pr.
func (p *parser) operatorFollows() bool {
	save := p.pos
	defer func() { p.pos = save }()
	p.skipSpace()
	w := strings.ToLower(p.word())
	_, ok := compareOps[w]
	return ok || w == "pr"
}

func reserved(w string) bool {
	w = strings.ToLower(w)
	_, ok := compareOps[w]
	return ok || w == "pr" || w == "and" || w == "or" || w == "not"
}

// end checks that only spaces are left.
func (p *parser) end(what string) error {
	p.skipSpace()
	if p.eof() {
		return nil
	}
	switch p.peek() {
	case ')':
		return p.errorf(p.pos, `unbalanced ")": no "(" to close`)
	case ']':
		return p.errorf(p.pos, `unbalanced "]": no "[" to close`)
	}
	return p.errorf(p.pos, "expected the end of the %s, found %s", what, p.found())
}

// or parses a filter: and-terms joined by "or". after names the token before
// it, for the error when it is missing.
func (p *parser) or(after string) (Expr, error) { return p.binary(Or, after) }

// binary parses operands joined by op, left-associatively: and-terms for
// "or", unary filters for "and".
func (p *parser) binary(op LogicalOp, after string) (Expr, error) {
	operand := p.unary
	if op == Or {
		operand = func(after string) (Expr, error) { return p.binary(And, after) }
	}
	left, err := operand(after)
	if err != nil {
		return nil, err
	}
	for p.keyword(string(op)) {
		right, err := operand(string(op))
		if err != nil {
			return nil, err
		}
		left = Logical{Op: op, Left: left, Right: right}
	}
	return left, nil
}

// unary parses not (...), a parenthesised filter or an attribute expression.
func (p *parser) unary(after string) (Expr, error) {
	p.skipSpace()
	start := p.pos
	if p.eof() {
		if after == "" {
			return nil, p.errorf(p.pos, "empty filter")
		}
		return nil, p.errorf(p.pos, "expected a filter after %q", after)
	}
	switch p.peek() {
	case '(':
		return p.nested('(', ')', after)
	case '"':
		return nil, p.errorf(p.pos, "expected an attribute name, found a string")
	case ')', ']', '[':
		if after == "" {
			return nil, p.errorf(p.pos, "expected a filter, found %s", p.found())
		}
		return nil, p.errorf(p.pos, "expected a filter after %q, found %s", after, p.found())
	}
	if w := p.word(); strings.EqualFold(w, "not") {
		p.skipSpace()
		if p.peek() == '(' {
			inner, err := p.nested('(', ')', w)
			if err != nil {
				return nil, err
			}
			return Not{Filter: inner}, nil
		}
		if !p.operatorFollows() {
			return nil, p.errorf(p.pos, `expected "(" after %q, found %s`, w, p.found())
		}
	}
	p.pos = start
	return p.attrExpr()
}

// nested parses a filter between open and close, counting the depth.
func (p *parser) nested(open, close byte, after string) (Expr, error) {
	at := p.pos
	if p.depth >= MaxDepth {
		return nil, p.errorf(at, "filter nests deeper than %d levels", MaxDepth)
	}
	p.depth++
	p.pos++ // open
	ctx := after
	if ctx == "" || open == '[' {
		ctx = string(open)
	}
	e, err := p.or(ctx)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.peek() != close {
		line, col := lineCol(p.src, at)
		return nil, p.errorf(p.pos, "expected %q to close %q at %d:%d, found %s",
			string(close), string(open), line, col, p.found())
	}
	p.pos++
	p.depth--
	return e, nil
}

// valueFilter parses [filter] after a multi-valued attribute.
func (p *parser) valueFilter(attr AttrPath) (Expr, error) {
	if p.inValue {
		return nil, p.errorf(p.pos, "value filters cannot be nested")
	}
	if attr.Sub != "" {
		return nil, p.errorf(p.pos, "a value filter cannot follow the sub-attribute %q", attr.String())
	}
	p.inValue = true
	f, err := p.nested('[', ']', "")
	p.inValue = false
	return f, err
}

// attrExpr parses attrPath pr, attrPath op value, attrPath[filter] and
// Entra's attrPath[filter].sub op value.
func (p *parser) attrExpr() (Expr, error) {
	start := p.pos
	w := p.word()
	if reserved(w) && p.peek() != '[' && !p.operatorFollows() {
		return nil, p.errorf(start, "expected an attribute name before %q", w)
	}
	attr, err := p.attrPath(w, start)
	if err != nil {
		return nil, err
	}
	if p.peek() != '[' {
		return p.test(attr)
	}
	f, err := p.valueFilter(attr)
	if err != nil {
		return nil, err
	}
	if p.peek() != '.' {
		return ValuePath{Path: attr, Filter: f}, nil
	}
	// emails[type eq "work"].value eq "x" means an email with type work and
	// value x: fold the comparison into the value filter.
	p.pos++
	subAt := p.pos
	sub := p.word()
	if !validName(sub) {
		return nil, p.errorf(subAt, "expected a sub-attribute name after %q, found %q", attr.String()+"[…].", sub)
	}
	t, err := p.test(AttrPath{Name: sub})
	if err != nil {
		return nil, err
	}
	return ValuePath{Path: attr, Filter: Logical{Op: And, Left: f, Right: t}}, nil
}

// test parses the operator and value after an attribute path.
func (p *parser) test(attr AttrPath) (Expr, error) {
	p.skipSpace()
	at := p.pos
	if p.eof() || isDelim(p.peek()) {
		return nil, p.errorf(at, "expected an operator after %q, found %s", attr.String(), p.found())
	}
	w := p.word()
	lw := strings.ToLower(w)
	if lw == "pr" {
		return Present{Path: attr}, nil
	}
	op, ok := compareOps[lw]
	if !ok {
		return nil, p.errorf(at, "unknown operator %q after %q", w, attr.String())
	}
	p.skipSpace()
	vat := p.pos
	v, err := p.value(w)
	if err != nil {
		return nil, err
	}
	if op != Eq && op != Ne && (v.Kind == KindBool || v.Kind == KindNull) {
		return nil, p.errorf(vat, "operator %q cannot compare with %s", w, v.Text)
	}
	return Compare{Path: attr, Op: op, Value: v}, nil
}

var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// value parses a comparison value: a JSON literal, or an unquoted token.
func (p *parser) value(op string) (Value, error) {
	p.skipSpace()
	at := p.pos
	if p.eof() {
		return Value{}, p.errorf(at, "expected a value after %q", op)
	}
	if p.peek() == '"' {
		s, err := p.str()
		if err != nil {
			return Value{}, err
		}
		return textValue(s), nil
	}
	if isDelim(p.peek()) {
		return Value{}, p.errorf(at, "expected a value after %q, found %s", op, p.found())
	}
	w := p.word()
	if i := strings.IndexFunc(w, isControl); i >= 0 {
		return Value{}, p.errorf(at+i, "control character %q in an unquoted value", w[i])
	}
	switch lw := strings.ToLower(w); lw {
	case "and", "or":
		// userName eq and title pr: a forgotten value, not the word "and".
		return Value{}, p.errorf(at, "expected a value after %q, found %q (quote it to compare with the word)", op, w)
	case "true", "false":
		return Value{Kind: KindBool, Text: lw}, nil
	case "null":
		return Value{Kind: KindNull, Text: lw}, nil
	}
	if jsonNumber.MatchString(w) {
		return Value{Kind: KindNumber, Text: w}, nil
	}
	return textValue(w), nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func textValue(s string) Value {
	if _, ok := parseTime(s); ok {
		return Value{Kind: KindDateTime, Text: s}
	}
	return Value{Kind: KindString, Text: s}
}

// str parses a JSON string literal.
func (p *parser) str() (string, error) {
	at := p.pos
	i := p.pos + 1
	for ; i < len(p.src); i++ {
		if c := p.src[i]; c == '\\' {
			i++
		} else if c == '"' {
			break
		}
	}
	if i >= len(p.src) {
		return "", p.errorf(at, "unterminated string")
	}
	var s string
	if err := json.Unmarshal([]byte(p.src[at:i+1]), &s); err != nil {
		return "", p.errorf(at, "invalid string: bad escape or control character")
	}
	p.pos = i + 1
	return s, nil
}

// path parses attrPath, attrPath[filter] or attrPath[filter].sub.
func (p *parser) path() (Path, error) {
	start := p.pos
	if p.eof() {
		return Path{}, p.errorf(start, "empty path")
	}
	if isDelim(p.peek()) {
		return Path{}, p.errorf(start, "expected an attribute name, found %s", p.found())
	}
	attr, err := p.attrPath(p.word(), start)
	if err != nil {
		return Path{}, err
	}
	if p.peek() != '[' {
		return Path{Attr: attr}, nil
	}
	f, err := p.valueFilter(attr)
	if err != nil {
		return Path{}, err
	}
	if p.peek() == '.' {
		p.pos++
		subAt := p.pos
		sub := p.word()
		if !validName(sub) {
			return Path{}, p.errorf(subAt, "expected a sub-attribute name after %q, found %q", attr.String()+"[…].", sub)
		}
		attr.Sub = sub
	}
	return Path{Attr: attr, Filter: f}, nil
}

// attrPath splits w, read at start, into schema URN, name and sub-attribute.
func (p *parser) attrPath(w string, start int) (AttrPath, error) {
	var a AttrPath
	rest, restAt := w, start
	if len(w) >= 4 && strings.EqualFold(w[:4], "urn:") {
		i := strings.LastIndexByte(w, ':')
		a.URN, rest, restAt = w[:i], w[i+1:], start+i+1
		if i == 3 || rest == "" {
			return a, p.errorf(restAt, "expected an attribute name after the schema URN %q", w)
		}
	}
	name, sub, dot := strings.Cut(rest, ".")
	if !validName(name) {
		return a, p.errorf(restAt, "invalid attribute name %q", name)
	}
	if dot && !validName(sub) {
		return a, p.errorf(restAt+len(name)+1, "invalid sub-attribute name %q", sub)
	}
	a.Name, a.Sub = name, sub
	return a, nil
}

// validName reports whether s is an ATTRNAME (RFC 7644 §3.10), allowing "$"
// and "_" for $ref and vendor extensions.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '$', c == '_':
		case i > 0 && ('0' <= c && c <= '9' || c == '-'):
		default:
			return false
		}
	}
	return true
}
