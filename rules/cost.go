package rules

import (
	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/checker"
	"cel.dev/cel-go/common/types"
)

// sizeBound sizes the values an expression reads for CEL's static cost
// estimate: strings, lists and maps of the variables are at most max long
// (the limits the attributes are held to), and the person's lists, which
// have no limit, are unbounded when unboundedLists is set.
type sizeBound struct {
	max            uint64
	unboundedLists bool
}

func (b sizeBound) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

func (b sizeBound) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	if len(n.Path()) == 0 {
		return nil
	}
	if t := n.Type(); b.unboundedLists && t != nil && t.Kind() == types.ListKind {
		return nil
	}
	return &checker.SizeEstimate{Min: 0, Max: b.max}
}

// boundedCost reports whether the static estimate of the expression's cost,
// with the sizes bounded, stays within CostLimit: such a program needs no
// cost tracking at run time (it costs a quarter of an evaluation), the
// others run under cel.CostLimit.
func boundedCost(env *cel.Env, ast *cel.Ast, b sizeBound) bool {
	est, err := env.EstimateCost(ast, b)
	return err == nil && est.Max <= CostLimit
}
