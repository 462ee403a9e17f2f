// Package rulestest compiles rules for tests and benchmarks, failing the
// test on a compile error.
package rulestest

import (
	"testing"

	"github.com/learnsync/learnsync/rules"
)

// User compiles expr over user as kind, or fails tb.
func User(tb testing.TB, expr string, kind rules.Kind) *rules.Rule {
	tb.Helper()
	r, iss := rules.CompileUser(expr, kind)
	if iss != nil {
		tb.Fatalf("%s: %v", expr, iss)
	}
	return r
}

// Person compiles expr, a license rule over person, or fails tb.
func Person(tb testing.TB, expr string) *rules.Rule {
	tb.Helper()
	r, iss := rules.CompilePerson(expr)
	if iss != nil {
		tb.Fatalf("%s: %v", expr, iss)
	}
	return r
}
