package filter

import (
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkError fails unless err is an *Error of type typ with a position
// inside the input.
func checkError(t *testing.T, what, s string, err error, typ string) {
	t.Helper()
	fe, ok := err.(*Error)
	if !ok {
		t.Fatalf("%s(%q) error %T is not *Error", what, s, err)
	}
	if fe.Type != typ || fe.Pos < 0 || fe.Pos > len(s) || fe.Detail == "" {
		t.Fatalf("%s(%q) = %#v: wrong type or position", what, s, fe)
	}
}

// boundsError reports whether err is the length or depth refusal, which a
// canonical form may hit when its input was at the bounds.
func boundsError(err error) bool {
	fe, ok := err.(*Error)
	return ok && (strings.Contains(fe.Detail, "longer than the") || strings.Contains(fe.Detail, "nests deeper than"))
}

// roundTrip fails unless parse(first.String()) gives back first, or is
// refused by the bounds.
func roundTrip[T interface{ String() string }](t *testing.T, in string, first T, parse func(string) (T, error)) {
	t.Helper()
	again, err := parse(first.String())
	if err != nil && boundsError(err) {
		return
	}
	if err != nil {
		t.Fatalf("%q parsed, but its String() %q does not: %v", in, first.String(), err)
	}
	if !reflect.DeepEqual(first, again) {
		t.Fatalf("%q round trip through %q (-first +second):\n%s", in, first.String(), cmp.Diff(first, again))
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, tc := range filterCases {
		f.Add(tc.in)
	}
	for _, s := range []string{`(a pr`, `a pr)`, `emails[type eq "x"]]`, `not (`, `eq "x"`, `a eq "\u00e9\ud800"`, `a eq 1e999`} {
		f.Add(s)
	}
	user := decodeUser(f)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			checkError(t, "Parse", s, err, InvalidFilter)
			return
		}
		Match(e, user)
		roundTrip(t, s, e, Parse)
	})
}

func FuzzParsePath(f *testing.F) {
	for _, tc := range pathCases {
		f.Add(tc.in)
	}
	for _, tc := range attributeCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := ParseAttributes(s); err != nil {
			checkError(t, "ParseAttributes", s, err, InvalidFilter)
		}
		p, err := ParsePath(s)
		if err != nil {
			checkError(t, "ParsePath", s, err, InvalidPath)
			return
		}
		roundTrip(t, s, p, ParsePath)
	})
}
