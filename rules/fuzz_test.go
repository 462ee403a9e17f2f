package rules

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzRules compiles random expressions over user and person and evaluates
// those that compile on random attribute values: neither may panic, and an
// evaluation ends (the cost limit) with a value or an error.
func FuzzRules(f *testing.F) {
	for _, s := range []struct{ expr, attrs string }{
		{`user.profile.division`, `{"profile":{"division":"Sales"}}`},
		{`has(user.profile.x) ? user.profile.x : "none"`, `{"profile":{}}`},
		{`user.a + "-" + user.b`, `{"a":"x","b":1}`},
		{`user.n > 3 && user.l.exists(x, x == "a")`, `{"n":4.5,"l":["a",null,{"k":[]}]}`},
		{`"okta/Eng" in person.groups && person.cost_center.startsWith("FR-")`, `{}`},
		{`person.department.matches("^S.*")`, `{}`},
		{`[1,2,3].map(x, [1,2,3].map(y, x*y)).size() > 2`, `[]`},
		{`user["odd key"].size() == 0`, `{"odd key":""}`},
	} {
		f.Add(s.expr, s.attrs, "Sales")
	}
	f.Fuzz(func(t *testing.T, expr, attrs, value string) {
		user, err := ParseAttrs(attrs)
		if err != nil {
			user = map[string]any{"v": value}
		}
		for _, kind := range []Kind{Bool, String} {
			if r, iss := CompileUser(expr, kind); iss == nil {
				_, _ = r.UserBool(user)
				_, _ = r.UserString(user)
				_ = Selection(r).Keep(func() map[string]any { return user })
			}
		}
		if r, iss := CompilePerson(expr); iss == nil {
			_, _ = r.PersonBool(&Person{Department: value, CostCenter: value, Groups: []string{value}, Sources: []string{"okta"}})
		}
	})
}

// FuzzParseAttrs holds the fast attributes parser to encoding/json: the
// same value for every text both accept, and an error where json fails.
func FuzzParseAttrs(f *testing.F) {
	for _, s := range []string{`{"a":"b","n":3,"f":1.5,"l":[1,"x",null,true,{"k":[]}]}`, `{"e":"\u00e9\n\"q\""}`,
		`{"big":12345678901234567890}`, `{"neg":-0.0,"exp":1e3}`, ` { } `, `{"a":}`, `[1]`, `{"a":"\xff"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast, ferr := parseFast(s)
		var slow map[string]any
		serr := json.Unmarshal([]byte(s), &slow)
		if serr != nil || slow == nil {
			if ferr == nil {
				t.Fatalf("%q: fast parser accepts what encoding/json refuses (%v)", s, serr)
			}
			return
		}
		if ferr != nil {
			return // the slow path decodes it
		}
		wholeNumbers(slow)
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %#v, json %#v", s, fast, slow)
		}
	})
}
