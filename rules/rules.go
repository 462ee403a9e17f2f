// Package rules compiles and evaluates the configuration's expressions: the
// attribute mapping and scope of a source (over `user`, the identity
// provider's own user object) and the license rules (over `person`, the
// merged directory attributes). Expressions are CEL, compiled and
// type-checked once at load; every evaluation runs under a cost limit, so
// that no expression can hang a run.
package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// Kind is what an expression must yield.
type Kind int

// Kinds of result.
const (
	// Bool rules decide (scope.when, licenses[].when).
	Bool Kind = iota
	// String rules map an attribute (sources[].map).
	String
)

// Variables the expressions see.
const (
	// UserVar is the identity provider's user object (a map).
	UserVar = "user"
	// PersonVar is the merged directory person (Person).
	PersonVar = "person"
)

// CostLimit bounds the work of one evaluation (CEL cost units: about one a
// step, more for string and list work). A rule over attributes costs tens.
const CostLimit = 100000

// maxExprLen bounds the text of one expression.
const maxExprLen = 4096

// Attributes are the directory attribute names, in the order of a profile:
// the keys of sources[].map and the fields of person.
var Attributes = []string{"user_name", "email", "given_name", "family_name", "display_name", "title",
	"department", "employee_number", "manager", "cost_center"}

// Person is what a license rule sees as `person`: the merged directory
// attributes, the person's groups ("source/name") and sources.
type Person struct {
	UserName       string   `cel:"user_name"`
	Email          string   `cel:"email"`
	GivenName      string   `cel:"given_name"`
	FamilyName     string   `cel:"family_name"`
	DisplayName    string   `cel:"display_name"`
	Title          string   `cel:"title"`
	Department     string   `cel:"department"`
	EmployeeNumber string   `cel:"employee_number"`
	Manager        string   `cel:"manager"`
	CostCenter     string   `cel:"cost_center"`
	Groups         []string `cel:"groups"`
	Sources        []string `cel:"sources"`
}

// Rule is one compiled expression. It marshals to JSON as its text, so that
// the rules' digest changes with the expression.
type Rule struct {
	// Expr is the expression as configured.
	Expr string
	kind Kind
	prg  cel.Program
	// reads are the raw attributes of `user` it reads.
	reads []path
	// groups says it reads person.groups.
	groups bool
}

// MarshalJSON encodes the rule as its text.
func (r *Rule) MarshalJSON() ([]byte, error) { return json.Marshal(r.Expr) }

// String returns the rule's text.
func (r *Rule) String() string { return r.Expr }

// ReadsGroups reports whether the rule reads person.groups.
func (r *Rule) ReadsGroups() bool { return r != nil && r.groups }

// Issue is one problem of an expression, at a 1-based line and column
// (0 when the problem has no place).
type Issue struct {
	Line, Column int
	Msg          string
}

func (i Issue) Error() string {
	if i.Line == 0 {
		return i.Msg
	}
	return fmt.Sprintf("%d:%d: %s", i.Line, i.Column, i.Msg)
}

var (
	userEnv = sync.OnceValues(func() (*cel.Env, error) {
		return cel.NewEnv(cel.Variable(UserVar, cel.MapType(cel.StringType, cel.DynType)), ext.Strings(), cel.OptionalTypes())
	})
	personEnv = sync.OnceValues(func() (*cel.Env, error) {
		return cel.NewEnv(ext.NativeTypes(reflect.TypeFor[Person](), ext.ParseStructTags(true)),
			cel.Variable(PersonVar, cel.ObjectType("rules.Person")), ext.Strings(), cel.OptionalTypes())
	})
)

// CompileUser compiles an expression over `user` that yields kind.
func CompileUser(expr string, kind Kind) (*Rule, []Issue) {
	env, err := userEnv()
	if err != nil {
		return nil, []Issue{{Msg: err.Error()}}
	}
	return compile(env, expr, kind, sizeBound{max: MaxAttrsBytes})
}

// CompilePerson compiles a license rule: a boolean over `person`.
func CompilePerson(expr string) (*Rule, []Issue) {
	env, err := personEnv()
	if err != nil {
		return nil, []Issue{{Msg: err.Error()}}
	}
	return compile(env, expr, Bool, sizeBound{max: MaxFieldBytes, unboundedLists: true})
}

func compile(env *cel.Env, expr string, kind Kind, bound sizeBound) (*Rule, []Issue) {
	if strings.TrimSpace(expr) == "" {
		return nil, []Issue{{Msg: "empty expression"}}
	}
	if len(expr) > maxExprLen {
		return nil, []Issue{{Msg: fmt.Sprintf("expression longer than %d bytes", maxExprLen)}}
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		var out []Issue
		for _, e := range iss.Errors() {
			out = append(out, Issue{Line: e.Location.Line(), Column: e.Location.Column() + 1, Msg: e.Message})
		}
		return nil, out
	}
	want := cel.BoolType
	if kind == String {
		want = cel.StringType
	}
	if t := ast.OutputType(); !t.IsExactType(want) && !t.IsExactType(cel.DynType) {
		return nil, []Issue{{Line: 1, Column: 1, Msg: fmt.Sprintf("yields %s, want %s", t, want)}}
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if !boundedCost(env, ast, bound) {
		opts = append(opts, cel.CostLimit(CostLimit))
	}
	prg, err := env.Program(ast, opts...)
	if err != nil {
		return nil, []Issue{{Msg: err.Error()}}
	}
	r := &Rule{Expr: expr, kind: kind, prg: prg}
	w := &walker{}
	w.walk(ast.NativeRep().Expr())
	r.reads, r.groups = w.reads, w.groups
	return r, nil
}

// ErrCost is the error of an evaluation stopped by the cost limit.
var ErrCost = errors.New("cost limit exceeded")

// activation holds the one variable of an evaluation without a map.
type activation struct {
	name string
	val  any
}

func (a *activation) ResolveName(name string) (any, bool) {
	if name == a.name {
		return a.val, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

func (r *Rule) eval(name string, v any) (ref.Val, error) {
	out, _, err := r.prg.Eval(&activation{name: name, val: v})
	if err != nil {
		if strings.Contains(err.Error(), "cost limit exceeded") {
			return nil, ErrCost
		}
		return nil, errors.New(shortError(err))
	}
	return out, nil
}

// shortError keeps the message of a CEL evaluation error on one line.
func shortError(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// UserBool evaluates a boolean rule over a user object.
func (r *Rule) UserBool(user map[string]any) (bool, error) {
	return r.toBool(r.eval(UserVar, user))
}

// UserString evaluates a string rule over a user object.
func (r *Rule) UserString(user map[string]any) (string, error) {
	v, err := r.eval(UserVar, user)
	if err != nil {
		return "", err
	}
	switch x := v.(type) {
	case types.String:
		return string(x), nil
	case types.Null:
		return "", nil
	}
	return "", fmt.Errorf("yields %s, want string", v.Type().(ref.Type).TypeName())
}

// PersonBool evaluates a license rule for a person.
func (r *Rule) PersonBool(p *Person) (bool, error) {
	return r.toBool(r.eval(PersonVar, p))
}

func (r *Rule) toBool(v ref.Val, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("yields %s, want bool", v.Type().(ref.Type).TypeName())
	}
	return bool(b), nil
}

// MaxAttrsBytes bounds the JSON text of a user's raw attributes the rules
// evaluate (a larger one fails them): every string, list and map in `user`
// is smaller, which bounds what an expression over it can cost.
const MaxAttrsBytes = 64 << 10

// MaxFieldBytes bounds a person's attributes (the directory cuts longer
// values: reconcile.MaxFieldBytes).
const MaxFieldBytes = 1024

// ParseAttrs decodes the JSON text of a user's raw attributes (User.Attrs);
// "" is an empty object. Numbers decode as float64 (CEL double) unless they
// are whole, which decode as int64, as a rule expects of `user.x == 3`.
func ParseAttrs(s string) (map[string]any, error) {
	if s == "" {
		return map[string]any{}, nil
	}
	if len(s) > MaxAttrsBytes {
		return nil, fmt.Errorf("attributes are %d bytes, more than %d", len(s), MaxAttrsBytes)
	}
	if m, err := parseFast(s); err == nil {
		return m, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode attributes: %w", err)
	}
	if m == nil {
		return nil, errors.New("decode attributes: not an object")
	}
	wholeNumbers(m)
	return m, nil
}

// wholeNumbers turns the whole float64s JSON decoded into int64 (CEL int),
// in place.
func wholeNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			switch e.(type) {
			case map[string]any, []any, float64:
				x[k] = wholeNumbers(e)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = wholeNumbers(e)
		}
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
	}
	return v
}
