package oktatest

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// An expression of Okta's `search` and `filter` languages:
//
//	lastUpdated gt "2026-01-01T00:00:00.000Z" and (status eq "ACTIVE" or profile.department sw "Eng")
//
// Operators: eq, ne, gt, ge, lt, le, sw, co, pr; and, or, not; parentheses.
type expr interface {
	eval(get getter) bool
}

// getter returns an attribute's value: a string, or a time for timestamps
// (isTime), and whether the record has it.
type getter func(attr string) (val string, t time.Time, isTime, ok bool)

// clause is one attribute comparison, kept for filter validation.
type clause struct{ attr, op string }

type (
	orExpr  struct{ l, r expr }
	andExpr struct{ l, r expr }
	notExpr struct{ e expr }
	cmpExpr struct {
		attr, op, val string
		t             time.Time // val as a time, if it is one
		isTime        bool
	}
)

func (e orExpr) eval(g getter) bool  { return e.l.eval(g) || e.r.eval(g) }
func (e andExpr) eval(g getter) bool { return e.l.eval(g) && e.r.eval(g) }
func (e notExpr) eval(g getter) bool { return !e.e.eval(g) }

func (e cmpExpr) eval(g getter) bool {
	v, at, isTime, ok := g(e.attr)
	if e.op == "pr" {
		return ok
	}
	if !ok {
		return e.op == "ne"
	}
	if isTime {
		if !e.isTime {
			return false
		}
		b := e.t
		switch e.op {
		case "eq":
			return at.Equal(b)
		case "ne":
			return !at.Equal(b)
		case "gt":
			return at.After(b)
		case "ge":
			return !at.Before(b)
		case "lt":
			return at.Before(b)
		case "le":
			return !at.After(b)
		}
		return false
	}
	a, b := strings.ToLower(v), strings.ToLower(e.val)
	switch e.op {
	case "eq":
		return a == b
	case "ne":
		return a != b
	case "gt":
		return a > b
	case "ge":
		return a >= b
	case "lt":
		return a < b
	case "le":
		return a <= b
	case "sw":
		return strings.HasPrefix(a, b)
	case "co":
		return strings.Contains(a, b)
	}
	return false
}

type token struct {
	text   string
	quoted bool
}

func tokenize(s string) ([]token, error) {
	var toks []token
	rs := []rune(s)
	for i := 0; i < len(rs); {
		c := rs[i]
		switch {
		case unicode.IsSpace(c):
			i++
		case c == '(' || c == ')':
			toks = append(toks, token{text: string(c)})
			i++
		case c == '"':
			var b strings.Builder
			i++
			closed := false
			for i < len(rs) {
				if rs[i] == '\\' && i+1 < len(rs) {
					b.WriteRune(rs[i+1])
					i += 2
					continue
				}
				if rs[i] == '"' {
					closed = true
					i++
					break
				}
				b.WriteRune(rs[i])
				i++
			}
			if !closed {
				return nil, fmt.Errorf("unterminated string")
			}
			toks = append(toks, token{text: b.String(), quoted: true})
		default:
			j := i
			for j < len(rs) && !unicode.IsSpace(rs[j]) && rs[j] != '(' && rs[j] != ')' && rs[j] != '"' {
				j++
			}
			toks = append(toks, token{text: string(rs[i:j])})
			i = j
		}
	}
	return toks, nil
}

type parser struct {
	toks    []token
	pos     int
	clauses []clause
}

// parseExpr parses an expression and lists its comparisons.
func parseExpr(s string) (expr, []clause, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, nil, err
	}
	if len(toks) == 0 {
		return nil, nil, fmt.Errorf("empty expression")
	}
	p := &parser{toks: toks}
	e, err := p.or()
	if err != nil {
		return nil, nil, err
	}
	if p.pos != len(p.toks) {
		return nil, nil, fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	return e, p.clauses, nil
}

func (p *parser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

func (p *parser) keyword(word string) bool {
	t, ok := p.peek()
	if ok && !t.quoted && strings.EqualFold(t.text, word) {
		p.pos++
		return true
	}
	return false
}

func (p *parser) or() (expr, error) {
	return p.chain("or", p.and, func(l, r expr) expr { return orExpr{l, r} })
}

func (p *parser) and() (expr, error) {
	return p.chain("and", p.not, func(l, r expr) expr { return andExpr{l, r} })
}

// chain parses operands joined by the keyword op, left to right.
func (p *parser) chain(op string, operand func() (expr, error), join func(l, r expr) expr) (expr, error) {
	l, err := operand()
	if err != nil {
		return nil, err
	}
	for p.keyword(op) {
		r, err := operand()
		if err != nil {
			return nil, err
		}
		l = join(l, r)
	}
	return l, nil
}

func (p *parser) not() (expr, error) {
	if p.keyword("not") {
		e, err := p.not()
		if err != nil {
			return nil, err
		}
		return notExpr{e}, nil
	}
	return p.primary()
}

var operators = map[string]bool{"eq": true, "ne": true, "gt": true, "ge": true, "lt": true, "le": true, "sw": true, "co": true, "pr": true}

func (p *parser) primary() (expr, error) {
	t, ok := p.peek()
	if !ok {
		return nil, fmt.Errorf("expression ends early")
	}
	if !t.quoted && t.text == "(" {
		p.pos++
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if t, ok := p.peek(); !ok || t.quoted || t.text != ")" {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		return e, nil
	}
	if t.quoted || t.text == ")" {
		return nil, fmt.Errorf("expected an attribute, got %q", t.text)
	}
	attr := t.text
	p.pos++
	opTok, ok := p.peek()
	if !ok || opTok.quoted || !operators[strings.ToLower(opTok.text)] {
		return nil, fmt.Errorf("expected an operator after %s", attr)
	}
	op := strings.ToLower(opTok.text)
	p.pos++
	p.clauses = append(p.clauses, clause{attr: attr, op: op})
	if op == "pr" {
		return cmpExpr{attr: attr, op: op}, nil
	}
	v, ok := p.peek()
	if !ok || (!v.quoted && (v.text == "(" || v.text == ")")) {
		return nil, fmt.Errorf("expected a value after %s %s", attr, op)
	}
	p.pos++
	c := cmpExpr{attr: attr, op: op, val: v.text}
	if t, err := time.Parse(time.RFC3339Nano, v.text); err == nil {
		c.t, c.isTime = t, true
	}
	return c, nil
}
