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
		again, err := Parse(e.String())
		if err != nil && boundsError(err) {
			return
		}
		if err != nil {
			t.Fatalf("Parse(%q) ok, but Parse(String() = %q): %v", s, e.String(), err)
		}
		if !reflect.DeepEqual(e, again) {
			d := cmp.Diff(e, again)
			t.Fatalf("Parse(%q) round trip through %q (-first +second):\n%s", s, e.String(), d)
		}
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
		again, err := ParsePath(p.String())
		if err != nil && boundsError(err) {
			return
		}
		if err != nil {
			t.Fatalf("ParsePath(%q) ok, but ParsePath(String() = %q): %v", s, p.String(), err)
		}
		if !reflect.DeepEqual(p, again) {
			d := cmp.Diff(p, again)
			t.Fatalf("ParsePath(%q) round trip through %q (-first +second):\n%s", s, p.String(), d)
		}
	})
}
