package rules

import (
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"

	"github.com/learnsync/learnsync/connectors"
)

// path is a chain of property names below `user`; empty = the whole user.
type path []string

// walker finds what of its variables an expression reads: every longest
// chain of field selections (or constant string indexes) on `user`, kept
// whole, and whether person.groups is read.
type walker struct {
	reads  []path
	groups bool
}

// chain returns the property path e selects below the variable name, if e
// is such a chain.
func chain(e celast.Expr, name string) (path, bool) {
	switch e.Kind() {
	case celast.IdentKind:
		return nil, e.AsIdent() == name
	case celast.SelectKind:
		s := e.AsSelect()
		p, ok := chain(s.Operand(), name)
		if !ok {
			return nil, false
		}
		return append(p, s.FieldName()), true
	case celast.CallKind:
		c := e.AsCall()
		// user["a"], user[?"a"] and user.?a read property a.
		fn := c.FunctionName()
		if (fn != operators.Index && fn != operators.OptIndex && fn != operators.OptSelect) || len(c.Args()) != 2 || c.Args()[1].Kind() != celast.LiteralKind {
			return nil, false
		}
		key, isStr := c.Args()[1].AsLiteral().(types.String)
		if !isStr {
			return nil, false
		}
		p, ok := chain(c.Args()[0], name)
		if !ok {
			return nil, false
		}
		return append(p, string(key)), true
	}
	return nil, false
}

func (w *walker) walk(e celast.Expr) {
	if p, ok := chain(e, UserVar); ok {
		w.reads = append(w.reads, p)
		return
	}
	if p, ok := chain(e, PersonVar); ok {
		if len(p) == 0 || p[0] == "groups" {
			w.groups = true
		}
		return
	}
	switch e.Kind() {
	case celast.SelectKind:
		w.walk(e.AsSelect().Operand())
	case celast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			w.walk(c.Target())
		}
		for _, a := range c.Args() {
			w.walk(a)
		}
	case celast.ListKind:
		for _, x := range e.AsList().Elements() {
			w.walk(x)
		}
	case celast.MapKind:
		for _, en := range e.AsMap().Entries() {
			me := en.AsMapEntry()
			w.walk(me.Key())
			w.walk(me.Value())
		}
	case celast.StructKind:
		for _, f := range e.AsStruct().Fields() {
			w.walk(f.AsStructField().Value())
		}
	case celast.ComprehensionKind:
		c := e.AsComprehension()
		for _, x := range []celast.Expr{c.IterRange(), c.AccuInit(), c.LoopCondition(), c.LoopStep(), c.Result()} {
			w.walk(x)
		}
	}
}

// Selection returns the raw attributes the rules over `user` read, or nil
// when they read none (or there are none).
func Selection(rs ...*Rule) *connectors.Selection {
	var s *connectors.Selection
	for _, r := range rs {
		if r == nil {
			continue
		}
		for _, p := range r.reads {
			if s == nil {
				s = &connectors.Selection{}
			}
			s.Add(p)
		}
	}
	return s
}
